#!/bin/bash
# The `xen` suite: ocf:vmha:guest with hypervisor=libxl on real Xen 4.17 (two hosts under
# QEMU, see xenlab.sh), its actions run in dom0 with OCF environment variables as
# pacemaker-execd would run them, and at the end under Pacemaker itself.
# Covers: validate, probe, start (twice), monitor (also with the config unreadable, and with
# xenstored frozen: an error by the deadline, never "not running"), live migration xen1 -> xen2 through
# migrate_to/migrate_from with the guest's counter going on; migrations that must fail and
# leave the guest running where it was (target unreachable, target already running the
# guest, receiver killed mid-stream); graceful stop, stop escalating to destroy; and a
# replicated guest (Xen's Remus) as a promotable clone under a two-node Pacemaker cluster of
# the dom0s: planned switchover, power cut of the primary's host with fencing and promotion.
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
# Debian 12 puts systemd units under /lib (the package's drop-in): dom0 is merged-/usr, where
# lib is a link to usr/lib, and a real lib/ in the payload would replace that link.
if [ -d "$WORK/payload/lib" ] && [ ! -L "$WORK/payload/lib" ]; then
    mkdir -p "$WORK/payload/usr/lib" && cp -a "$WORK/payload/lib/." "$WORK/payload/usr/lib/" &&
        rm -rf "$WORK/payload/lib" || bail "cannot merge the payload's /lib into /usr/lib"
fi
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

# --- a replicated guest under Pacemaker: Xen's Remus driven by the agent ---
# A promotable clone of ocf:vmha:guest (replicate=true) on a two-node cluster of the dom0s,
# with fencing that powers a host off. The guest's console counter is the witness: a planned
# switchover moves it by live migration (counter continuous); a power cut of the primary's
# host gets it fenced, and the backup resumes the guest from its last checkpoint (the counter
# goes on from there, not from a reboot).
# (The replicators carry libxenlight's whole stream through TLS: ASan's default quarantine
# of 256 MiB of freed records would grow a sanitizer build past what a dom0 (768 MiB) that
# also runs Corosync has, and the OOM killer takes Corosync.)
XENLAB_CLUSTER_ENV="ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=16" xenlab_cluster_up >&2 ||
    bail "the cluster does not come up"
took "cluster up"
xlcfg ft1 "" || bail "cannot put ft1.cfg on the hosts"
pcmk() { xenlab_ssh "$1" "$2" </dev/null 2>&1; } # HOST CMD: Pacemaker's tools in a dom0
role_on() { # ROLE (Promoted or Unpromoted): the node where Pacemaker runs ft1 so, asked on HOST $2
    pcmk "${2:-$ASK}" "crm_resource --locate --resource ft1-clone" |
        awk -v r="$1" '/is running on:/ { if ((r == "Promoted") == ($NF == "Promoted")) { print $6; exit } }'
}
status_of() { xenlab_ssh "$1" "cat /run/vmha/remus/ft1/status" </dev/null 2>/dev/null; }
protected_on() { # HOST: the promoted instance there streams to the other host, both roles known
    local b
    [ "$(role_on Promoted)" = "$1" ] || return 1
    b=$(role_on Unpromoted) && [ -n "$b" ] && [ "$b" != "$1" ] || return 1
    status_of "$1" | grep -qx state=protected && status_of "$1" | grep -qx "peer=$b"
}
wait_until() { # SECONDS CMD...: polls CMD every 2 s
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 2
    done
}
ASK=xen1
pcmk xen1 "cibadmin --create -o resources -X '
<clone id=\"ft1-clone\">
  <meta_attributes id=\"ft1-clone-meta\">
    <nvpair id=\"ft1-clone-promotable\" name=\"promotable\" value=\"true\"/>
    <nvpair id=\"ft1-clone-promoted-max\" name=\"promoted-max\" value=\"1\"/>
    <nvpair id=\"ft1-clone-clone-max\" name=\"clone-max\" value=\"2\"/>
    <nvpair id=\"ft1-clone-notify\" name=\"notify\" value=\"true\"/>
  </meta_attributes>
  <primitive id=\"ft1\" class=\"ocf\" provider=\"vmha\" type=\"guest\">
    <instance_attributes id=\"ft1-params\">
      <nvpair id=\"ft1-hypervisor\" name=\"hypervisor\" value=\"libxl\"/>
      <nvpair id=\"ft1-config\" name=\"config\" value=\"/srv/vmha/ft1.cfg\"/>
      <nvpair id=\"ft1-name\" name=\"name\" value=\"ft1\"/>
      <nvpair id=\"ft1-replicate\" name=\"replicate\" value=\"true\"/>
      <nvpair id=\"ft1-interval\" name=\"checkpoint_interval\" value=\"200\"/>
    </instance_attributes>
    <operations>
      <op id=\"ft1-start\" name=\"start\" interval=\"0\" timeout=\"120s\"/>
      <op id=\"ft1-stop\" name=\"stop\" interval=\"0\" timeout=\"120s\"/>
      <op id=\"ft1-promote\" name=\"promote\" interval=\"0\" timeout=\"120s\"/>
      <op id=\"ft1-demote\" name=\"demote\" interval=\"0\" timeout=\"240s\"/>
      <op id=\"ft1-notify\" name=\"notify\" interval=\"0\" timeout=\"30s\"/>
      <op id=\"ft1-mon-p\" name=\"monitor\" interval=\"10s\" role=\"Promoted\" timeout=\"60s\"/>
      <op id=\"ft1-mon-u\" name=\"monitor\" interval=\"11s\" role=\"Unpromoted\" timeout=\"60s\"/>
    </operations>
  </primitive>
</clone>'" >"$WORK/cib.out"
ok "remus: the promotable clone is configured" eq 0 $?
P=""
for _ in $(seq 90); do
    P=$(role_on Promoted)
    [ -n "$P" ] && break
    sleep 2
done
B=xen1
[ "$P" = xen1 ] && B=xen2
ok "remus: Pacemaker promotes one instance (on ${P:-nobody})" test -n "$P"
# (Pacemaker shows the role while the promote still boots the guest: wait for the domain.)
ok "  the guest runs there, once" wait_until 60 eval '[ "$(domains "$P")" = "ft1 " ]'
ok "  and on the other node a backup receives it" wait_until 60 eval '[ "$(domains "$B")" = "ft1--incoming " ]'
ok "remus: the primary reports protected, streaming to $B" wait_until 180 protected_on "$P" ||
    xenlab_ssh "$P" "grep -h 'vmha' /var/log/pacemaker/pacemaker.log | tail -n 12" </dev/null \
        2>/dev/null | sed 's/^/#   /'
took "ft1 protected"
diag "$(status_of "$P" | grep -E '^(state|peer|epoch|epochs|bytes)=' | xargs)"
# Each checkpoint suspends the PVH guest cooperatively: its kernel prints "Restarting tasks"
# as it goes on, which counts the checkpoints from the guest's side.
ckpts() { xenlab_console "${1:-$P}" ft1 | grep -c 'Restarting tasks'; }
# (A dom0 here is one emulated vCPU that also runs Pacemaker: checkpoints come in spurts.)
e0=$(status_of "$P" | sed -n 's/^epochs=//p') g0=$(ckpts)
sleep 20
e1=$(status_of "$P" | sed -n 's/^epochs=//p') g1=$(ckpts)
diag "checkpoints in 20 s (interval 200 ms): $((g1 - g0)) by the guest, $((${e1:-0} - ${e0:-0})) counted by vmha"
ok "  checkpoints flow (at least 5 in 20 s, as the guest counts them)" test "$((g1 - g0))" -ge 5
ok "  and vmha's status counts them too" test "$((${e1:-0} - ${e0:-0}))" -gt 0
# (191, promoted but degraded, is what the monitor says during the initial copy: Pacemaker
# lists it among failed actions, in its 3.0 words "promoted but might fail soon"; anything
# else there is a failure.)
pcmk "$P" "crm_mon -1" | sed -n '/Failed Resource Actions/,$p' | grep '^ *\*' >"$WORK/failed"
ok "  Pacemaker saw no failed action but 191 during the initial copy" \
    eval '! grep -v "promoted (degraded)\|promoted but might fail soon" "$WORK/failed"' ||
    sed 's/^/#   /' "$WORK/failed"
agent "$P" ft1 monitor OCF_RESKEY_CRM_meta_interval=5000 OCF_RESKEY_replicate=true
ok "  monitor run by hand on $P -> 8" eq 8 $RC
# A stranger's stream (the greeting of the old unauthenticated protocol, from the primary's
# host but without the cluster's key) is refused; the replica stays as it is.
refused_on() { status_of "$1" | sed -n 's/^refused=//p'; }
r0=$(refused_on "$B")
pcmk "$P" "printf 'vmha-remus 0000000000000001 131072\n' | timeout 5 nc $B 7790" >/dev/null
ok "remus: a stream without the cluster's key is refused by the backup" \
    wait_until 20 eval '[ "${r0:-0}" -lt "$(refused_on "$B")" ]'
ok "  and the guest stays protected" wait_until 30 protected_on "$P"

# Planned switchover: Xen's Remus has no final checkpoint, so the demote live-migrates the
# guest to the node being promoted; nothing is lost.
before=$(last_counter "$P" ft1)
t_sw=$(now_ms)
pcmk "$P" "crm_resource --move --promoted --resource ft1-clone --node $B" >/dev/null
ok "remus: planned switchover to $B: promoted there" wait_until 300 eval '[ "$(role_on Promoted)" = "$B" ]'
diag "switchover took $(( $(now_ms) - t_sw )) ms"
runs_ft1() { case " $(domains "$1")" in *" ft1 "*) return 0 ;; esac; return 1; }
ok "  the guest runs on $B, not on $P" eval 'runs_ft1 "$B" && ! runs_ft1 "$P"'
first=$(counters "$B" ft1 | head -n 1) last=$(counters "$P" ft1 | tail -n 1)
ok "  its counter is continuous: first value on $B (${first:-none}) follows the last on $P (${last:-none})" \
    test "${first:-0}" -ge "${last:-1}" -a "${first:-0}" -le "$((${last:-0} + 2))" -a "${last:-0}" -ge "${before:-1}"
pcmk "$P" "crm_resource --clear --resource ft1-clone" >/dev/null
ok "  $P becomes its backup and the guest is protected again" wait_until 240 protected_on "$B" ||
    xenlab_ssh "$B" "grep -h -e 'vmha' -e 'ft1' /var/log/pacemaker/pacemaker.log |
        grep -v -e cib_native_signon -e attrd_ | tail -n 25" </dev/null 2>/dev/null | sed 's/^/#   /'
took "switched over"
P2=$B B2=$P
c0=$(ckpts "$P2")
ok "  the guest goes on being checkpointed on $P2" wait_until 60 eval '[ "$(ckpts "$P2")" -gt "$c0" ]'

# Power cut of the primary's host: fencing, then the backup resumes the last checkpoint.
before=$(last_counter "$P2" ft1)
ASK=$B2
xenlab_kill "$P2"
t_kill=$(now_ms)
diag "$P2 lost power with the counter at ${before:-?}"
ok "remus: $B2 is promoted after $P2 is fenced" wait_until 180 eval '[ "$(role_on Promoted)" = "$B2" ]'
diag "power cut to promoted: $(( $(now_ms) - t_kill )) ms"
ok "  the fence device powered $P2 off" grep -q "off $P2" "$XENLAB_DIR/fence.log"
ok "  $B2 runs the guest" wait_until 30 runs_ft1 "$B2"
# The replica's console log is named after the domain when xenconsoled attached to it (a
# stand-in name): the newest guest-ft1*.log is the one the running guest writes.
newest() { xenlab_ssh "$1" 'cd /var/log/xen/console && cat "$(ls -t guest-ft1*.log | head -n 1)"' \
    </dev/null 2>/dev/null | sed -n 's/^vmha-counter \([0-9]*\).*/\1/p'; }
past() { [ "$(newest "$B2" | tail -n 1)" -ge "$1" ] 2>/dev/null; }
ok "  its counter goes on past ${before:-?} within 30 s (memory kept, not a reboot)" \
    wait_until 30 past "$((${before:-0} + 2))"
resumed=$(newest "$B2" | head -n 1)
diag "first value on $B2 near the cut: ${resumed:-none}; last seen on $P2: ${before:-?}"
ok "  from the checkpoint: no value more than a second below the last seen" \
    test "${resumed:-0}" -ge "$((${before:-99999} - 1))"
# What the promotion did (a boot instead of a resume names its reason), without the
# replicator's retries around it.
xenlab_ssh "$B2" "grep -h 'vmha' /var/log/pacemaker/pacemaker.log |
    grep -E 'replica|resumed|runs on|booting guest|promote' |
    grep -v -e cib_native_signon -e 'to find [^ ]* replica' |
    tail -n 8" </dev/null 2>/dev/null | sed 's/^/#   /'
took "done"
plan_done
exit 0
