#!/bin/bash
# Smoke test of the Xen lab's cluster (TAP): build, boot two Xen hosts under QEMU, start
# Corosync + Pacemaker in both dom0s with xenlab_cluster_up, check both nodes online,
# the fence device, cibadmin --query and transient node attributes (attrd_updater,
# crm_attribute --lifetime reboot) on both nodes, then `stonith_admin --fence xen1` on
# xen2: xen1's QEMU must die, xen2 must see xen1 fenced and offline, keep its own
# resource and recover xen1's. Prints timings and dom0 memory as TAP comments.
# Standalone (not in meson). Needs root, qemu-system-x86, socat, ~2.5 GiB.
# Environment: see xenlab.sh (XENLAB_CACHE, XENLAB_DIR, XENLAB_KEEP, ...).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=xenlab.sh
. "$here/xenlab.sh"
trap xenlab_down EXIT

echo "1..14"
t=0
ok() { t=$((t + 1)); echo "ok $t - $*"; }
notok() { t=$((t + 1)); echo "not ok $t - $*"; failed=1; }
bail() { notok "$1"; echo "Bail out! $1"; exit 1; }
# check DESCRIPTION CMD...: one test point from a command's exit status
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else notok "$desc"; fi
}
failed=0

# Timing: phase_start; ...; phase_end NAME  ->  "# NAME: 12.3 s"
now_ms() { local r=${EPOCHREALTIME/./}; echo $((r / 1000)); }
phase_start() { p0=$(now_ms); }
phase_end() {
    local ms=$(($(now_ms) - p0))
    printf '# %s: %d.%d s\n' "$1" $((ms / 1000)) $((ms % 1000 / 100))
}
total0=$(now_ms)

# on HOST CMD: run a shell command line in HOST's dom0, without stdin
on() { xenlab_ssh "$1" "$2" </dev/null; }
# until_ok SECONDS CMD...: retry CMD once a second until it succeeds or SECONDS pass
until_ok() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 1
    done
}
# node_xml VIEWER NODE: NODE's <node .../> line in VIEWER's `crm_mon --output-as=xml`
node_xml() { on "$1" 'crm_mon -1 --output-as=xml' 2>/dev/null | grep "<node name=\"$2\" "; }
node_online() { node_xml "$1" "$2" | grep -q ' online="true".* unclean="false"'; }
node_fenced_offline() { node_xml "$1" "$2" | grep -q ' online="false".* unclean="false"'; }
# where RSC [VIEWER]: the node(s) running RSC, in VIEWER's view (xen1)
where() {
    on "${2:-xen1}" "crm_resource --locate --resource $1" 2>/dev/null |
        sed -n 's/.* is running on: \([^ ]*\).*/\1/p' | paste -sd ' '
}
is_on() { [[ $(where "$1" "${3:-xen1}") == "$2" ]]; }
show() { sed 's/^/#   /'; }

phase_start
xenlab_build >&2 || bail "build the lab's host and guest artifacts"
phase_end build
ok "build host and guest artifacts"

phase_start
xenlab_up 2 "" || bail "boot xen1 and xen2"
phase_end "boot of 2 hosts"
ok "boot xen1 and xen2, both answer xl list"

phase_start
xenlab_cluster_up || bail "xenlab_cluster_up: corosync + pacemaker on xen1 and xen2, fencing on"
phase_end "cluster up (xenlab_cluster_up)"
ok "xenlab_cluster_up: both nodes online, fence-xenlab started"
for h in xen1 xen2; do
    echo "# $h dom0 memory after the cluster is up (free -m):"
    on "$h" 'free -m' | show
    # resident MiB of the cluster's daemons (names cut to 15 characters by the kernel)
    on "$h" 'cat /proc/[0-9]*/status 2>/dev/null |
        awk "/^Name:/ { n = \$2 } /^VmRSS:/ && n ~ /^(corosync|pacemaker)/ {
            printf \"%s %d, \", n, \$2 / 1024 }"
        echo "/dev/shm $(du -sm /dev/shm | cut -f1)"' | sed 's/^/#   RSS MiB: /' || true
done

if node_online xen1 xen1 && node_online xen1 xen2 && node_online xen2 xen1 &&
    node_online xen2 xen2; then
    ok "crm_mon on xen1 and on xen2: xen1 and xen2 online"
else
    on xen2 'crm_mon -1' | show
    notok "crm_mon on xen1 and on xen2: xen1 and xen2 online"
fi

# The fencer of the node that fences must know the device, wherever it runs.
registered() { # XML: its text form changed in Pacemaker 3.0
    on "$1" 'stonith_admin --list-registered --output-as=xml' | grep -qE '[>"]fence-xenlab[<"]'
}
fence_ready() { [[ -n $(where fence-xenlab) ]] && registered xen1 && registered xen2; }
check "fence-xenlab is started ($(where fence-xenlab)) and registered in both fencers" \
    fence_ready

# The agent by hand (fence-agents command line): valid metadata, list, monitor, status.
agent_ok() {
    on xen2 'fence_xenlab -o metadata' | xmllint --noout - &&
        on xen2 'stonith_admin --metadata --agent fence_xenlab' | grep -q '<action name="off"' &&
        [[ $(on xen2 'fence_xenlab -o list' | paste -sd ' ') == "xen1 xen2" ]] &&
        on xen2 'fence_xenlab -o monitor && fence_xenlab -o status -n xen1' &&
        ! on xen2 'printf "action=on\nport=xen1\n" | fence_xenlab' 2>/dev/null
}
check "fence_xenlab in dom0: metadata is valid XML, list, monitor, status xen1 = on, on refused" \
    agent_ok

cib_ok() {
    local out
    out=$(on "$1" 'cibadmin --query') || return 1
    [[ $out == "<cib "* ]] && grep -q 'uname="xen1"' <<<"$out" && grep -q 'uname="xen2"' <<<"$out"
}
cib_both() { cib_ok xen1 && cib_ok xen2; }
check "cibadmin --query on xen1 and xen2 (both nodes in it)" cib_both

# Transient node attributes. attrd_updater: set on each node, read back there, and all of
# them from the other node (attrd syncs its peers).
attrd_set() { on "$1" "attrd_updater --name xenlab-a --update v-$1"; }
attrd_get() { # VIEWER NODE
    on "$1" "attrd_updater --name xenlab-a --query --node $2" 2>/dev/null |
        grep -q "host=\"$2\" value=\"v-$2\""
}
phase_start
if attrd_set xen1 && attrd_set xen2 &&
    until_ok 30 attrd_get xen1 xen1 && until_ok 30 attrd_get xen2 xen2 &&
    until_ok 30 attrd_get xen1 xen2 && until_ok 30 attrd_get xen2 xen1; then
    phase_end "attrd_updater set and read back"
    ok "attrd_updater: xenlab-a set on each node, read back on both nodes"
else
    on xen1 'attrd_updater --name xenlab-a --query --all' 2>&1 | show
    notok "attrd_updater: xenlab-a set on each node, read back on both nodes"
fi
# crm_attribute --lifetime reboot (the status section, through attrd): set on each node,
# read back from the CIB on both nodes.
cattr_set() { on "$1" "crm_attribute --lifetime reboot --node $1 --name xenlab-c --update w-$1"; }
cattr_get() { # VIEWER NODE
    [[ $(on "$1" "crm_attribute --lifetime reboot --node $2 --name xenlab-c --query --quiet" \
        2>/dev/null) == "w-$2" ]]
}
phase_start
if cattr_set xen1 && cattr_set xen2 &&
    until_ok 30 cattr_get xen1 xen1 && until_ok 30 cattr_get xen2 xen2 &&
    until_ok 30 cattr_get xen1 xen2 && until_ok 30 cattr_get xen2 xen1; then
    phase_end "crm_attribute --lifetime reboot set and read back"
    ok "crm_attribute --lifetime reboot: xenlab-c set on each node, read back on both nodes"
else
    on xen1 'crm_attribute --lifetime reboot --node xen2 --name xenlab-c --query' 2>&1 | show
    notok "crm_attribute --lifetime reboot: xenlab-c set on each node, read back on both nodes"
fi

# Two resources: d1 prefers xen1, d2 prefers xen2 (ocf:pacemaker:Dummy, state in /run).
dummy() { # N
    on xen1 "cibadmin --create -o resources --xml-text '<primitive id=\"d$1\" class=\"ocf\"
        provider=\"pacemaker\" type=\"Dummy\"><instance_attributes id=\"d$1-ia\">
        <nvpair id=\"d$1-ia-state\" name=\"state\" value=\"/run/d$1.state\"/>
        </instance_attributes><operations>
        <op id=\"d$1-monitor\" name=\"monitor\" interval=\"10s\"/></operations></primitive>' &&
        cibadmin --create -o constraints --xml-text '<rsc_location id=\"d$1-prefers-xen$1\"
        rsc=\"d$1\" node=\"xen$1\" score=\"100\"/>'"
}
phase_start
if dummy 1 && dummy 2 && until_ok 60 is_on d1 xen1 && until_ok 60 is_on d2 xen2; then
    phase_end "2 resources started"
    ok "resources d1 started on xen1, d2 on xen2"
else
    on xen1 'crm_mon -1' | show
    bail "resources d1 started on xen1, d2 on xen2"
fi
# d2's state file: a restart of d2 would make it anew
d2_before=$(on xen2 'stat -c "%i %Y" /run/d2.state') || d2_before=none

qemu1=$(xenlab__pid 1) || bail "no QEMU of xen1"
phase_start
if on xen2 'stonith_admin --fence xen1 --timeout 120' >&2; then
    phase_end "fencing: stonith_admin --fence xen1 on xen2 (returns once corosync lost xen1)"
    ok "stonith_admin --fence xen1 on xen2 succeeds"
else
    phase_end "fencing: stonith_admin --fence xen1 on xen2"
    notok "stonith_admin --fence xen1 on xen2 succeeds"
fi
# when the listener killed xen1's QEMU, from the start of stonith_admin
killed=$(sed -n 's/^\([0-9:.]*\) fence-serve: off xen1 -> ok$/\1/p' "$XENLAB_DIR/fence.log" |
    head -n 1)
if [[ -n $killed ]]; then
    ms=$(($(date -d "$killed" +%s%3N) - p0))
    printf '#   xen1 QEMU killed by the listener %d.%d s after stonith_admin started\n' \
        $((ms / 1000)) $((ms % 1000 / 100))
fi
# gone (or a zombie of a moment), and by the listener's hand
fenced_qemu() {
    { ! kill -0 "$qemu1" 2>/dev/null || [[ $(awk '{ print $3 }' "/proc/$qemu1/stat") == Z ]]; } &&
        grep -q "off xen1 -> ok" "$XENLAB_DIR/fence.log"
}
check "xen1's QEMU (pid $qemu1) is gone, killed through fence_xenlab" fenced_qemu

phase_start
if until_ok 60 node_fenced_offline xen2 xen1 &&
    on xen2 'stonith_admin --history xen1' | grep -q 'off of xen1 successful'; then
    phase_end "xen1 offline (fenced) in xen2's view"
    ok "xen2: xen1 offline and clean, fencing history says off of xen1 successful"
else
    on xen2 'crm_mon -1; stonith_admin --history xen1' 2>&1 | show
    notok "xen2: xen1 offline and clean, fencing history says off of xen1 successful"
fi

phase_start
if until_ok 60 is_on d1 xen2 xen2 && until_ok 60 is_on fence-xenlab xen2 xen2; then
    phase_end "d1 recovered on xen2"
fi
d2_after=$(on xen2 'stat -c "%i %Y" /run/d2.state') || d2_after=gone
if is_on d2 xen2 xen2 && [[ $d2_after == "$d2_before" ]] && is_on d1 xen2 xen2 &&
    is_on fence-xenlab xen2 xen2; then
    ok "xen2 keeps d2 (not restarted), recovers d1 and runs fence-xenlab"
else
    echo "# d2 state file before: $d2_before, after: $d2_after"
    on xen2 'crm_mon -1' | show
    notok "xen2 keeps d2 (not restarted), recovers d1 and runs fence-xenlab"
fi

# Corosync's warnings that dom0 did not run it for 80 % of the token timeout (a longer
# stall makes it declare the other nodes dead); the first lines of its log say when it
# started.
echo "# corosync on xen2 (token ${XENLAB_COROSYNC_TOKEN} ms), start and stall warnings:"
on xen2 'grep -m 1 "starting up" /var/log/corosync/corosync.log
    grep "not scheduled" /var/log/corosync/corosync.log' | cut -c 1-150 | show || true
echo "# xen2 dom0 memory at the end (free -m):"
on xen2 'free -m' | show

phase_start
xenlab_down
phase_end teardown
ms=$(($(now_ms) - total0))
printf '# total: %d.%d s\n' $((ms / 1000)) $((ms % 1000 / 100))
exit "$failed"
