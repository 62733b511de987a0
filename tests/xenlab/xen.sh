#!/bin/bash
# The `xen` suite: ocf:vmha:guest with hypervisor=libxl on real Xen 4.17 (two hosts under
# QEMU, see xenlab.sh), its actions run in dom0 with OCF environment variables as
# pacemaker-execd would run them (Pacemaker itself is covered by the libvirt lab).
# Covers: validate, probe, start (twice), monitor (also with the config unreadable, and with
# xenstored frozen: an error by the deadline, never "not running"), live migration xen1 -> xen2 through
# migrate_to/migrate_from with the guest's counter going on; migrations that must fail and
# leave the guest running where it was (target unreachable, target already running the
# guest, receiver killed mid-stream); graceful stop, stop escalating to destroy.
# Usage: xen.sh BUILD_DIR  (a meson build with -Dlibxl=enabled; installed into the hosts)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib/tap.sh"
. "$here/xenlab.sh"
BUILD=$1
WORK=$(mktemp -d /tmp/vmha-xen.XXXXXX)
trap 'xenlab_down; rm -rf "$WORK"' EXIT

now_ms() { local r=${EPOCHREALTIME/./}; echo $((r / 1000)); }
T0=$(now_ms)
took() { diag "$1: $(( ($(now_ms) - T0) / 1000 )) s since the suite started"; }

# --- the lab: vmha installed into both dom0s ---
meson install -C "$BUILD" --destdir "$WORK/payload" --no-rebuild --quiet >/dev/null ||
    bail "cannot install the build into a payload"
AGENT=$(cd "$WORK/payload" && find . -path '*/resource.d/vmha/guest' | head -n 1)
AGENT=${AGENT#.}
[ -n "$AGENT" ] || bail "no agent in the installed payload"
xenlab_build >&2 || bail "cannot build the Xen lab"
took "lab built"
xenlab_up 2 "$WORK/payload" >&2 || bail "the Xen hosts do not come up"
took "two Xen hosts up"

# Guest configs on "shared storage": the same file on both hosts.
xlcfg() { # NAME EXTRA
    printf '%s\n' "name = \"$1\"" 'type = "pvh"' 'memory = 128' 'vcpus = 1' \
        'kernel = "/var/lib/vmha-test/vmlinuz"' 'ramdisk = "/var/lib/vmha-test/initrd.img"' \
        "extra = \"console=hvc0 vmha.console=hvc0 $2\"" >"$WORK/$1.cfg"
    xenlab_put xen1 "$WORK/$1.cfg" "/srv/vmha/$1.cfg" && xenlab_put xen2 "$WORK/$1.cfg" "/srv/vmha/$1.cfg"
}
xlcfg g1 "" || bail "cannot put g1.cfg on the hosts"
xlcfg g2 "vmha.ignore_shutdown=1" || bail "cannot put g2.cfg on the hosts"

# agent HOST GUEST ACTION [VAR=VALUE...]: runs the agent in HOST's dom0; RC, MS, $WORK/err
agent() {
    local host=$1 guest=$2 action=$3 t0
    shift 3
    t0=$(now_ms)
    xenlab_ssh "$host" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin OCF_ROOT=/usr/lib/ocf \
        OCF_RESOURCE_INSTANCE="$guest" OCF_RESKEY_hypervisor=libxl \
        OCF_RESKEY_config="/srv/vmha/$guest.cfg" OCF_RESKEY_name="$guest" \
        OCF_RESKEY_CRM_meta_on_node="$host" OCF_RESKEY_CRM_meta_timeout=90000 \
        ASAN_OPTIONS=detect_leaks=0 "$@" "$AGENT" "$action" </dev/null >/dev/null 2>"$WORK/err"
    RC=$?
    MS=$(( $(now_ms) - t0 ))
    [ "$RC" -eq 0 ] || sed 's/^/#   /' "$WORK/err" | tail -n 5
}
# domains HOST: the guest domains HOST runs, by name
domains() { xenlab_ssh "$1" xl list </dev/null | awk 'NR > 2 { print $1 }' | sort | tr '\n' ' '; }
counters() { xenlab_console "$1" "$2" 2>/dev/null | sed -n 's/^vmha-counter \([0-9]*\).*/\1/p'; }
last_counter() { counters "$1" "$2" | tail -n 1; }
wait_counter() { # HOST GUEST MIN SECONDS
    local end=$((SECONDS + $4)) c
    while [ $SECONDS -lt $end ]; do
        c=$(last_counter "$1" "$2")
        [ -n "$c" ] && [ "$c" -ge "$3" ] && return 0
        sleep 1
    done
    diag "counter of $2 on $1 is '${c:-none}', wanted >= $3"
    return 1
}

# --- validate, probe, start ---
agent xen1 g1 validate-all
ok "validate-all of a PVH xl.cfg on a Xen host -> 0" eq 0 $RC
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=0
ok "probe before start -> 7" eq 7 $RC
agent xen1 g1 start
ok "start -> 0" eq 0 $RC
diag "start took $MS ms"
ok "  the guest runs on xen1" eq "g1 " "$(domains xen1)"
ok "  and its counter goes up" wait_counter xen1 g1 3 60
agent xen1 g1 start
ok "start again -> 0" eq 0 $RC
ok "  still one domain g1" eq "g1 " "$(domains xen1)"
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=10000
ok "monitor -> 0" eq 0 $RC
agent xen2 g1 monitor OCF_RESKEY_CRM_meta_interval=0
ok "probe on xen2, where it does not run -> 7" eq 7 $RC
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_config=/srv/vmha/missing.cfg
ok "probe with an unreadable config finds the running guest by name -> 0" eq 0 $RC
# xenstored frozen: libxenlight's calls block; the action must end by its deadline, never 7.
# Timed inside dom0 (/proc/uptime), so ssh's own time does not count.
read -r RC MS < <(xenlab_ssh xen1 "kill -STOP \$(pidof xenstored)
    t0=\$(cut -d' ' -f1 /proc/uptime)
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin OCF_RESKEY_hypervisor=libxl \
        OCF_RESKEY_config=/srv/vmha/g1.cfg OCF_RESKEY_name=g1 OCF_RESKEY_CRM_meta_interval=10000 \
        OCF_RESKEY_CRM_meta_timeout=8000 ASAN_OPTIONS=detect_leaks=0 $AGENT monitor 2>/tmp/frozen.err
    rc=\$?
    t1=\$(cut -d' ' -f1 /proc/uptime)
    kill -CONT \$(pidof xenstored)
    echo \$rc \$(echo \$t0 \$t1 | awk '{ printf \"%d\", (\$2 - \$1) * 1000 }')" </dev/null)
xenlab_ssh xen1 cat /tmp/frozen.err </dev/null >"$WORK/err"
ok "monitor with xenstored frozen -> 1, not 7" eq 1 "$RC"
ok "  ends within its 8 s timeout (took ${MS:-?} ms)" test "${MS:-99999}" -lt 8000
ok "  saying what it was doing" contains "$WORK/err" "gave up before its 8000 ms timeout"
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=10000
ok "monitor once xenstored runs again -> 0" eq 0 $RC
took "started"

# --- a migration that cannot happen leaves the guest where it is ---
agent xen1 g1 migrate_to OCF_RESKEY_CRM_meta_migrate_target=xen9
ok "migrate_to an unreachable host -> 1" eq 1 $RC
ok "  saying the receiver cannot be reached" contains "$WORK/err" "no migration receiver on ssh://xen9"
ok "  the guest still runs on xen1" eq "g1 " "$(domains xen1)"
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=10000
ok "  monitor -> 0" eq 0 $RC

# --- the receiver refuses a second copy ---
# Made up on purpose: g1 also runs on xen2 (started there by hand). A migration must not
# add a third; the receiver refuses, and g1 on xen1 keeps running.
xenlab_ssh xen2 "xl create /srv/vmha/g1.cfg" </dev/null >/dev/null 2>&1
agent xen1 g1 migrate_to OCF_RESKEY_CRM_meta_migrate_target=xen2
ok "migrate_to a host that already runs the guest -> 1" eq 1 $RC
ok "  saying it refuses a second copy" contains "$WORK/err" "already runs on this host"
ok "  xen1 still runs g1" eq "g1 " "$(domains xen1)"
ok "  xen2 still runs only its own g1" eq "g1 " "$(domains xen2)"
xenlab_ssh xen2 "xl destroy g1" </dev/null >/dev/null 2>&1

# --- the receiver dies mid-stream: the source keeps the guest; the leftover is cleared ---
(agent xen1 g1 migrate_to OCF_RESKEY_CRM_meta_migrate_target=xen2; echo $RC >"$WORK/bg.rc") &
mpid=$!
for _ in $(seq 60); do
    case "$(domains xen2)" in *g1--incoming*) break ;; esac
    sleep 0.5
done
ok "a migration is under way (xen2 has g1--incoming)" eq "g1--incoming " "$(domains xen2)"
xenlab_ssh xen2 'kill -9 $(pidof vmha-libxl-helper)' </dev/null
wait $mpid
ok "migrate_to whose receiver was killed -> 1" eq 1 "$(cat "$WORK/bg.rc")"
ok "  xen1 still runs g1" eq "g1 " "$(domains xen1)"
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=10000
ok "  monitor on xen1 -> 0 (running, not paused)" eq 0 $RC
c=$(last_counter xen1 g1)
ok "  and its counter goes on" wait_counter xen1 g1 "$((${c:-0} + 2))" 30
agent xen2 g1 monitor OCF_RESKEY_CRM_meta_interval=0
ok "  a probe on xen2 does not take the leftover g1--incoming for g1 -> 7" eq 7 $RC

# --- live migration xen1 -> xen2 ---
before=$(last_counter xen1 g1)
agent xen1 g1 migrate_to OCF_RESKEY_CRM_meta_migrate_target=xen2
ok "migrate_to xen2 -> 0" eq 0 $RC
diag "migrate_to took $MS ms"
agent xen2 g1 migrate_from OCF_RESKEY_CRM_meta_migrate_source=xen1
ok "migrate_from on xen2 -> 0" eq 0 $RC
ok "  xen1 runs no guest any more" eq "" "$(domains xen1)"
ok "  xen2 runs g1, once (the killed receive's leftover is gone)" eq "g1 " "$(domains xen2)"
ok "  the counter goes on past ${before:-?} on xen2 (memory carried, no reboot)" \
    wait_counter xen2 g1 "$((${before:-0} + 2))" 60
first=$(counters xen2 g1 | head -n 1)
ok "  the first value on xen2 (${first:-none}) is not below the last on xen1 (${before:-?})" \
    test "${first:-0}" -ge "${before:-1}"
agent xen1 g1 monitor OCF_RESKEY_CRM_meta_interval=0
ok "probe on xen1 after the migration -> 7" eq 7 $RC
agent xen1 g1 stop
ok "stop on the source after the migration -> 0" eq 0 $RC
took "migrated"

# --- stop ---
agent xen2 g1 stop
ok "stop -> 0" eq 0 $RC
diag "graceful stop took $MS ms"
ok "  the guest powered itself off" sh -c "$(xenlab_ssh_cmd xen2) cat /var/log/xen/console/guest-g1.log | grep -q 'shutdown request, powering off'"
ok "  no domain left on xen2" eq "" "$(domains xen2)"
agent xen2 g1 monitor OCF_RESKEY_CRM_meta_interval=0
ok "  probe -> 7" eq 7 $RC
agent xen2 g1 stop
ok "stop again -> 0" eq 0 $RC

agent xen1 g2 start
ok "start of a guest that ignores shutdown requests -> 0" eq 0 $RC
wait_counter xen1 g2 2 60 >/dev/null
agent xen1 g2 stop OCF_RESKEY_shutdown_timeout=5s
ok "stop escalates to destroy -> 0" eq 0 $RC
diag "stop with escalation took $MS ms"
ok "  after the guest ignored the request" sh -c "$(xenlab_ssh_cmd xen1) cat /var/log/xen/console/guest-g2.log | grep -q 'shutdown request ignored'"
ok "  no domain left on xen1" eq "" "$(domains xen1)"
took "stopped"

# --- Xen's Remus on vmha's engine: the backup runs the guest only when promoted ---
# The primary host loses power; the backup keeps the last checkpoint paused until it is
# promoted, and the guest goes on from there with its memory: the counter is not reset.
HELPER=$(cd "$WORK/payload" && find . -name vmha-libxl-helper | head -n 1)
HELPER=${HELPER#.}
agent xen1 g1 start
ok "remus: start g1 on xen1 -> 0" eq 0 $RC
wait_counter xen1 g1 3 60 >/dev/null
xenlab_ssh xen2 "setsid $HELPER remus-receive --listen 10.77.0.2:7790 >/tmp/recv.out \
    2>/tmp/recv.err </dev/null & sleep 1" </dev/null
xenlab_ssh xen1 "setsid $HELPER remus-send --guest g1 --to xen2:7790 \
    --interval 200 >/tmp/send.out 2>/tmp/send.err </dev/null & sleep 1" </dev/null
for _ in $(seq 60); do
    case "$(domains xen2)" in *g1--incoming*) break ;; esac
    sleep 0.5
done
ok "remus: the backup receives (xen2 has g1--incoming)" eq "g1--incoming " "$(domains xen2)"
# Each checkpoint suspends the PVH guest cooperatively: its kernel prints "Restarting
# tasks" as it goes on, which counts the checkpoints from the guest's side.
ckpts() { xenlab_console xen1 g1 | grep -c 'Restarting tasks'; }
for _ in $(seq 120); do
    [ "$(ckpts)" -gt 0 ] && break
    sleep 1
done
took "initial sync done"
n0=$(ckpts)
sleep 10
n1=$(ckpts)
diag "checkpoints in 10 s: $((n1 - n0)) (interval 200 ms)"
ok "remus: checkpoints flow after the initial sync (at least 5 in 10 s)" test $((n1 - n0)) -ge 5
before=$(last_counter xen1 g1)
xenlab_kill xen1
diag "xen1 lost power with the counter at ${before:-?}"
t_kill=$(now_ms)
done_recv=0
for _ in $(seq 60); do
    xenlab_ssh xen2 "grep -q ready /tmp/recv.out" </dev/null && { done_recv=1; break; }
    sleep 1
done
ok "remus: the backup notices the primary is gone (keepalives) and keeps its replica" \
    eq 1 $done_recv
diag "the backup noticed after $(( $(now_ms) - t_kill )) ms"
xenlab_ssh xen2 "cat /tmp/recv.out /tmp/recv.err" </dev/null | sed 's/^/#   /'
ok "  paused, not running: no failover without a promotion" \
    sh -c "$(xenlab_ssh_cmd xen2) xl list | awk '\$1 == \"g1--replica\" { print \$5 }' | grep -q p"
t_promote=$(now_ms)
xenlab_ssh xen2 "$HELPER remus-promote g1" </dev/null
ok "remus: promote on xen2 -> 0" eq 0 $?
diag "promotion took $(( $(now_ms) - t_promote )) ms (with ssh)"
ok "  xen2 runs g1" eq "g1 " "$(domains xen2)"
ok "  the counter goes on past ${before:-?}" wait_counter xen2 g1 "$((${before:-0} + 2))" 60
log=$(xenlab_ssh xen2 'cat /var/log/xen/console/guest-g1*.log' </dev/null)
resumed=$(printf '%s\n' "$log" | sed -n 's/^vmha-counter \([0-9]*\).*/\1/p' | head -n 1)
diag "first value on xen2: ${resumed:-none}; last seen on xen1: ${before:-?}"
ok "  from the checkpoint: the first value on xen2 is within a second of the last on xen1, not a reboot" \
    test "${resumed:-0}" -ge "$((${before:-99999} - 1))" -a "${resumed:-0}" -gt 3
took "done"
plan_done
exit 0
