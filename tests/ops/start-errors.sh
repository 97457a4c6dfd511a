#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# stratad refusing to start over a master key file it must not use: exit 1
# and a log line that says what is wrong with the file (its mode, a
# symbolic link, its length, not hex), not only "bad key file".
#   STRATAD=path/to/stratad start-errors.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${STRATAD:?}"
export STRATAD
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }
work=$(mktemp -d)
trap '"$root/deploy/dev-cluster.sh" down --dir "$work/c" >/dev/null 2>&1; rm -rf "$work"' EXIT
# shellcheck source=../lib.sh
. "$root/tests/lib.sh"
dev_up "$root" "$work/c" || { echo "FAIL: dev-cluster.sh up"; exit 1; }
"$root/deploy/dev-cluster.sh" down --dir "$work/c" >/dev/null
conf=$work/c/node1/stratad.conf
mk=$work/mk

try() {	# what, wanted line
	sed "s|^master_key = .*|master_key = $mk|" "$conf" >"$work/k.conf"
	out=$(timeout 20 "$STRATAD" -c "$work/k.conf" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qF "$2" &&
		ok "$1: exit 1, '$2'" || fail "$1: exit $rc: $out"
}

cp "$work/c/master.key" "$mk"
chmod 644 "$mk"
try "a key file of mode 0644" "$mk is mode 0644: others than its owner may read it (chmod 600 $mk)"
chmod 600 "$mk"
mv "$mk" "$mk.real"
ln -s "$mk.real" "$mk"
try "a symbolic link" "$mk is a symbolic link, which is not followed: name the key file itself"
rm "$mk"
head -c 40 /dev/urandom >"$mk"
chmod 600 "$mk"
try "40 bytes" "$mk holds 40 bytes: want 32 raw bytes or 64 hex digits"
printf '%064d' 0 | tr 0 z >"$mk"
try "64 bytes, not hex" "$mk: 64 bytes, but not all hex digits"
exit $bad
