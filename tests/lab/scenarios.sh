#!/bin/bash
# The end-to-end suite: ocf:vmha:guest in the three-host lab under real Corosync, Pacemaker,
# libvirtd, QEMU and fencing. Each scenario asserts from the guest's TCP counter and from
# sampling every host's hypervisor that the guest runs where it should and never twice.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" test

guest_answers() { [ -n "$(tcp_counter)" ]; }
runs_once_at() { # HOST: Pacemaker and the hypervisors agree the guest runs there only
    [ "$(crm_location web1)" = "$1" ] && [ "$(running_on web1)" = "$1" ]
}
settled_elsewhere() { # HOST: runs exactly once, not on HOST, and answers
    local on
    [ -n "$1" ] || return 1
    on=$(running_on web1)
    [ "$(echo "$on" | grep -c .)" -eq 1 ] && [ "$on" != "$1" ] &&
        [ "$(crm_location web1)" = "$on" ] && guest_answers
}
all_online() { [ "$(online_nodes | wc -w)" -eq 3 ]; }
# Back to a clean slate: every host up and online, no constraints or failures left.
reset() {
    local h
    for h in node1 node2 node3; do
        lab is-up "$h" || lab boot "$h"
        lab mend "$h" 2>/dev/null || true
    done
    wait_for 90 all_online || diag "not all nodes came back online"
    crm_ resource clear web1 >/dev/null 2>&1
    crm_ resource cleanup web1 >/dev/null 2>&1
    lab on "$(any_node)" stonith_admin --cleanup --history '*' >/dev/null 2>&1
    wait_for 60 guest_answers || diag "the guest does not answer after reset"
    # A cleanup re-probes: until Pacemaker has placed the guest again, it reports no location.
    wait_for 60 located || bail "after reset, Pacemaker does not say where the guest runs"
}
located() { # Pacemaker and the hypervisors agree on one host
    local at
    at=$(crm_location web1)
    [ -n "$at" ] && [ "$(running_on web1)" = "$at" ]
}
# HOST was fenced successfully, as the node that now runs the guest knows it. The fencer
# syncs its history between nodes asynchronously: callers poll.
fenced() {
    lab on "$(crm_location web1)" stonith_admin --history "$1" 2>/dev/null | grep -q successful
}
fence_history() { lab on "$(any_node)" stonith_admin --history "$1" --verbose 2>&1 | sed 's/^/# /'; }
other_than() { # HOST: another node that is online
    local h
    for h in $(online_nodes); do [ "$h" != "$1" ] && { echo "$h"; return; }; done
}

"$SRC/tests/guest/build-guest.sh" "$GUEST_DIR" >&2 || bail "cannot build the test guest"
lab down >/dev/null 2>&1
T0=$(now_ms)
lab up 3 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; bail "lab up failed"; }
up_ms=$(( $(now_ms) - T0 ))
ok "lab up: 3 hosts online, fencing configured (${up_ms} ms)" all_online
make_guest web1

# 1. Pacemaker starts the guest; monitor runs; crm_mon shows it.
scenario "1. start under Pacemaker"
configure_guest web1
ok "1. the guest starts and answers on the network" wait_for 90 guest_answers
took "start to answering"
HOME_=$(crm_location web1)
ok "1. crm_mon shows it started on the host that runs it" runs_once_at "$HOME_"
sleep 6
ok "1. the recurring monitor ran and passed" sh -c \
    "'$LABTOOL' on $HOME_ crm_mon -1 --include=failcounts 2>/dev/null | grep -vq 'Failed Resource Actions'"

# 2. crm resource move -> live migration; clearing the constraint does not bounce it back.
scenario "2. crm resource move"
TARGET=$(other_than "$HOME_")
watch_start move
crm_ resource move web1 "$TARGET" >/dev/null 2>&1
ok "2. the guest moves to $TARGET" wait_for 120 runs_once_at "$TARGET"
took "move to settled"
sleep 1
watch_stop move
ok "2. it kept running (the counter never went back)" eq 0 "$RESTARTED"
diag "2. longest unanswered gap: $GAP ms"
ok "2. never two copies" test "$COPIES" -le 1
crm_ resource clear web1 >/dev/null 2>&1
sleep 8
ok "2. clearing the constraint does not move it back" runs_once_at "$TARGET"
status_agrees() { # vmha status says what crm_mon and the hypervisors say
    local line
    line=$(lab on "$TARGET" vmha status web1 | awk '$1 == "web1"')
    [ "$(echo "$line" | awk '{print $2 " " $3}')" = "running $(crm_location web1)" ] &&
        [ "$(running_on web1)" = "$(crm_location web1)" ] || { diag "status: $line"; return 1; }
}
ok "2. vmha status agrees with crm_mon and the hypervisors" status_agrees
status_json() {
    lab on "$TARGET" vmha --json status | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = {x["guest"]: x for x in d["guests"]}["web1"]
assert g["state"] == "running" and g["hosts"] == [sys.argv[1]], g
assert len(d["hosts"]) == 3 and all(h["online"] for h in d["hosts"]), d["hosts"]
' "$TARGET"
}
ok "2. vmha --json status too" status_json
HOME_=$TARGET

# 3. Standby drains the host by live migration; unstandby breaks nothing.
scenario "3. standby"
watch_start standby
crm_ node standby "$HOME_" >/dev/null 2>&1
ok "3. standby moves the guest off $HOME_" wait_for 120 settled_elsewhere "$HOME_"
took "standby to settled"
watch_stop standby
ok "3. by live migration (no restart)" eq 0 "$RESTARTED"
ok "3. never two copies" test "$COPIES" -le 1
NEW=$(crm_location web1)
crm_ node online "$HOME_" >/dev/null 2>&1
sleep 8
ok "3. unstandby leaves the guest where it is" runs_once_at "$NEW"
HOME_=$NEW

# 4. Host crash -> fenced -> the guest runs on another host.
scenario "4. host crash"
watch_start crash
lab kill "$HOME_"
ok "4. the guest runs again on another host" wait_for 120 settled_elsewhere "$HOME_"
took "crash to answering elsewhere"
watch_stop crash
ok "4. never two copies" test "$COPIES" -le 1
ok "4. the crashed host was fenced" wait_for 30 fenced "$HOME_" || fence_history "$HOME_"
reset
HOME_=$(crm_location web1)

# 5. Cable pulled on the guest's host -> that host is fenced, the guest runs on the majority.
scenario "5. cable pulled"
watch_start cut
lab cut "$HOME_"
ok "5. the guest runs on the majority side" wait_for 120 settled_elsewhere "$HOME_"
took "cable pulled to answering elsewhere"
watch_stop cut
ok "5. never two copies" test "$COPIES" -le 1
ok "5. the isolated host was fenced" wait_for 30 fenced "$HOME_" || fence_history "$HOME_"
reset
HOME_=$(crm_location web1)

# 6. libvirtd killed on the guest's host -> monitor fails -> Pacemaker recovers the guest.
# With libvirtd gone the guest cannot be stopped there either: recovery means fencing.
scenario "6. libvirtd killed"
watch_start lvkill
lab on "$HOME_" sh -c 'kill -KILL $(cat /run/libvirtd.pid)'
ok "6. Pacemaker recovers the guest on another host" wait_for 150 settled_elsewhere "$HOME_"
took "libvirtd killed to recovered"
watch_stop lvkill
ok "6. never two copies" test "$COPIES" -le 1
ok "6. the monitor reported libvirtd unreachable" sh -c \
    "'$LABTOOL' on $HOME_ grep -h 'monitor failed' /var/log/pacemaker/pacemaker.log | grep -q 'cannot reach the hypervisor'"
reset
HOME_=$(crm_location web1)

# 7. libvirtd frozen -> the monitor fails within its deadline; recovery; never two copies.
scenario "7. libvirtd frozen"
watch_start freeze
lab on "$HOME_" sh -c 'kill -STOP $(cat /run/libvirtd.pid)'
sleep 3
ok "7. Pacemaker recovers the guest" wait_for 150 settled_elsewhere "$HOME_"
took "libvirtd frozen to recovered"
watch_stop freeze
ok "7. never two copies" test "$COPIES" -le 1
ok "7. the monitor failed by itself with an error" sh -c \
    "'$LABTOOL' on $HOME_ grep -h 'Result of monitor operation for web1' /var/log/pacemaker/pacemaker.log | grep -qi 'error'"
ok "7.   never by running into its 20 s timeout" sh -c \
    "! '$LABTOOL' on $HOME_ grep -h 'Result of monitor operation for web1' /var/log/pacemaker/pacemaker.log | grep -qi 'timed out'"
reset
HOME_=$(crm_location web1)

# 8. Config unreadable on the guest's host -> the probe still finds the guest -> no second copy.
scenario "8. config unreadable where the guest runs"
lab on "$HOME_" mount -t tmpfs tmpfs /srv/cluster
watch_start probe
lab on "$HOME_" crm_resource --refresh --resource web1 --node "$HOME_" >/dev/null 2>&1
sleep 10
watch_stop probe
ok "8. the guest still runs, once, where it ran" runs_once_at "$HOME_"
ok "8. never two copies" test "$COPIES" -le 1
ok "8. and was never restarted" eq 0 "$RESTARTED"
lab on "$HOME_" umount /srv/cluster
reset
HOME_=$(crm_location web1)

# 9. Migration target dies mid-migration -> the guest keeps running (or is recovered), once.
scenario "9. target dies mid-migration"
crm_ resource param web1 set migration_speed 4 >/dev/null 2>&1
sleep 5
HOME_=$(crm_location web1)
TARGET=$(other_than "$HOME_")
diag "9. moving from $HOME_ to $TARGET at 4 MiB/s"
watch_start midmig
crm_ resource move web1 "$TARGET" >/dev/null 2>&1
migrating() { lab on "$HOME_" virsh -q -c qemu:///system domjobinfo web1 2>/dev/null | grep -qi 'migration'; }
ok "9. the slowed migration to $TARGET is under way" wait_for 30 migrating ||
    lab on "$(any_node)" crm_mon -1 2>&1 | sed 's/^/# /'
lab kill "$TARGET"
crm_ resource clear web1 >/dev/null 2>&1
ok "9. the guest runs once and answers" wait_for 150 settled_elsewhere "$TARGET"
took "target killed to settled"
watch_stop midmig
ok "9. never two copies" test "$COPIES" -le 1
crm_ resource param web1 delete migration_speed >/dev/null 2>&1

plan_done
exit $((TAP_FAILED > 0))
