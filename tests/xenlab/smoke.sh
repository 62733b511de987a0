#!/bin/bash
# Smoke test of the Xen lab (TAP): build, boot two Xen hosts under QEMU, create a PVH
# guest on xen1, check its counter on the console log, check the inter-host link and
# host-to-host ssh, live-migrate the guest to xen2 with `xl migrate` (over ssh), check
# the counter goes on there, shut the guest down, tear the lab down.
# Prints the time of each phase as a TAP comment. Needs root, qemu-system-x86, ~2.5 GiB.
# Environment: see xenlab.sh (XENLAB_CACHE, XENLAB_DIR, XENLAB_KEEP, ...).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=xenlab.sh
. "$here/xenlab.sh"
trap xenlab_down EXIT

echo "1..10"
t=0
ok() { t=$((t + 1)); echo "ok $t - $*"; }
notok() { t=$((t + 1)); echo "not ok $t - $*"; failed=1; }
bail() { notok "$1"; echo "Bail out! $1"; exit 1; }
failed=0

# Timing: phase_start; ...; phase_end NAME  ->  "# NAME: 12.3 s"
now_ms() { local r=${EPOCHREALTIME/./}; echo $((r / 1000)); }
phase_start() { p0=$(now_ms); }
phase_end() {
    local ms=$(($(now_ms) - p0))
    printf '# %s: %d.%d s\n' "$1" $((ms / 1000)) $((ms % 1000 / 100))
}
total0=$(now_ms)

# counters HOST: the guest g1's counter values on HOST's console log, one a line
counters() {
    xenlab_console "$1" g1 2>/dev/null | sed -n 's/^vmha-counter \([0-9]*\).*/\1/p' || true
}
# wait_counter HOST MIN SECONDS: wait until the last counter on HOST is >= MIN
wait_counter() {
    local end=$((SECONDS + $3)) last
    while ((SECONDS < end)); do
        last=$(counters "$1" | tail -n 1)
        [[ -n $last ]] && ((last >= $2)) && { echo "$last"; return 0; }
        sleep 1
    done
    echo "${last:-none}"
    return 1
}

phase_start
xenlab_build >&2 || bail "build the lab's host and guest artifacts"
phase_end build
ok "build host and guest artifacts"

phase_start
xenlab_up 2 "" || bail "boot xen1 and xen2"
phase_end "boot of 2 hosts"
ok "boot xen1 and xen2, both answer xl list"

v1=$(xenlab_ssh xen1 xl info </dev/null | awk '$1 == "xen_version" { print $3 }') || true
v2=$(xenlab_ssh xen2 xl info </dev/null | awk '$1 == "xen_version" { print $3 }') || true
echo "# xen_version: xen1 ${v1:-?}, xen2 ${v2:-?}"
if [[ -n $v1 && -n $v2 ]]; then ok "xl info on both hosts"; else notok "xl info on both hosts"; fi

phase_start
xenlab_ssh xen1 'cat >/root/g1.cfg' <<'EOF' || bail "write g1.cfg on xen1"
type = "pvh"
name = "g1"
kernel = "/var/lib/vmha-test/vmlinuz"
ramdisk = "/var/lib/vmha-test/initrd.img"
extra = "console=hvc0 vmha.console=hvc0"
memory = 128
vcpus = 1
on_poweroff = "destroy"
EOF
xenlab_ssh xen1 xl create /root/g1.cfg </dev/null >&2 || bail "xl create g1 on xen1"
phase_end "guest create"
phase_start
if c=$(wait_counter xen1 3 60); then
    phase_end "guest boot to counter 3"
    ok "g1 runs on xen1: console log shows vmha-counter $c"
else
    xenlab_console xen1 g1 | tail -n 20 | sed 's/^/# /'
    bail "g1 prints no increasing vmha-counter on xen1 (last: $c)"
fi

if xenlab_ssh xen1 ping -c 2 -W 5 xen2 </dev/null >&2; then
    ok "xen1 pings xen2 over the inter-host link"
else
    notok "xen1 pings xen2 over the inter-host link"
fi
if out=$(xenlab_ssh xen1 ssh -o BatchMode=yes root@xen2 xl list </dev/null) &&
    grep -q '^Domain-0' <<<"$out"; then
    ok "ssh root@xen2 xl list from xen1's dom0"
else
    notok "ssh root@xen2 xl list from xen1's dom0"
fi

phase_start
if xenlab_ssh xen1 xl migrate g1 xen2 </dev/null >&2; then
    phase_end migration
    ok "xl migrate g1 xen2"
else
    phase_end migration
    bail "xl migrate g1 xen2"
fi

before=$(counters xen1 | tail -n 1)
first=
end=$((SECONDS + 30))
while ((SECONDS < end)); do
    first=$(counters xen2 | head -n 1)
    [[ -n $first ]] && break
    sleep 1
done
after=
if [[ -n $first ]]; then after=$(wait_counter xen2 $((first + 2)) 30) || after=; fi
echo "# counter: last on xen1 ${before:-none}, first on xen2 ${first:-none}, then ${after:-none}"
if [[ -n $before && -n $first && -n $after ]] && ((first >= before && after > first)); then
    ok "g1 keeps counting on xen2 (no restart)"
else
    xenlab_ssh xen2 'xl list; ls -l /var/log/xen/console' </dev/null | sed 's/^/# /' || true
    notok "g1 keeps counting on xen2 (no restart)"
fi

# dom0 renames xenconsoled's guest-g1--incoming.log once xl has renamed the domain
if xenlab_ssh xen2 'cd /var/log/xen/console && for i in 1 2 3 4 5; do
        [ -e guest-g1.log ] && [ ! -e guest-g1--incoming.log ] && exit 0; sleep 1; done
        ls -l; exit 1' </dev/null >&2; then
    ok "xen2 logs the migrated guest to /var/log/xen/console/guest-g1.log"
else
    notok "xen2 logs the migrated guest to /var/log/xen/console/guest-g1.log"
fi

phase_start
if xenlab_ssh xen2 'timeout 60 xl shutdown -w g1 && ! xl domid g1 2>/dev/null' </dev/null >&2; then
    phase_end "guest shutdown"
    ok "xl shutdown -w g1 on xen2: the guest powers off"
else
    notok "xl shutdown -w g1 on xen2: the guest powers off"
fi

phase_start
xenlab_down
phase_end teardown
ms=$(($(now_ms) - total0))
printf '# total: %d.%d s\n' $((ms / 1000)) $((ms % 1000 / 100))
exit "$failed"
