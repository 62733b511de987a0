#!/bin/bash
# Runs vmha's libFuzzer targets (tests/fuzz/) for a bounded time each and fails on any finding
# that tests/fuzz/known-open.txt does not list. CI runs it after the tests; by hand:
#   tools/fuzz.sh [-j JOBS] [SECONDS] [TARGET...]     (default: 1 job, 20 s, every target)
# Each target runs on a copy of its seed corpus in build-fuzz/fuzz/<target>/ (VMHA_FUZZ_BUILDDIR
# names another build directory). A finding is printed with its stack and its input, which is
# left there too. To replay, minimize and keep one:
#   build-fuzz/tests/fuzz/<target> FILE
#   build-fuzz/tests/fuzz/<target> -minimize_crash=1 -runs=100000 -exact_artifact_path=OUT FILE
#   cp OUT tests/fuzz/regress/<target>/<what>    (the unit suite replays it from then on)
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=1
if [ "${1:-}" = -j ]; then
    jobs=$2
    shift 2
fi
seconds=20
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
builddir=${VMHA_FUZZ_BUILDDIR:-build-fuzz}

tools/deps.sh || exit 1
# clang with libFuzzer (libclang-rt-dev), and llvm-symbolizer, without which the sanitizers'
# stacks have no file:line and no finding could be told from a known one.
need=()
command -v clang >/dev/null || need+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q 'install ok installed' ||
    need+=(libclang-rt-dev)
command -v llvm-symbolizer >/dev/null || need+=(llvm)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fuzz: installing ${need[*]} needs root; run this as root (or with sudo)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
        { apt-get update -q >/dev/null &&
            apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } || exit 1
fi

if [ ! -d "$builddir" ]; then
    CC=clang meson setup "$builddir" -Dfuzz=true -Db_sanitize=address,undefined -Dwerror=true \
        -Dlibxl=enabled >/dev/null || exit 1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # Every target has its seed corpus here (a module's own targets live with it, hv/test/).
    for d in tests/fuzz/corpus/fuzz_*/; do
        targets+=("$(basename "$d")")
    done
fi
mkdir -p "$builddir/fuzz"
if ! meson compile -C "$builddir" "${targets[@]/#/tests/fuzz/}" >"$builddir/fuzz/compile.log" 2>&1; then
    cat "$builddir/fuzz/compile.log"
    echo "fuzz: the fuzz targets do not build" >&2
    exit 1
fi
grep -E 'warning: ' "$builddir/fuzz/compile.log" | sort -u

# Known open findings: their sites (file:line, as the stacks show them), and UBSan checks to
# suppress at a site ("check@file:line"), so a finding that is reported already neither fails
# the run nor keeps the fuzzer from everything behind it.
known=tests/fuzz/known-open.txt
sites=$(awk '!/^[ \t]*(#|$)/ { print $2 }' "$known")
supp=$(realpath "$builddir")/fuzz/ubsan.supp
: >"$supp"
for s in $sites; do
    case $s in *@*) echo "${s%%@*}:${s#*@}" | sed 's/:[0-9]*$//' >>"$supp" ;; esac
done

# The first project frames of a report's first stack, and a UBSan report's own line, as
# path:line.
report_sites() {
    awk '
        / runtime error: / && !done { n = split($1, a, ":"); if (n >= 3) print a[1] ":" a[2] }
        /^ *#[0-9]+ 0x/ && !done {
            in_stack = 1
            loc = $NF
            if (loc ~ /\/(agent|boot|cli|cluster|common|hv|migrate|remus|tests)\/[^ ]*:[0-9]+/ && taken < 3) {
                sub(/:[0-9]+$/, "", loc)   # the column
                print loc
                taken++
            }
            next
        }
        in_stack { done = 1 }
    ' "$1"
}

# The known site a report passes through, or nothing.
known_site() {
    local s r
    while read -r r; do
        for s in $sites; do
            case "$r" in */"${s#*@}") echo "${s#*@}"; return ;; esac
        done
    done < <(report_sites "$1")
}

# Fuzzes one target for $seconds; its verdict goes to $work/verdict, its story to $work/out.
run_target() {
    local t=$1 work=$builddir/fuzz/$1
    local bin=$builddir/tests/fuzz/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/tmp"
    cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
    : >"$work/out"
    local end=$((SECONDS + seconds)) left rc unit site runs=0
    while left=$((end - SECONDS)); [ "$left" -gt 0 ]; do
        runs=$((runs + 1))
        # In a subshell of its own (exit: not exec'd), whose stderr takes bash's word on a
        # fuzzer that aborted.
        (TMPDIR=$(realpath "$work/tmp") \
            UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:suppressions=$supp" \
            LSAN_OPTIONS="print_suppressions=0:suppressions=$PWD/tests/fuzz/lsan.supp" \
            "$bin" "$work/corpus" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/" -print_final_stats=1 >"$work/log.$runs" 2>&1
            exit $?) 2>/dev/null
        rc=$?
        [ $rc -eq 0 ] && break
        unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log.$runs" | tail -1)
        site=$(known_site "$work/log.$runs")
        if [ -n "$site" ]; then
            echo "known open finding at $site (its inputs are kept in $work)" >>"$work/out"
            continue
        fi
        {
            echo "FINDING (libFuzzer exit $rc):"
            grep -E -A60 'ERROR: |runtime error: |ALARM:|out-of-memory' "$work/log.$runs" |
                grep -vE '^(MS:|base64:|artifact_prefix|Test unit written)' | head -70
            if [ -n "$unit" ] && [ -f "$unit" ]; then
                echo "reproducer $unit ($(stat -c %s "$unit") bytes):"
                od -A x -t x1z -v "$unit" | head -32
                echo "as base64 (recreate with: echo ... | base64 -d >FILE):"
                head -c 4096 "$unit" | base64 -w0
                echo
            fi
        } >>"$work/out"
        echo fail >"$work/verdict"
        return
    done
    local execs
    execs=$(awk '/^stat::number_of_executed_units:/ { s += $2 } END { print s + 0 }' "$work"/log.*)
    echo "$execs inputs in $seconds s, $(ls "$work/corpus" | wc -l) in the corpus now" >>"$work/out"
    echo ok >"$work/verdict"
}

failed=()
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$builddir/tests/fuzz/$t" ]; then
        echo "fuzz: no target $t" >&2
        failed+=("$t")
        continue
    fi
    run_target "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
for t in "${targets[@]}"; do
    work=$builddir/fuzz/$t
    [ -f "$work/verdict" ] || continue
    # A known finding the fuzzer ran into again and again is one line, with its count.
    awk -v t="$t" '
        /^known open finding/ { if (!($0 in n)) order[k++] = $0; n[$0]++; next }
        { print "fuzz: " t ": " $0 }
        END { for (i = 0; i < k; i++) print "fuzz: " t ": " order[i] ", " n[order[i]] " time(s)" }
    ' "$work/out"
    [ "$(cat "$work/verdict")" = ok ] || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, $seconds s each: no new finding"
