#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# stratad refusing to start over a master key file it must not use: exit 1
# and a log line that says what is wrong with the file (its mode, a
# symbolic link, its length, not hex), not only "bad key file".  A TLS
# private key that every user may read is warned about.  Started
# with few open files, it serves fewer connections and says so.
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

# A client's control bytes (here in its access key id, whose first 4 bytes
# are logged when authentication fails) reach the log escaped, never raw.
"$root/deploy/dev-cluster.sh" up --dir "$work/c" >/dev/null 2>&1 ||
	fail "dev-cluster up again"
(. "$work/c/env" && STRATA_ACCESS_KEY=$'A\e\a\nfake line' \
	timeout 20 "${STRATA_CLI:-$root/build/client/strata}" ls >/dev/null 2>&1)
"$root/deploy/dev-cluster.sh" down --dir "$work/c" >/dev/null
line=$(grep "authentication failed for an unknown key id" "$work/c/node1/stratad.log")
[ "$line" = "${line//[$'\x01'-$'\x1f'$'\x7f']/}" ] &&
	printf '%s\n' "$line" | grep -qF 'unknown key id (A\x1b\x07\x0a..., 13 bytes) from' &&
	ok "control bytes from a client are logged as \\xNN" ||
	fail "the log line: $(printf '%s' "$line" | od -c | head -n 3)"

# A TLS private key that every user may read: stratad serves, and warns.
tk=$work/tls.key
cp "$work/c/node.key" "$tk"
chmod 644 "$tk"
sed "s|^key = .*|key = $tk|" "$conf" >"$work/t.conf"
"$STRATAD" -c "$work/t.conf" >"$work/t.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	grep -q "serving on" "$work/t.log" && break
	sleep 0.1
done
grep -qF "warn tls: $tk is mode 0644: every user may read the node's private key (chmod o-rwx $tk)" "$work/t.log" &&
	ok "a TLS key of mode 0644: served, with a warning" ||
	fail "a TLS key of mode 0644: $(cat "$work/t.log")"
kill -TERM "$pid"
wait "$pid"
# Few open files (ulimit -n 400, hard too): stratad serves fewer
# connections than max_connections, says so, and a flood of connections
# leaves it the descriptors its store needs.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1024 ]; then
	echo "note: hard limit of open files $hard: the limit checks are skipped"
	exit $bad
fi
cp "$work/c/master.key" "$mk"
chmod 600 "$mk"
sed "s|^master_key = .*|master_key = $mk|" "$conf" >"$work/k.conf"
port=$(sed -n 's/^listen = 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$conf")
(ulimit -n 400 && exec "$STRATAD" -c "$work/k.conf") >"$work/fd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	grep -q "serving on" "$work/fd.log" && break
	sleep 0.1
done
grep -q "warn main: serving at most [0-9]* connections, not \[node\] max_connections (4096): open files are limited to 400" "$work/fd.log" &&
	ok "ulimit -n 400: it says it serves fewer connections" ||
	fail "ulimit -n 400: $(cat "$work/fd.log")"
cap=$(sed -n 's/.*serving at most \([0-9]*\) connections.*/\1/p' "$work/fd.log")
# 350 connections at once, held while the descriptors are counted.
/usr/bin/python3 - "$port" "$pid" "$cap" <<'PY' && ok "350 connections: stratad keeps 240 or more descriptors free" || fail "350 connections"
import os, socket, sys, time
port, pid, cap = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ss = []
for i in range(350):
    try:
        ss.append(socket.create_connection(('127.0.0.1', port), 5))
    except OSError as e:
        sys.exit('connection %d: %s' % (i, e))
time.sleep(1)
n = len(os.listdir('/proc/%s/fd' % pid))
print('descriptors open: %d (cap %d)' % (n, cap))
sys.exit(0 if n <= 400 - 240 else 1)
PY
kill -TERM "$pid"
wait "$pid"
rc=$?
[ $rc -eq 0 ] && ok "and stops cleanly" || fail "exit $rc after SIGTERM: $(tail -n 3 "$work/fd.log")"
exit $bad
