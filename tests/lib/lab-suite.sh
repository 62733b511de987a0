# What every lab suite starts with. Source it with the suite's name after setting HERE:
#   HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/../lib/lab-suite.sh" paths
# It skips the suite without root, sets SRC, VMHA_LAB_DIR (/tmp/vmha-lab-NAME unless set),
# GUEST_DIR, WORK (removed at exit, with the lab), and defines scenario, took and
# lab_suite_up (builds the test guest, brings up three hosts, or bails out).
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib/tap.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the lab needs root"; exit 0; }

export VMHA_LAB_DIR=${VMHA_LAB_DIR:-/tmp/vmha-lab-$1}
LABTOOL=$SRC/lab/lab
export GUEST_DIR=${VMHA_GUEST_CACHE:-$VMHA_LAB_DIR/guest}
. "$SRC/lab/lib.sh"
WORK=$(mktemp -d "/tmp/vmha-$1.XXXXXX")
lab_suite_cleanup() {
    local f
    # Stop any watcher a failed scenario left running, then the lab.
    for f in "$WORK"/*.samples "$WORK"/*.copies; do [ -e "$f" ] && touch "$f.stop"; done
    wait
    lab down >/dev/null 2>&1
    rm -rf "$WORK"
}
trap lab_suite_cleanup EXIT

T=0
scenario() { T=$(now_ms); diag "--- $*"; }
took() { diag "$1: $(( $(now_ms) - T )) ms"; }

lab_suite_up() {
    "$SRC/tests/guest/build-guest.sh" "$GUEST_DIR" >&2 || bail "cannot build the test guest"
    lab down >/dev/null 2>&1
    lab up 3 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; bail "lab up failed"; }
}

# Watches a scenario for guest NAME (default web1): its counter (gaps, restarts) and where
# it runs. watch_stop sets GAP, RESTARTED, COPIES (most copies at once) and SEEN (every host
# it was seen running on).
watch_start() {
    now_ms >"$WORK/$1.start"
    sample_counter "$WORK/$1.samples" &
    copies_watch "$WORK/$1.copies" "${2:-web1}" &
}
watch_stop() {
    touch "$WORK/$1.samples.stop" "$WORK/$1.copies.stop"
    wait
    read -r GAP RESTARTED < <(analyse_samples "$WORK/$1.samples")
    COPIES=$(max_copies "$WORK/$1.copies")
    SEEN=$(awk '{ for (i = 3; i <= NF; i++) print $i }' "$WORK/$1.copies" | sort -u | xargs)
    if [ "$COPIES" -gt 1 ]; then
        diag "$1: samples with more than one copy (ms count hosts):"
        awk '$2 > 1' "$WORK/$1.copies" | head -n 5 | while read -r l; do diag "  $l"; done
    fi
}
