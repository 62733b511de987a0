# shellcheck shell=bash
# The Xen test lab: Xen 4.17 hosts (xen1..xenN) as QEMU/TCG virtual machines, each
# with a dom0 reachable over SSH. Source this file from a test suite:
#
#   . tests/xenlab/xenlab.sh
#   trap xenlab_down EXIT
#   xenlab_build                     # build/cache host + guest artifacts
#   xenlab_up 2 "$DESTDIR"           # boot xen1, xen2 with a payload
#   xenlab_ssh xen1 xl list          # run a command in dom0 of xen1
#
# Functions (HOST is "xenN" or just "N"):
#   xenlab_build                     build (cached) ${XENLAB_CACHE}/host and .../guest
#   xenlab_up N [PAYLOAD_DIR]        boot N hosts in parallel; PAYLOAD_DIR (a tree such as
#                                    `meson install --destdir`, may be empty or absent) is
#                                    unpacked over dom0's / together with the libraries its
#                                    ELF files need; the test guest's vmlinuz and initrd.img
#                                    are at /var/lib/vmha-test/ in every dom0. Returns when
#                                    every dom0 answers `xl list` over SSH (non-zero and the
#                                    tail of the serial log if one does not in time).
#                                    Also starts the fence listener (see "Fencing" below).
#   xenlab_ssh HOST CMD...           run CMD (a shell command line, as with ssh) in dom0;
#                                    stdin, stdout, stderr and the exit code pass through
#   xenlab_put HOST LOCALFILE REMOTEPATH   copy a file into dom0 (mode kept)
#   xenlab_console HOST DOMNAME      print the console log of guest DOMNAME on HOST: dom0's
#                                    /var/log/xen/console/guest-DOMNAME.log, and for a
#                                    guest that migrated in guest-DOMNAME--incoming.log
#                                    (both, oldest first); fails if there is neither
#   xenlab_kill HOST                 power cut: SIGKILL that host's QEMU, wait until gone
#   xenlab_cluster_up                a Corosync 3 + Pacemaker 2.1 cluster of all the hosts
#                                    (at least 2), with fencing; see "The cluster" below.
#                                    Returns when every node is online and the fence device
#                                    is started and registered on every node (non-zero, with
#                                    the nodes' logs, if not in XENLAB_CLUSTER_TIMEOUT s)
#   xenlab_down                      kill every host and the fence listener, remove the run
#                                    dir; idempotent, meant for `trap xenlab_down EXIT`
#   xenlab_ssh_cmd HOST              print the ssh command line (for other tools)
#
# Inside the lab: dom0 of xenN is hostname xenN at 10.77.0.N on the inter-host link,
# /etc/hosts names xen1..xenN, and root@xenM works by key from every dom0 (OpenSSH
# client, dropbear server), so `xl migrate DOM xen2` works. Guest consoles are logged by
# xenconsoled to /var/log/xen/console/guest-NAME.log. A guest that arrives by `xl migrate`
# logs to guest-NAME--incoming.log at first (xenconsoled names the file when the console
# connects, before xl renames the domain); within a second of the rename dom0 renames
# the file to guest-NAME.log (an older guest-NAME.log becomes guest-NAME.log.old). So on
# each host guest-NAME.log holds what the guest printed since it came to that host;
# xenlab_console also covers the moment before the rename.
#
# The cluster (xenlab_cluster_up): Corosync 3 over knet on the inter-host link (static
# nodelist 10.77.0.N named xenN, `two_node: 1` for two hosts, token XENLAB_COROSYNC_TOKEN
# ms) and Pacemaker, node names xen1..xenN. The nodes start from a pre-seeded CIB:
# dc-deadtime XENLAB_DC_DEADTIME, no-quorum-policy=ignore for two nodes, the stonith
# resource "fence-xenlab" (fence_xenlab, pcmk_host_list = every host, monitor every 60 s)
# and stonith-enabled=false, set to true once every node is online. Logs in dom0:
# /var/log/corosync/corosync.log, /var/log/pacemaker/pacemaker.log. Nothing of it starts
# at boot.
#
# Fencing: dom0's /usr/sbin/fence_xenlab (see fence_xenlab; fence-agents interface) powers
# a host off by asking xenlab_up's listener on this machine's 127.0.0.1 (dom0 reaches it
# as 10.0.2.2, port on dom0's kernel command line): "off xenN" does what xenlab_kill does
# to this run's QEMU of xenN (and nothing else), "status xenN" answers on/off. A fenced
# host stays off. Requests and answers are logged to $XENLAB_DIR/fence.log.
#
# Settings (environment, read when this file is sourced):
#   XENLAB_CACHE          build cache (/var/cache/vmha-xenlab)
#   XENLAB_DIR            run dir: serial logs xenN.serial, QEMU pid files, ports
#                         (/tmp/vmha-xenlab-PID, PID of the sourcing shell: runs do not clash)
#   XENLAB_BOOT_TIMEOUT   seconds xenlab_up waits for the hosts (120)
#   XENLAB_CLUSTER_TIMEOUT  seconds xenlab_cluster_up waits for the nodes, then for the
#                         fence device (180)
#   XENLAB_CLUSTER_ENV    VAR=VALUE words for pacemakerd's environment, which the resource
#                         agents inherit (e.g. ASAN_OPTIONS for a sanitizer build)
#   XENLAB_COROSYNC_TOKEN corosync's token timeout in ms (3000): a host dead or cut off is
#                         noticed after about 2.2 times this (token + consensus). With the
#                         1 s default, the token was lost while Pacemaker started under TCG
#                         (the membership re-formed); no loss seen with 3 s
#   XENLAB_DC_DEADTIME    Pacemaker's dc-deadtime in the pre-seeded CIB (5s)
#   XENLAB_SMP, XENLAB_MEM  vCPUs (1) and MiB (1280) per host; 2 vCPUs per host is slower
#                         on a 2-core machine
#   XENLAB_DOM0_MEM       MiB of dom0 (768): its root file system is an initramfs, in that
#                         memory. Debian 13's dom0 (Pacemaker 3.0) ran out of 512 MiB while
#                         the replica's stream ran: the OOM killer took corosync, the node
#                         was fenced. The rest (512 MiB) is for guests: a 128 MiB guest and its replica.
#   XENLAB_NIC            QEMU NIC model of both NICs: e1000 (default) or virtio-net-pci
#                         (raw ssh throughput ~1.4x, migrations no faster in the runs seen)
#   XENLAB_KEEP=1         xenlab_down keeps the run dir (post-mortems)

XENLAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XENLAB_CACHE=${XENLAB_CACHE:-/var/cache/vmha-xenlab}
XENLAB_DIR=${XENLAB_DIR:-/tmp/vmha-xenlab-$$}
XENLAB_BOOT_TIMEOUT=${XENLAB_BOOT_TIMEOUT:-120}
XENLAB_CLUSTER_TIMEOUT=${XENLAB_CLUSTER_TIMEOUT:-180}
XENLAB_COROSYNC_TOKEN=${XENLAB_COROSYNC_TOKEN:-3000}
XENLAB_DC_DEADTIME=${XENLAB_DC_DEADTIME:-5s}
XENLAB_CLUSTER_ENV=${XENLAB_CLUSTER_ENV:-}
XENLAB_SMP=${XENLAB_SMP:-1}
XENLAB_MEM=${XENLAB_MEM:-1280}
XENLAB_DOM0_MEM=${XENLAB_DOM0_MEM:-768}
XENLAB_NIC=${XENLAB_NIC:-e1000}

xenlab__err() { echo "xenlab: $*" >&2; }

# HOST ("xen2" or "2") -> 2
xenlab__num() {
    local n=${1#xen}
    [[ $n =~ ^[0-9]+$ ]] || { xenlab__err "bad host name: $1"; return 1; }
    echo "$n"
}

xenlab_build() {
    "$XENLAB_HERE/build-host.sh" "$XENLAB_CACHE/host" || return 1
    "$XENLAB_HERE/../guest/build-guest.sh" "$XENLAB_CACHE/guest" || return 1
}

xenlab_ssh_cmd() {
    local n port
    n=$(xenlab__num "$1") || return 1
    port=$(cat "$XENLAB_DIR/xen$n.port" 2>/dev/null) ||
        { xenlab__err "xen$n is not up (no $XENLAB_DIR/xen$n.port)"; return 1; }
    echo "ssh -i $XENLAB_CACHE/host/id_ed25519 -p $port -o BatchMode=yes" \
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
        "-o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=6 root@127.0.0.1"
}

xenlab_ssh() {
    local cmd
    cmd=$(xenlab_ssh_cmd "$1") || return 1
    shift
    # shellcheck disable=SC2086 # cmd is a word list made above, without spaces in words
    $cmd -- "$@"
}

xenlab_put() {
    [[ $# -eq 3 ]] || { xenlab__err "usage: xenlab_put HOST LOCALFILE REMOTEPATH"; return 2; }
    local mode dst
    mode=$(stat -c %a "$2") || return 1
    dst=$(printf %q "$3")
    xenlab_ssh "$1" "mkdir -p \"\$(dirname $dst)\" && cat >$dst && chmod $mode $dst" <"$2"
}

xenlab_console() {
    local name
    name=$(printf %q "$2")
    # Right after an incoming migration the output is still in guest-NAME--incoming.log
    # (dom0 renames it within a second, see above).
    xenlab_ssh "$1" "cd /var/log/xen/console &&
        { [ -e guest-$name.log ] || [ -e guest-$name--incoming.log ]; } &&
        ls -tr guest-$name.log guest-$name--incoming.log 2>/dev/null | xargs -r cat" </dev/null
}

# A TCP port on 127.0.0.1 that nobody listens on (and not handed out yet in this run).
xenlab__free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        grep -qx "$p" "$XENLAB_DIR/ports" 2>/dev/null && continue
        [[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] || continue
        echo "$p" >>"$XENLAB_DIR/ports"
        echo "$p"
        return 0
    done
}

# xenlab__pid N: the PID of xenN's QEMU, if that process is still that QEMU
# (a stale pid file must not make us kill an unrelated process).
xenlab__pid() {
    local pid cmd run
    pid=$(cat "$XENLAB_DIR/xen$1.pid" 2>/dev/null) || return 1
    run=$(cat "$XENLAB_DIR/run-id" 2>/dev/null) || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *" -name xenlab-xen$1-$run "* ]] || return 1
    echo "$pid"
}

# The PID of the fence listener, if that process is still this run's listener.
xenlab__fence_pid() {
    local pid port cmd
    pid=$(cat "$XENLAB_DIR/fence.pid" 2>/dev/null) || return 1
    port=$(cat "$XENLAB_DIR/fence.port" 2>/dev/null) || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == "socat TCP-LISTEN:$port,bind=127.0.0.1,"* ]] || return 1
    echo "$pid"
}

# The fence listener: socat on 127.0.0.1 runs fence-serve.sh for each connection (dom0's
# fence_xenlab comes through QEMU's user network). Dies with xenlab_down (or the watchdog).
xenlab__fence_listen() {
    local port t0=$SECONDS serve=$XENLAB_HERE/fence-serve.sh
    # socat splits its address at ':' and ',' and does not take quotes
    [[ $serve =~ ^[A-Za-z0-9_./+-]+$ ]] ||
        { xenlab__err "the lab's path does not suit socat's EXEC: $serve"; return 1; }
    port=$(xenlab__free_port) || return 1
    echo "$port" >"$XENLAB_DIR/fence.port"
    XENLAB_DIR=$XENLAB_DIR XENLAB_CACHE=$XENLAB_CACHE \
        socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$serve" \
        </dev/null >>"$XENLAB_DIR/fence.log" 2>&1 &
    echo $! >"$XENLAB_DIR/fence.pid"
    disown $! 2>/dev/null || true
    # Alive is enough here: until socat has exec'd, its command line is still the shell's.
    until [[ -n $(ss -Htln "( sport = :$port )") ]]; do
        if ! kill -0 "$(cat "$XENLAB_DIR/fence.pid")" 2>/dev/null || ((SECONDS - t0 >= 10)); then
            xenlab__err "no fence listener on $port: $(cat "$XENLAB_DIR/fence.log")"
            return 1
        fi
        sleep 0.1
    done
}

xenlab__alive() {
    local pid
    pid=$(xenlab__pid "$1") || return 1
    [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# The payload cpio: PAYLOAD_DIR, the libraries its ELF files need that dom0 lacks,
# and the test guest at /var/lib/vmha-test.
xenlab__payload() {
    local src=$1 stage=$XENLAB_DIR/payload libpath f lib
    rm -rf "$stage"
    mkdir -p "$stage/var/lib/vmha-test"
    if [[ -n $src && -d $src ]]; then
        cp -a "$src/." "$stage/" || return 1
    fi
    cp "$XENLAB_CACHE/guest/vmlinuz" "$XENLAB_CACHE/guest/initrd.img" "$stage/var/lib/vmha-test/"
    # The payload's own libraries resolve from the payload.
    libpath=$(find "$stage" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
    find "$stage" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
        while IFS= read -r -d '' f; do
            [[ $(head -c 4 "$f" | tr -d '\0') == $'\x7fELF' ]] || continue
            LD_LIBRARY_PATH=$libpath ldd "$f" 2>/dev/null || true
        done |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
        while read -r lib; do
            case $lib in "$stage"/*) continue ;; esac
            f=$lib
            case $f in /lib/* | /lib64/*) f=/usr$f ;; esac
            grep -qxF "$f" "$XENLAB_CACHE/host/dom0.files" && continue
            install -D -m 755 "$(readlink -f "$lib")" "$stage$f"
        done
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 | gzip -1) >"$XENLAB_DIR/payload.cpio.gz" || return 1
    cat "$XENLAB_CACHE/host/dom0.cpio.gz" "$XENLAB_DIR/payload.cpio.gz" >"$XENLAB_DIR/initrd.gz"
    rm -rf "$stage"
}

# Kills the lab's QEMUs if the test's shell dies without running xenlab_down
# (and ends quietly when xenlab_down ran, or another run took over the run dir).
xenlab__watchdog() {
    local parent=$1 dir=$XENLAB_DIR run p
    run=$(cat "$XENLAB_DIR/run-id")
    (
        trap '' HUP INT
        mine() { [[ $(cat "$dir/run-id" 2>/dev/null) == "$run" ]]; }
        while kill -0 "$parent" 2>/dev/null && mine; do sleep 2; done
        mine || exit 0
        p=$(XENLAB_DIR=$dir xenlab__fence_pid) && kill "$p"
        for p in "$dir"/xen*.pid; do
            p=${p##*/xen}
            p=$(XENLAB_DIR=$dir xenlab__pid "${p%.pid}") && kill -KILL "$p"
        done
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$XENLAB_DIR/watchdog.pid"
    disown $! 2>/dev/null || true
}

xenlab__start_host() {
    local n=$1 total=$2 port link=$3 h=$XENLAB_CACHE/host netdev run fence cmdline
    port=$(xenlab__free_port) || return 1
    echo "$port" >"$XENLAB_DIR/xen$n.port"
    if ((total == 2)); then
        if ((n == 1)); then netdev="socket,id=link,listen=127.0.0.1:$link"
        else netdev="socket,id=link,connect=127.0.0.1:$link"; fi
    else
        netdev="socket,id=link,mcast=239.77.0.1:$link,localaddr=127.0.0.1"
    fi
    run=$(cat "$XENLAB_DIR/run-id") || return 1
    fence=$(cat "$XENLAB_DIR/fence.port") || return 1
    cmdline="console=hvc0 vmha.host=$n vmha.hosts=$total vmha.fence=$fence"
    qemu-system-x86_64 -name "xenlab-xen$n-$run" -nodefaults -no-user-config -display none \
        -accel tcg,thread=multi -machine pc -cpu qemu64,+svm,+npt \
        -m "$XENLAB_MEM" -smp "$XENLAB_SMP" -no-reboot \
        -serial "file:$XENLAB_DIR/xen$n.serial" \
        -kernel "$h/xen" -append "console=com1 dom0_mem=${XENLAB_DOM0_MEM}M,max:${XENLAB_DOM0_MEM}M noreboot" \
        -initrd "$h/vmlinuz $cmdline,$XENLAB_DIR/initrd.gz" \
        -netdev "user,id=mgmt,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:$port-:22" \
        -device "$XENLAB_NIC,netdev=mgmt,mac=52:54:00:12:00:$(printf %02x "$n")" \
        -netdev "$netdev" \
        -device "$XENLAB_NIC,netdev=link,mac=52:54:00:77:00:$(printf %02x "$n")" \
        -pidfile "$XENLAB_DIR/xen$n.pid" -daemonize \
        </dev/null >"$XENLAB_DIR/xen$n.qemu.log" 2>&1 ||
        { xenlab__err "QEMU for xen$n failed: $(cat "$XENLAB_DIR/xen$n.qemu.log")"; return 1; }
}

xenlab_up() {
    local total=${1:-} payload=${2:-} n link t0 deadline pending left
    [[ $total =~ ^[1-9][0-9]*$ ]] || { xenlab__err "usage: xenlab_up N [PAYLOAD_DIR]"; return 2; }
    if compgen -G "$XENLAB_DIR/xen*.pid" >/dev/null; then
        for n in "$XENLAB_DIR"/xen*.pid; do
            n=${n##*/xen}
            xenlab__alive "${n%.pid}" &&
                { xenlab__err "a lab is running in $XENLAB_DIR (xenlab_down first)"; return 1; }
        done
    fi
    # an earlier run's listener would outlive its run dir
    n=$(xenlab__fence_pid) && kill "$n"
    rm -rf "$XENLAB_DIR"
    mkdir -p "$XENLAB_DIR" || return 1
    xenlab_build || return 1
    # tells this run's QEMUs (and watchdog) from those of any earlier run
    echo "$$-$RANDOM$RANDOM" >"$XENLAB_DIR/run-id"
    xenlab__payload "$payload" || { xenlab__err "cannot pack the payload"; return 1; }
    xenlab__watchdog "$$"
    echo "$total" >"$XENLAB_DIR/hosts"
    xenlab__fence_listen || return 1
    link=$(xenlab__free_port) || return 1
    t0=$SECONDS
    for ((n = 1; n <= total; n++)); do
        xenlab__start_host "$n" "$total" "$link" || return 1
        if ((n == 1 && total == 2)); then
            # connect= fails unless the listener is there already
            until [[ -n $(ss -Htln "( sport = :$link )") ]]; do
                ((SECONDS - t0 < 10)) || { xenlab__err "xen1 does not listen on $link"; return 1; }
                sleep 0.1
            done
        fi
    done
    deadline=$((SECONDS + XENLAB_BOOT_TIMEOUT))
    pending=$(seq 1 "$total")
    while [[ -n $pending ]]; do
        left=
        for n in $pending; do
            if ! xenlab__alive "$n"; then
                xenlab__err "xen$n: QEMU died during boot; serial log ($XENLAB_DIR/xen$n.serial):"
                tail -n 30 "$XENLAB_DIR/xen$n.serial" >&2
                return 1
            fi
            timeout 20 bash -c "$(xenlab_ssh_cmd "$n") -o ConnectTimeout=3 -- xl list" \
                </dev/null >/dev/null 2>&1 || left+=" $n"
        done
        pending=$left
        [[ -z $pending ]] && break
        if ((SECONDS >= deadline)); then
            for n in $pending; do
                xenlab__err "xen$n: dom0 does not answer 'xl list' over ssh after" \
                    "${XENLAB_BOOT_TIMEOUT} s; serial log ($XENLAB_DIR/xen$n.serial):"
                tail -n 30 "$XENLAB_DIR/xen$n.serial" >&2
            done
            return 1
        fi
        sleep 1
    done
}

xenlab_kill() {
    local n pid
    n=$(xenlab__num "$1") || return 1
    if ! pid=$(xenlab__pid "$n"); then
        rm -f "$XENLAB_DIR/xen$n.pid"
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null
    # gone, or a zombie waiting for its reaper (it holds no resources then)
    while kill -0 "$pid" 2>/dev/null &&
        [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
        sleep 0.1
    done
    rm -f "$XENLAB_DIR/xen$n.pid"
}

# corosync.conf for hosts 1..TOTAL. Corosync's parser wants a section's name and its `{`
# on one line, and every `{`, `}` and key on a line of its own.
xenlab__corosync_conf() {
    local total=$1 n
    printf '%s\n' "# vmha's Xen lab (xenlab_cluster_up)" 'totem {' '    version: 2' \
        '    cluster_name: xenlab' '    transport: knet' '    crypto_cipher: none' \
        '    crypto_hash: none' "    token: $XENLAB_COROSYNC_TOKEN" '}' '' 'nodelist {'
    for ((n = 1; n <= total; n++)); do
        printf '%s\n' '    node {' "        ring0_addr: 10.77.0.$n" "        name: xen$n" \
            "        nodeid: $n" '    }'
    done
    printf '%s\n' '}' '' 'quorum {' '    provider: corosync_votequorum'
    ((total == 2)) && echo '    two_node: 1'
    printf '%s\n' '}' '' 'logging {' '    to_logfile: yes' \
        '    logfile: /var/log/corosync/corosync.log' '    to_syslog: no' '    to_stderr: no' \
        '    timestamp: on' '}'
}

# The script that starts the cluster stack in a dom0 (stdin: corosync.conf). $1 is the
# CIB to start from, written while corosync starts (see xenlab__cluster_cib); $2 the
# cluster's secret in base64, which becomes /etc/corosync/authkey as corosync-keygen leaves
# it (the replication stream is authenticated with it).
# Corosync locks all its memory (mlockall), and then holds ~170 MiB resident of dom0's
# ~390 (thread stacks, knet's buffers, the IPC rings in /dev/shm). Dom0 has no swap, so
# the lock buys nothing here: without CAP_IPC_LOCK (and CAP_SYS_RESOURCE, which would let
# it raise the limit) mlockall fails, corosync logs a warning and goes on, at ~95 MiB.
# util-linux's setpriv goes by its path: busybox's sh would run its own setpriv applet,
# which cannot drop capabilities.
xenlab__cluster_start_script() {
    cat <<EOF
set -e
if pidof corosync pacemakerd >/dev/null; then echo "the cluster stack runs already" >&2; exit 1; fi
# wait_for SECONDS WHAT CMD...: retry CMD until it succeeds; after SECONDS fail, saying WHAT
wait_for() {
    end=\$((\$(date +%s) + \$1)) what=\$2
    shift 2
    until "\$@" >/dev/null 2>&1; do
        [ \$(date +%s) -lt \$end ] || { echo "\$(hostname): \$what" >&2; exit 1; }
        sleep 0.2
    done
}
cat >/etc/corosync/corosync.conf
(umask 077 && echo '$2' | base64 -d >/etc/corosync/authkey)
(ulimit -l 0 && exec /usr/bin/setpriv --bounding-set -ipc_lock,-sys_resource corosync)
rm -f /var/lib/pacemaker/cib/*
cat >/var/lib/pacemaker/cib/cib.xml <<'CIB'
$1
CIB
chown hacluster:haclient /var/lib/pacemaker/cib/cib.xml
chmod 600 /var/lib/pacemaker/cib/cib.xml
wait_for 60 "corosync does not answer" corosync-cfgtool -s
PATH=/usr/sbin:/usr/bin:/sbin:/bin PCMK_logfile=/var/log/pacemaker/pacemaker.log \\
    PCMK_logfacility=none $XENLAB_CLUSTER_ENV setsid pacemakerd </dev/null >>/var/log/pacemaker/pacemakerd.out 2>&1 &
wait_for 60 "pacemakerd does not start" grep -q "Starting Pacemaker" /var/log/pacemaker/pacemaker.log
EOF
}

# The CIB the nodes start from (HOSTS: "xen1 xen2..."). The short dc-deadtime brings them
# online without the default's 20 s wait. The fence device is there from the start, but
# stonith-enabled=false until every node has joined: with fencing on, a node slow to join
# would be fenced as unclean. With two nodes, votequorum's two_node keeps the survivor
# quorate, and no-quorum-policy=ignore says that Pacemaker goes on alone too (fencing
# keeps that safe). validate-with as `cibadmin --empty` of Pacemaker 2.1.5 writes it.
xenlab__cluster_cib() {
    local hosts=$1 nqp='' nodes='' h
    # The nodes as a running cluster knows them: Pacemaker 3.0's fencer decides once, from
    # the CIB it starts with, where a device may run, and does not register one on a node
    # missing from <nodes> (it stays unregistered after the node joins).
    for h in $hosts; do nodes+="<node id=\"${h#xen}\" uname=\"$h\"/>"; done
    [[ $hosts == *" "*" "* ]] ||
        nqp='<nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="ignore"/>'
    cat <<EOF
<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="$XENLAB_DC_DEADTIME"/>
        $nqp
      </cluster_property_set>
    </crm_config>
    <nodes>$nodes</nodes>
    <resources>
      <primitive id="fence-xenlab" class="stonith" type="fence_xenlab">
        <instance_attributes id="fence-xenlab-ia">
          <nvpair id="fence-xenlab-host-list" name="pcmk_host_list" value="$hosts"/>
        </instance_attributes>
        <operations>
          <op id="fence-xenlab-monitor" name="monitor" interval="60s"/>
        </operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
EOF
}

# xenlab__dom0_until HOST SECONDS COND: run the shell condition COND in HOST's dom0 once a
# second until it holds (0), or SECONDS have passed (1).
xenlab__dom0_until() {
    local ssh
    ssh=$(xenlab_ssh_cmd "$1") || return 1
    # shellcheck disable=SC2086 # a word list, see xenlab_ssh
    timeout $(($2 + 30)) $ssh -- "end=\$((\$(date +%s) + $2))
        until $3; do [ \$(date +%s) -lt \$end ] || exit 1; sleep 1; done" </dev/null
}

# What xenlab_cluster_up shows when the cluster does not come up.
xenlab__cluster_logs() {
    local n total
    total=$(cat "$XENLAB_DIR/hosts")
    for ((n = 1; n <= total; n++)); do
        xenlab__err "xen$n: crm_mon, corosync-quorumtool, corosync.log, pacemaker.log:"
        timeout 60 bash -c "$(xenlab_ssh_cmd "$n") -- 'crm_mon -1 2>&1
            corosync-quorumtool -s 2>&1; tail -n 20 /var/log/corosync/corosync.log
            tail -n 40 /var/log/pacemaker/pacemaker.log'" </dev/null >&2
    done
}

xenlab_cluster_up() {
    local total n conf cib key pids=() rc=0 hosts='' cond
    total=$(cat "$XENLAB_DIR/hosts" 2>/dev/null) || { xenlab__err "no lab is up"; return 1; }
    ((total >= 2)) || { xenlab__err "xenlab_cluster_up needs 2 hosts or more"; return 1; }
    for ((n = 1; n <= total; n++)); do hosts+="${hosts:+ }xen$n"; done
    conf=$(xenlab__corosync_conf "$total")
    cib=$(xenlab__cluster_cib "$hosts")
    key=$(head -c 128 /dev/urandom | base64 -w0)
    for ((n = 1; n <= total; n++)); do
        xenlab_ssh "$n" "$(xenlab__cluster_start_script "$cib" "$key")" <<<"$conf" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || rc=1; done
    ((rc == 0)) ||
        { xenlab__err "cannot start corosync and pacemakerd"; xenlab__cluster_logs; return 1; }
    # every node online (not pending, not unclean) in crm_mon's view from xen1
    cond="[ \$(crm_mon -1 --output-as=xml 2>/dev/null |
        grep -c '<node name=.* online=\"true\".* pending=\"false\" unclean=\"false\"') -eq $total ]"
    xenlab__dom0_until xen1 "$XENLAB_CLUSTER_TIMEOUT" "$cond" ||
        { xenlab__err "the nodes are not all online after $XENLAB_CLUSTER_TIMEOUT s"
          xenlab__cluster_logs; return 1; }
    xenlab_ssh xen1 "crm_attribute --type crm_config --name stonith-enabled --update true" \
        </dev/null || { xenlab__err "cannot enable fencing"; xenlab__cluster_logs; return 1; }
    # The device started, and known to every node's fencer (the node that fences is not
    # always the one that runs the device); the hosts are asked in parallel.
    pids=()
    for ((n = 1; n <= total; n++)); do
        # XML: the text form changed in Pacemaker 3.0, the XML one names the device in both
        cond="stonith_admin --list-registered --output-as=xml 2>/dev/null |
            grep -qE '[>\"]fence-xenlab[<\"]'"
        ((n > 1)) || cond="crm_resource --locate --resource fence-xenlab 2>/dev/null |
            grep -q 'is running on' && $cond"
        xenlab__dom0_until "$n" "$XENLAB_CLUSTER_TIMEOUT" "$cond" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || rc=1; done
    ((rc == 0)) || { xenlab__err "fence-xenlab is not started, or not registered on every" \
        "node, after $XENLAB_CLUSTER_TIMEOUT s"; xenlab__cluster_logs; return 1; }
}

xenlab_down() {
    local p n
    [[ -d $XENLAB_DIR ]] || return 0
    # the listener first: no fencing request acts on a lab being torn down
    if p=$(xenlab__fence_pid); then
        kill "$p" 2>/dev/null
        while kill -0 "$p" 2>/dev/null &&
            [[ $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) != Z ]]; do
            sleep 0.1
        done
    fi
    rm -f "$XENLAB_DIR/fence.pid"
    for p in "$XENLAB_DIR"/xen*.pid; do
        [[ -f $p ]] || continue
        n=${p##*/xen}
        xenlab_kill "${n%.pid}"
    done
    if [[ -f $XENLAB_DIR/watchdog.pid ]]; then
        kill "$(cat "$XENLAB_DIR/watchdog.pid")" 2>/dev/null
        rm -f "$XENLAB_DIR/watchdog.pid"
    fi
    [[ -n ${XENLAB_KEEP:-} ]] || rm -rf "$XENLAB_DIR"
    return 0
}
