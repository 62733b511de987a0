#!/bin/bash
# ocf:vmha:guest against a real libvirtd and a real QEMU guest (software emulation), both
# private to this test: start, stop and their repeats, escalation to destroy, probes with an
# unreadable config, a frozen and a dead libvirtd, failed migration, validate-all, ocf-tester.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
AGENT=$(readlink -f "$1")

. "$HERE/../lib/agent-env.sh"
agent_setup lifecycle
LV=$WORK/libvirt
URI=$(libvirtd_start "$LV")
[ -n "$URI" ] || bail "cannot start a private libvirtd"
diag "libvirtd at $URI"

mkguest() { # NAME [extra kernel args] -> $WORK/NAME.xml, serial log $WORK/NAME.serial
    SERIAL_LOG=$WORK/$1.serial "$HERE/../guest/make-guest-xml.sh" "$1" "$WORK/$1.xml" "${2:-}"
}

# run ACTION [VAR=VALUE...]: runs the agent with a clean environment, by hand or, with
# CLUSTER=1, the way pacemaker-execd does; leaves the exit code in RC, stderr in $WORK/err,
# the wall time in MS.
run() {
    local action=$1
    shift
    local t0=$(date +%s%N) cluster=()
    [ -n "${CLUSTER:-}" ] && cluster=(OCF_RESKEY_crm_feature_set=3.16.2 VMHA_DEBUG=1
        PCMK_logfile="$WORK/pacemaker.log" OCF_RESKEY_CRM_meta_interval=10000)
    env -i PATH="$PATH" OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=test \
        VMHA_RUNDIR="$WORK/run" "${cluster[@]}" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
        OCF_RESKEY_hypervisor="$URI" OCF_RESKEY_CRM_meta_timeout=30000 \
        OCF_RESKEY_config="$CFG" OCF_RESKEY_name="$NAME" "$@" \
        "${AGENT_UNDER_TEST:-$AGENT}" "$action" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    MS=$((($(date +%s%N) - t0) / 1000000))
}

one_reason() { # the failure printed exactly one exit reason, containing TEXT
    local n
    n=$(grep -c '^ocf-exit-reason:' "$WORK/err")
    [ "$n" -eq 1 ] || { diag "$n exit reasons:"; sed 's/^/#   /' "$WORK/err"; return 1; }
    contains "$WORK/err" "$1"
}

counter() { counter_in "$WORK/$NAME.serial"; }
wait_counter() { wait_counter_in "$WORK/$NAME.serial" "$1"; }

virsh_list() { virsh -c "$URI" list --all --name 2>/dev/null | grep -v '^$'; }

# --- validate-all on good and bad parameters ---
mkguest vm1
NAME=vm1 CFG=$WORK/vm1.xml
run validate-all
ok "validate-all accepts a good guest" eq 0 $RC
run validate-all OCF_RESKEY_config=$WORK/missing.xml
ok "validate-all: config missing on this node -> 5" eq 5 $RC
ok "  with one exit reason naming the file" one_reason "$WORK/missing.xml"
run validate-all OCF_RESKEY_config=vm1.xml
ok "validate-all: relative config -> 6" eq 6 $RC
ok "  with one exit reason" one_reason "not an absolute path"
run validate-all OCF_RESKEY_migration_speed=fast
ok "validate-all: migration_speed=fast -> 6" eq 6 $RC
ok "  with one exit reason" one_reason "migration_speed=fast is not a whole number"
run validate-all OCF_RESKEY_force_stop=perhaps
ok "validate-all: force_stop=perhaps -> 6" eq 6 $RC
run validate-all OCF_RESKEY_shutdown_timeout=soon
ok "validate-all: shutdown_timeout=soon -> 6" eq 6 $RC
echo "<domain type='qemu'><name>vm1</name>" >"$WORK/broken.xml"
run validate-all OCF_RESKEY_config="$WORK/broken.xml"
ok "validate-all: config that is not XML -> 6" eq 6 $RC
ok "  with one exit reason" one_reason "not well-formed"
run validate-all OCF_RESKEY_name=other
ok "validate-all: name that does not match config -> 6" eq 6 $RC
ok "  with one exit reason" one_reason "does not match"
sed "s|<kernel>[^<]*</kernel>|<kernel>$WORK/no-kernel</kernel>|" "$CFG" >"$WORK/nokernel.xml"
run validate-all OCF_RESKEY_config="$WORK/nokernel.xml"
ok "validate-all: kernel missing on this node -> 5" eq 5 $RC
ok "  with one exit reason" one_reason "$WORK/no-kernel"
run validate-all OCF_RESKEY_hypervisor=libxl
if grep -q "does not include" "$WORK/err"; then
    ok "validate-all: a backend this build lacks -> 5" eq 5 $RC
else
    ok "validate-all: hypervisor=libxl with a libvirt XML -> 6" eq 6 $RC
    ok "  with one exit reason" one_reason "this is XML, not an xl.cfg"
fi

# --- start, monitor, repeats ---
run monitor OCF_RESKEY_CRM_meta_interval=0
ok "probe of a guest that does not exist -> 7" eq 7 $RC
# A typo in a parameter: start refuses (6), but the probe and the stop Pacemaker then runs
# still answer for the guest (a failed stop would get the node fenced).
run start OCF_RESKEY_shutdown_timeout=soon
ok "start with a bad parameter -> 6" eq 6 $RC
run monitor OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_shutdown_timeout=soon
ok "  probe with it -> 7 (the guest is found not running)" eq 7 $RC
run stop OCF_RESKEY_shutdown_timeout=soon
ok "  stop with it -> 0 (nothing runs)" eq 0 $RC
ok "  saying which parameter was ignored" contains "$WORK/err" "shutdown_timeout"
run start
ok "start -> 0" eq 0 $RC
diag "start took $MS ms"
run monitor OCF_RESKEY_CRM_meta_interval=10000
ok "monitor of the running guest -> 0" eq 0 $RC
ok "the guest boots and counts" wait_counter 3
run start
ok "start of a running guest -> 0" eq 0 $RC
before=$(counter)
ok "the second start did not restart the guest" wait_counter $((before + 2))
ok "  (the counter was never reset)" eq 1 "$(grep -ac 'vmha-counter 0$' "$WORK/vm1.serial")"

# --- probes that must not lie ---
mv "$CFG" "$WORK/hidden.xml"
run monitor OCF_RESKEY_CRM_meta_interval=0
ok "probe with unreadable config, guest running, name set -> 0" eq 0 $RC
run monitor OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_name=
ok "probe with unreadable config and no name -> 1, never 7" eq 1 $RC
ok "  with one exit reason" one_reason "no name parameter"
mv "$WORK/hidden.xml" "$CFG"

LVPID=$(cat "$LV/libvirtd.pid")
kill -STOP "$LVPID"
run monitor OCF_RESKEY_CRM_meta_timeout=5000 OCF_RESKEY_CRM_meta_interval=10000
kill -CONT "$LVPID"
ok "monitor with libvirtd frozen -> 1" eq 1 $RC
ok "  within the 5 s timeout ($MS ms)" test "$MS" -lt 5000
ok "  with one exit reason saying what hung" one_reason "does not answer (is libvirtd hung?)"
kill -STOP "$LVPID"
run stop OCF_RESKEY_CRM_meta_timeout=60000
kill -CONT "$LVPID"
ok "stop with libvirtd frozen -> 1, not 0" eq 1 $RC
ok "  after 10 s, not the whole 60 s timeout ($MS ms): fencing comes sooner" test "$MS" -lt 12000
run monitor
ok "  and the guest still runs" eq 0 $RC

# --- the agent server answers the cluster's monitors, and never differently ---
server_pid() { cat "$WORK/run/agent.pid" 2>/dev/null; }
gone() { # the process has exited (this machine's init reaps orphans late: zombies count)
    for _ in $(seq 20); do
        case $(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) in
        "" | Z | X) return 0 ;;
        esac
        sleep 0.1
    done
    return 1
}
server_up() {
    for _ in $(seq 50); do [ -S "$WORK/run/agent.sock" ] && return 0; sleep 0.1; done
    return 1
}
CLUSTER=1 run monitor
ok "under the cluster, the first monitor answers itself -> 0" eq 0 $RC
ok "  and starts the node's agent server" server_up
CLUSTER=1 run monitor
ok "monitor through the agent server -> 0" eq 0 $RC
ok "  (it was the server that answered)" contains "$WORK/err" "answered by the agent server"
CLUSTER=1 run monitor OCF_RESKEY_config=$WORK/unreadable.xml
ok "through the server, config unreadable, name set -> 0" eq 0 $RC
CLUSTER=1 run monitor OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_config=$WORK/unreadable.xml
ok "a probe (interval 0), config unreadable, name set -> 0" eq 0 $RC
ok "  answered by the full agent, not the server" not_contains "$WORK/err" "answered by the agent server"
CLUSTER=1 run monitor OCF_RESKEY_config=$WORK/unreadable.xml OCF_RESKEY_name=
ok "probe through the server, no config, no name -> 1" eq 1 $RC
ok "  with one exit reason" one_reason "no name parameter"
ok "  and the server logged it to Pacemaker's log" contains "$WORK/pacemaker.log" "monitor failed"
CLUSTER=1 run monitor OCF_RESKEY_name=ghost OCF_RESKEY_config=$WORK/unreadable.xml
ok "through the server, a guest that is not here -> 7" eq 7 $RC
kill -STOP "$LVPID"
CLUSTER=1 run monitor OCF_RESKEY_CRM_meta_timeout=5000
kill -CONT "$LVPID"
ok "through the server, libvirtd frozen -> 1" eq 1 $RC
ok "  within the 5 s timeout ($MS ms)" test "$MS" -lt 5000
ok "  with one exit reason" one_reason "does not answer"
first=$(server_pid)
kill -KILL "$first"
CLUSTER=1 run monitor
ok "server killed: the monitor still answers -> 0" eq 0 $RC
# The killed server's socket file stays behind: wait for the new server's pid instead.
new_server() {
    local p
    for _ in $(seq 50); do
        p=$(server_pid)
        [ -n "$p" ] && [ "$p" != "$first" ] && [ -S "$WORK/run/agent.sock" ] && return 0
        sleep 0.1
    done
    return 1
}
ok "  and a new server starts" new_server
ok "  (a different process)" test "$(server_pid)" != "$first"
# A killed server's socket takes connections until the process has exited, and closes them
# unanswered: a listener that does just that must be replaced as well.
first=$(server_pid)
kill -KILL "$first"
gone "$first"
rm -f "$WORK/run/agent.sock"
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True: s.accept()[0].close()' "$WORK/run/agent.sock" &
hangup=$!
for _ in $(seq 50); do [ -S "$WORK/run/agent.sock" ] && break; sleep 0.1; done
CLUSTER=1 run monitor
ok "a server that hangs up unanswered: the monitor answers -> 0" eq 0 $RC
ok "  (the full agent did)" not_contains "$WORK/err" "answered by the agent server"
ok "  and a new server takes its place" new_server
kill "$hangup"
wait "$hangup" 2>/dev/null
# An upgrade replaces the full agent under a running server: it must step aside.
mkdir -p "$WORK/bin"
cp "$AGENT" "$(dirname "$AGENT")/guest-agent" "$WORK/bin/"
chmod -R a+rX "$WORK"
prev=$(server_pid)
kill "$prev"
gone "$prev"
AGENT_UNDER_TEST=$WORK/bin/guest CLUSTER=1 run monitor
for _ in $(seq 50); do [ "$(server_pid)" != "$prev" ] && break; sleep 0.1; done
old=$(server_pid)
cp "$WORK/bin/guest-agent" "$WORK/bin/guest-agent.new"
mv "$WORK/bin/guest-agent.new" "$WORK/bin/guest-agent"
AGENT_UNDER_TEST=$WORK/bin/guest CLUSTER=1 run monitor
ok "after an upgrade, the monitor still answers -> 0" eq 0 $RC
ok "  and the old server has exited" gone "$old"

# --- migration that cannot succeed leaves the guest where it is ---
run migrate_to OCF_RESKEY_CRM_meta_migrate_target=nowhere \
    OCF_RESKEY_migrate_target="qemu+tcp://127.0.0.1:1/system" OCF_RESKEY_CRM_meta_timeout=20000
ok "migrate_to an unreachable target -> 1" eq 1 $RC
ok "  with one exit reason" one_reason "live migration of vm1 to nowhere failed"
run monitor
ok "  and the guest still runs here" eq 0 $RC
run migrate_to
ok "migrate_to without a target node -> 2" eq 2 $RC
run migrate_from
ok "migrate_from where the guest runs -> 0" eq 0 $RC

# --- stop and its repeat ---
run stop
ok "stop -> 0" eq 0 $RC
diag "graceful stop took $MS ms"
ok "  after a graceful shutdown" contains "$WORK/err" "asking guest vm1 to shut down"
ok "  without destroying it" sh -c "! grep -q destroying '$WORK/err'"
run monitor
ok "monitor after stop -> 7" eq 7 $RC
ok "the definition is gone from the node" eq "" "$(virsh_list | grep -x vm1)"
run stop
ok "stop of a stopped guest -> 0" eq 0 $RC
run migrate_from OCF_RESKEY_CRM_meta_timeout=4000
ok "migrate_from when the guest never arrived -> 1" eq 1 $RC

# --- a guest that ignores shutdown is destroyed in time ---
mkguest stubborn vmha.ignore_shutdown=1
NAME=stubborn CFG=$WORK/stubborn.xml
run start
ok "start of a guest that ignores shutdown -> 0" eq 0 $RC
wait_counter 2 >/dev/null
run stop OCF_RESKEY_CRM_meta_timeout=20000
ok "stop escalates to destroy -> 0" eq 0 $RC
ok "  within the 20 s timeout ($MS ms)" test "$MS" -lt 20000
ok "  and says so" contains "$WORK/err" "destroying guest stubborn"
run monitor
ok "  the guest is gone -> 7" eq 7 $RC

# --- ocf-tester on the real guest ---
NAME=vm1 CFG=$WORK/vm1.xml
# ocf-tester also runs meta-data as nobody: use the copy under the world-readable $WORK.
if VMHA_RUNDIR=$WORK/run ocf-tester -n vmha-test -o config="$CFG" -o name=vm1 -o hypervisor="$URI" \
    "$WORK/bin/guest" \
    >"$WORK/tester.log" 2>&1; then
    ok "ocf-tester passes" true
else
    ok "ocf-tester passes" false
    sed 's/^/#   /' "$WORK/tester.log"
fi
run monitor
ok "ocf-tester left the guest stopped" eq 7 $RC

# --- a dead libvirtd is an error, never "not running" ---
run start
kill -KILL "$(cat "$LV/libvirtd.pid")"
run monitor OCF_RESKEY_CRM_meta_timeout=5000
ok "monitor with libvirtd dead -> 1, never 7" eq 1 $RC
ok "  with one exit reason" one_reason "cannot reach the hypervisor"
CLUSTER=1 run monitor OCF_RESKEY_CRM_meta_timeout=5000
ok "through the server, libvirtd dead -> 1, never 7" eq 1 $RC
ok "  with one exit reason" one_reason "cannot reach the hypervisor"

plan_done
exit $((TAP_FAILED > 0))
