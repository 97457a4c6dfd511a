#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tiers.sh: an epoch over a dataset that lives in an emulated slow cold
# tier, read in plan order, with prestaging on and off, against the same
# epoch over the same dataset in the hot tier, in one run, and the goal:
#
#   epoch from cold with prestaging  >= 0.9 x the all-hot epoch (shards/s)
#
# One node (deploy/dev-cluster.sh, a temporary --dir, a free port) whose
# cold tier adds DELAY_US of latency to every read ([tiers]
# cold_read_delay_us, a test knob: overlapping reads, as on an array of
# disks or a remote tier) and caps cold reads at COLD_BW bytes/s.
# strata-bench uploads COUNT shards of SIZE bytes twice, to buckets "hot"
# and "cold"; a lifecycle rule moves every chunk of "cold" to the cold
# tier, then the rule is removed.  Each measurement runs on a freshly
# restarted node (an empty chunk cache, no plans, no heat), and a cold
# measurement that promoted chunks is followed by the rule again, so every
# cold epoch starts all cold.  The reader is strata-bench's dataset-epoch
# workload: libstrata's dataset reader, one loader worker, its default
# prefetch, shuffled plan order; with prestaging the reader sends its plan
# as HINTs (PROTOCOL.md 5.14), without (--no-hint) it does not.  Every
# number is the median of ROUNDS runs.
#
# Usage: tests/bench/tiers.sh
# Environment:
#   BUILD          meson build directory (default: <repo>/build)
#   COUNT=512      shards
#   SIZE=1M        shard size (strata-bench syntax)
#   DELAY_US=20000 cold read latency
#   COLD_BW=1G     cold read bandwidth cap, bytes/s (K/M/G)
#   ROUNDS=3
#   TMPDIR         where the temporary directory goes (default /tmp)
# Exit status 0 when it ran (PASS or MISS alike), 1 when a step failed.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$root/build}
COUNT=${COUNT:-512}
SIZE=${SIZE:-1M}
DELAY_US=${DELAY_US:-20000}
COLD_BW=${COLD_BW:-1G}
ROUNDS=${ROUNDS:-3}
bench=$BUILD/client/strata-bench
cli=$BUILD/client/strata
export STRATAD=$BUILD/daemon/stratad

for f in "$bench" "$cli" "$STRATAD"; do
	if [[ ! -x $f ]]; then
		echo "tiers.sh: $f not found; build first: ninja -C $BUILD" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-tiers-bench.XXXXXX")
cluster=$work/cluster
cleanup() {
	"$root/deploy/dev-cluster.sh" down --dir "$cluster" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
. "$root/tests/lib.sh"
port=$(free_port) || exit 1

export STRATA_DEV_TIERS="cold_read_delay_us = $DELAY_US\ncold_read_bandwidth = $COLD_BW\nlifecycle_interval = 1"
restart() {
	"$root/deploy/dev-cluster.sh" down --dir "$cluster" >/dev/null
	"$root/deploy/dev-cluster.sh" up --dir "$cluster" --port "$port" >/dev/null
}
"$root/deploy/dev-cluster.sh" up --dir "$cluster" --port "$port" >/dev/null
# shellcheck disable=SC1091
. "$cluster/env"

epoch() {	# bucket, extra strata-bench options... -> shards/s
	local b=$1
	shift
	"$bench" --workload dataset-epoch --bucket "$b" --prefix ds/ \
		--count "$COUNT" --size "$SIZE" --concurrency 1 --json "$@" |
		sed -n 's/.*"shards_per_s":\([0-9.]*\).*/\1/p'
}

# Everything of bucket "cold" in the cold tier: the rule, until no live
# byte of the bucket's size is left hot, then no rule.
all_cold() {
	local i hot
	"$cli" lifecycle set strata://cold/ cold 0
	for i in $(seq 1 600); do
		hot=$("$cli" admin tiers --json |
		      sed -n 's/.*"tier.hot.live_bytes":\([0-9]*\).*/\1/p')
		# the "hot" bucket's shards stay hot: cold is done when hot
		# holds no more than one copy of the dataset
		if [[ -n $hot ]] && ((hot <= bytes)); then
			"$cli" lifecycle rm strata://cold >/dev/null
			return 0
		fi
		sleep 0.1
	done
	echo "tiers.sh: the dataset did not go cold in 60 s" >&2
	return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== uploading $COUNT x $SIZE twice"
"$cli" -q mb strata://hot
"$cli" -q mb strata://cold
epoch hot >/dev/null
epoch cold >/dev/null
bytes=$("$cli" admin tiers --json | sed -n 's/.*"tier.hot.live_bytes":\([0-9]*\).*/\1/p')
bytes=$((bytes / 2))
all_cold

hot=() off=() on=()
for r in $(seq 1 "$ROUNDS"); do
	restart
	hot+=("$(epoch hot)")
	restart
	off+=("$(epoch cold --no-hint)")
	all_cold
	restart
	on+=("$(epoch cold)")
	all_cold
	echo "round $r: hot ${hot[-1]}, cold without prestaging ${off[-1]}, cold with prestaging ${on[-1]} shards/s"
done
h=$(printf '%s\n' "${hot[@]}" | median)
f=$(printf '%s\n' "${off[@]}" | median)
o=$(printf '%s\n' "${on[@]}" | median)
awk -v h="$h" -v f="$f" -v o="$o" -v n="$COUNT" -v s="$SIZE" -v d="$DELAY_US" -v bw="$COLD_BW" 'BEGIN {
	printf "epoch of %d x %s shards, cold tier +%.1f ms per read, %s/s (medians):\n", n, s, d / 1000, bw
	printf "  all hot                       %8.1f shards/s\n", h
	printf "  cold, no prestaging           %8.1f shards/s  %.2fx hot\n", f, f / h
	printf "  cold, prestaging (HINT plan)  %8.1f shards/s  %.2fx hot  goal >= 0.9x: %s\n", o, o / h, ((o / h >= 0.9) ? "PASS" : "MISS")
}'
