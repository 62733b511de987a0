# Helpers shared by the lab demo, the lab test suite and the lab benchmark: a guest under
# Pacemaker, where it runs, and what its TCP counter says. Source after setting LABTOOL.

NET=10.99.0
GUEST_IP=$NET.100

lab() { "$LABTOOL" "$@"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# First host that is up and in the cluster: where crm runs.
any_node() {
    local h
    for h in node1 node2 node3 node4 node5; do
        lab on "$h" true 2>/dev/null && lab on "$h" crm_mon -1 >/dev/null 2>&1 && {
            echo "$h"
            return 0
        }
    done
    return 1
}

crm_() { lab on "$(any_node)" crm "$@"; }

# make_guest NAME [extra kernel args]: domain XML on the shared storage, with a NIC on the
# hosts' vmbr0 and the counter served on $GUEST_IP:7777. SHARED_MEM=1: its memory a shared
# file (in the hosts' memory_backing_dir, a tmpfs), as replication wants. DISK=PATH: a raw
# disk at PATH (each host's own when PATH is under /var).
make_guest() {
    local name=$1 shared=${VMHA_LAB_DIR:-/tmp/vmha-lab}/srv/cluster
    mkdir -p "$shared/boot"
    cp -u "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$shared/boot/"
    GUEST_DIR=$shared/boot SERIAL_LOG=/srv/cluster/$name.serial \
        "$SRC/tests/guest/make-guest-xml.sh" "$name" "$shared/$name.xml.tmp" \
        "vmha.ip=$GUEST_IP/24" ${2:-}
    local mac
    mac=$(printf '52:54:00:99:00:%02x' "${GUEST_IP##*.}")
    sed -e "s|$shared/boot|/srv/cluster/boot|g" \
        -e "s|<controller type='usb' model='none'/>|<interface type='bridge'><source bridge='vmbr0'/><mac address='$mac'/><model type='virtio'/></interface>\n    &|" \
        "$shared/$name.xml.tmp" >"$shared/$name.xml"
    rm -f "$shared/$name.xml.tmp"
    [ -z "${SHARED_MEM:-}" ] || sed -i "s|<vcpu|<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>\n  &|" \
        "$shared/$name.xml"
}

# configure_guest NAME: NAME (make_guest's XML) as ocf:vmha:guest under Pacemaker, allowed to
# live-migrate, with the timeouts the lab's emulated guests need.
configure_guest() {
    crm_ configure primitive "$1" ocf:vmha:guest \
        params config="/srv/cluster/$1.xml" name="$1" migrate_target='qemu+tcp://%n/system' \
        op start timeout=90s op stop timeout=90s op monitor interval=5s timeout=20s \
        op migrate_to timeout=120s op migrate_from timeout=60s \
        meta allow-migrate=true >/dev/null 2>&1
}

# The guest's counter over TCP from the workstation, or nothing if unreachable within 1 s.
tcp_counter() {
    lab admin timeout 0.3 busybox nc "$GUEST_IP" 7777 2>/dev/null </dev/null | grep -o "[0-9]*$"
}

# Hosts whose libvirtd runs the guest, by asking each host's hypervisor directly.
running_on() {
    local name=$1 h
    shift
    for h in ${*:-$(lab hosts)}; do
        lab is-up "$h" 2>/dev/null || continue
        lab on "$h" virsh -q -c qemu:///system domstate "$name" 2>/dev/null | grep -q running &&
            echo "$h"
    done
    return 0
}

# Where Pacemaker says the resource runs.
crm_location() {
    lab on "$(any_node)" crm_resource --locate --resource "$1" 2>/dev/null |
        sed -n 's/.*is running on: \([a-z0-9]*\).*/\1/p' | head -n 1
}

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
    local end=$(($(now_ms) + $1 * 1000))
    shift
    while [ "$(now_ms)" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

# Samples the counter every 100 ms into FILE ("ms value", value empty when no answer came
# within SAMPLE_TIMEOUT, default 0.3 s) until the file FILE.stop appears: one loop on the
# workstation, so sampling costs the guest's hosts nothing. Runs in the foreground: start it
# with &.
sample_counter() {
    local out=$1
    : >"$out"
    # shellcheck disable=SC2016 # runs on the workstation
    lab admin bash -c '
        while [ ! -e "$1.stop" ]; do
            v=$(timeout "$3" busybox nc "$2" 7777 </dev/null 2>/dev/null | grep -o "[0-9]*$")
            echo "$((${EPOCHREALTIME/./} / 1000)) $v" >>"$1"
            sleep 0.1
        done' sampler "$out" "$GUEST_IP" "${SAMPLE_TIMEOUT:-0.3}"
}

# The disk witness of a guest made with vmha.witness=1: asks for a record every ~0.2 s (each
# request may wait 60 s: a failover in between is waited out) until FILE.stop appears; each
# answer a line "vmha-rec N UPTIME" in FILE. Runs in the foreground: start it with &.
sample_witness() {
    local out=$1
    : >"$out"
    # shellcheck disable=SC2016 # runs on the workstation
    lab admin bash -c '
        while [ ! -e "$1.stop" ]; do
            timeout 60 busybox nc "$2" 7778 </dev/null 2>/dev/null | grep "^vmha-rec " >>"$1"
            sleep 0.2
        done' witness "$out" "$GUEST_IP"
}

# disk_records HOST DISK: the witness's records on HOST's copy of the disk file DISK, lines
# "vmha-rec N UPTIME" from record 1 up to the first gap.
disk_records() {
    lab on "$1" sh -c "dd if=$2 bs=512 skip=1 count=4000 2>/dev/null | tr '\\000' '\\n'" |
        grep "^vmha-rec " | awk '!gap && $2 == NR { print; next } { gap = 1 }' # (reads all: no SIGPIPE)
}

# From a sample file: the longest time the guest did not answer, in ms, and whether the
# counter ever went backwards (a restart): prints "GAP_MS RESTARTED(0/1)".
analyse_samples() {
    awk 'NF == 2 { if (last_ok && $1 - last_ok > gap) gap = $1 - last_ok;
                   if (prev != "" && $2 < prev) restarted = 1; prev = $2; last_ok = $1 }
         END { printf "%d %d\n", gap, restarted }' "$1"
}

# Counts, every ~0.3 s until FILE.stop appears, on how many hosts the guest is running
# ("ms count hosts..." lines), by asking every host's hypervisor: a cluster must never
# show 2.
# Hosts are asked one after the other, so a clean hand-over (a live migration) that
# happens between two questions would look like two copies. Each round therefore asks
# the hosts forwards and then backwards, and counts a host only if it ran at both of
# its questions: two hosts counted ran over a common stretch of time, which is a real
# second copy, while a hand-over inside the round is counted once.
copies_watch() {
    local out=$1 name=$2 hosts fwd rev both
    : >"$out"
    hosts=$(lab hosts)
    while [ ! -e "$out.stop" ]; do
        fwd=$(running_on "$name" $hosts)
        rev=$(running_on "$name" $(echo $hosts | tr ' ' '\n' | tac))
        both=$(comm -12 <(sort <<<"$fwd") <(sort <<<"$rev") | xargs)
        echo "$(now_ms) $(echo $both | wc -w) $both" >>"$out"
        sleep 0.1
    done
}
max_copies() { awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$1"; }

# Nodes crm_mon reports online.
online_nodes() {
    lab on "$(any_node)" crm_mon -1 2>/dev/null | sed -n 's/^ *\* Online: \[ \(.*\) \]/\1/p'
}

# Gives every host x509 credentials where libvirt's TLS transport (and vmha's
# replication_tls) look for them, signed by a throwaway CA: the cluster's PKI in miniature.
lab_tls_certs() {
    local d h
    d=$(mktemp -d /tmp/vmha-pki.XXXXXX)
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/cacert.pem" \
        -days 30 -subj /CN=vmha-lab-CA 2>/dev/null || return 1
    for h in $(lab hosts); do
        openssl req -newkey rsa:2048 -nodes -keyout "$d/$h.key" -out "$d/$h.csr" \
            -subj "/CN=$h" 2>/dev/null || return 1
        printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
            "$h" >"$d/$h.ext"
        openssl x509 -req -in "$d/$h.csr" -CA "$d/cacert.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -out "$d/$h.pem" -days 30 -extfile "$d/$h.ext" 2>/dev/null || return 1
        lab is-up "$h" || continue
        lab on "$h" sh -c 'mkdir -p /etc/pki/CA /etc/pki/libvirt/private &&
            cat >/etc/pki/CA/cacert.pem' <"$d/cacert.pem"
        lab on "$h" sh -c 'umask 077; cat >/etc/pki/libvirt/private/serverkey.pem' <"$d/$h.key"
        lab on "$h" sh -c 'umask 077; cat >/etc/pki/libvirt/private/clientkey.pem' <"$d/$h.key"
        lab on "$h" sh -c 'cat >/etc/pki/libvirt/servercert.pem' <"$d/$h.pem"
        lab on "$h" sh -c 'cat >/etc/pki/libvirt/clientcert.pem' <"$d/$h.pem"
    done
    # A certificate of the same CA for the workstation, which is no cluster node: in
    # $VMHA_LAB_DIR/pki-workstation, laid out as /etc/pki is.
    local w=$VMHA_LAB_DIR/pki-workstation
    rm -rf "$w" && mkdir -p "$w/CA" "$w/libvirt/private" && cp "$d/cacert.pem" "$w/CA/" &&
        openssl req -newkey rsa:2048 -nodes -keyout "$w/libvirt/private/clientkey.pem" \
            -out "$d/w.csr" -subj /CN=workstation 2>/dev/null &&
        printf 'subjectAltName=DNS:workstation\nextendedKeyUsage=clientAuth\n' >"$d/w.ext" &&
        openssl x509 -req -in "$d/w.csr" -CA "$d/cacert.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -out "$w/libvirt/clientcert.pem" -days 30 -extfile "$d/w.ext" \
            2>/dev/null || return 1
    rm -rf "$d"
}
