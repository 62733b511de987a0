#!/bin/bash
# Answers one request of dom0's fence agent (fence_xenlab). xenlab_up's listener (socat,
# on the workstation's 127.0.0.1) runs it once per connection, stdin and stdout being the
# connection, with XENLAB_DIR set to the lab's run dir.
# Request, one line: "off xenN", "status xenN" or "list". Answer, one line: "ok" (xenN is
# off now, or was already), "on"/"off", the run's hosts ("xen1 xen2"), or "error WHY".
# It only ever kills a QEMU of this run (xenlab_kill checks the process is that host's).
set -u
[[ -n ${XENLAB_DIR:-} && -f $XENLAB_DIR/run-id ]] || { echo "error no lab run dir"; exit 0; }
# shellcheck source-path=SCRIPTDIR source=xenlab.sh
. "$(dirname "${BASH_SOURCE[0]}")/xenlab.sh"

log() { echo "$(date +%T.%3N) fence-serve: $*" >>"$XENLAB_DIR/fence.log"; }
answer() { echo "$*"; log "${req:-?} -> $*"; exit 0; }

req=
IFS= read -r -t 10 req || [[ -n $req ]] || answer "error no request"
read -r action host rest <<<"$req"
hosts=$(cat "$XENLAB_DIR/hosts" 2>/dev/null) || answer "error no lab hosts"
case $action in
    list) answer "$(seq -f 'xen%g' 1 "$hosts" | paste -sd ' ')" ;;
    off | status) ;;
    *) answer "error unknown request" ;;
esac
[[ -z ${rest:-} && ${host:-} =~ ^xen[1-9][0-9]*$ ]] || answer "error bad host '${host:-}'"
n=${host#xen}
((n <= hosts)) || answer "error $host is not a host of this lab"
if [[ $action == status ]]; then
    if xenlab__alive "$n"; then answer on; else answer off; fi
fi
xenlab_kill "$n" 2>/dev/null || answer "error cannot kill $host"
answer ok
