#!/bin/bash
# Fault-tolerant guests (checkpoint replication) in the three-host lab: a promotable clone
# of ocf:vmha:guest with replicate=true. The guest's TCP counter is the witness: a client
# on the workstation records every value it receives, and nothing it saw may ever be undone
# (the counter never goes back), across a host crash, a backup's crash, a cut cable, a
# planned switchover and a stop. The guest has a writable disk, each host's own copy
# (/var/lib/vmha-test/ft1.img), and a second witness on it: each request on tcp/7778 appends
# a numbered record, flushed to the disk before the guest answers; every record a client was
# told must be on the disk of whichever host runs the guest, and none beyond it.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" remus
export SAMPLE_TIMEOUT=3 # output waits for its checkpoint: replies take up to ~1.5 s
FT=ft1 # the fault-tolerant guest the helpers below look at

role_on() { # ROLE: the node where Pacemaker runs ft1 in that role (Promoted, Unpromoted)
    lab on "$(any_node)" crm_resource --locate --resource "$FT-clone" 2>/dev/null |
        awk -v r="$1" '/is running on:/ { if ((r == "Promoted") == ($NF == "Promoted")) { print $6; exit } }'
}
runs_on() { [ "$(running_on "$FT")" = "$1" ]; } # (paused for a checkpoint it is not "running")
promoted_is() { [ "$(role_on Promoted)" = "$1" ]; }
state_is() { [ "$(state_on "$1")" = "$2" ]; }
status_of() { lab on "$1" cat "/run/vmha/remus/$FT/status" 2>/dev/null; }
state_on() { status_of "$1" | sed -n 's/^state=//p'; }
protected() { # the primary streams to a backup and Pacemaker agrees on both roles
    local p b
    p=$(role_on Promoted) b=$(role_on Unpromoted)
    [ -n "$p" ] && [ -n "$b" ] && [ "$(state_on "$p")" = protected ] &&
        [ "$(status_of "$p" | sed -n 's/^peer=//p')" = "$b" ] && [ "$(running_on "$FT")" = "$p" ]
}
answers() { [ -n "$(SAMPLE_TIMEOUT=3 lab admin timeout 3 busybox nc "$GUEST_IP" 7777 </dev/null 2>/dev/null)" ]; }
monitor_rc() { # HOST: what the agent's monitor tells Pacemaker there (a probe by hand)
    lab on "$1" env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_config=/srv/cluster/ft1.xml \
        OCF_RESKEY_name=ft1 OCF_RESKEY_replicate=true \
        /usr/lib/ocf/resource.d/vmha/guest monitor >/dev/null 2>&1
    echo $?
}
all_online() { [ "$(online_nodes | wc -w)" -eq 3 ]; }
fenced() { lab on "$(any_node)" stonith_admin --history "$1" 2>/dev/null | grep -q successful; }
agent_log() { lab on "$1" grep -h "vmha-guest" /var/log/pacemaker/pacemaker.log 2>/dev/null; }
# The largest value seen before ms T, and the first one seen after it, from a sample file.
max_before() { awk -v t="$2" 'NF == 2 && $1 < t && $2 > m { m = $2 } END { print m + 0 }' "$1"; }
first_after() { awk -v t="$2" 'NF == 2 && $1 > t { print $2; exit }' "$1"; }
reset() {
    local h
    for h in node1 node2 node3; do
        lab is-up "$h" || lab boot "$h"
        lab mend "$h" 2>/dev/null || true
    done
    wait_for 90 all_online || diag "not all nodes came back online"
    crm_ resource clear "$FT-clone" >/dev/null 2>&1
    lab on "$(any_node)" stonith_admin --cleanup --history '*' >/dev/null 2>&1
    wait_for 120 protected || bail "the guest is not protected again after reset"
}

# Disk witness (lab/lib.sh): witness_start/witness_stop NAME; $WORK/NAME.records is what
# the guest answered.
witness_start() {
    sample_witness "$WORK/$1.records" &
    WITNESS_PID=$!
}
witness_stop() { touch "$WORK/$1.records.stop"; wait "$WITNESS_PID"; }
DISK=/var/lib/vmha-test/ft1.img
# witness_check NAME HOST LABEL: every record a client was told (NAME's) is on HOST's disk as
# told, the numbers it was told go on by one (no gap, no rewind), and the disk holds no
# record past the last one the guest gave out.
witness_check() {
    local told=$WORK/$1.records host=$2 label=$3 last
    # One more record, asked after the rest: the guest's count now.
    lab admin timeout 60 busybox nc "$GUEST_IP" 7778 </dev/null 2>/dev/null | grep "^vmha-rec " >>"$told"
    last=$(tail -n 1 "$told" | awk '{ print $2 }')
    disk_records "$host" "$DISK" >"$WORK/$1.disk"
    ok "$label: the client was told $(wc -l <"$told") records, the last $last" test -n "$last"
    ok "$label: they go on by one, no gap and no rewind" \
        eval 'awk "NR > 1 && \$2 != p + 1 { exit 1 } { p = \$2 }" "$told"'
    local missing
    missing=$(grep -vxFf "$WORK/$1.disk" "$told")
    ok "$label: every one is on $host's disk, as the client was told it" eq "" "$missing" ||
        head -n 3 <<<"$missing" | sed 's/^/# not on the disk: /'
    ok "$label: the disk holds no record past the last one the guest gave out ($last)" \
        eq "$last" "$(tail -n 1 "$WORK/$1.disk" | awk '{ print $2 }')"
}

# backup_disk_ends_with RECORD: the backup's copy of the disk ends with RECORD (a backup that
# Pacemaker names: asked again each time, as --locate may answer nothing mid-transition).
backup_disk_ends_with() {
    local b
    b=$(role_on Unpromoted)
    [ -n "$b" ] && [ "$(disk_records "$b" "$DISK" | tail -n 1)" = "$1" ]
}

lab_suite_up
for h in node1 node2 node3; do
    lab on "$h" sh -c "mkdir -p ${DISK%/*} && truncate -s 4M $DISK" ||
        bail "cannot make $h's copy of the guest's disk"
done
SHARED_MEM=1 DISK=$DISK make_guest ft1 vmha.witness=1

scenario "0. a fault-tolerant guest"
crm_ configure primitive ft1 ocf:vmha:guest \
    params config=/srv/cluster/ft1.xml name=ft1 replicate=true checkpoint_interval=500 \
    op start timeout=60s op stop timeout=60s op promote timeout=60s op demote timeout=60s \
    op monitor interval=3s role=Promoted timeout=30s \
    op monitor interval=4s role=Unpromoted timeout=30s >/dev/null 2>&1
crm_ configure clone ft1-clone ft1 \
    meta promotable=true promoted-max=1 clone-max=2 notify=true >/dev/null 2>&1
# Two instances on three hosts: one must be where the guest's disks are its own (README).
crm_ configure location ft1-own-disks ft1-clone \
    rule 50: not_defined vmha-disks-outdated-ft1 >/dev/null 2>&1
ok "0. the guest runs promoted on one host, its backup on another, and is protected" \
    wait_for 120 protected
took "configure to protected"
P=$(role_on Promoted) B=$(role_on Unpromoted)
diag "primary $P, backup $B: $(status_of "$P" | grep -E '^(epoch|pause_ms|ckpt_ms|bytes|failures|error)=' | xargs)"
ok "0. clients get answers through the output buffer" wait_for 30 answers
witness_start w0
sleep 5
witness_stop w0
witness_check w0 "$P" "0. disk witness on $P"
ok "0. the backup's copy holds the same records (once a checkpoint covers them)" \
    wait_for 10 eval '[ "$(disk_records "$B" "$DISK" | tail -n 1)" = "$(tail -n 1 "$WORK/w0.disk")" ]'
ok "0. the primary's monitor answers 8 (promoted)" eq 8 "$(monitor_rc "$P")"
ok "0. the backup's monitor answers 0 (unpromoted)" eq 0 "$(monitor_rc "$B")"
ok "0. the backup holds a committed checkpoint (device state and memory)" \
    lab on "$B" sh -c 'test -s /run/vmha/remus/ft1/dev.save && test -s /run/vmha/remus/ft1/ram'
bytes=$(status_of "$P" | sed -n 's/^bytes=//p')
ok "0. after the first, a checkpoint carries what changed: $bytes bytes, under a quarter of 96 MiB" \
    test "${bytes:-0}" -gt 0 -a "${bytes:-0}" -lt $((96 << 18))
ok "0. the primary's lag is published (s)" \
    eq 0 "$(lab on "$P" crm_attribute -N "$P" -n vmha-lag-ft1 -l reboot -G -q 2>/dev/null)"
vmha_() { lab on "$(any_node)" vmha "$@"; }
row_is() { # HOST ROLE: vmha status shows ft1 on HOST in ROLE
    vmha_ status ft1 2>/dev/null | awk -v h="$1" -v r="$2" '$1 == "ft1" && $3 == h && $4 == r { f = 1 } END { exit !f }'
}
ok "0. vmha status shows the primary on $P" wait_for 20 row_is "$P" primary
ok "0. and the backup on $B" wait_for 20 row_is "$B" backup
ok "0. with the lag as the cluster publishes it" wait_for 20 \
    eval 'vmha_ --json status ft1 | grep -q "\"replication_lag_s\":0"'
vmha_ failover ft1 --yes >"$WORK/forced.out" 2>&1
ok "0. vmha failover (forced) is refused while $P is online" eq 1 "$?"
ok "0. and says to use --planned" contains "$WORK/forced.out" "Use --planned"
ok "0. nothing moved" eq "$P" "$(role_on Promoted)"
vmha_ migrate ft1 "$B" >"$WORK/migrate.out" 2>&1
ok "0. vmha migrate points a replicated guest to the switchover" \
    contains "$WORK/migrate.out" "vmha failover ft1 --planned"
# A replicated guest's disks must be each node's own: on storage both see, the second node
# that looks at the guest finds the first one's mark and refuses it.
SHARED_DISK=/srv/cluster/ft-disk.img
truncate -s 1M "$VMHA_LAB_DIR/srv/cluster/ft-disk.img"
sed -e "s|<controller type='usb' model='none'/>|<disk type='file' device='disk'><source file='$SHARED_DISK'/><target dev='vdb' bus='virtio'/></disk>\n    &|" \
    -e "s|<name>ft1</name>|<name>ftshared</name>|" \
    "$VMHA_LAB_DIR/srv/cluster/ft1.xml" >"$VMHA_LAB_DIR/srv/cluster/ft-disk.xml"
validate_on() {
    lab on "$1" env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_config=/srv/cluster/ft-disk.xml \
        OCF_RESKEY_replicate=true /usr/lib/ocf/resource.d/vmha/guest validate-all 2>&1
}
out=$(validate_on "$P")
ok "0. validate-all of a replicated guest with a disk on shared storage, first node: 0" eq 0 "$?"
out=$(validate_on "$B")
ok "0. on the second node: refused (6)" eq 6 "$?"
ok "0. saying the storage is shared with $P" grep -q "on storage that node $P sees too" <<<"$out"

# Strangers on the network: a peer without the cluster's key, or with another key, is refused
# before the backup takes a byte, and the guest stays protected.
CLIENT=$VMHA_LAB_DIR/build/tests/ckpt_client
refused_n() { status_of "$B" | sed -n 's/^refused=//p'; }
epoch_on() { status_of "$1" | sed -n 's/^epoch=//p'; }
r0=$(refused_n) e0=$(epoch_on "$B")
disk_sum() { lab on "$B" sha256sum "$DISK" | cut -d' ' -f1; }
sum0=$(disk_sum) # (no client asks for records meanwhile: only a stranger could change it)
# (the body: a disk section writing a record over the backup's record 1)
(umask 077 && head -c 256 /dev/urandom >"$WORK/otherkey")
python3 -c 'import struct, sys
rec = b"vmha-rec 1 planted".ljust(512, b"\0")
d = struct.pack(">IIQQ", 0, 0, 512, len(rec)) + rec
sys.stdout.buffer.write(b"VMHA-DSK" + struct.pack(">Q", len(d)) + d)' >"$WORK/body"
out1=$(lab admin "$CLIENT" "$NET.1${B#node}:7790" ft1 - "VMHA-CKPT 2 ft1 0000000000000001 1" \
    "$WORK/body" 2>&1)
out2=$(lab admin "$CLIENT" "$NET.1${B#node}:7790" ft1 "$WORK/otherkey" \
    "VMHA-CKPT 2 ft1 0000000000000001 1" "$WORK/body" 2>&1)
ok "0. a peer without the cluster's key gets nothing from the backup" \
    grep -q "^closed before GO" <<<"$out1"
ok "0. a peer with another key is refused" grep -q "^refused:" <<<"$out2"
ok "0. the backup counts both as refused" wait_for 10 eval '[ "$(refused_n)" -ge $((r0 + 2)) ]'
ok "0. and its copy of the disk is unchanged" eq "$sum0" "$(disk_sum)"
ok "0. and keeps taking the primary's checkpoints" wait_for 10 eval '[ "$(epoch_on "$B")" -gt "$e0" ]'
ok "0. the guest stays protected" wait_for 10 protected
ok "0. vmha status shows no warning for an authenticated stream" \
    eval '! vmha_ status ft1 2>&1 | grep -q WARNING'

# A stale mark from an earlier session on the backup (as a primary whose backup broke away
# leaves it): once a new session's first checkpoint is there it no longer applies, or the
# backup could never resume the guest. A replicator killed on the primary comes back, from
# its monitor, as a new session.
lab on "$B" crm_attribute -N "$B" -n vmha-stale-ft1 -l reboot -v "0000000000000001 7" >/dev/null
old_session=$(status_of "$P" | sed -n 's/^session=//p')
lab on "$P" sh -c 'kill -9 "$(cat /run/vmha/remus/ft1/send.pid)"'
session_of() { status_of "$P" | sed -n 's/^session=//p'; }
new_session() { [ "$(session_of)" != "$old_session" ] && [ "$(state_on "$P")" = protected ]; }
ok "0. replication killed on the primary comes back as a new session, protected" \
    wait_for 60 new_session
renewed() {
    [ "$(lab on "$B" crm_attribute -N "$B" -n vmha-stale-ft1 -l reboot -G -q 2>/dev/null)" = \
        "$(session_of) 0" ]
}
ok "0. the backup's stale mark from the earlier session gives way to the new one" \
    wait_for 30 renewed
score_is() { [ "$(lab on "$B" crm_attribute -N "$B" -l reboot -n master-ft1 -G -q 2>/dev/null)" = "$1" ]; }
ok "0. so the backup may resume the guest again (promotion score 50)" wait_for 30 score_is 50
ok "0. clients still get answers" wait_for 30 answers

scenario "1. the primary's host dies"
watch_start kill ft1
witness_start w1
sleep 5
KILLED=$(now_ms)
lab kill "$P"
ok "1. the backup $B is promoted" wait_for 90 promoted_is "$B"
ok "1. the guest answers again" wait_for 30 answers
took "primary killed to answering"
sleep 2
witness_stop w1
watch_stop kill
witness_check w1 "$B" "1. disk witness after $P died, on $B"
ok "1. never two running copies" eq 1 "$COPIES"
ok "1. nothing a client saw was undone: the counter never went back" eq 0 "$RESTARTED"
before=$(max_before "$WORK/kill.samples" "$KILLED") after=$(first_after "$WORK/kill.samples" "$KILLED")
diag "last value before the crash $before, first after $after, longest silence ${GAP} ms"
# The counter ticks once a second and stands still while no host runs the guest: the
# first value after failover is the checkpoint's, which is never below what was seen.
ok "1. the first value after failover is not below any value seen before" \
    test "${after:-0}" -ge "$before"
ok "1. $B resumed the guest from its checkpoint, not from a boot" \
    wait_for 10 eval 'agent_log "$B" | grep -q "guest ft1 resumed on $B from checkpoint"'
ok "1. $P was fenced first" wait_for 30 fenced "$P"
ok "1. once $P is back, the guest is protected again (a full sync)" wait_for 150 protected
took "primary killed to protected again"
ok "1. the new backup's copy of the disk was copied whole and holds every record" \
    wait_for 20 backup_disk_ends_with "$(disk_records "$B" "$DISK" | tail -n 1)"
reset

scenario "2. the backup's host dies"
P=$(role_on Promoted) B=$(role_on Unpromoted)
watch_start backup ft1
lab kill "$B"
ok "2. the primary $P reports the guest unprotected (degraded)" \
    wait_for 60 state_is "$P" degraded
ok "2. its monitor answers 191 (promoted, degraded)" eq 191 "$(monitor_rc "$P")"
ok "2. the guest keeps running on $P and answering" wait_for 10 answers
witness_start w2 # (records written while no backup has the disk)
sleep 3
witness_stop w2
ok "2. it is protected again once a host returns" wait_for 150 protected
watch_stop backup
witness_check w2 "$P" "2. disk witness while unprotected, on $P"
ok "2. the new backup's copy holds them too: the disk was copied again" \
    wait_for 20 backup_disk_ends_with "$(tail -n 1 "$WORK/w2.disk")"

ok "2. it never moved" eq "$P" "$SEEN"
ok "2. the counter never went back" eq 0 "$RESTARTED"
diag "longest silence ${GAP} ms"
lab on "$(any_node)" crm_resource --cleanup --resource ft1-clone >/dev/null 2>&1
reset

scenario "3. the cable between primary and backup is pulled"
P=$(role_on Promoted) B=$(role_on Unpromoted)
watch_start cut ft1
witness_start w3
sleep 2
CUT=$(now_ms)
lab cut "$P"
ok "3. the isolated primary $P is fenced" wait_for 90 fenced "$P"
ok "3. $B takes over" wait_for 90 promoted_is "$B"
ok "3. the guest answers" wait_for 30 answers
sleep 2
witness_stop w3
watch_stop cut
witness_check w3 "$B" "3. disk witness across the cut, on $B"
ok "3. never two running copies" eq 1 "$COPIES"
ok "3. the counter never went back" eq 0 "$RESTARTED"
before=$(max_before "$WORK/cut.samples" "$CUT") after=$(first_after "$WORK/cut.samples" "$CUT")
diag "last value before the cut $before, first after $after"
ok "3. the first value after the cut is not below any value seen before" \
    test "${after:-0}" -ge "$before"
reset

scenario "4. planned switchover"
P=$(role_on Promoted) B=$(role_on Unpromoted)
# A request may wait out the hand-over: the new primary's output is held until its first
# checkpoint is on the new backup, and a segment lost meanwhile (sent to the old host) is
# retried after 1, 3, 7, then 15 s. Give each request 30 s, so that only a lost request
# counts (CI saw one answered just after 15 s).
export SAMPLE_TIMEOUT=30
watch_start switch ft1
witness_start w4
sleep 3
vmha_ failover ft1 --planned --yes >"$WORK/switch.out" 2>&1
ok "4. vmha failover --planned reports the switchover done" \
    contains "$WORK/switch.out" "ft1 runs on $B, protected by its replica on $P"
ok "4. $B is promoted" wait_for 90 promoted_is "$B"
ok "4. and protected by $P" wait_for 60 protected
took "move to protected on the other host"
sleep 2
witness_stop w4
watch_stop switch
witness_check w4 "$B" "4. disk witness after the switchover, on $B"
lost=$(awk 'NF != 2' "$WORK/switch.samples" | wc -l)
show_lost() { # FILE: each unanswered request, with how long it waited (from the answer
    # before it, or from the watch's start)
    awk -v prev="$(cat "${1%.samples}.start" 2>/dev/null || echo 0)" \
        'NF != 2 { printf "# unanswered at %d ms, after %d ms\n", $1, $1 - prev } { prev = $1 }' "$1"
}
show_lost "$WORK/switch.samples"
ok "4. no request lost ($(wc -l <"$WORK/switch.samples") asked)" eq 0 "$lost"
ok "4. the counter is continuous (never back)" eq 0 "$RESTARTED"
ok "4. never two running copies" eq 1 "$COPIES"
ok "4. $P handed the guest over with a final checkpoint" \
    eval 'agent_log "$P" | grep -q "guest ft1 handed over at checkpoint"'
diag "longest wait for an answer ${GAP} ms"
export SAMPLE_TIMEOUT=3
ok "4. vmha cleared its move constraint" \
    eval '! lab on "$(any_node)" cibadmin -Q -o constraints | grep -q cli-prefer'

scenario "5. stop the clone"
crm_ resource stop ft1-clone >/dev/null 2>&1
stopped() { [ -z "$(role_on Promoted)" ] && [ -z "$(role_on Unpromoted)" ]; }
ok "5. both instances stop" wait_for 90 stopped
ok "5. the guest is shut down, not left paused" \
    eval 'agent_log "$B" | grep -q "shutting guest ft1 down: no other node takes it over"'
leftovers() {
    local h
    for h in node1 node2 node3; do
        lab on "$h" virsh -q -c qemu:///system list --all --name 2>/dev/null | grep -x "$FT"
        lab on "$h" sh -c "ls /run/vmha/remus/$FT/ckpt.* /run/vmha/remus/$FT/nbd-*.sock 2>/dev/null"
        lab on "$h" crm_attribute -N "$h" -l reboot -n "vmha-replica-$FT" -G -q 2>/dev/null
        lab on "$h" crm_attribute -N "$h" -l reboot -n "master-$FT" -G -q 2>/dev/null
    done
    # The hosts share one process table: a replicator or QEMU of ft1 counts when it lives
    # in one of this lab's hosts (a zombie waiting for the machine's init to reap it is
    # gone already).
    local pid ns
    for pid in $(pgrep -f "vmha-replicator.* $FT( |\$)|guest=$FT"); do
        [ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" = Z ] && continue
        ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
        grep -qxF "$ns" "$VMHA_LAB_DIR"/hosts/*/mnt.ns && tr '\0' ' ' <"/proc/$pid/cmdline"
    done
}
ok "5. nothing is left: no domain, QEMU, replicator, checkpoint, disk export or attribute" \
    eq "" "$(leftovers)"

scenario "6. a UEFI guest fails over"
# OVMF boots it, and it counts its boots in EFI variables (lab/nvram.sh's guest); its
# variable store travels with the checkpoints. A reset while protected writes boot 2 into
# the flash; once the primary's host dies and the guest resumes on its backup, a reset there
# counts boot 3: the checkpoint's variables, not whatever the new host's file held.
FT=ft2 GUEST_IP=$NET.102
SERIAL2=$VMHA_LAB_DIR/srv/cluster/ft2.serial
efiboots() { grep -ao 'vmha-efiboots [0-9]*' "$SERIAL2" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }
boots_are() { [ "$(efiboots)" = "$1" ]; }
stored_boot() { vmha_ nvram show ft2 2>/dev/null | grep -q "^VmhaBoot$1 "; }
UEFI=${DISK%/*}/ft2_VARS.fd SHARED_MEM=1 make_guest ft2 vmha.efiboots=1
: >"$SERIAL2"
crm_ configure primitive ft2 ocf:vmha:guest \
    params config=/srv/cluster/ft2.xml name=ft2 replicate=true checkpoint_interval=500 \
    state_dir=/srv/cluster/vmha \
    op start timeout=120s op stop timeout=60s op promote timeout=90s op demote timeout=60s \
    op monitor interval=3s role=Promoted timeout=30s \
    op monitor interval=4s role=Unpromoted timeout=30s >/dev/null 2>&1
crm_ configure clone ft2-clone ft2 \
    meta promotable=true promoted-max=1 clone-max=2 notify=true >/dev/null 2>&1
ok "6. the guest boots through OVMF and counts boot 1" wait_for 180 boots_are 1
ok "6. it is protected" wait_for 120 protected
took "configure to protected"
P=$(role_on Promoted) B=$(role_on Unpromoted)
diag "primary $P, backup $B: $(status_of "$P" | grep -E '^(epoch|pause_ms|ckpt_ms|bytes|failures|error)=' | xargs)"
lab on "$P" virsh -q -c qemu:///system reset ft2 >/dev/null
ok "6. a reset on $P, protected, counts boot 2" wait_for 120 boots_are 2
ok "6. the guest answers" wait_for 60 answers
ok "6. and is still protected" wait_for 30 protected
ok "6. the NVRAM store records boot 2 while it runs" wait_for 30 stored_boot 2
sleep 2 # (a few checkpoints since the boot)
watch_start uefi ft2
sleep 2
KILLED=$(now_ms)
lab kill "$P"
ok "6. $P's host killed: $B is promoted" wait_for 90 promoted_is "$B"
ok "6. the guest answers" wait_for 30 answers
diag "primary killed to answering: $(($(now_ms) - KILLED)) ms"
sleep 2
watch_stop uefi
ok "6. never two running copies" eq 1 "$COPIES"
ok "6. the counter never went back: it resumed, it did not boot" eq 0 "$RESTARTED"
ok "6. $B resumed it from its checkpoint" \
    wait_for 10 eval 'agent_log "$B" | grep -q "guest ft2 resumed on $B from checkpoint"'
ok "6. no boot since" boots_are 2
lab on "$B" virsh -q -c qemu:///system reset ft2 >/dev/null
ok "6. a reset on $B counts boot 3: the checkpoint's variables, plus one" wait_for 120 boots_are 3
ok "6. the NVRAM store records boot 3" wait_for 30 stored_boot 3
reset
crm_ resource stop ft2-clone >/dev/null 2>&1
ok "6. the clone stops" wait_for 90 stopped
ok "6. nothing is left" eq "" "$(leftovers)"
crm_ configure delete ft2-clone ft2 >/dev/null 2>&1
FT=ft1 GUEST_IP=$NET.100

scenario "7. checkpoints in TLS"
lab_tls_certs || bail "cannot make the lab's certificates"
crm_ resource param ft1 set replication_tls true >/dev/null 2>&1
crm_ resource start ft1-clone >/dev/null 2>&1
ok "7. with replication_tls the guest is protected" wait_for 120 protected
P=$(role_on Promoted) B=$(role_on Unpromoted)
ok "7. the backup listens on its replication address only" \
    eval 'lab on "$B" ss -Hltn "sport = :7790" | grep -q "$NET.1${B#node}:7790"'
before=$(refused_n)
lab admin sh -c "printf 'VMHA-CKPT 1 ft1 0000000000000001 1\n' | timeout 3 busybox nc $NET.1${B#node} 7790" \
    >/dev/null 2>&1
refused() { [ "$(refused_n)" -gt "$before" ]; }
ok "7. a stream that does not speak TLS is refused" wait_for 10 refused
before=$(refused_n)
# (by the backup's name, which its certificate carries: the client takes the backup, and it
# is the backup that must refuse the client)
echo "$NET.1${B#node} $B" >"$WORK/hosts"
out=$(lab admin unshare -m sh -c "mount --bind '$WORK/hosts' /etc/hosts &&
    '$CLIENT' '$B:7790' ft1 'x509:$VMHA_LAB_DIR/pki-workstation' \
        'VMHA-CKPT 2 ft1 0000000000000001 1' '$WORK/body'" 2>&1)
diag "the workstation's client: $out"
ok "7. a certificate of the cluster's CA that names no cluster node is refused" \
    wait_for 10 refused
ok "  after its handshake (the workstation took the backup's certificate)" \
    grep -q "^closed before GO" <<<"$out"
ok "7. and the guest stays protected" wait_for 10 protected
# (the guest booted when the clone started again: the switchover is watched once it answers)
ok "7. clients get answers" wait_for 60 answers
export SAMPLE_TIMEOUT=30 # a switchover, as in 4 (TLS adds to each checkpoint)
watch_start tls ft1
sleep 2
vmha_ failover ft1 --planned --yes >/dev/null 2>&1
ok "7. a switchover in TLS: $B promoted and protected" wait_for 90 eval \
    'promoted_is "$B" && protected'
sleep 2
watch_stop tls
show_lost "$WORK/tls.samples"
ok "7. no request lost" eq 0 "$(awk 'NF != 2' "$WORK/tls.samples" | wc -l)"
ok "7. the counter never went back" eq 0 "$RESTARTED"
ok "7. never two running copies" eq 1 "$COPIES"
diag "$(status_of "$B" | grep -E '^(epoch|pause_ms|ckpt_ms|bytes|failures|error)=' | xargs)"

scenario "8a. fencing fails: the operator confirms the dead primary down"
P=$(role_on Promoted) B=$(role_on Unpromoted)
crm_ resource stop fence-lab >/dev/null 2>&1
fencer_stopped() { ! lab on "$(any_node)" crm_resource --locate --resource fence-lab 2>/dev/null | grep -q "running on"; }
wait_for 30 fencer_stopped || diag "the fence device did not stop"
lab kill "$P"
sleep 15
ok "8a. without fencing, $B is not promoted" eval '! promoted_is "$B" && [ -z "$(running_on ft1)" ]' ||
    lab on "$B" crm_mon -1 | sed 's/^/# /'
vmha_ failover ft1 --yes >"$WORK/confirm.out" 2>&1
ok "8a. vmha failover confirms $P down" eq 0 "$?" || sed 's/^/# /' "$WORK/confirm.out"
ok "  saying what it did" contains "$WORK/confirm.out" "ft1 runs on $B from its last checkpoint"
ok "8a. $B runs the guest and it answers" wait_for 60 eval 'runs_on "$B" && answers'
crm_ resource start fence-lab >/dev/null 2>&1
reset

scenario "8. the whole cluster is down: the operator resumes the guest from its backup"
P=$(role_on Promoted) B=$(role_on Unpromoted)
lab on "$B" vmha failover --no-cluster ft1 --yes >"$WORK/nc.out" 2>&1
ok "8. while Pacemaker manages it, failover --no-cluster is refused" eq 1 "$?"
ok "  and says so" contains "$WORK/nc.out" "refusing --no-cluster"
ok "  (the guest still runs on $P)" wait_for 10 runs_on "$P"
sleep 3
counter_now() { lab admin timeout 5 busybox nc "$GUEST_IP" 7777 </dev/null 2>/dev/null | grep -o "[0-9]*$"; }
counter_read() { # the counter's value as a client sees it, asking for up to 60 s (a guest just
    local v t=0 # resumed elsewhere answers once the lab's bridge has learnt where it is)
    while [ "$t" -lt 60 ]; do
        v=$(counter_now) && [ -n "$v" ] && { echo "$v"; return 0; }
        sleep 2; t=$((t + 7))
    done
    return 1
}
before=$(counter_read)
# Every host's cluster stack dies at once (no fencing, no promotion), then the primary's host.
for h in node1 node2 node3; do
    lab on "$h" sh -c 'pkill -9 -x pacemakerd; pkill -9 -f "pacemaker-"; pkill -9 -x corosync' \
        2>/dev/null
done
lab kill "$P"
# The checkpoint's bytes came over the network: whatever XML it carries, the guest resumes
# with its own configuration. Plant a description in the XML of the checkpoint B holds.
lab on "$B" python3 - /run/vmha/remus/ft1/dev.save <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
area = struct.unpack_from("<I", b, 20)[0]
xml = bytes(b[92:92 + area]).split(b"\0")[0]
new = xml.replace(b"</domain>", b"<description>planted by a stream</description></domain>")
assert len(new) < area
b[92:92 + area] = new + bytes(area - len(new))
open(p, "wb").write(b)
PY
ok "8. (a description planted in the checkpoint's XML)" \
    lab on "$B" grep -q "planted by a stream" /run/vmha/remus/ft1/dev.save
lab on "$B" vmha failover --no-cluster ft1 --yes >"$WORK/nc.out" 2>&1
ok "8. vmha failover --no-cluster on $B resumes the guest from its checkpoint" eq 0 "$?"
ok "  and says so" contains "$WORK/nc.out" "ft1 runs here from checkpoint"
ok "8. the guest runs on $B" eq "$B" "$(running_on ft1)"
ok "8. with its own configuration, not the XML its checkpoint carried" \
    eval '! lab on "$B" virsh dumpxml ft1 | grep -q "planted by a stream"'
ok "  (it has its config's name and memory)" eval \
    'lab on "$B" virsh dumpxml ft1 | grep -q "<name>ft1</name>"'

after=$(counter_read)
diag "counter before $before, after $after"
ok "8. its counter goes on from where clients saw it (not below, not restarted)" \
    eval '[ -n "$before" ] && [ -n "$after" ] && [ "$after" -ge "$before" ]'

plan_done
[ "$TAP_FAILED" -eq 0 ]
