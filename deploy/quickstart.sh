#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Quick start on a fresh Debian 12 machine (root, or a user with sudo):
#   1. install what is missing and build (build/),
#   2. start a local node with TLS on 127.0.0.1 (deploy/dev-cluster.sh),
#   3. make a WebDataset-style demo dataset (tar shards of jpg+json samples)
#      and upload it with the strata CLI, in parallel,
#   4. read it back as a training loader would: list the shards once,
#      shuffle them for the epoch from a seed, stream each shard and count
#      its samples, and check every byte against the original.
# The node keeps running afterwards; its settings are in DIR/env.
#   QUICKSTART_DIR=DIR (default /var/tmp/strata-quickstart), PORT=7480
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${QUICKSTART_DIR:-/var/tmp/strata-quickstart}
port=${PORT:-7480}

PKGS=(build-essential meson ninja-build pkg-config libuv1-dev librocksdb-dev
      libzstd-dev liburing-dev libssl-dev check libisal-dev libinih-dev
      openssl python3)
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
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
S=$root/build/client/strata

echo "== starting a node on 127.0.0.1:$port (state in $dir)"
deploy/dev-cluster.sh up --dir "$dir/cluster" --port "$port"
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
	tar -C "$data/samples" -cf "$data/shards/train-$s.tar" .
done
total=$(du -cb "$data/shards"/*.tar | tail -n 1 | cut -f1)
echo "   $(ls "$data/shards" | wc -l) shards, $((total / 1024 / 1024)) MiB"

echo "== uploading: strata cp -r --jobs 4 $data/shards strata://demo/train/"
"$S" -q mb strata://demo 2>/dev/null || true
"$S" cp -r --jobs 4 "$data/shards" strata://demo/train/
"$S" ls strata://demo/train/ | head -n 3
echo "   ..."

echo "== reading it back like a training loader: epoch 0 and 1, seed 42, rank 0 of 1"
mapfile -t shards < <("$S" --json ls strata://demo/train/ | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' | sort)
for epoch in 0 1; do
	order=$(printf '%s\n' "${shards[@]}" |
		shuf --random-source=<(openssl enc -aes-256-ctr -nosalt -pbkdf2 \
			-pass "pass:seed-42-epoch-$epoch" </dev/zero 2>/dev/null))
	start=$EPOCHREALTIME
	samples=0
	for key in $order; do
		"$S" cat "strata://demo/$key" >"$dir/shard.tar"
		cmp -s "$dir/shard.tar" "$data/shards/$(basename "$key")" ||
			{ echo "!! $key differs from the original"; exit 1; }
		samples=$((samples + $(tar -tf "$dir/shard.tar" | grep -c '\.jpg$')))
	done
	secs=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")
	echo "   epoch $epoch: order $(echo "$order" | head -n 3 | xargs -n1 basename | paste -sd, -),... ${#shards[@]} shards, $samples samples in $secs s, every byte verified"
done
rm -f "$dir/shard.tar"

cat <<EOF
== done.  The node is still running.
   Use it:     . $dir/cluster/env && build/client/strata ls strata://demo/train/
   Stop it:    deploy/dev-cluster.sh down --dir $dir/cluster
EOF
