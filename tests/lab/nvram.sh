#!/bin/bash
# UEFI NVRAM in the three-host lab: a guest booted by OVMF counts its boots in EFI
# variables (one VmhaBoot<N> per boot). If its NVRAM follows it, the count goes on across
# a cold move, a live migration and a host crash; a damaged newest generation falls back
# to the previous one and says so; a stale VARS file planted on a host is never booted.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" nvram
SHARED=$VMHA_LAB_DIR/srv/cluster
SERIAL=$SHARED/web2.serial
GENS=$SHARED/vmha/web2/nvram
LOCAL_VARS=/var/lib/libvirt/qemu/nvram/web2_VARS.fd
efiboots() { grep -ao 'vmha-efiboots [0-9]*' "$SERIAL" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }
boots_are() { [ "$(efiboots)" = "$1" ]; }
runs_once_at() { [ "$(crm_location web2)" = "$1" ] && [ "$(running_on web2)" = "$1" ]; }
stopped() { [ -z "$(running_on web2)" ] && [ -z "$(crm_location web2)" ]; }
located() { [ -n "$(crm_location web2)" ] && [ "$(running_on web2 | grep -c .)" -eq 1 ]; }
newest_gen() { ls "$GENS"/gen-*.meta 2>/dev/null | sed 's/.*gen-0*\([0-9]*\)\.meta/\1/' | sort -n | tail -n 1; }
# The store's newest intact generation holds VmhaBoot<N>.
stored_boot() { lab on "$(any_node)" vmha nvram show web2 2>/dev/null | grep -q "^VmhaBoot$1 "; }
others() { local h; for h in node1 node2 node3; do [ "$h" = "$1" ] || [ "$h" = "${2:-}" ] || echo "$h"; done; }

lab_suite_up
UEFI=$LOCAL_VARS make_guest web2 vmha.efiboots=1
: >"$SERIAL"

scenario "1. first boot through OVMF"
crm_ configure primitive web2 ocf:vmha:guest \
    params config=/srv/cluster/web2.xml name=web2 migrate_target='qemu+tcp://%n/system' \
    state_dir=/srv/cluster/vmha migration_policy=false \
    op start timeout=120s op stop timeout=90s op monitor interval=5s timeout=30s \
    op migrate_to timeout=120s op migrate_from timeout=60s \
    meta allow-migrate=true >/dev/null 2>&1
ok "1. the guest boots and writes VmhaBoot1" wait_for 120 boots_are 1
took "configure to first boot counted"
H1=$(crm_location web2)
ok "1. its NVRAM is captured while it runs" wait_for 30 stored_boot 1
ok "1. generations are root's only" test "$(stat -c %a "$GENS/gen-$(printf %06d "$(newest_gen)").fd")" = 600

scenario "2. stop, then start on another host"
crm_ resource stop web2 >/dev/null 2>&1
ok "2. the guest stops" wait_for 90 stopped
H2=$(others "$H1" | head -n 1)
crm_ resource move web2 "$H2" >/dev/null 2>&1
crm_ resource start web2 >/dev/null 2>&1
ok "2. it starts on $H2" wait_for 120 runs_once_at "$H2"
ok "2. and counts boot 2: the NVRAM came along" wait_for 60 boots_are 2
crm_ resource clear web2 >/dev/null 2>&1

scenario "3. live migration, then a reset on the target"
H3=$(others "$H1" "$H2")
crm_ resource move web2 "$H3" >/dev/null 2>&1
ok "3. it migrates to $H3" wait_for 120 runs_once_at "$H3"
crm_ resource clear web2 >/dev/null 2>&1
ok "3. without a reboot" boots_are 2
lab on "$H3" virsh -q -c qemu:///system reset web2 >/dev/null
ok "3. after a reset on $H3 it counts boot 3: the flash migrated" wait_for 90 boots_are 3

scenario "4. host crash after a capture: failover keeps the variables"
ok "4. boot 3 is captured" wait_for 40 stored_boot 3
lab kill "$H3"
ok "4. the guest runs again elsewhere" wait_for 150 located
ok "4. and counts boot 4" wait_for 90 boots_are 4
took "crash to boot counted"
for h in node1 node2 node3; do lab is-up "$h" || lab boot "$h"; done
all_online() { [ "$(online_nodes | wc -w)" -eq 3 ]; }
wait_for 90 all_online || diag "not all hosts came back"
crm_ resource cleanup web2 >/dev/null 2>&1

scenario "5. the newest generation damaged"
wait_for 40 stored_boot 4
crm_ resource stop web2 >/dev/null 2>&1
wait_for 90 stopped
N=$(newest_gen)
printf '\x42' | dd of="$GENS/gen-$(printf %06d "$N").fd" bs=1 seek=100 conv=notrunc status=none
crm_ resource start web2 >/dev/null 2>&1
ok "5. the guest still starts" wait_for 120 located
H5=$(crm_location web2)
fallback_said() {
    lab on "$H5" grep -q "boots with NVRAM generation $((N - 1)): generation $N is damaged" \
        /var/log/pacemaker/pacemaker.log
}
ok "5. from generation $((N - 1)), and says why" fallback_said
lab on "$H5" vmha nvram history web2 >"$WORK/history" 2>&1
sed 's/^/# /' "$WORK/history"
ok "5. vmha nvram history marks generation $N damaged" grep -q "^$N .*DAMAGED" "$WORK/history"
status_nvram() {
    lab on "$H5" vmha --json status web2 | python3 -c '
import json, sys
g = json.load(sys.stdin)["guests"][0]
assert g["nvram_generation"] == int(sys.argv[1]) and g["nvram_booted"] == int(sys.argv[2]) - 1, g
' "$(newest_gen)" "$N"
}
ok "5. vmha status shows the newest generation and the one it booted" status_nvram

scenario "6. a stale VARS file planted on a host is never booted"
BEFORE=$(efiboots)
wait_for 40 stored_boot "$BEFORE"
crm_ resource stop web2 >/dev/null 2>&1
wait_for 90 stopped
X=$(others "$H5" | head -n 1)
lab on "$X" mkdir -p "$(dirname "$LOCAL_VARS")"
lab on "$X" vmha nvram export web2 "$LOCAL_VARS" --generation "$(ls "$GENS"/gen-*.meta | head -n 1 | sed 's/.*gen-0*\([0-9]*\)\.meta/\1/')" >/dev/null
forensics_before=$(ls "$GENS/forensic" 2>/dev/null | grep -c "$X.*fd$")
crm_ resource move web2 "$X" >/dev/null 2>&1
crm_ resource start web2 >/dev/null 2>&1
ok "6. the guest starts on $X" wait_for 120 runs_once_at "$X"
ok "6. and counts on from the store: boot $((BEFORE + 1))" wait_for 60 boots_are $((BEFORE + 1))
ok "6. the planted file is kept for forensics" test "$(ls "$GENS/forensic" | grep -c "$X.*fd$")" -gt "$forensics_before"
crm_ resource clear web2 >/dev/null 2>&1

plan_done
exit $((TAP_FAILED > 0))
