#!/bin/bash
# Live migration by ocf:vmha:guest between two real libvirtds (two private daemons on this
# machine, each with its own host UUID): success with the guest's counter continuing,
# cancellation before the timeout leaving the guest on the source, and migrate_from.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
AGENT=$(readlink -f "$1")
VMHA=$(readlink -f "$2")

. "$HERE/../lib/agent-env.sh"
agent_setup migration
A=$(libvirtd_start "$WORK/a")
B=$(libvirtd_start "$WORK/b")
[ -n "$A" ] && [ -n "$B" ] || bail "cannot start two private libvirtds"
SERIAL_LOG=$WORK/vm.serial "$HERE/../guest/make-guest-xml.sh" vm "$WORK/vm.xml"

# run HOST-URI ACTION [VAR=VALUE...]
run() {
    local uri=$1 action=$2
    shift 2
    local t0=$(date +%s%N)
    env -i PATH="$PATH" OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=test \
        VMHA_RUNDIR="$WORK/run" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        OCF_RESKEY_hypervisor="$uri" OCF_RESKEY_CRM_meta_timeout=60000 \
        OCF_RESKEY_config="$WORK/vm.xml" OCF_RESKEY_name=vm "$@" \
        "$AGENT" "$action" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    MS=$((($(date +%s%N) - t0) / 1000000))
}
counter() { counter_in "$WORK/vm.serial"; }
wait_counter() { wait_counter_in "$WORK/vm.serial" "$1"; }
defined_on() { virsh -c "$1" list --all --name 2>/dev/null | grep -qx vm; }
persistent_on() { virsh -c "$1" dominfo vm 2>/dev/null | grep -q '^Persistent: *yes'; }

# The target's libvirt URI and QEMU's data channel: the two daemons share this machine.
TO_B=(OCF_RESKEY_CRM_meta_migrate_target=b "OCF_RESKEY_migrate_target=$B"
    OCF_RESKEY_migrateuri=tcp://127.0.0.1:49312)

run "$A" start
ok "start on host a -> 0" eq 0 $RC
ok "the guest counts" wait_counter 3

# A migration that cannot finish in time is cancelled, and the guest stays where it was.
run "$A" migrate_to "${TO_B[@]}" OCF_RESKEY_migration_speed=1 OCF_RESKEY_CRM_meta_timeout=8000
ok "migrate_to at 1 MiB/s with an 8 s timeout -> 1" eq 1 $RC
ok "  before the timeout ($MS ms)" test "$MS" -lt 8000
ok "  because it was cancelled" contains "$WORK/err" "cancelling"
run "$A" monitor
ok "  the guest still runs on a" eq 0 $RC
run "$B" monitor
ok "  and not on b" eq 7 $RC
before=$(counter)
ok "  and kept counting" wait_counter $((before + 2))

before=$(counter)
run "$A" migrate_to "${TO_B[@]}" OCF_RESKEY_migration_downtime=300
ok "migrate_to b -> 0" eq 0 $RC
diag "migrate_to took $MS ms"
ok "  with progress in the log" contains "$WORK/err" "migrating guest vm to b"
run "$B" migrate_from OCF_RESKEY_CRM_meta_migrate_source=a
ok "migrate_from on b -> 0" eq 0 $RC
run "$A" monitor
ok "a no longer runs the guest -> 7" eq 7 $RC
ok "  nor keeps its definition" sh -c "! virsh -c '$A' list --all --name | grep -qx vm"
run "$B" monitor
ok "b runs it -> 0" eq 0 $RC
ok "  as a persistent guest" persistent_on "$B"
ok "the guest kept counting across the migration" wait_counter $((before + 3))
ok "  and never restarted" eq 1 "$(grep -ac 'vmha-counter 0$' "$WORK/vm.serial")"

run "$A" migrate_to "${TO_B[@]}"
ok "migrate_to from a host that does not run it -> 1" eq 1 $RC
run "$B" stop
ok "stop on b -> 0" eq 0 $RC
ok "  leaves no definition on b" sh -c "! virsh -c '$B' list --all --name | grep -qx vm"

# vmha migrate --no-cluster: the hypervisor operation itself, for when the cluster is down.
run "$A" start
ok "start on a again -> 0" eq 0 $RC
wait_counter 2
before=$(counter)
"$VMHA" migrate --no-cluster vm b "--uri=$A" "--target-uri=$B" \
    --migrateuri=tcp://127.0.0.1:49314 >"$WORK/nocluster" 2>&1
ok "vmha migrate --no-cluster a -> b -> 0" eq 0 $?
ok "  says where the guest runs" grep -qx "vm runs on b" "$WORK/nocluster"
run "$B" monitor
ok "  b runs it -> 0" eq 0 $RC
ok "  and it kept counting" wait_counter $((before + 2))
"$VMHA" migrate --no-cluster vm a "--uri=$A" "--target-uri=$B" >"$WORK/nocluster" 2>&1
ok "vmha migrate --no-cluster of a guest that does not run there -> 1" eq 1 $?
ok "  saying so" grep -q "guest vm does not run at" "$WORK/nocluster"
run "$B" stop
ok "stop on b -> 0" eq 0 $RC

plan_done
exit $((TAP_FAILED > 0))
