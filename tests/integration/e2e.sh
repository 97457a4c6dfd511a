#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# End-to-end tests against a real node: start one with deploy/dev-cluster.sh
# on a free loopback port in a scratch directory, run the libstrata suite
# (test_e2e) and the CLI checks (cli.sh), then stop exactly that node.
# Inputs (set by tests/meson.build): E2E_BIN, STRATAD, STRATA_CLI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${E2E_BIN:?}" "${STRATAD:?}" "${STRATA_CLI:?}"
export STRATAD

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-e2e.XXXXXX")
cleanup() {
	"$root/deploy/dev-cluster.sh" down --dir "$work/cluster" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
. "$root/tests/lib.sh"

# Lifecycle rules applied every second (cli.sh waits for them).
export STRATA_DEV_TIERS="lifecycle_interval = 1"
# Connections on two I/O threads whatever the cores (auto is none on 1-2
# cores; the other suites run that way); an upload that stops sending is
# cut off after 3 s (test_e2e upload_stalled_cut_off), a connection that
# does not authenticate after 2 s (unauthenticated_closed).
export STRATA_DEV_NODE="io_threads = 2\nshutdown_grace_ms = 5000\nbody_timeout_ms = 3000\nauth_timeout_ms = 2000"
dev_up "$root" "$work/cluster" || { echo "e2e: FAIL: no node"; exit 1; }
# shellcheck disable=SC1091
. "$work/cluster/env"
grep -q "serving connections on 2 I/O thread" "$work/cluster/node1/stratad.log" ||
	{ echo "e2e: FAIL: the node did not start its 2 I/O threads"; exit 1; }

# A CA that did not sign the node's certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$work/other.key" -out "$work/other.pem" -days 30 \
	-subj "/CN=Someone else" 2>/dev/null
export E2E_OTHER_CA=$work/other.pem

rc=0
timeout 600 "$E2E_BIN" || rc=1
if [ -x "$here/cli.sh" ]; then
	timeout 300 "$here/cli.sh" "$STRATA_CLI" "$work" || rc=1
fi
# strata-bench both ways: every get answered and the first of each object
# compared byte for byte; --io event with its wrong uses refused.
if [ -n "${STRATA_BENCH:-}" ]; then
	for io in threads event; do
		out=$("$STRATA_BENCH" --workload get --bucket benchcheck --size 10K \
			--count 20 --concurrency 6 --ops 300 --prefix "$io/" --io "$io" \
			--json) || { echo "e2e: FAIL: strata-bench --io $io failed"; rc=1; }
		case $out in
		*'"ops":300,'*'"errors":0,"verified":20,"verify_failures":0'*)
			echo "e2e: strata-bench --io $io: 300 gets, 20 objects verified" ;;
		*) echo "e2e: FAIL: strata-bench --io $io: $out"; rc=1 ;;
		esac
	done
	# dataset-epoch over the 20 objects just uploaded: the header names
	# what it reads, not --size and --count.
	out=$("$STRATA_BENCH" --workload dataset-epoch --bucket benchcheck \
		--prefix threads/ --concurrency 2) ||
		{ echo "e2e: FAIL: strata-bench dataset-epoch failed"; rc=1; }
	case $out in
	*"bucket benchcheck: 20 shards under threads/, 2 workers"*"dataset: 20 shards"*)
		echo "e2e: strata-bench dataset-epoch: 20 shards" ;;
	*) echo "e2e: FAIL: strata-bench dataset-epoch: $out"; rc=1 ;;
	esac
	for bad in "--workload put --io event" "--workload get --threads 2" \
		   "--workload get --io bogus"; do
		brc=0
		# shellcheck disable=SC2086
		"$STRATA_BENCH" --bucket benchcheck $bad --ops 1 >/dev/null 2>&1 || brc=$?
		[ "$brc" = 2 ] || { echo "e2e: FAIL: strata-bench $bad: exit $brc, not a usage error"; rc=1; }
	done
fi

# kill -9 right after an acknowledged upload; `up` restarts the node with
# its data, keys and certificates, and the object is whole.
head -c 3000000 /dev/urandom >"$work/acked"
"$STRATA_CLI" -q mb strata://killtest && "$STRATA_CLI" -q cp "$work/acked" strata://killtest/obj || rc=1
kill -9 "$(cat "$work/cluster/node1/stratad.pid")"
sleep 0.2
"$root/deploy/dev-cluster.sh" up --dir "$work/cluster" --port "$port" >/dev/null || rc=1
if "$STRATA_CLI" cat strata://killtest/obj | cmp -s - "$work/acked"; then
	echo "e2e: acknowledged object intact after kill -9 and restart"
else
	echo "e2e: FAIL: object lost or damaged after kill -9"; rc=1
fi

# stop_node WHAT: SIGTERM the node, wait for it to exit (at most 30 s);
# prints the seconds it took.
stop_node() {
	local pid t0 t1
	pid=$(cat "$work/cluster/node1/stratad.pid")
	t0=$(date +%s%N)
	kill -TERM "$pid"
	for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "e2e: FAIL: no stop on SIGTERM $1" >&2
		return 1
	fi
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# SIGTERM while uploads stream and commit: each object is either whole or
# absent after the restart, and the node's stop touches nothing freed
# (puts whose commit was in flight when their connection closed used to
# reach the freed server: ASan in build-asan, checked on the log below).
head -c 9000000 /dev/urandom >"$work/big"
"$STRATA_CLI" -q mb strata://termtest || rc=1
for delay in 0.3 0.5 0.7 0.9 1.1; do
	pids=()
	for i in 1 2 3 4 5 6; do
		"$STRATA_CLI" -q cp "$work/big" "strata://termtest/$delay-$i" 2>/dev/null &
		pids+=($!)
	done
	bpid=
	if [ -n "${STRATA_BENCH:-}" ]; then	# many small puts in flight too
		"$STRATA_BENCH" --workload put --bucket termbench --size 64K \
			--count 50 --concurrency 8 --duration 5 >/dev/null 2>&1 &
		bpid=$!
	fi
	sleep "$delay"
	stop_node "during uploads" >/dev/null || rc=1
	# Its puts were in flight at the stop; it would retry for the rest
	# of its 5 s.
	if [ -n "$bpid" ]; then
		kill "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	wait "${pids[@]}" || true
	"$root/deploy/dev-cluster.sh" up --dir "$work/cluster" --port "$port" >/dev/null || rc=1
	for i in 1 2 3 4 5 6; do
		if "$STRATA_CLI" -q stat "strata://termtest/$delay-$i" >/dev/null 2>&1 &&
		   ! "$STRATA_CLI" cat "strata://termtest/$delay-$i" | cmp -s - "$work/big"; then
			echo "e2e: FAIL: termtest/$delay-$i half written after SIGTERM"; rc=1
		fi
	done
done
echo "e2e: SIGTERM during uploads: every object whole or absent"

# SIGTERM while a download is under way (its reader slow to start): the
# node sends GOAWAY, lets the request finish within shutdown_grace_ms,
# then stops; the download is whole.
head -c 40000000 /dev/urandom >"$work/termdl"
"$STRATA_CLI" -q cp "$work/termdl" strata://termtest/dl || rc=1
( "$STRATA_CLI" cat strata://termtest/dl | { sleep 1.5; cat >"$work/termdl.out"; } ) &
dpid=$!
sleep 0.5
ms=$(stop_node "during a download") || rc=1
drc=0
wait "$dpid" || drc=$?
if [ "$drc" = 0 ] && cmp -s "$work/termdl" "$work/termdl.out" &&
   grep -q "closing connections as their requests finish" "$work/cluster/node1/stratad.log"; then
	echo "e2e: SIGTERM during a download: it finished whole, the node stopped in $ms ms"
else
	echo "e2e: FAIL: a download under way at SIGTERM did not finish whole (exit $drc)"; rc=1
fi
"$root/deploy/dev-cluster.sh" up --dir "$work/cluster" --port "$port" >/dev/null || rc=1

# ... but a reader that never reads does not hold the node past the grace
# period (5 s here).
mkfifo "$work/stall"
"$STRATA_CLI" cat strata://termtest/dl >"$work/stall" &
spid=$!
exec 9<"$work/stall"	# opened, never read
sleep 1
ms=$(stop_node "with a stalled download") || rc=1
if [ -n "$ms" ] && [ "$ms" -ge 4000 ] && [ "$ms" -lt 20000 ] &&
   tail -n 5 "$work/cluster/node1/stratad.log" | grep -q "stopped cleanly"; then
	echo "e2e: SIGTERM with a stalled download: stopped cleanly in $ms ms (grace 5000)"
else
	echo "e2e: FAIL: SIGTERM with a stalled download: stopped in ${ms:-?} ms"; rc=1
fi
exec 9<&-
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
"$root/deploy/dev-cluster.sh" up --dir "$work/cluster" --port "$port" >/dev/null || rc=1

# A node whose certificate has expired is refused, with a clear error.
exp=$work/expired
mkdir -p "$exp/state" "$exp/hot" "$exp/cold"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$exp/node.key" -out "$exp/node.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$exp/ext"
openssl x509 -req -in "$exp/node.csr" -CA "$work/cluster/ca.pem" \
	-CAkey "$work/cluster/ca.key" -CAcreateserial -out "$exp/node.pem" \
	-days -1 -extfile "$exp/ext" 2>/dev/null
# (A port taken between free_port and the bind: try another.)
for try in 1 2 3; do
	port2=$(free_port) || exit 1
	sed -e "s|$work/cluster/node1/|$exp/|g" -e "s|^listen = .*|listen = 127.0.0.1:$port2|" \
		-e "s|^cert = .*|cert = $exp/node.pem|" -e "s|^key = .*|key = $exp/node.key|" \
		"$work/cluster/node1/stratad.conf" >"$exp/stratad.conf"
	"$STRATAD" -c "$exp/stratad.conf" 2>"$exp/log" &
	exp_pid=$!
	for _ in $(seq 1 100); do
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port2" 2>/dev/null && break
		kill -0 "$exp_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$exp_pid" 2>/dev/null && break
	grep -qi "address already in use" "$exp/log" || break
done
if ! kill -0 "$exp_pid" 2>/dev/null; then
	echo "e2e: FAIL: the node with an expired certificate did not start; its log:"
	sed 's/^/  /' "$exp/log"; rc=1
elif STRATA_ENDPOINT=127.0.0.1:$port2 "$STRATA_CLI" -q ls >/dev/null 2>"$exp/err"; then
	echo "e2e: FAIL: a node with an expired certificate was trusted"; rc=1
elif ! grep -qi "certificate\|verif" "$exp/err"; then
	echo "e2e: FAIL: no clear error for an expired certificate: $(cat "$exp/err")"; rc=1
else
	echo "e2e: expired certificate refused: $(cat "$exp/err")"
fi
kill -TERM "$exp_pid" 2>/dev/null || true; wait "$exp_pid" || true

# The node survived all of it, and stops cleanly on SIGTERM.
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || { echo "e2e: node no longer listening"; rc=1; }
"$root/deploy/dev-cluster.sh" down --dir "$work/cluster"
if grep -E "^(error|warn) " "$work/cluster/node1/stratad.log" | grep -v "authentication failed\|closing connection" ; then
	echo "e2e: the node logged errors (above)"
fi
# Under the sanitizers (build-asan), a report is a failure even when the
# node stopped cleanly (LeakSanitizer reports after that line).
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$work/cluster/node1/stratad.log"; then
	echo "e2e: FAIL: the node's sanitizers reported:"
	grep -A 30 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$work/cluster/node1/stratad.log" | head -n 80
	rc=1
fi
grep -q "stopped cleanly" "$work/cluster/node1/stratad.log" || { echo "e2e: no clean stop"; grep -v "^info" "$work/cluster/node1/stratad.log" | head -n 60; rc=1; }
exit $rc
