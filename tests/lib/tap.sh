# Minimal TAP producer for the shell test suites (meson runs them with protocol: 'tap').
# Source it, call `plan N` (or `plan_done` at the end), then `ok COND... -- description`.
TAP_N=0
TAP_FAILED=0

plan() { echo "1..$1"; }
plan_done() { echo "1..$TAP_N"; }

# ok DESCRIPTION CMD... : one test point from a command's exit status.
ok() {
    local desc=$1
    shift
    TAP_N=$((TAP_N + 1))
    if "$@"; then
        echo "ok $TAP_N - $desc"
    else
        echo "not ok $TAP_N - $desc"
        TAP_FAILED=$((TAP_FAILED + 1))
        return 1
    fi
}

skip() {
    TAP_N=$((TAP_N + 1))
    echo "ok $TAP_N - $1 # SKIP $2"
}

diag() { printf '# %s\n' "$*"; }

bail() {
    echo "Bail out! $*"
    exit 1
}

# eq EXPECTED ACTUAL [what]: equality with a diagnostic on mismatch.
eq() {
    [ "$1" = "$2" ] && return 0
    diag "expected '$1', got '$2'${3:+ ($3)}"
    return 1
}

# contains FILE TEXT: the file holds the text (fixed string).
contains() {
    grep -qF -- "$2" "$1" && return 0
    diag "'$2' not in $1:"
    sed 's/^/#   /' "$1" | head -20
    return 1
}

# not_contains FILE TEXT: the file does not hold the text.
not_contains() {
    grep -qF -- "$2" "$1" || return 0
    diag "'$2' unexpectedly in $1:"
    grep -F -- "$2" "$1" | sed 's/^/#   /' | head -5
    return 1
}
