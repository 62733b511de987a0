#!/bin/bash
# The backup's replicator on its own (no cluster, no hypervisor): whom it believes, what it
# commits, what it refuses, and that a promotion's save image is the memory it was sent.
# ckpt_client speaks the stream of include/vmha/remus.h as a primary would, with the
# cluster's key, another key, or none.
set -u
. "$(dirname "$0")/../lib/tap.sh"
REPL=$1
CLIENT=$2
work=$(mktemp -d /tmp/vmha-replica.XXXXXX)
port=$((20000 + RANDOM % 20000))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
umask 077
head -c 256 /dev/urandom >"$work/authkey"   # the cluster's key, as corosync-keygen makes it
head -c 256 /dev/urandom >"$work/otherkey"  # another cluster's
MEM=$((4 * 4096))

start_backup() { # DIR PORT ARGS...: a receiving replicator, listening
    local dir=$1 p=$2
    shift 2
    "$REPL" receive --guest ft9 --dir "$dir" --node here --listen "127.0.0.1:$p" \
        --timeout 3000 --memory $MEM --foreground "$@" 2>>"$work/log" &
    pids+=($!)
    for _ in $(seq 50); do grep -q '^state=listening' "$dir/status" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# body EPOCH FULL PAGES... > FILE: one epoch's body and trailer over 4 pages of memory;
# page N is filled with the byte N+EPOCH. CUT=1: no trailer. SIZE: the memory it claims.
body() {
    python3 - "$@" <<'PY'
import os, struct, sys
epoch, full, pages = int(sys.argv[1]), int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
size = int(os.environ.get("SIZE", 4 * 4096))
dev = b"device state of epoch %d" % epoch
b = b"VMHA-RAM" + struct.pack(">QQQ", full, size, len(pages))
for p in pages:
    b += struct.pack(">Q", p) + bytes([(p + epoch) & 255]) * 4096
if os.environ.get("DELTA") == "1":  # against the epoch before: its one changed byte
    old = b"device state of epoch %d" % (epoch - 1)
    d = struct.pack(">QQ", len(old), len(dev))
    d += b"".join(struct.pack(">QQ", i, 1) + dev[i:i + 1] for i in range(len(dev)) if dev[i] != old[i])
    b += b"VMHA-DDV" + struct.pack(">Q", len(d)) + d
else:
    b += b"VMHA-DEV" + struct.pack(">Q", len(dev)) + dev
if os.environ.get("CUT") != "1":
    b += b"VMHA-END" + struct.pack(">Q", epoch)
sys.stdout.buffer.write(b)
PY
}

# send EPOCH FULL PAGES...: the epoch to the backup on $port with ${KEY:-the cluster's key},
# session ${SESSION:-00000000000000aa}; prints the backup's answer.
send() {
    local epoch=$1
    body "$@" >"$work/body"
    "$CLIENT" "127.0.0.1:$port" ft9 "${KEY-$work/authkey}" \
        "VMHA-CKPT 2 ft9 ${SESSION:-00000000000000aa} $epoch" "$work/body"
}
wait_for() { local i; for i in $(seq $(($1 * 10))); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
page() { od -An -tu1 -j $(($1 * 4096)) -N1 "$work/r/ram" | tr -d ' '; }
refused() { awk -F= '$1 == "refused" {print $2}' "$work/r/status"; }

ok "a backup without the cluster's key does not start" \
    bash -c "! '$REPL' receive --guest ft9 --dir '$work/nokey' --node here --listen 127.0.0.1:$((port + 1)) \
        --memory $MEM --key '$work/missing' 2>'$work/nokey.err'"
ok "  and says which key it looked for" grep -q "$work/missing" "$work/nokey.err"
chmod 644 "$work/otherkey"
ok "a key others can read is refused" \
    bash -c "! '$REPL' receive --guest ft9 --dir '$work/nokey' --node here --listen 127.0.0.1:$((port + 1)) \
        --memory $MEM --key '$work/otherkey' 2>'$work/nokey.err'"
ok "  naming the fault" grep -q "chmod 0600" "$work/nokey.err"
chmod 600 "$work/otherkey"

start_backup "$work/r" "$port" --key "$work/authkey" || bail "the backup did not start"
ok "the status says how the stream is authenticated" grep -q '^auth=key$' "$work/r/status"

# Strangers first: nothing they send may be committed.
out=$(KEY=- send 1 1 0 1)
ok "a peer without the key (plain TCP): refused before a byte is taken" \
    grep -q "^closed before GO" <<<"$out"
out=$(KEY=$work/otherkey send 1 1 0 1)
ok "a peer with another cluster's key: refused" grep -q "^refused:" <<<"$out"
ok "  nothing committed" test ! -e "$work/r/ckpt.meta"
ok "  both counted as refused" eq 2 "$(refused)"
ok "  and logged with the peer's address" grep -q "refused a connection from 127.0.0.1" "$work/log"
# A peer that connects and says nothing must not hold up the primary.
exec 7<>"/dev/tcp/127.0.0.1/$port"
t0=$(date +%s%N)
out=$(send 1 0 1)
t1=$(date +%s%N)
exec 7<&-
ok "with a silent connection open, the primary is still served" grep -q "^NAK .*needs a whole one" <<<"$out"
ok "  at once (not after the silent one's handshake time)" test $(((t1 - t0) / 1000000)) -lt 1500
ok "  nothing committed" test ! -e "$work/r/ckpt.meta"

ok "a whole checkpoint: acknowledged" eq "ACK 2" "$(send 2 1 0 2 3)"
ok "  its memory on file: page 1 zero, page 2 as sent" eq "0 4" "$(page 1) $(page 2)"
ok "the changes since it, the device state as a delta: acknowledged" eq "ACK 3" "$(DELTA=1 send 3 0 1)"
ok "  applied: page 1 changed, page 2 kept" eq "4 4" "$(page 1) $(page 2)"
# (the backup applies the journal once it has answered)
ok "  the device state rebuilt whole" \
    wait_for 5 eval '[ "$(cat "$work/r/dev.save")" = "device state of epoch 3" ]'
out=$(CUT=1 send 4 0 1 2)
ok "a checkpoint cut short: refused" grep -q "^NAK .*incomplete" <<<"$out"
out=$(send 5 0 1)
ok "changes that skip an epoch: refused" grep -q "^NAK .*holds 00000000000000aa/3" <<<"$out"
out=$(send 2 1 0 1 2 3)
ok "an older epoch again, whole: refused (no replay)" grep -q "^NAK .*not newer" <<<"$out"
out=$(send 3 1 0 1 2 3)
ok "the same epoch again: refused" grep -q "^NAK .*not newer" <<<"$out"
out=$(SIZE=$((1 << 62)) send 4 1 0)
ok "memory of another size than the guest's: refused" grep -q "^NAK .*carries .* bytes of memory" <<<"$out"
python3 -c "
import struct, sys
sys.stdout.buffer.write(b'VMHA-RAM' + struct.pack('>QQQ', 1, 0xfffffffffffff000, 4494820680728449) + bytes(3200) + b'VMHA-END' + struct.pack('>Q', 4))" >"$work/body"
out=$("$CLIENT" "127.0.0.1:$port" ft9 "$work/authkey" "VMHA-CKPT 2 ft9 00000000000000aa 4" "$work/body")
ok "a page count that wraps the body's length check: refused" grep -q "^NAK .*inconsistent" <<<"$out"
head -c $((3 * 4 * 4104 + 64 + (256 << 20))) /dev/zero >"$work/body"
out=$("$CLIENT" "127.0.0.1:$port" ft9 "$work/authkey" "VMHA-CKPT 2 ft9 00000000000000aa 4" "$work/body")
ok "a body larger than any of the guest's: cut off" grep -qE "^NAK .*larger than|closed" <<<"$out"
rm -f "$work/body"
ok "  the backup still holds checkpoint 3" grep -q '^epoch=3' "$work/r/ckpt.meta"
ok "  with its memory as it was" eq "4 4" "$(page 1) $(page 2)"
ok "  and its device state" grep -q "device state of epoch 3" "$work/r/dev.save"
ok "  and keeps serving the primary" eq "ACK 4" "$(send 4 0 2)"
ok "a new session starts with a whole checkpoint" eq "ACK 1" "$(SESSION=00000000000000bb send 1 1 0 1 2 3)"
ok "  but not with changes" grep -q "^NAK .*needs a whole one" <<<"$(SESSION=00000000000000cc send 2 0 1)"

# A backup with a writable disk: a session's first checkpoint starts with the disk's whole
# copy (VMHA-DBS). The backup drops the checkpoint it held and marks its disk a replica
# before it writes a byte, so a backup killed during that copy holds nothing a promotion
# could resume, and a disk that no node boots from.
head -c $((1 << 20)) /dev/zero >"$work/d.img"
start_backup "$work/d" $((port + 4)) --key "$work/authkey" --disk "vda=$work/d.img" \
    --local-dir "$work/dl" || bail "the backup with a disk did not start"
dbs_send() { # SESSION EPOCH BYTE END(1/0): a whole checkpoint whose disk base writes BYTE
    # over the disk's first 64 KiB; END=0: the copy breaks off after 32 KiB, nothing more
    python3 - "$3" "$4" >"$work/dbs" <<'PY'
import struct, sys
byte, end = int(sys.argv[1]), sys.argv[2] == "1"
b = b"VMHA-DBS" + struct.pack(">QQ", 1, 1 << 20)
for i in range(16 if end else 8):
    b += struct.pack(">IIQQ", 0, 0, i * 4096, 4096) + bytes([byte]) * 4096
if end:
    b += b"\xff" * 4 + bytes(20)
sys.stdout.buffer.write(b)
PY
    [ "$4" = 1 ] && body "$2" 1 0 1 2 3 >>"$work/dbs"
    "$CLIENT" "127.0.0.1:$((port + 4))" ft9 "$work/authkey" "VMHA-CKPT 2 ft9 $1 $2" "$work/dbs"
}
disk_byte() { od -An -tu1 -j "$1" -N1 "$work/d.img" | tr -d ' '; }
ok "a first checkpoint with the disk's copy: acknowledged" \
    eq "ACK 1" "$(dbs_send 00000000000000d1 1 65 1 2>&1)"
ok "  the disk holds the copy" eq "65 65 0" "$(disk_byte 0) $(disk_byte 65535) $(disk_byte 65536)"
ok "  and is marked a replica, on this node" grep -q "session=00000000000000d1" "$work/dl/disks-replica"
ok "  the checkpoint is committed" grep -q '^epoch=1' "$work/d/ckpt.meta"
# A new session's copy: the backup is killed while it is half done.
dbs_send 00000000000000d2 1 66 0 >/dev/null 2>&1 &
client=$!
copying() { [ "$(disk_byte 28672)" = 66 ]; }
ok "a new session's copy is being written" wait_for 5 copying
kill -9 "${pids[-1]}"
wait "$client" 2>/dev/null
ok "killed during it: the earlier checkpoint is gone (nothing to resume)" \
    test ! -e "$work/d/ckpt.meta" -a ! -e "$work/d/ram" -a ! -e "$work/d/dev.save"
ok "  the disk stays marked a replica, of the new session" \
    grep -q "session=00000000000000d2" "$work/dl/disks-replica"
ok "  half copied, as it was cut" eq "66 65" "$(disk_byte 28672) $(disk_byte 32768)"
rm -f "$work/d/status" # (the killed one's says listening: wait for the new one's)
start_backup "$work/d" $((port + 4)) --key "$work/authkey" --disk "vda=$work/d.img" \
    --local-dir "$work/dl" || bail "the backup with a disk did not start again"
ok "started again, it holds no checkpoint" test ! -e "$work/d/ckpt.meta"
out=$(SESSION=00000000000000d2 port=$((port + 4)) send 2 0 1)
ok "  and takes no changes on the broken copy" grep -q "^NAK .*needs a whole one" <<<"$out" ||
    diag "it answered: $out"
ok "a whole copy again: acknowledged" eq "ACK 1" "$(dbs_send 00000000000000d3 1 67 1 2>&1)"
ok "  the disk is the primary's again" eq "67 67" "$(disk_byte 0) $(disk_byte 65535)"

# A lab's backup: believes anyone, and says so.
start_backup "$work/i" $((port + 2)) --insecure || bail "the insecure backup did not start"
ok "replication_insecure: the status says auth=none" grep -q '^auth=none$' "$work/i/status"
ok "  and the log shouts it" grep -q "takes checkpoints from ANYONE" "$work/log"
out=$(port=$((port + 2)) KEY=- send 1 1 0 1)
ok "  a plain peer is believed" eq "ACK 1" "$out"
plan_done
