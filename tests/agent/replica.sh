#!/bin/bash
# The backup's replicator on its own (no cluster, no hypervisor): what it commits, what it
# refuses, and that a promotion's save image is the memory it was sent. A client speaks the
# stream of include/vmha/remus.h to `vmha-replicator receive` on the loopback.
set -u
. "$(dirname "$0")/../lib/tap.sh"
REPL=$1
work=$(mktemp -d /tmp/vmha-replica.XXXXXX)
port=$((20000 + RANDOM % 20000))
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
"$REPL" receive --guest ft9 --dir "$work/r" --node here --listen "127.0.0.1:$port" \
    --timeout 3000 --foreground 2>"$work/log" &
pid=$!
for _ in $(seq 50); do grep -q '^state=listening' "$work/r/status" 2>/dev/null && break; sleep 0.1; done

# send EPOCH FULL PAGES... : one epoch of session 00000000000000aa over 4 pages of memory;
# page N is filled with the byte N+EPOCH. Prints the backup's answer. CUT=1: the stream
# stops before the trailer.
send() {
    python3 - "$port" "$@" <<'PY'
import socket, struct, sys
port, epoch, full, pages = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), [int(p) for p in sys.argv[4:]]
import os
cut = os.environ.get("CUT") == "1"
dev = b"device state of epoch %d" % epoch
body = b"VMHA-RAM" + struct.pack(">QQQ", full, 4 * 4096, len(pages))
for p in pages:
    body += struct.pack(">Q", p) + bytes([(p + epoch) & 255]) * 4096
body += b"VMHA-DEV" + struct.pack(">Q", len(dev)) + dev
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"VMHA-CKPT 2 ft9 00000000000000aa %d\n" % epoch)
f = s.makefile("rb")
go = f.readline().strip()
if go != b"GO":
    print("no GO: %r" % go)
    sys.exit(0)
s.sendall(body)
if not cut:
    s.sendall(b"VMHA-END" + struct.pack(">Q", epoch))
s.shutdown(socket.SHUT_WR)
print(f.readline().decode().strip())
PY
}
page() { od -An -tu1 -j $(($1 * 4096)) -N1 "$work/r/ram" | tr -d ' '; }

out=$(send 1 0 0 1)
ok "changes without a checkpoint to apply them to: refused" grep -q "^NAK .*needs a whole one" <<<"$out"
ok "  nothing committed" test ! -e "$work/r/ckpt.meta"
ok "a whole checkpoint: acknowledged" eq "ACK 2" "$(send 2 1 0 2 3)"
ok "  its memory on file: page 1 zero, page 2 as sent" eq "0 4" "$(page 1) $(page 2)"
ok "the changes since it: acknowledged" eq "ACK 3" "$(send 3 0 1)"
ok "  applied: page 1 changed, page 2 kept" eq "4 4" "$(page 1) $(page 2)"
out=$(CUT=1 send 4 0 1 2)
ok "a checkpoint cut short: refused" grep -q "^NAK .*incomplete" <<<"$out"
out=$(send 5 0 1)
ok "changes that skip an epoch: refused" grep -q "^NAK .*holds 00000000000000aa/3" <<<"$out"
ok "  the backup still holds checkpoint 3" grep -q '^epoch=3' "$work/r/ckpt.meta"
ok "  with its memory as it was" eq "4 4" "$(page 1) $(page 2)"
ok "  and its device state" grep -q "device state of epoch 3" "$work/r/dev.save"
