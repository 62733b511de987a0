#!/bin/bash
# The C sources formatted with the repository's .clang-format.
#   tools/format.sh          formats every tracked .c and .h in place
#   tools/format.sh --check  changes nothing; lists the files that differ and fails if any do
# The check runs with Debian 12's clang-format (14), which CI's machine has: other releases
# lay a few constructs out differently, so a check with another version says so and passes.
set -uo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = --check ] && check=true
command -v clang-format >/dev/null ||
    apt-get install -y -q --no-install-recommends clang-format >/dev/null ||
    { echo "format: clang-format is not installed" >&2; exit 1; }
major=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if $check && [ "$major" != 14 ]; then
    echo "format: clang-format $major here, the tree is kept with 14: not checked"
    exit 0
fi
bad=0
while IFS= read -r f; do
    if $check; then
        clang-format "$f" | cmp -s - "$f" || { echo "format: $f differs (tools/format.sh)"; bad=1; }
    else
        clang-format -i "$f"
    fi
done < <(git ls-files '*.c' '*.h')
exit $bad
