#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/dev-cluster.sh as a developer meets it: a --dir with spaces and
# characters special to grep (its env file loads, the CLI reaches the
# node); a second stratad on the same config (refused, told why); `up`
# again with another --port (the node keeps its port, `up`
# says so and succeeds, env keeps pointing at it); `up` after kill -9;
# `down` with a pid file whose pid now belongs to another process (left
# alone); a daemon slow to exec; a directory an earlier up left half made;
# a relative --dir; bad arguments (exit 2).
#   STRATAD=path/to/stratad STRATA_CLI=path/to/strata dev-cluster.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${STRATAD:?}" "${STRATA_CLI:?}"
export STRATAD
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }
dev=$root/deploy/dev-cluster.sh
work=$(mktemp -d)
dir="$work/a dir [1]"
sleeper=
cleanup() {
	for d in "$dir" "$work/slow" "$work/rel" "$work/half"; do
		"$dev" down --dir "$d" >/dev/null 2>&1
	done
	[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../lib.sh
. "$root/tests/lib.sh"

dev_up "$root" "$dir" || { echo "FAIL: dev-cluster.sh up"; exit 1; }
first=$port
out=$( (. "$dir/env" && "$STRATA_CLI" admin key list) 2>&1) &&
	ok "a --dir with spaces and brackets: env loads, the CLI reaches the node" ||
	fail "env of a --dir with spaces: $out"
out=$("$dev" status --dir "$dir" 2>&1)
[ "$out" = "dev-cluster: node1: running (pid $(cat "$dir/node1/stratad.pid"))" ] &&
	ok "status: running" || fail "status: $out"

# A second stratad on the same config: refused at once, and told why.
out=$(timeout 20 "$STRATAD" -c "$dir/node1/stratad.conf" 2>&1)
rc=$?
[ $rc -eq 1 ] && printf '%s\n' "$out" | grep -q "is in use: is another stratad running with this state_dir" &&
	ok "a second stratad on the same state_dir exits 1 and says another one runs" ||
	fail "a second stratad on the same state_dir: exit $rc: $out"

# up again, with another --port: nothing to start, and it says where the
# node listens.
other=$(free_port)
out=$(timeout 30 "$dev" up --dir "$dir" --port "$other" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "up again with another --port: exit 0" ||
	fail "up again with another --port: exit $rc: $out"
printf '%s\n' "$out" | grep -q "node 1 already running (pid [0-9]*, port $first)" &&
	ok "it says the node already runs on its port ($first)" ||
	fail "up again: $out"
grep -qx "export STRATA_ENDPOINT=127.0.0.1:$first" "$dir/env" &&
	ok "env still points at port $first" || fail "env: $(head -n 1 "$dir/env")"

# kill -9, then up: started again, same port, same data.
(. "$dir/env" && "$STRATA_CLI" -q mb strata://devcluster-test) ||
	fail "mb before kill -9"
kill -9 "$(cat "$dir/node1/stratad.pid")"
sleep 0.3
out=$(timeout 30 "$dev" up --dir "$dir" 2>&1) &&
	printf '%s\n' "$out" | grep -q "node 1 serving on 127.0.0.1:$first " &&
	ok "up after kill -9: serving again on port $first" ||
	fail "up after kill -9: $out"
out=$( (. "$dir/env" && "$STRATA_CLI" ls) 2>&1)
printf '%s\n' "$out" | grep -q devcluster-test &&
	ok "the bucket made before kill -9 is there" || fail "ls after kill -9: $out"

# down with a pid file naming a process that is not this node's stratad.
"$dev" down --dir "$dir" >/dev/null
sleep 60 &
sleeper=$!
echo "$sleeper" >"$dir/node1/stratad.pid"
out=$("$dev" down --dir "$dir" 2>&1)
kill -0 "$sleeper" 2>/dev/null &&
	ok "down leaves a process that reused the pid alone ($out)" ||
	fail "down killed pid $sleeper, not a stratad: $out"

# A daemon slow to become stratad (a loaded machine: the child is still
# the forked shell, nohup, or here a wrapper): up waits, not 'exited'.
mkdir -p "$work/bin"
printf '#!/bin/sh\nsleep 1\nexec "%s" "$@"\n' "$STRATAD" >"$work/bin/slow"
chmod +x "$work/bin/slow"
out=$(STRATAD=$work/bin/slow timeout 60 "$dev" up --dir "$work/slow" --port "$(free_port)" 2>&1) &&
	ok "a daemon that takes a second to exec: up waits for it" ||
	fail "a slow exec: $out"
"$dev" down --dir "$work/slow" >/dev/null

# An earlier up that stopped after the CA (openssl failed, ^C): the
# certificates are made again, and the node serves.
mkdir -p "$work/half"
: >"$work/half/ca.pem"
: >"$work/half/master.key"
out=$(timeout 60 "$dev" up --dir "$work/half" --port "$(free_port)" 2>&1) &&
	ok "up over a half-made directory (empty ca.pem and master.key, no node.pem)" ||
	fail "up over a half-made directory: $out"
"$dev" down --dir "$work/half" >/dev/null

# A relative --dir: the node's files are named absolutely (stratad wants
# absolute directories; env is read from anywhere).
out=$(cd "$work" && timeout 30 "$dev" up --dir rel --port "$(free_port)" 2>&1) &&
	grep -q "^state_dir = $work/rel/node1/state\$" "$work/rel/node1/stratad.conf" &&
	(cd / && . "$work/rel/env" && "$STRATA_CLI" admin key list >/dev/null) &&
	ok "up --dir rel (relative): serves, absolute paths in its config and env" ||
	fail "up --dir rel: $out"
(cd "$work" && "$dev" down --dir rel >/dev/null)

for args in "--nodes 0" "--nodes" "--port" "--port x" "--frob"; do
	# shellcheck disable=SC2086
	"$dev" up --dir "$work/never" $args >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] && [ ! -e "$work/never" ] && ok "up $args: exit 2, nothing made" ||
		fail "up $args: exit $rc"
done
exit $bad
