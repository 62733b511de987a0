#!/bin/bash
# The agent's meta-data against every schema tools validate it with: OCF 1.1 (pcs), the
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
plan_done
exit $((TAP_FAILED > 0))
