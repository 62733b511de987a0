#!/bin/bash
# Migration paths in the three-host lab: node levels are pinned (every host really runs the
# same QEMU), the ocf:vmha:node clone publishes them, and web1 carries the location rule
# that reads its verdicts. Asserts that a rolling upgrade moves the guest up and never
# back, that forbidden hosts are never chosen (move, crash, machine type), and that
# migrate_to refuses by itself when the rule is missing.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" paths
FLOOR=$VMHA_LAB_DIR/srv/cluster/vmha/web1/floor
attr() { lab on "$(any_node)" crm_attribute -N "$1" -n "$2" -l reboot -G -q 2>/dev/null; }
pin() { lab on "$(any_node)" crm_attribute -N "$1" -n vmha-pin-level -v "$2" >/dev/null 2>&1; }
pin_machines() {
    if [ -n "$2" ]; then
        lab on "$(any_node)" crm_attribute -N "$1" -n vmha-pin-machines -v "$2" >/dev/null 2>&1
    else
        lab on "$(any_node)" crm_attribute -N "$1" -n vmha-pin-machines -D >/dev/null 2>&1
    fi
}
level_is() { [ "$(attr "$1" vmha-level)" = "$2" ]; }
verdict_ok() { [ "$(attr "$1" vmha-path-web1)" = ok ]; }
verdict_no() { attr "$1" vmha-path-web1 | grep -q "^no: .*${2:-}"; }
floor_is() { grep -qx "level=$1" "$FLOOR"; }
guest_answers() { [ -n "$(tcp_counter)" ]; }
runs_once_at() { [ "$(crm_location web1)" = "$1" ] && [ "$(running_on web1)" = "$1" ]; }
stopped_everywhere() { [ -z "$(running_on web1)" ] && [ -z "$(crm_location web1)" ]; }
never_on() { # HOST: the last watch never saw the guest there
    case " $SEEN " in *" $1 "*) diag "the guest ran on $1"; return 1 ;; esac
}
others() { # HOST...: the lab's hosts not named
    local h x skip
    for h in node1 node2 node3; do
        skip=0
        for x in "$@"; do [ "$h" = "$x" ] && skip=1; done
        [ $skip -eq 0 ] && echo "$h"
    done
}

lab_suite_up
make_guest web1

# 1. Every node publishes its (pinned) level; the guest starts where the policy allows.
scenario "1. levels published, guest placed"
for h in node1 node2 node3; do pin "$h" 7.2.0; done
crm_ configure primitive vmha-node ocf:vmha:node params state_dir=/srv/cluster/vmha \
    op monitor interval=5s timeout=20s >/dev/null 2>&1
crm_ configure clone vmha-nodes vmha-node meta interleave=true >/dev/null 2>&1
ok "1. node1 advertises its pinned level" wait_for 60 level_is node1 "qemu 7.2.0"
ok "1. node3 too" wait_for 30 level_is node3 "qemu 7.2.0"
has_machine() { attr "$1" vmha-machines | grep -qw "$2"; }
ok "1. and its machine types" has_machine node1 pc-i440fx-7.2
crm_ configure primitive web1 ocf:vmha:guest \
    params config=/srv/cluster/web1.xml name=web1 migrate_target='qemu+tcp://%n/system' \
    state_dir=/srv/cluster/vmha \
    op start timeout=90s op stop timeout=90s op monitor interval=5s timeout=20s \
    op migrate_to timeout=120s op migrate_from timeout=60s \
    meta allow-migrate=true target-role=Stopped >/dev/null 2>&1
crm_ configure location web1-paths web1 rule -inf: vmha-path-web1 ne ok >/dev/null 2>&1
crm_ resource start web1 >/dev/null 2>&1
ok "1. the guest starts and answers" wait_for 90 guest_answers
took "configure to answering"
all_ok() { local h; for h in node1 node2 node3; do verdict_ok "$h" || return 1; done; }
ok "1. every node says the guest may run there" all_ok
ok "1. its floor is recorded on shared storage" wait_for 10 floor_is "qemu 7.2.0"
ok "1.   with the machine type it runs with" grep -qx "machine=pc-i440fx-7.2" "$FLOOR"
ok "1.   readable by root only" test "$(stat -c %a "$FLOOR")" = 600
HOME_=$(crm_location web1)
read -r UP1 UP2 < <(others "$HOME_" | xargs)

# 2. Rolling upgrade, first host: the guest moves up to it live; its floor rises; the hosts
#    still at N become forbidden.
scenario "2. rolling upgrade: $UP1 to 8.0.0, guest moves up"
pin "$UP1" 8.0.0
ok "2. $UP1 advertises qemu 8.0.0" wait_for 30 level_is "$UP1" "qemu 8.0.0"
ok "2. the guest may still go there (N -> N+1)" verdict_ok "$UP1"
watch_start up
crm_ resource move web1 "$UP1" >/dev/null 2>&1
ok "2. it moves to $UP1" wait_for 90 runs_once_at "$UP1"
took "move up"
sleep 1
watch_stop up
ok "2. by live migration (no restart)" eq 0 "$RESTARTED"
ok "2. never two copies" test "$COPIES" -le 1
crm_ resource clear web1 >/dev/null 2>&1
ok "2. its floor rose to qemu 8.0.0" wait_for 10 floor_is "qemu 8.0.0"
ok "2. $HOME_ (7.2.0) is now forbidden, and says why" wait_for 10 verdict_no "$HOME_" "below the guest's floor qemu 8.0.0"
ok "2. so is $UP2" verdict_no "$UP2" "below"

# 3. crm resource move to a forbidden host: Pacemaker does not move it; it keeps running.
scenario "3. move to a forbidden host"
watch_start forbidden
crm_ resource move web1 "$HOME_" >/dev/null 2>&1
sleep 12
watch_stop forbidden
ok "3. the guest stays on $UP1" runs_once_at "$UP1"
ok "3. never ran on $HOME_" never_on "$HOME_"
ok "3. kept running (no restart)" eq 0 "$RESTARTED"
crm_ resource clear web1 >/dev/null 2>&1

# 4. The rest of the upgrade: the others come up to 8.0.0 and are allowed again.
scenario "4. rolling upgrade completes"
pin "$UP2" 8.0.0
pin "$HOME_" 8.0.0
ok "4. $UP2 is allowed again at qemu 8.0.0" wait_for 30 verdict_ok "$UP2"
ok "4. $HOME_ too" wait_for 30 verdict_ok "$HOME_"
watch_start across
crm_ resource move web1 "$UP2" >/dev/null 2>&1
ok "4. the guest moves across within 8.0 to $UP2" wait_for 90 runs_once_at "$UP2"
sleep 1
watch_stop across
ok "4. live (no restart)" eq 0 "$RESTARTED"
crm_ resource clear web1 >/dev/null 2>&1

# 4b. vmha migrate: a refusal changes nothing; an allowed move shows progress and settles.
scenario "4b. vmha migrate"
pin "$HOME_" 7.2.0
ok "4b. $HOME_ advertises qemu 7.2.0 again" wait_for 30 level_is "$HOME_" "qemu 7.2.0"
lab on "$UP2" vmha migrate web1 "$HOME_" >"$WORK/refused" 2>&1
ok "4b. vmha migrate to $HOME_ is refused -> 1" eq 1 $?
ok "4b.   naming both levels" grep -q "refused by the migration policy: $HOME_ (qemu 7.2.0) is below the guest's floor qemu 8.0.0" "$WORK/refused"
no_move_constraint() { ! lab on "$UP2" cibadmin -Q -o constraints | grep -q cli-prefer-web1; }
ok "4b.   and changes nothing: no move constraint" no_move_constraint
ok "4b.   the guest stays on $UP2" runs_once_at "$UP2"
crm_ resource param web1 set migration_speed 8 >/dev/null 2>&1
watch_start vmigrate
lab on "$UP2" vmha migrate web1 "$UP1" --wait=120 >"$WORK/vmigrate" 2>&1
ok "4b. vmha migrate to $UP1 -> 0" eq 0 $?
sed 's/^/# /' "$WORK/vmigrate"
ok "4b.   showed the hypervisor's progress" grep -q "MiB left, dirty .* pages/s" "$WORK/vmigrate"
ok "4b.   ended with the guest on $UP1" grep -qx "web1 runs on $UP1" "$WORK/vmigrate"
ok "4b.   and cleared the move constraint" no_move_constraint
sleep 1
watch_stop vmigrate
ok "4b. live (no restart), never two copies" sh -c "[ $RESTARTED -eq 0 ] && [ $COPIES -le 1 ]"
ok "4b. Pacemaker agrees" runs_once_at "$UP1"
crm_ resource param web1 delete migration_speed >/dev/null 2>&1
UP2=$UP1

# 5. No rule: migrate_to itself refuses to go down, naming both levels.
scenario "5. migrate_to refuses a downgrade by itself"
crm_ configure delete web1-paths >/dev/null 2>&1
watch_start norule
crm_ resource move web1 "$HOME_" >/dev/null 2>&1
refused() { lab on "$UP2" grep -q "migrate_to failed: migration policy: $HOME_ (qemu 7.2.0) is below the guest's floor qemu 8.0.0" /var/log/pacemaker/pacemaker.log; }
ok "5. migrate_to refused with a reason naming both levels" wait_for 60 refused
sleep 10
watch_stop norule
ok "5. the guest never ran on $HOME_" never_on "$HOME_"
runs_once() { [ "$(running_on web1 | grep -c .)" -eq 1 ]; }
ok "5. and runs once, on an allowed host" wait_for 60 runs_once
diag "5. after the refusal the guest runs on $(running_on web1 | xargs) (restarted: $RESTARTED)"
crm_ resource clear web1 >/dev/null 2>&1
crm_ configure location web1-paths web1 rule -inf: vmha-path-web1 ne ok >/dev/null 2>&1
crm_ resource cleanup web1 >/dev/null 2>&1
located() { [ -n "$(crm_location web1)" ] && runs_once && guest_answers; }
wait_for 90 located || bail "the guest is not running anywhere after scenario 5"
HOST=$(crm_location web1)

# 6. Host crash with no allowed host left: the guest stays stopped, and the nodes say why.
scenario "6. crash with nowhere allowed to go"
# Fencing powers the host off (not reboot), so it stays away until we boot it.
crm_ configure property stonith-action=off >/dev/null 2>&1
for h in $(others "$HOST"); do pin "$h" 7.2.0; done
for h in $(others "$HOST"); do wait_for 30 verdict_no "$h" "below"; done
others_refuse() { local h; for h in $(others "$HOST"); do verdict_no "$h" || return 1; done; }
ok "6. every other host refuses the guest" others_refuse
watch_start crash
lab kill "$HOST"
ok "6. the guest stays stopped (not started on a forbidden host)" wait_for 60 stopped_everywhere
sleep 10
ok "6.   still stopped 10 s later" stopped_everywhere
crm_mon_says_why() {
    lab on "$(others "$HOST" | head -n 1)" crm_mon -1 -A 2>/dev/null |
        grep -q "vmha-path-web1.*no: .*below the guest's floor qemu 8.0.0"
}
ok "6. crm_mon -A shows why on each node" crm_mon_says_why
lab on "$(others "$HOST" | head -n 1)" vmha paths >"$WORK/paths.txt" 2>&1
sed 's/^/# /' "$WORK/paths.txt"
for h in $(others "$HOST"); do
    ok "6. vmha paths explains why not $h" grep -q "not on $h: $h (qemu 7.2.0) is below the guest's floor qemu 8.0.0" "$WORK/paths.txt"
done
paths_json_ok() {
    lab on "$(others "$HOST" | head -n 1)" vmha --json paths web1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = d["guests"][0]
assert g["guest"] == "web1" and g["floor"] == "qemu 8.0.0", g
paths = {p["node"]: p for p in g["paths"]}
assert not any(p["allowed"] for p in paths.values()), paths
assert paths["'"$HOST"'"]["reason"] == "'"$HOST"' is offline", paths
'
}
ok "6. vmha --json paths agrees: allowed nowhere, $HOST offline" paths_json_ok
lab is-up "$HOST" || lab boot "$HOST"
ok "6. when $HOST returns, the guest starts there" wait_for 120 runs_once_at "$HOST"
watch_stop crash
for h in $(others "$HOST"); do
    ok "6. never ran on $h" never_on "$h"
done
crm_ resource cleanup web1 >/dev/null 2>&1
crm_ configure property stonith-action=reboot >/dev/null 2>&1

# 7. Machine type: a host at the right level that lacks the guest's machine type is never
#    chosen, even when it is the only one left.
scenario "7. a host without the guest's machine type"
read -r M1 M2 < <(others "$HOST" | xargs)
pin "$M1" 8.0.0
pin_machines "$M1" "pc q35 pc-i440fx-7.1 pc-q35-7.1"
ok "7. $M1 refuses the guest for its machine type" wait_for 30 verdict_no "$M1" "lacks machine type pc-i440fx-7.2"
watch_start machine
crm_ node standby "$HOST" >/dev/null 2>&1
ok "7. with $HOST in standby the guest has nowhere to go: stopped" wait_for 90 stopped_everywhere
sleep 5
pin_machines "$M1" ""
ok "7. once $M1 offers the machine type, the guest starts there" wait_for 90 runs_once_at "$M1"
watch_stop machine
ok "7. never ran on $M2 (level 7.2.0)" never_on "$M2"
crm_ node online "$HOST" >/dev/null 2>&1

plan_done
exit $((TAP_FAILED > 0))
