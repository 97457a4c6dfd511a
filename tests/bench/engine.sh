#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# engine.sh: the storage-engine benchmark beside this machine's own
# baselines, measured in one run on the same directory, and the goals:
#
#   get 64 MiB from page cache  >= 0.5 x one core's AES-256-GCM, per core used
#   put 64 MiB incompressible   >= 0.6 x min(SHA-256 one core,
#                                            fdatasync'd write bandwidth)
#   4 KiB puts                  >= 20,000/s, or >= 20 x back-to-back lone
#                                  fdatasyncs where that is lower
#   4 KiB gets                  >= 100,000/s on 2 cores
#
# Usage: tests/bench/engine.sh [DIR]
#   DIR            where to measure (default /var/tmp); a fresh directory
#                  is made inside it and removed at the end.
# Environment:
#   BUILD          meson build directory (default: <repo>/build)
#   SIZE_MIB=64 COUNT=8 SMALL_OPS=20000 SMALL_GETS=100000 CONC=16
#   SECONDS_LIMIT=5 GET_SECONDS=1   engine_bench's options
#   RAW_MIB=1024   size of the raw sequential write/read baseline
#   REPEAT=3       baseline write/read runs (the median is used)
#
# Needs fio and the openssl CLI; installs them with apt-get when missing
# and run as root, else falls back to dd (and no crypto baselines).
# MB is 10^6 bytes throughout; openssl's "k" is 1000 bytes.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$root/build}
SIZE_MIB=${SIZE_MIB:-64}
COUNT=${COUNT:-8}
SMALL_OPS=${SMALL_OPS:-20000}
SMALL_GETS=${SMALL_GETS:-100000}
CONC=${CONC:-16}
SECONDS_LIMIT=${SECONDS_LIMIT:-5}
GET_SECONDS=${GET_SECONDS:-1}
RAW_MIB=${RAW_MIB:-1024}
REPEAT=${REPEAT:-3}
base=${1:-/var/tmp}

bench=$BUILD/tests/engine_bench
if [[ ! -x $bench ]]; then
	echo "engine.sh: $bench not found; build it first:" \
	     "ninja -C ${BUILD} tests/engine_bench (or set BUILD=...)" >&2
	exit 1
fi
if [[ ! -d $base ]]; then
	echo "engine.sh: $base is not a directory" >&2
	exit 1
fi

work=$(mktemp -d "$base/strata-engine-bench.XXXXXX")
cleanup() { rm -rf -- "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

notes=()
note() { notes+=("$*"); echo "note: $*" >&2; }

# ---- tools ----

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have fio || missing+=(fio)
have openssl || missing+=(openssl)
if ((${#missing[@]})); then
	if [[ $(id -u) == 0 ]] && have apt-get; then
		echo "installing ${missing[*]} with apt-get" >&2
		export DEBIAN_FRONTEND=noninteractive
		if ! apt-get install -y "${missing[@]}" >/dev/null 2>&1; then
			apt-get update >/dev/null 2>&1 || true
			apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
				note "apt-get install ${missing[*]} failed"
		fi
	else
		note "${missing[*]} missing and not root (or no apt-get): not installed"
	fi
fi
have fio || note "no fio: dd fallbacks (no fdatasync latency percentiles)"
have openssl || note "no openssl CLI: no AES-256-GCM / SHA-256 baselines"

# ---- helpers ----

# calc EXPR: awk arithmetic, printed with %.6g
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
# num VALUE: VALUE if it is a positive number, else n/a
num() { if [[ $1 =~ ^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]] && awk -v v="$1" 'BEGIN { exit !(v > 0) }'; then echo "$1"; else echo n/a; fi; }
# fmt FORMAT VALUE: printf through awk, "n/a" passes through
fmt() { if [[ $2 == n/a ]]; then echo n/a; else awk -v v="$2" "BEGIN { printf \"$1\", v }"; fi; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# fio_get FILE SECTION KEY: the first "KEY" : value inside jobs[0].SECTION
# of fio's JSON output (fio indents its sections by six spaces).
fio_get() {
	awk -v sec="$2" -v key="\"$3\" :" '
		/^      "[a-z_]+" : [{]/ {
			match($0, /"[a-z_]+"/)
			cur = substr($0, RSTART + 1, RLENGTH - 2)
		}
		cur == sec && index($0, key) && !done {
			v = $0; sub(/.*: /, "", v); sub(/,.*$/, "", v)
			print v; done = 1
		}' "$1"
}

# dd_rate: bytes per second from dd's summary line on stdin
dd_rate() {
	awk '/copied/ { b = $1; for (i = 1; i <= NF; i++) if ($i == "s,") t = $(i - 1)
			 if (t > 0) printf "%.6g\n", b / t }'
}

# ---- baselines ----

echo "== baselines in $work ($(stat -f -c %T "$work"), $(nproc) CPUs, $(uname -r))" >&2

raw=$work/raw
w_tool="dd"
writes=()
for ((i = 0; i < REPEAT; i++)); do
	rm -f "$raw"
	if have fio; then
		w_tool="fio psync 1 MiB writes, fdatasync every 64 MiB and at the end"
		fio --name=w --filename="$raw" --rw=write --bs=1M --size="${RAW_MIB}M" \
		    --ioengine=psync --fdatasync=64 --end_fsync=1 \
		    --output-format=json >"$work/w.json"
		writes+=("$(fio_get "$work/w.json" write bw_bytes)")
	else
		w_tool="dd bs=1M conv=fdatasync"
		writes+=("$(dd if=/dev/zero of="$raw" bs=1M count="$RAW_MIB" \
			conv=fdatasync 2>&1 | dd_rate)")
	fi
done
write_bps=$(num "$(median "${writes[@]}")")

reads=()
dd if="$raw" of=/dev/null bs=1M 2>/dev/null	# into the page cache
for ((i = 0; i < REPEAT; i++)); do
	reads+=("$(dd if="$raw" of=/dev/null bs=1M 2>&1 | dd_rate)")
done
read_bps=$(num "$(median "${reads[@]}")")
rm -f "$raw"

sync_p50=n/a sync_p99=n/a
if have fio; then
	s_tool="fio psync 4 KiB appends, fdatasync after each"
	fio --name=s --filename="$work/sync" --rw=write --bs=4k --size=16M \
	    --ioengine=psync --fdatasync=1 --output-format=json >"$work/s.json"
	sync_ops=$(num "$(fio_get "$work/s.json" write iops)")
	sync_p50=$(num "$(fio_get "$work/s.json" sync 50.000000)")
	sync_p99=$(num "$(fio_get "$work/s.json" sync 99.000000)")
	[[ $sync_p50 == n/a ]] || sync_p50=$(calc "$sync_p50 / 1000")
	[[ $sync_p99 == n/a ]] || sync_p99=$(calc "$sync_p99 / 1000")
else
	s_tool="dd bs=4k oflag=dsync (O_DSYNC writes)"
	sync_ops=$(num "$(dd if=/dev/zero of="$work/sync" bs=4k count=4096 \
		oflag=dsync 2>&1 | dd_rate)")
	[[ $sync_ops == n/a ]] || sync_ops=$(calc "$sync_ops / 4096")
fi
rm -f "$work/sync"

aes_mbs=n/a sha_mbs=n/a
if have openssl; then
	# one core; the 16384-byte column is in 1000s of bytes per second
	speed() {
		openssl speed -evp "$1" -bytes 16384 -seconds 3 2>/dev/null |
			awk 'END { v = $NF; sub(/k$/, "", v); printf "%.6g", v / 1000 }'
	}
	aes_mbs=$(num "$(speed aes-256-gcm)")
	sha_mbs=$(num "$(speed sha256)")
fi

# ---- the engine ----

echo "== engine_bench in $work" >&2
"$bench" --dir "$work" --size-mib "$SIZE_MIB" --count "$COUNT" \
	--small-ops "$SMALL_OPS" --small-gets "$SMALL_GETS" \
	--concurrency "$CONC" --seconds "$SECONDS_LIMIT" \
	--get-seconds "$GET_SECONDS" \
	--json-file "$work/engine.json"
ej() {
	local v
	v=$(grep -o "\"$1\":[^,}]*" "$work/engine.json" | head -n 1 | cut -d: -f2)
	echo "${v:-n/a}"
}

# ---- the table ----

write_mbs=n/a read_mbs=n/a
[[ $write_bps == n/a ]] || write_mbs=$(calc "$write_bps / 1e6")
[[ $read_bps == n/a ]] || read_mbs=$(calc "$read_bps / 1e6")
verdict() {	# verdict VALUE TARGET: PASS when VALUE >= TARGET
	if [[ $1 == n/a || $2 == n/a ]]; then
		echo n/a
	elif awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; then
		echo PASS
	else
		echo MISS
	fi
}
ratio() { if [[ $1 == n/a || $2 == n/a ]]; then echo n/a; else calc "$1 / $2"; fi; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }

# get 64 MiB from the page cache, per core used, against AES-GCM
for c in 1 2; do
	v=$(ej "get_rand_c${c}_mb_s_per_core")
	r=$(ratio "$v" "$aes_mbs")
	row "get ${SIZE_MIB} MiB random, $c at a time: MB/s per core used ($(fmt %.0f "$(ej get_rand_c${c}_mb_s)") MB/s on $(fmt %.2f "$(ej get_rand_c${c}_cores)") cores)" \
	    "$(fmt %.0f "$v")" "AES-256-GCM one core $(fmt %.0f "$aes_mbs") MB/s" \
	    "$(fmt %.2f "$r")" "≥ 0.5" "$(verdict "$r" 0.5)"
done

# put 64 MiB incompressible against min(SHA-256, synced write bandwidth)
put_base=n/a
if [[ $sha_mbs != n/a && $write_mbs != n/a ]]; then
	put_base=$(calc "$sha_mbs < $write_mbs ? $sha_mbs : $write_mbs")
fi
v=$(ej put_rand_mb_s)
r=$(ratio "$v" "$put_base")
row "put ${SIZE_MIB} MiB random: MB/s ($(fmt %.2f "$(ej put_rand_cores)") cores)" \
    "$(fmt %.0f "$v")" \
    "min(SHA-256 $(fmt %.0f "$sha_mbs"), synced write $(fmt %.0f "$write_mbs")) = $(fmt %.0f "$put_base") MB/s" \
    "$(fmt %.2f "$r")" "≥ 0.6" "$(verdict "$r" 0.6)"

# 4 KiB puts against back-to-back fdatasyncs
target=20000
[[ $sync_ops == n/a ]] || target=$(calc "20 * $sync_ops < 20000 ? 20 * $sync_ops : 20000")
v=$(ej put_4k_ops_s)
row "put 4 KiB, $CONC in flight: ops/s (p50 $(fmt %.0f "$(ej put_4k_p50_us)") µs, p99 $(fmt %.0f "$(ej put_4k_p99_us)") µs)" \
    "$(fmt %.0f "$v")" \
    "fdatasync'd 4 KiB appends $(fmt %.0f "$sync_ops")/s (p50 $(fmt %.0f "$sync_p50") µs, p99 $(fmt %.0f "$sync_p99") µs)" \
    "$(fmt %.2f "$(ratio "$v" "$sync_ops")")" \
    "≥ min(20,000/s, 20× baseline) = $(fmt %.0f "$target")/s" "$(verdict "$v" "$target")"

# 4 KiB gets
v=$(ej get_4k_ops_s)
row "get 4 KiB, $CONC in flight: ops/s ($(fmt %.2f "$(ej get_4k_cores)") cores; p50 $(fmt %.0f "$(ej get_4k_p50_us)") µs, p99 $(fmt %.0f "$(ej get_4k_p99_us)") µs)" \
    "$(fmt %.0f "$v")" "—" "—" "≥ 100,000/s on 2 cores ($(nproc) here)" \
    "$(verdict "$v" 100000)"

# for reference, no goal
v=$(ej put_text_mb_s)
row "put ${SIZE_MIB} MiB text (stored/raw $(fmt %.3f "$(ej stored_ratio_text)")): MB/s ($(fmt %.2f "$(ej put_text_cores)") cores)" \
    "$(fmt %.0f "$v")" "synced write $(fmt %.0f "$write_mbs") MB/s" \
    "$(fmt %.2f "$(ratio "$v" "$write_mbs")")" "—" "—"
for c in 1 2; do
	v=$(ej "get_rand_c${c}_mb_s")
	row "get ${SIZE_MIB} MiB random, $c at a time: MB/s" "$(fmt %.0f "$v")" \
	    "page-cache read (dd) $(fmt %.0f "$read_mbs") MB/s" \
	    "$(fmt %.2f "$(ratio "$v" "$read_mbs")")" "—" "—"
done
for c in 1 2; do
	v=$(ej "get_text_c${c}_mb_s")
	row "get ${SIZE_MIB} MiB text, $c at a time: MB/s ($(fmt %.2f "$(ej get_text_c${c}_cores)") cores)" \
	    "$(fmt %.0f "$v")" "page-cache read (dd) $(fmt %.0f "$read_mbs") MB/s" \
	    "$(fmt %.2f "$(ratio "$v" "$read_mbs")")" "—" "—"
done

echo
echo "Strata engine vs. this machine ($(nproc) CPUs, $(stat -f -c %T "$work") at $base; MB = 10^6 bytes)"
echo
echo "| metric | Strata | baseline | ratio | goal | result |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
pass=$(printf '%s\n' "${rows[@]}" | grep -c '| PASS |$' || true)
goals=$(printf '%s\n' "${rows[@]}" | grep -cE '\| (PASS|MISS|n/a) \|$' || true)
echo "goals met: $pass of $goals"
echo "baselines: write: $w_tool, median of $REPEAT x $RAW_MIB MiB;" \
     "read: dd bs=1M from the page cache, median of $REPEAT;" \
     "sync: $s_tool; crypto: openssl speed -evp, 16 KiB, 3 s, one core"
echo "engine: commit rounds $(ej commit_rounds), commits $(ej commits)," \
     "dedup hits $(ej dedup_hits), libuv pool $(ej threadpool)"
for n in "${notes[@]+"${notes[@]}"}"; do
	echo "note: $n"
done
