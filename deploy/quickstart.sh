#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Quick start on a fresh Debian 12 machine: install what is missing, build,
# then exercise the storage engine on a scratch directory — a demo dataset of
# shards is written (chunked, compressed, encrypted, fsync'd, indexed) and
# read back, with the numbers printed.
#
# The network daemon, TLS and the client CLI are the next milestone
# (see README.md, "Status"); until then this shows the engine they stand on.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential meson ninja-build pkg-config libuv1-dev librocksdb-dev
      libzstd-dev liburing-dev libssl-dev check libisal-dev python3)
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

dir=$(mktemp -d /var/tmp/strata-quickstart.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "== engine demo in $dir: writing a dataset of 8 x 16 MiB shards and 2,000 small objects, then reading it all back"
build/tests/engine_bench --dir "$dir" --size-mib 16 --count 8 --small-ops 2000 --concurrency 16
echo "== done: every object was read back and compared; see README.md for what comes next"
