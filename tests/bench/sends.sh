#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sends.sh: the connection loops' socket sends through their own io_uring
# (`[node] io_uring_sends = true`, the default) against write(2) per
# connection through libuv (`false`), in one run: two nodes started side by
# side with deploy/dev-cluster.sh, the same objects uploaded to each, and
# strata-bench runs alternating between them (on, off, on, off, ...):
#
#   GET 4 KiB objects, CONC connections (--io event): req/s and stratad's
#                      CPU µs per GET
#   GET 64 MiB objects, 2 connections: MB/s and stratad's CPU s per GB
#
# The ratio on/off of each median is printed; there is no goal: the
# figures say what the ring buys on this machine (README, Serving).
#
# Usage: tests/bench/sends.sh
# Environment:
#   BUILD       meson build directory (default: <repo>/build)
#   IO_THREADS  the nodes' [node] io_threads (default auto)
#   ROUNDS=3    runs per measurement and node (the median is used)
#   SECS=3      seconds per run
#   CONC=64     connections for the 4 KiB GETs
#   TMPDIR      where the nodes go (default /tmp)
# Exit status 0 when it ran, 1 when a measurement failed.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$root/build}
IO_THREADS=${IO_THREADS:-auto}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-3} CONC=${CONC:-64}
bench=$BUILD/client/strata-bench
stratad=${STRATAD:-$BUILD/daemon/stratad}
for f in "$bench" "$stratad"; do
	[[ -x $f ]] || { echo "sends.sh: $f not found; build first: ninja -C $BUILD" >&2; exit 1; }
done
# shellcheck disable=SC1091
. "$root/tests/lib.sh"	# free_port

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-sends-bench.XXXXXX")
cleanup() {
	for v in on off; do
		[[ -d $work/$v ]] && "$root/deploy/dev-cluster.sh" down --dir "$work/$v" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
jget() { grep -o "\"$2\":[-0-9.e]*" <<<"$1" | head -n 1 | cut -d: -f2; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(cat "$work/$1/node1/stratad.pid")/stat"; }
tck=$(getconf CLK_TCK)

for v in on off; do
	flag=true
	[[ $v == off ]] && flag=false
	port=$(free_port)
	STRATA_DEV_NODE="io_threads = $IO_THREADS
io_uring_sends = $flag" STRATAD=$stratad \
		"$root/deploy/dev-cluster.sh" up --dir "$work/$v" --port "$port" >/dev/null
	(
		# shellcheck disable=SC1091
		. "$work/$v/env"
		"$bench" --workload get --bucket sends-bench --size 4K --count 1000 \
			--concurrency 8 --ops 1000 --prefix small/ --json >/dev/null
		"$bench" --workload get --bucket sends-bench --size 64M --count 2 \
			--concurrency 2 --ops 2 --prefix big/ --json >/dev/null
	)
done

declare -A rps us mbs sgb
for r in $(seq 1 "$ROUNDS"); do
	for v in on off; do
		# shellcheck disable=SC1091
		. "$work/$v/env"
		c0=$(cpu_ticks "$v")
		o=$("$bench" --workload get --bucket sends-bench --size 4K --count 1000 \
			--concurrency "$CONC" --duration "$SECS" --prefix small/ --io event --json)
		c1=$(cpu_ticks "$v")
		ops=$(jget "$o" ops)
		rps[$v]+=" $(jget "$o" ops_per_s)"
		us[$v]+=" $(awk -v a="$c0" -v b="$c1" -v n="$ops" -v t="$tck" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')"
		c0=$(cpu_ticks "$v")
		o=$("$bench" --workload get --bucket sends-bench --size 64M --count 2 \
			--concurrency 2 --duration "$SECS" --prefix big/ --json)
		c1=$(cpu_ticks "$v")
		mbs[$v]+=" $(jget "$o" mb_per_s)"
		sgb[$v]+=" $(awk -v a="$c0" -v b="$c1" -v m="$(jget "$o" mb_per_s)" -v s="$SECS" -v t="$tck" 'BEGIN { printf "%.3f", (b - a) / t / (m * s / 1000) }')"
		echo "round $r, io_uring_sends $v: 4 KiB ${rps[$v]##* } req/s (${us[$v]##* } µs CPU/GET), 64 MiB ${mbs[$v]##* } MB/s (${sgb[$v]##* } CPU-s/GB)" >&2
	done
done

# shellcheck disable=SC2086
{
	m_rps_on=$(median ${rps[on]}) m_rps_off=$(median ${rps[off]})
	m_us_on=$(median ${us[on]}) m_us_off=$(median ${us[off]})
	m_mbs_on=$(median ${mbs[on]}) m_mbs_off=$(median ${mbs[off]})
	m_sgb_on=$(median ${sgb[on]}) m_sgb_off=$(median ${sgb[off]})
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Socket sends: io_uring (on) vs write(2) (off), $(nproc) CPUs, io_threads = $IO_THREADS; median of $ROUNDS, $SECS s runs"
echo
echo "| metric | on | off | on / off |"
echo "|---|---|---|---|"
echo "| GET 4 KiB, $CONC connections, req/s | $m_rps_on | $m_rps_off | $(ratio "$m_rps_on" "$m_rps_off") |"
echo "| stratad CPU µs per 4 KiB GET | $m_us_on | $m_us_off | $(ratio "$m_us_on" "$m_us_off") |"
echo "| GET 64 MiB, 2 connections, MB/s | $m_mbs_on | $m_mbs_off | $(ratio "$m_mbs_on" "$m_mbs_off") |"
echo "| stratad CPU s per GB | $m_sgb_on | $m_sgb_off | $(ratio "$m_sgb_on" "$m_sgb_off") |"
echo
echo "Command: tests/bench/sends.sh (IO_THREADS=$IO_THREADS ROUNDS=$ROUNDS SECS=$SECS CONC=$CONC)"
