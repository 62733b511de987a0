# What the agent suites against real libvirtd share: a work directory, the test guest,
# private libvirtds stopped at exit, and reading the guest's serial counter. Source after
# tap.sh; call agent_setup first.

# agent_setup NAME: skips the suite unless root; sets WORK and GUEST_DIR; builds the guest.
agent_setup() {
    [ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP needs root (private libvirtd)"; exit 0; }
    TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    WORK=$(mktemp -d "/tmp/vmha-$1.XXXXXX")
    export GUEST_DIR=${VMHA_GUEST_CACHE:-/var/cache/vmha/test-guest}
    trap agent_cleanup EXIT
    "$TESTS/guest/build-guest.sh" "$GUEST_DIR" >&2 || bail "cannot build the test guest"
}

agent_cleanup() {
    local d
    [ -f "$WORK/run/agent.pid" ] && kill "$(cat "$WORK/run/agent.pid")" 2>/dev/null
    while read -r d; do
        "$TESTS/libvirt/libvirtd-env.sh" stop "$d" >/dev/null 2>&1
    done <"$WORK/.libvirtds" 2>/dev/null
    rm -rf "$WORK"
}

# libvirtd_start DIR: a private libvirtd under DIR, stopped at exit; prints its URI.
libvirtd_start() {
    echo "$1" >>"$WORK/.libvirtds"
    "$TESTS/libvirt/libvirtd-env.sh" start "$1" | tail -n 1
}

# The last counter value the guest printed to SERIAL, -1 if none.
counter_in() {
    local v
    v=$(grep -ao 'vmha-counter [0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d' ' -f2)
    echo "${v:--1}"
}

# wait_counter_in SERIAL N: until the counter reaches N (at most 60 s).
wait_counter_in() {
    for _ in $(seq 300); do
        [ "$(counter_in "$1")" -ge "$2" ] && return 0
        sleep 0.2
    done
    diag "counter stuck at $(counter_in "$1")"
    return 1
}
