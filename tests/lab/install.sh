#!/bin/bash
# Install boots and boot artifacts in the three-host lab. The test guest doubles as an
# installer (vmha.install=1: after a delay it writes a marker to its disk and powers off);
# its persistent config boots a kernel kept on each host and prints the marker it finds.
# Asserts: a crash mid-install reruns the install elsewhere, the persistent config then
# boots and finds the marker, Pacemaker sees no failure, restarts and a failover never run
# the installer again, and a host whose kernel differs is never used.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" install
SHARED=$VMHA_LAB_DIR/srv/cluster
SERIAL=$SHARED/web3.serial
HOST_KERNEL=/var/lib/vmha-boot/vmlinuz
count() { grep -ac "$1" "$SERIAL" 2>/dev/null; }
installs() { count 'vmha-install started'; }
installs_are() { [ "$(installs)" = "$1" ]; }
disk_marker() { grep -ao 'vmha-disk vmha-installed [0-9a-f-]*' "$SERIAL" | tail -n 1; }
boots_installed() { [ "$(count 'vmha-disk vmha-installed')" -ge "$1" ]; }
install_state() { sed -n 's/^state=//p' "$SHARED/vmha/web3/install" 2>/dev/null; }
state_is() { [ "$(install_state)" = "$1" ]; }
runs_once_at() { [ "$(crm_location web3)" = "$1" ] && [ "$(running_on web3)" = "$1" ]; }
located() { [ -n "$(crm_location web3)" ] && [ "$(running_on web3 | grep -c .)" -eq 1 ]; }
stopped() { [ -z "$(running_on web3)" ] && [ -z "$(crm_location web3)" ]; }
all_online() { [ "$(online_nodes | wc -w)" -eq 3 ]; }
no_failures() {
    ! lab on "$(any_node)" crm_mon -1 --include=failcounts 2>/dev/null | grep -q "web3.*fail"
}
others() { local h; for h in node1 node2 node3; do [ "$h" = "$1" ] || echo "$h"; done; }

lab_suite_up
DISK=/srv/cluster/web3.img make_guest web3 vmha.disk=1
truncate -s 1M "$SHARED/web3.img"
# The persistent config boots a kernel each host keeps locally.
sed -i "s|<kernel>[^<]*</kernel>|<kernel>$HOST_KERNEL</kernel>|" "$SHARED/web3.xml"
for h in node1 node2 node3; do
    lab on "$h" sh -c "mkdir -p ${HOST_KERNEL%/*} && cp /srv/cluster/boot/vmlinuz $HOST_KERNEL"
done
: >"$SERIAL"

scenario "1. install, with the installer's host crashed mid-install"
# The node clone publishes each host's boot artifact check for vmha boot.
crm_ configure primitive vmha-node ocf:vmha:node params state_dir=/srv/cluster/vmha \
    op monitor interval=5s timeout=20s >/dev/null 2>&1
crm_ configure clone vmha-nodes vmha-node meta interleave=true >/dev/null 2>&1
crm_ configure primitive web3 ocf:vmha:guest \
    params config=/srv/cluster/web3.xml name=web3 migrate_target='qemu+tcp://%n/system' \
    state_dir=/srv/cluster/vmha migration_policy=false \
    install_kernel=/srv/cluster/boot/vmlinuz install_initrd=/srv/cluster/boot/initrd.img \
    install_cmdline="console=ttyS0 quiet vmha.install=1 vmha.install_delay=25" \
    op start timeout=90s op stop timeout=60s op monitor interval=5s timeout=30s \
    op migrate_to timeout=120s op migrate_from timeout=60s \
    meta allow-migrate=true >/dev/null 2>&1
ok "1. the installer boots" wait_for 90 installs_are 1
ok "1. the install is recorded as running" state_is running
ok "1.   while the persistent definition is already in place" sh -c \
    "'$LABTOOL' on $(crm_location web3) virsh -q -c qemu:///system dumpxml --inactive web3 | grep -q '$HOST_KERNEL'"
H1=$(crm_location web3)
lab kill "$H1"
ok "1. after the crash the install runs again on another host" wait_for 150 installs_are 2
H2=$(crm_location web3)
diag "1. install boots: $H1 (crashed), then $H2"
ok "1. the installer finishes and the persistent config boots" wait_for 120 boots_installed 1
took "configure to installed guest running"
ok "1. and finds the installer's marker on its disk" sh -c "[ -n \"\$(grep -ao 'vmha-disk vmha-installed' '$SERIAL')\" ]"
ok "1. the install is recorded as done" state_is done
ok "1. Pacemaker saw no failure" no_failures
status_installed() { lab on "$H2" vmha status web3 | awk '$1 == "web3" { print $7 }' | grep -qx done; }
ok "1. vmha status shows the install done" status_installed
MARKER=$(disk_marker)
lab is-up "$H1" || lab boot "$H1"
wait_for 90 all_online || diag "not all hosts came back"
crm_ resource cleanup web3 >/dev/null 2>&1

scenario "2. restarts and a failover never run the installer again"
for i in 1 2 3; do
    before=$(count 'vmha-disk vmha-installed')
    lab on "$(any_node)" crm_resource --restart --resource web3 --timeout 120s >/dev/null 2>&1
    ok "2. restart $i boots the installed system" wait_for 90 boots_installed $((before + 1))
done
H=$(crm_location web3)
before=$(count 'vmha-disk vmha-installed')
lab kill "$H"
ok "2. after a failover it boots the installed system" wait_for 150 boots_installed $((before + 1))
ok "2. the installer ran twice in all (the crash) and never since" installs_are 2
ok "2. the disk still holds the install's marker" eq "$MARKER" "$(disk_marker)"
lab is-up "$H" || lab boot "$H"
wait_for 90 all_online || diag "not all hosts came back"
crm_ resource cleanup web3 >/dev/null 2>&1
wait_for 60 located

scenario "3. a host whose kernel differs is never used"
H=$(crm_location web3)
K=$(others "$H" | head -n 1)
lab on "$K" sh -c "printf 'tampered' >>$HOST_KERNEL"
crm_ resource stop web3 >/dev/null 2>&1
wait_for 90 stopped
before=$(count 'vmha-disk vmha-installed')
crm_ resource move web3 "$K" >/dev/null 2>&1
crm_ resource start web3 >/dev/null 2>&1
ok "3. the guest starts, elsewhere" wait_for 120 located
ok "3. not on $K" test "$(crm_location web3)" != "$K"
refused_on_k() {
    lab on "$K" grep -q "start failed: kernel $HOST_KERNEL has sha256 [0-9a-f]* on this host, the recorded digest is [0-9a-f]*" \
        /var/log/pacemaker/pacemaker.log
}
ok "3. $K refused it, naming the file and both digests" refused_on_k
ok "3. it booted the installed system" wait_for 60 boots_installed $((before + 1))
boot_says() { lab on "$(crm_location web3)" vmha boot web3 >"$WORK/boot" 2>&1 && grep -q "$1" "$WORK/boot"; }
ok "3. vmha boot shows the install done" boot_says "^install: done"
ok "3. and $K's kernel as not matching" wait_for 30 boot_says "^$K  *no: kernel $HOST_KERNEL has sha256"
sed 's/^/# /' "$WORK/boot"
check_finds() {
    lab on "$(crm_location web3)" vmha check web3 >"$WORK/check" 2>&1
    grep -q "^$K  *NO  .*MISMATCH" "$WORK/check" &&
        grep -q "^  $K: no: kernel $HOST_KERNEL has sha256" "$WORK/check"
}
ok "3. vmha check finds $K's wrong kernel" check_finds
sed 's/^/# /' "$WORK/check"
crm_ resource clear web3 >/dev/null 2>&1

plan_done
exit $((TAP_FAILED > 0))
