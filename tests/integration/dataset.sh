#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Python binding end to end: start a node with deploy/dev-cluster.sh on
# a free loopback port in a scratch directory, run test_dataset.py with
# Debian's /usr/bin/python3 (the one python3-torch is built for) against
# it, then stop exactly that node.
# Inputs (set by tests/meson.build): STRATAD, STRATA_PYTHONPATH (the build
# tree's client/python), STRATA_SANITIZE (meson's b_sanitize).
# Exit 77 (skipped) when torch cannot be imported, or when the build is
# sanitized: libstrata built with ASan cannot be loaded by ctypes into a
# python3 that was not started with libasan preloaded, and preloading it
# reports python's own leaks; the unit and e2e suites cover libstrata
# under the sanitizers instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${STRATAD:?}" "${STRATA_PYTHONPATH:?}"
export STRATAD
py=/usr/bin/python3

if [ "${STRATA_SANITIZE:-none}" != none ]; then
	echo "dataset: skipped: sanitized build (b_sanitize=$STRATA_SANITIZE)"
	exit 77
fi
if ! "$py" -c 'import torch.utils.data' 2>/dev/null; then
	echo "dataset: skipped: $py cannot import torch (apt-get install python3-torch)"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-dataset.XXXXXX")
cleanup() {
	"$root/deploy/dev-cluster.sh" down --dir "$work/cluster" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
. "$root/tests/lib.sh"
dev_up "$root" "$work/cluster" || exit 1
# shellcheck disable=SC1091
. "$work/cluster/env"
rc=0
PYTHONPATH=$STRATA_PYTHONPATH timeout 500 "$py" "$here/test_dataset.py" \
	"$work/cluster" "$port" "$root/deploy/dev-cluster.sh" || rc=1
"$root/deploy/dev-cluster.sh" down --dir "$work/cluster" >/dev/null
grep -q "stopped cleanly" "$work/cluster/node1/stratad.log" || { echo "dataset: no clean stop"; rc=1; }
exit $rc
