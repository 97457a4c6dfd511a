#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Quick start on a fresh Debian 12 machine (root, or a user with sudo):
#   1. install what is missing and build (build/),
#   2. start a local node with TLS on 127.0.0.1 (deploy/dev-cluster.sh),
#   3. make a WebDataset-style demo dataset (tar shards of jpg+json samples)
#      and upload it with the strata CLI, in parallel,
#   4. make the training job a key of its own whose access policy lets it
#      only read strata://demo/train/ (strata-policy(7)),
#   5. read it back with that key as a training loader would:
#      strata.Dataset (the Python binding over libstrata's dataset reader:
#      shards listed once, shuffled per epoch from a seed, prefetched) under
#      a PyTorch DataLoader with 2 workers, WebDataset samples out, every
#      sample checked once against the original shards,
#   6. check the node's audit log (strata admin audit verify).
# The node keeps running afterwards; its settings are in DIR/env.
#   QUICKSTART_DIR=DIR (default /var/tmp/strata-quickstart), PORT=7480
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${QUICKSTART_DIR:-/var/tmp/strata-quickstart}
port=${PORT:-7480}

PKGS=(build-essential meson ninja-build pkg-config libuv1-dev librocksdb-dev
      libzstd-dev liburing-dev libssl-dev check libisal-dev libinih-dev libsystemd-dev
      libjansson-dev
      openssl python3 python3-torch)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== building (build/)"
# meson and ninja print their errors on standard output: keep it in a log
# and show its end when the build fails.
mkdir -p "$dir"
log=$dir/build.log
if ! { { [ -f build/build.ninja ] || meson setup build; } && ninja -C build; } >"$log" 2>&1; then
	echo "!! the build failed; the end of $log:" >&2
	tail -n 25 "$log" >&2
	exit 1
fi
S=$root/build/client/strata

echo "== starting a node on 127.0.0.1:$port (state in $dir)"
STRATA_DEV_AUDIT=1 deploy/dev-cluster.sh up --dir "$dir/cluster" --port "$port"
# shellcheck disable=SC1091
. "$dir/cluster/env"

echo "== making a demo dataset: 16 WebDataset shards of 32 samples (jpg-like bytes + json label)"
data=$dir/dataset
rm -rf "$data"
mkdir -p "$data/shards" "$data/samples"
for s in $(seq -w 0 15); do
	rm -f "$data/samples"/*
	for i in $(seq -w 0 31); do
		key=s${s}_$i
		head -c $((20000 + RANDOM % 60000)) /dev/urandom >"$data/samples/$key.jpg"
		printf '{"label": %d, "shard": %d}\n' $((RANDOM % 1000)) "$((10#$s))" >"$data/samples/$key.json"
	done
	# WebDataset order: the files of one sample next to each other
	tar -C "$data/samples" --sort=name -cf "$data/shards/train-$s.tar" .
done
total=$(du -cb "$data/shards"/*.tar | tail -n 1 | cut -f1)
echo "   $(ls "$data/shards" | wc -l) shards, $((total / 1024 / 1024)) MiB"

echo "== uploading: strata cp -r --jobs 4 $data/shards strata://demo/train/"
"$S" -q mb strata://demo 2>/dev/null || true
"$S" cp -r --jobs 4 "$data/shards" strata://demo/train/
"$S" ls strata://demo/train/ | head -n 3
echo "   ..."

echo "== a key for the training job: its access policy lets it read strata://demo/train/ and nothing else"
cat >"$dir/reader-policy.json" <<'JSON'
{"version": 1, "statements": [
  {"effect": "allow", "actions": ["object:get", "object:stat", "object:list"],
   "resources": ["demo/train/*"]}]}
JSON
reader=$("$S" admin key create --policy "$dir/reader-policy.json" --attr role=training)
reader_id=$(printf '%s\n' "$reader" | sed -n 's/^access_key = //p')
reader_secret=$(printf '%s\n' "$reader" | sed -n 's/^secret_key = //p')
echo "   $reader_id: strata admin key create --policy $dir/reader-policy.json --attr role=training"
if STRATA_ACCESS_KEY=$reader_id STRATA_SECRET_KEY=$reader_secret "$S" -q rm strata://demo/train/train-00.tar 2>"$dir/denied.txt"; then
	echo "!! the training key could delete a shard" >&2
	exit 1
fi
echo "   deleting a shard with it is refused: $(sed 's/^strata: //' "$dir/denied.txt")"

echo "== reading it back with that key like a training loader: strata.Dataset under a PyTorch DataLoader (2 workers), seed 42, epochs 0 and 1"
STRATA_ACCESS_KEY=$reader_id STRATA_SECRET_KEY=$reader_secret \
PYTHONPATH=$root/build/client/python /usr/bin/python3 - "$data/shards" <<'PY'
import os, sys, time
import strata
import torch.utils.data as tud

local = sys.argv[1]
want = {}
for f in sorted(os.listdir(local)):
    with open(os.path.join(local, f), "rb") as fh:
        for s in strata.webdataset_samples(fh.read()):
            want[(f, s["__key__"])] = (s["jpg"], s["json"])

ds = strata.Dataset("strata://demo/train/", seed=42, samples="webdataset")
loader = tud.DataLoader(ds, num_workers=2, batch_size=None)
orders = []
for epoch in (0, 1):
    ds.set_epoch(epoch)
    t0, seen, first = time.monotonic(), set(), []
    for sample in loader:
        shard = sample["__url__"].rsplit("/", 1)[1]
        k = (shard, sample["__key__"])
        if k in seen or want.get(k) != (sample["jpg"], sample["json"]):
            sys.exit("!! sample %s of %s: duplicated or differs from the original" % k[::-1])
        seen.add(k)
        if shard not in first:
            first.append(shard)
    if seen != set(want):
        sys.exit("!! epoch %d: %d of %d samples" % (epoch, len(seen), len(want)))
    orders.append(first)
    print("   epoch %d: shards %s,... %d shards, %d samples in %.2f s, each once, every byte verified"
          % (epoch, ",".join(first[:3]), len(first), len(seen), time.monotonic() - t0))
if orders[0] == orders[1]:
    sys.exit("!! the two epochs came in the same order")
PY

audit=$dir/cluster/node1/audit.log
if [ -f "$audit" ]; then
	echo "== the node's audit log: every request, who made it and its result, each record chained to the one before"
	"$S" admin audit verify "$audit" | sed 's/^/   /'
	echo "   (the training key's refused delete: $(grep -c '"op":"DELETE".*"status":-13' "$audit") record)"
fi

cat <<EOF
== done.  The node is still running.
   Use it:     . $dir/cluster/env && build/client/strata ls strata://demo/train/
   Stop it:    deploy/dev-cluster.sh down --dir $dir/cluster
EOF
