#!/bin/bash
# Host shutdown with a guest under Pacemaker, where systemd really runs: a Debian system of
# this machine's release (debootstrap, with systemd, Pacemaker, Corosync, libvirt and QEMU
# from Debian and vmha's own package installed) booted with systemd-nspawn -b. Asserts the
# units' ordering as systemd computes it, that a real `systemctl stop` of libvirtd's unit
# leaves the guest running and Pacemaker content, and that at poweroff Pacemaker stops the
# guest before libvirt-guests and libvirtd are stopped. The same boot without vmha's drop-in
# is shown for comparison.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib/tap.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP needs root"; exit 0; }
command -v systemd-nspawn >/dev/null || bail "systemd-nspawn is missing (tools/deps.sh)"
release=$(. /etc/os-release && echo "$VERSION_CODENAME")
SYS=${VMHA_NSPAWN_DIR:-/var/tmp/vmha-nspawn-$release}
WORK=$(mktemp -d /tmp/vmha-shutdown.XXXXXX)
NSPAWN_PID= LEADER= BOOTS=0
stop_containers() { # every systemd-nspawn on $SYS, and what runs in it
    local p
    [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
    for p in $(pgrep -f "systemd-nspawn -D $SYS "); do
        pkill -KILL -P "$p" 2>/dev/null
        kill -KILL "$p" 2>/dev/null
    done
}
cleanup() {
    stop_containers
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
T=0
now_ms() { echo $(($(date +%s%N) / 1000000)); }
scenario() { T=$(now_ms); diag "--- $*"; }
took() { diag "$1: $(( $(now_ms) - T )) ms"; }
wait_for() { # SECONDS CMD...
    local end=$(( $(date +%s) + $1 ))
    shift
    until "$@"; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 1; done
}

# --- the system: debootstrap, then the cluster stack from Debian, then vmha's package
pkgs=(systemd systemd-sysv dbus pacemaker pacemaker-cli-utils corosync resource-agents
    libvirt-daemon-system libvirt-clients qemu-system-x86 iproute2 procps)
stamp=$({ echo "$release ${pkgs[*]}"; cat "$SRC/tools/debian-system"; } | sha256sum | cut -d' ' -f1)
scenario "0. a $release system with systemd, Pacemaker and libvirt"
if [ "$(cat "$SYS/.vmha-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$SYS"
    "$SRC/tools/debian-system" "$release" "$SYS" || bail "cannot debootstrap $release"
    printf '#!/bin/sh\nexit 101\n' >"$SYS/usr/sbin/policy-rc.d"
    chmod +x "$SYS/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$SYS/etc/resolv.conf"
    chroot "$SYS" sh -c "mount -t proc proc /proc; export DEBIAN_FRONTEND=noninteractive;
        apt-get update -q && apt-get install -y -q --no-install-recommends ${pkgs[*]}; r=\$?;
        umount /proc; exit \$r" >"$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log" >&2; bail "apt-get failed"; }
    rm -f "$SYS/usr/sbin/policy-rc.d"
    echo "$stamp" >"$SYS/.vmha-stamp"
fi
took "system ready"
. "$SRC/tests/lib/deb.sh"
DEB=$(build_deb "$SRC" "$WORK/deb") || { tail "$WORK/deb/build.log" >&2; bail "package build failed"; }
cp "$DEB" "$SYS/tmp/vmha.deb"
chroot "$SYS" sh -c "mount -t proc proc /proc; DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends --reinstall /tmp/vmha.deb; r=\$?; umount /proc; exit \$r" \
    >"$WORK/install.log" 2>&1
ok "0. vmha's package installs into it (apt-get install ./vmha.deb)" eq 0 $?
DROPIN=$(chroot "$SYS" dpkg -L vmha | grep 'resource-agents-deps.target.d/vmha.conf$')
ok "0. with its drop-in $DROPIN" test -n "$DROPIN"

# A one-node cluster on the container's own loopback, no fencing (nothing to fence).
cat >"$SYS/etc/corosync/corosync.conf" <<'EOS'
totem {
    version: 2
    cluster_name: vmha-shutdown
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: vmhahost
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_syslog: yes
}
EOS
echo vmhahost >"$SYS/etc/hostname"
grep -q '^security_driver = "none"' "$SYS/etc/libvirt/qemu.conf" ||
    printf 'security_driver = "none"\ncgroup_controllers = [ ]\nnamespaces = [ ]\n' \
        >>"$SYS/etc/libvirt/qemu.conf"
# The test guest, from Debian's packages (tests/guest).
"$SRC/tests/guest/build-guest.sh" "$WORK/guest" >&2 || bail "cannot build the test guest"
mkdir -p "$SYS/srv/guest"
cp "$WORK/guest/vmlinuz" "$WORK/guest/initrd.img" "$SYS/srv/guest/"
GUEST_DIR=$SYS/srv/guest SERIAL_LOG=/srv/guest/g1.serial \
    "$SRC/tests/guest/make-guest-xml.sh" g1 "$SYS/srv/guest/g1.xml"
sed -i "s|$SYS||g" "$SYS/srv/guest/g1.xml"

in_sys() { nsenter -t "$LEADER" -m -u -i -n -p -r -- env -C / "$@"; }
boot() { # boots the system afresh (no CIB, no guest defined); sets LEADER (its PID 1)
    stop_containers # one a killed run left would hold the directory
    sleep 1
    rm -f "$SYS"/var/lib/pacemaker/cib/cib* "$SYS"/etc/libvirt/qemu/*.xml
    : >"$WORK/boot.log"
    BOOTS=$((BOOTS + 1)) # a fresh name: a killed container's name stays taken in /run
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -D "$SYS" -b --private-network \
        --register=no --keep-unit -M "vmha-shutdown-$$-$BOOTS" --console=passive >"$WORK/boot.log" 2>&1 &
    NSPAWN_PID=$!
    LEADER=
    for _ in $(seq 100); do
        LEADER=$(init_under "$NSPAWN_PID")
        [ -n "$LEADER" ] && break
        sleep 0.1
    done
    [ -n "$LEADER" ] && wait_for 90 booted
}
init_under() { # PID: the systemd that runs as the container's PID 1, a descendant of PID
    local c
    for c in $(pgrep -P "$1"); do
        [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && { echo "$c"; return; }
        init_under "$c"
    done
}
booted() { in_sys systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; }
guest_runs() {
    in_sys crm_mon -1 2>/dev/null | grep -qE 'g1.*Started vmhahost' &&
        in_sys virsh -q list 2>/dev/null | grep -qE 'g1 +running'
}
configure() {
    in_sys crm_attribute -n stonith-enabled -v false >/dev/null 2>&1 &&
    in_sys crm_attribute -n no-quorum-policy -v ignore >/dev/null 2>&1 &&
    in_sys cibadmin -C -o resources -X '<primitive id="g1" class="ocf" provider="vmha"
        type="guest"><instance_attributes id="g1-ia"><nvpair id="g1-config" name="config"
        value="/srv/guest/g1.xml"/></instance_attributes><operations><op id="g1-monitor"
        name="monitor" interval="5s" timeout="20s"/><op id="g1-stop" name="stop" interval="0"
        timeout="60s"/></operations></primitive>' >/dev/null 2>&1
}
cluster_up() { in_sys crm_mon -1 2>/dev/null | grep -q 'Online: \[ vmhahost \]'; }
# poweroff; then the journal of that boot, the lines that tell the order.
poweroff_order() { # FILE [SECONDS]: a system not off by then is killed (and it says so)
    local since
    since=$(date +%s)
    in_sys systemctl poweroff
    wait_for "${2:-120}" exited "$NSPAWN_PID" ||
        { echo "(still shutting down after ${2:-120} s: killed)" >>"$1.late"
          stop_containers; }
    wait "$NSPAWN_PID" 2>/dev/null
    NSPAWN_PID=
    journalctl -D "$SYS/var/log/journal" --no-pager -o short-precise -b -0 --since "@$since" \
        2>/dev/null |
        grep -E 'Stopping (pacemaker|libvirtd|libvirt-guests)\.service|(Result of|returned).* stop |stop operation for g1|Powering off' \
        >"$1"
    cat "$1.late" >>"$1" 2>/dev/null
}
exited() { ! ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
line_of() { grep -in "$2" "$1" | head -n 1 | cut -d: -f1; }

scenario "1. boot with systemd-nspawn -b, a guest under Pacemaker"
ok "1. the system boots (systemctl is-system-running)" boot || {
    diag "$(tail -n 5 "$WORK/boot.log")"
    bail "cannot boot the system with systemd-nspawn"
}
took "boot"
ok "1. Pacemaker and Corosync run" wait_for 60 cluster_up
ok "1. the guest is configured (cibadmin)" configure
ok "1. it runs under ocf:vmha:guest" wait_for 90 guest_runs
took "boot to guest running"

scenario "2. the order systemd computes"
in_sys systemctl show -p After resource-agents-deps.target >"$WORK/after"
diag "$(cat "$WORK/after")"
for u in libvirtd.service libvirt-guests.service xendomains.service; do
    ok "2. resource-agents-deps.target is after $u" grep -qw "$u" "$WORK/after"
done
in_sys systemctl show -p After pacemaker.service >"$WORK/pcmk-after"
ok "2. pacemaker.service is after resource-agents-deps.target" \
    grep -qw resource-agents-deps.target "$WORK/pcmk-after"
in_sys systemctl show -p Before libvirtd.service >"$WORK/lv-before"
ok "2. so libvirtd.service is before it (and stops after it)" \
    grep -qw resource-agents-deps.target "$WORK/lv-before"

scenario "3. systemctl stop libvirtd.service with the guest running"
in_sys systemctl stop libvirtd.service >"$WORK/stop" 2>&1
ok "3. systemctl stop libvirtd.service -> 0" eq 0 $?
diag "$(tr '\n' ' ' <"$WORK/stop")"
sleep 12
ok "3. the guest still runs (QEMU outlives libvirtd)" guest_runs
in_sys crm_mon -1 --include=failcounts >"$WORK/crm_mon" 2>&1
ok "3. and Pacemaker records no failure" sh -c "! grep -qi 'g1.*fail' '$WORK/crm_mon'"

scenario "4. poweroff: Pacemaker stops the guest before libvirt acts"
poweroff_order "$WORK/order"
while read -r l; do diag "  $l"; done <"$WORK/order"
stop_ok=$(line_of "$WORK/order" 'Result of stop operation for g1.*OK')
ok "4. Pacemaker stopped the guest cleanly" test -n "$stop_ok"
lv=$(line_of "$WORK/order" 'Stopping libvirtd.service')
lg=$(line_of "$WORK/order" 'Stopping libvirt-guests.service')
ok "4. before libvirtd.service was stopped" test -n "$stop_ok" -a -n "$lv" -a "${stop_ok:-0}" -lt "${lv:-0}"
ok "4. and before libvirt-guests.service was" test -n "$stop_ok" -a -n "$lg" -a "${stop_ok:-0}" -lt "${lg:-0}"
took "poweroff"

# The same without vmha's drop-in: what the ordering prevents (shown, not asserted: without
# an order, systemd may stop them in either order).
scenario "5. for comparison, the same poweroff without the drop-in"
mv "$SYS$DROPIN" "$WORK/dropin"
if boot && wait_for 60 cluster_up && configure && wait_for 90 guest_runs; then
    poweroff_order "$WORK/order-without" 45
    while read -r l; do diag "  $l"; done <"$WORK/order-without"
else
    diag "the comparison boot did not get the guest running"
fi
mv "$WORK/dropin" "$SYS$DROPIN"
plan_done
