#!/bin/bash
# The agent without a hypervisor: meta-data, unknown actions, logging.
# The meta-data is checked against every schema tools validate it with: OCF 1.1 (pcs), the
# resource-agents DTD with the OCF 1.1 additions it declares (ocf-tester), and
# resource-agents' metadata.rng for everything OCF 1.0 knows (the reloadable marks aside).
set -u
. "$(dirname "$0")/../lib/tap.sh"
AGENT=$1
md=$(mktemp)
trap 'rm -f "$md" "$md".*' EXIT

"$AGENT" meta-data >"$md"
ok "meta-data exits 0" eq 0 $?
ok "meta-data validates against OCF 1.1 (pcs's ocf-1.1.rng)" \
    xmllint --noout --relaxng /usr/share/pcs/data/ocf-1.1.rng "$md"
ok "meta-data validates against ra-api-1.dtd as ocf-tester checks it" \
    sh -c "cd /usr/share/resource-agents && xmllint --noout --valid - <'$md'"
sed 's/ reloadable="1"//' "$md" >"$md.10"
ok "meta-data without reloadable marks validates against metadata.rng" \
    xmllint --noout --relaxng /usr/share/resource-agents/metadata.rng "$md.10"
ok "reloadable parameters are marked" grep -q 'name="migration_speed".*reloadable="1"' "$md"
ok "config is required and not reloadable" grep -q '<parameter name="config" unique="1" required="1">' "$md"
ok "every parameter has a default or is required" \
    sh -c "! xmllint --xpath '//parameter[@required=\"0\"]/content[not(@default)]' '$md' 2>/dev/null | grep -q ."
for a in start stop monitor migrate_to migrate_from validate-all meta-data reload-agent; do
    ok "action $a is advertised" grep -q "<action name=\"$a\"" "$md"
done
"$AGENT" frobnicate 2>"$md.err"
ok "an unknown action returns 3" eq 3 $?
ok "an unknown action gives one exit reason" eq 1 "$(grep -c '^ocf-exit-reason:' "$md.err")"
# Under the cluster (crm_feature_set is set by pacemaker-execd), lines go to Pacemaker's log;
# by hand, to stderr. The exit reason goes to stderr either way.
env -i PATH="$PATH" OCF_RESKEY_crm_feature_set=3.16.2 PCMK_logfile="$md.pcmk" \
    OCF_RESKEY_config=/nonexistent/vm.xml "$AGENT" validate-all 2>"$md.err"
ok "validate-all with a missing config -> 5" eq 5 $?
ok "under the cluster, the failure is in Pacemaker's log" \
    contains "$md.pcmk" "vmha-guest"
ok "  with the reason" contains "$md.pcmk" "validate-all failed: config: cannot open /nonexistent/vm.xml"
ok "  and stderr has only the exit reason" eq "ocf-exit-reason:config: cannot open /nonexistent/vm.xml: No such file or directory" "$(cat "$md.err")"
env -i PATH="$PATH" OCF_RESKEY_config=/nonexistent/vm.xml "$AGENT" validate-all 2>"$md.err"
ok "by hand, the log line goes to stderr" contains "$md.err" "vmha-guest: error: validate-all failed"
plan_done
exit $((TAP_FAILED > 0))
