#!/bin/bash
# The Debian package: built from this tree with dpkg-buildpackage against the release's own
# libraries, lintian clean, then installed with dpkg into the hosts of a two-host lab
# (VMHA_LAB_DEB), where a guest runs and live-migrates under the packaged agent and the
# packaged vmha command.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lab-suite.sh" package
guest_answers() { [ -n "$(tcp_counter)" ]; }
runs_once_at() { [ "$(crm_location web1)" = "$1" ] && [ "$(running_on web1)" = "$1" ]; }

scenario "1. dpkg-buildpackage -b"
. "$SRC/tests/lib/deb.sh"
DEB=$(build_deb "$SRC" "$WORK/deb")
ok "1. dpkg-buildpackage -b builds the package" test -n "$DEB"
tail -n 5 "$WORK/deb/build.log" | while read -r l; do diag "  $l"; done
took "package build"
ok "1. vmha_VERSION_ARCH.deb" test -f "$DEB"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$WORK/files"
for f in /usr/lib/ocf/resource.d/vmha/guest /usr/lib/ocf/resource.d/vmha/node \
    /usr/libexec/vmha/guest-agent /usr/libexec/vmha/vmha-replicator /usr/sbin/vmha \
    /usr/share/man/man8/vmha.8.gz /usr/share/bash-completion/completions/vmha; do
    ok "1.   ships $f" grep -qx "$f" "$WORK/files"
done
ok "1.   ships the systemd drop-in that orders Pacemaker's stop first" \
    grep -q "/systemd/system/resource-agents-deps.target.d/vmha.conf$" "$WORK/files"
dpkg-deb -f "$DEB" Depends >"$WORK/depends"
diag "Depends: $(cat "$WORK/depends")"
ok "1.   depends on the libraries it links (shlibs): libvirt0, libcrmcommon" \
    sh -c "grep -q 'libvirt0' '$WORK/depends' && grep -q 'libcrmcommon' '$WORK/depends'"
ok "1.   and on resource-agents and Pacemaker's tools" \
    sh -c "grep -q 'resource-agents' '$WORK/depends' && grep -q 'pacemaker-cli-utils' '$WORK/depends'"
ok "1.   recommends the hypervisor" sh -c "dpkg-deb -f '$DEB' Recommends | grep -q libvirt-daemon-system"
lintian --allow-root "$WORK"/deb/src/vmha_*.changes >"$WORK/lintian" 2>&1
grep -E '^[EW]: ' "$WORK/lintian" | while read -r l; do diag "  $l"; done
ok "1. lintian: no error, no warning" sh -c "! grep -qE '^[EW]: ' '$WORK/lintian'"

scenario "2. the package installed on two hosts (dpkg -i), a guest under its agent"
"$SRC/tests/guest/build-guest.sh" "$GUEST_DIR" >&2 || bail "cannot build the test guest"
lab down >/dev/null 2>&1
VMHA_LAB_DEB=$DEB lab up 2 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; bail "lab up failed"; }
for h in node1 node2; do
    ok "2. $h: vmha is installed (dpkg)" \
        sh -c "$LABTOOL on $h dpkg-query -W -f='\${Status}' vmha | grep -q 'install ok installed'"
done
ok "2. the agent the cluster runs is the package's" \
    sh -c "$LABTOOL on node1 dpkg -S /usr/lib/ocf/resource.d/vmha/guest | grep -q '^vmha:'"
ok "2. crm lists ocf:vmha:guest" sh -c "$LABTOOL on node1 crm ra info ocf:vmha:guest | grep -q 'config'"
make_guest web1
configure_guest web1
ok "2. the guest starts and answers" wait_for 90 guest_answers
took "configure to answering"
FROM=$(crm_location web1)
TO=$([ "$FROM" = node1 ] && echo node2 || echo node1)
lab on "$FROM" vmha status >"$WORK/status" 2>&1
ok "2. the packaged vmha status shows it running on $FROM" \
    grep -qE "^web1 +running +$FROM" "$WORK/status"

scenario "3. live migration with the packaged vmha migrate"
lab on "$FROM" vmha migrate web1 "$TO" --wait=120 >"$WORK/migrate" 2>&1
ok "3. vmha migrate web1 $TO -> 0" eq 0 $?
ok "3. the guest runs once, on $TO" wait_for 30 runs_once_at "$TO"
ok "3. and still answers" wait_for 15 guest_answers
lab on "$TO" crm_mon -1 --include=failcounts >"$WORK/crm_mon" 2>&1
ok "3. Pacemaker records no failure" sh -c "! grep -q 'web1.*fail' '$WORK/crm_mon'"

plan_done
