#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# dataset.sh: the same WebDataset shards read by the same PyTorch
# DataLoader (a) from local files in the page cache and (b) from a local
# Strata node, in one run, and the goal:
#
#   Strata >= 0.9 x local-file samples/s
#
# Two variants: "images" (SHARDS x SHARD_MIB MiB shards of SAMPLE_KIB KiB
# incompressible samples, each a .jpg and a .cls member, as an ImageNet
# WebDataset) and "small" (SMALL_SHARDS x SMALL_SHARD_MIB MiB shards of
# SMALL_SAMPLE_KIB KiB samples, where per-sample costs dominate).
# The node is started with deploy/dev-cluster.sh (a temporary --dir, a free
# port, its default configuration) and the shards uploaded with
# `strata cp -r`; before timing, the local files are read once (into the
# page cache) and one epoch is read from the node (its caches).  Both sides use tests/bench/dataset_loader.py: the
# same shard order and split among workers (strata.plan), the same tar
# parser, DataLoader(num_workers=WORKERS, batch_size=BATCH).  Each
# measurement is one epoch; ROUNDS rounds alternate local and Strata, and a
# round's epoch number changes the shard order; the medians are compared
# (and the medians of the time to the first batch are printed).
# The loader, its workers and stratad share the machine's cores.
#
# Usage: tests/bench/dataset.sh
# Environment:
#   BUILD       meson build directory (default: <repo>/build)
#   STRATAD     daemon binary (default: $BUILD/daemon/stratad)
#   SHARDS=16 SHARD_MIB=64 SAMPLE_KIB=100        the "images" variant
#   SMALL_SHARDS=16 SMALL_SHARD_MIB=32 SMALL_SAMPLE_KIB=4  "small"
#   VARIANTS="images small"
#   WORKERS=2 BATCH=32 ROUNDS=3 PREFETCH=2 (shards ahead per worker)
#   DEVICE      a torch device (e.g. cuda): each batch is packed into one
#               tensor, pinned and copied there, as a training loop does
#   PYTHON      the python3 with torch (default /usr/bin/python3, Debian's)
#   TMPDIR      where the shards and the node go (default /tmp)
# For the large run: SHARDS=64 tests/bench/dataset.sh.
# Exit status 0 when it ran (PASS or MISS alike), 1 when a measurement
# failed, 77 when /usr/bin/python3 cannot import torch.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$root/build}
STRATAD=${STRATAD:-$BUILD/daemon/stratad}
SHARDS=${SHARDS:-16} SHARD_MIB=${SHARD_MIB:-64} SAMPLE_KIB=${SAMPLE_KIB:-100}
SMALL_SHARDS=${SMALL_SHARDS:-16} SMALL_SHARD_MIB=${SMALL_SHARD_MIB:-32}
SMALL_SAMPLE_KIB=${SMALL_SAMPLE_KIB:-4}
VARIANTS=${VARIANTS:-images small}
WORKERS=${WORKERS:-2} BATCH=${BATCH:-32} ROUNDS=${ROUNDS:-3}
PREFETCH=${PREFETCH:-2}
DEVICE=${DEVICE:-}
devarg=()
[[ -n $DEVICE ]] && devarg=(--device "$DEVICE")
py=${PYTHON:-/usr/bin/python3}
cli=$BUILD/client/strata
export STRATAD PYTHONPATH=$BUILD/client/python

for f in "$cli" "$STRATAD" "$BUILD/client/python/strata/__init__.py"; do
	[[ -e $f ]] || { echo "dataset.sh: $f not found; build first: ninja -C $BUILD" >&2; exit 1; }
done
"$py" -c 'import torch.utils.data' 2>/dev/null ||
	{ echo "dataset.sh: $py cannot import torch (apt-get install python3-torch)" >&2; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-dataset-bench.XXXXXX")
cleanup() {
	local rc=$?
	"$root/deploy/dev-cluster.sh" down --dir "$work/cluster" >/dev/null 2>&1 || true
	rm -rf -- "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say() { echo "== $*" >&2; }

# shellcheck source=../lib.sh
. "$root/tests/lib.sh"
port=$(free_port) || exit 1
"$root/deploy/dev-cluster.sh" up --dir "$work/cluster" --port "$port" >/dev/null
# shellcheck disable=SC1091
. "$work/cluster/env"
"$cli" -q mb strata://dsbench

# make_shards DIR N MIB KIB: N tar shards of about MIB MiB, samples of a KIB
# KiB .jpg (random bytes) and a .cls.
make_shards() {
	"$py" - "$@" <<'PY'
import io, os, sys, tarfile
d, n, mib, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(d)
per = max(1, mib * 1024 // (kib + 1))
for s in range(n):
    with tarfile.open(os.path.join(d, "shard-%05d.tar" % s), "w",
                      format=tarfile.USTAR_FORMAT) as t:
        for j in range(per):
            key = "%05d_%06d" % (s, j)
            for ext, data in (("jpg", os.urandom(kib * 1024)),
                              ("cls", str(j % 1000).encode())):
                ti = tarfile.TarInfo(key + "." + ext)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
PY
}

# CPU seconds the node has used so far (utime + stime).
node_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' \
		"/proc/$(cat "$work/cluster/node1/stratad.pid")/stat"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

results=()
status=0
for v in $VARIANTS; do
	case $v in
	images) n=$SHARDS mib=$SHARD_MIB kib=$SAMPLE_KIB ;;
	small) n=$SMALL_SHARDS mib=$SMALL_SHARD_MIB kib=$SMALL_SAMPLE_KIB ;;
	*) echo "dataset.sh: unknown variant $v" >&2; exit 2 ;;
	esac
	dir=$work/$v
	say "$v: $n shards x $mib MiB, $kib KiB samples: making and uploading"
	make_shards "$dir" "$n" "$mib" "$kib"
	"$cli" -q cp -r --jobs 2 "$dir/" "strata://dsbench/$v/"
	# Warm both sides alike before timing: the files into the page cache,
	# one untimed epoch from the node (its chunk cache and page cache).
	cat "$dir"/*.tar >/dev/null
	"$py" "$root/tests/bench/dataset_loader.py" strata "strata://dsbench/$v/" \
		--workers "$WORKERS" --batch "$BATCH" --seed 1 --epoch 0 \
		--prefetch "$PREFETCH" "${devarg[@]}" >/dev/null
	: >"$work/$v.local"
	: >"$work/$v.strata"
	for r in $(seq 1 "$ROUNDS"); do
		for src in local strata; do
			if [[ $src == local ]]; then where=$dir; else where=strata://dsbench/$v/; fi
			c0=$(node_cpu)
			out=$("$py" "$root/tests/bench/dataset_loader.py" "$src" "$where" \
				--workers "$WORKERS" --batch "$BATCH" --seed 1 --epoch "$r" \
				--prefetch "$PREFETCH" "${devarg[@]}") || { echo "dataset.sh: $v $src round $r failed" >&2; status=1; continue; }
			say "$v round $r $src: $out"
			c1=$(node_cpu)
			"$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["samples_per_s"], d["mb_per_s"], d["samples"], round(float(sys.argv[3]) - float(sys.argv[2]), 2), round(d["first_batch_s"] * 1000))' "$out" "$c0" "$c1" >>"$work/$v.$src"
		done
	done
	ls_=$(cut -d' ' -f1 "$work/$v.local" | median)
	ss_=$(cut -d' ' -f1 "$work/$v.strata" | median)
	lm=$(cut -d' ' -f2 "$work/$v.local" | median)
	sm=$(cut -d' ' -f2 "$work/$v.strata" | median)
	ns=$(head -n 1 "$work/$v.strata" | cut -d' ' -f3)
	nc=$(cut -d' ' -f4 "$work/$v.strata" | median)
	lf=$(cut -d' ' -f5 "$work/$v.local" | median)
	sf=$(cut -d' ' -f5 "$work/$v.strata" | median)
	ratio=$(awk -v a="$ss_" -v b="$ls_" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9 ? "PASS" : "MISS") }')
	results+=("$(printf '%-7s %5s x %3s MiB, %4s KiB samples (%s per epoch): local %9s samples/s (%7s MB/s, first batch %s ms)  strata %9s samples/s (%7s MB/s, first batch %s ms, stratad %s CPU-s per epoch)  ratio %s  goal >= 0.9  %s' \
		"$v" "$n" "$mib" "$kib" "$ns" "$ls_" "$lm" "$lf" "$ss_" "$sm" "$sf" "$nc" "$ratio" "$verdict")")
done

echo
echo "DataLoader(num_workers=$WORKERS, batch_size=$BATCH${DEVICE:+, pinned, copied to $DEVICE}), median of $ROUNDS epochs each, $(nproc) CPUs shared by loader and node:"
printf '%s\n' "${results[@]}"
exit $status
