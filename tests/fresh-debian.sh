#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# fresh-debian.sh: the README's two commands on a fresh, minimal Debian 12,
# by hand (not part of tests/run.sh: it needs root, the network and about
# fifteen minutes).
#
# It makes a minimal Debian 12 root with debootstrap (--variant=minbase:
# no compiler, no git, no python3, no openssl CLI), copies this checkout's
# committed files into it (git archive HEAD), and runs inside it with
# chroot, as root:
#
#   ./deploy/quickstart.sh && deploy/dev-cluster.sh down ... && ./tests/run.sh
#
# then prints the last line of each.  The chroot shares this machine's
# kernel, network namespace and loopback; /proc, /sys and /dev are bind
# mounted and unmounted again at the end.
#
# Usage: tests/fresh-debian.sh [DIR]   (default: a new /var/tmp/strata-fresh.XXXXXX)
# Environment: MIRROR (default http://deb.debian.org/debian), KEEP=1 keeps
# DIR; it is kept anyway when something failed (logs: DIR/quickstart.log,
# DIR/run.log) and when it was given.
# Exit status: 0 when both commands succeeded, 1 otherwise.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[[ $(id -u) == 0 ]] || { echo "fresh-debian.sh: run as root (debootstrap, chroot)" >&2; exit 1; }
for t in git debootstrap; do
	command -v "$t" >/dev/null ||
		{ echo "fresh-debian.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
keep=${KEEP:-0} made=0
if [[ -n ${1:-} ]]; then
	dir=$1
	[[ ! -e $dir ]] || { echo "fresh-debian.sh: $dir exists" >&2; exit 1; }
else
	dir=$(mktemp -d /var/tmp/strata-fresh.XXXXXX)
	made=1
fi
mounted=()
cleanup() {
	local rc=$? m
	# Stop whatever the quick start or a test left running inside.
	if [[ -d $dir/root/strata ]]; then
		chroot "$dir" /bin/bash -c 'cd /root/strata &&
			deploy/dev-cluster.sh down --dir /var/tmp/strata-quickstart/cluster' \
			>/dev/null 2>&1 || true
	fi
	for ((m = ${#mounted[@]} - 1; m >= 0; m--)); do
		if ! umount -R "${mounted[m]}" 2>/dev/null &&
		   ! umount -lR "${mounted[m]}"; then
			echo "fresh-debian.sh: could not unmount ${mounted[m]}; $dir kept" >&2
			keep=1
		fi
	done
	# Removed only when it passed, was made here and KEEP is not set.
	if [[ $rc == 0 && $keep != 1 && $made == 1 ]]; then
		rm -rf --one-file-system -- "$dir"
	fi
	exit "$rc"
}
trap cleanup EXIT

echo "== debootstrap --variant=minbase bookworm $dir" >&2
debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 ||
	{ echo "fresh-debian.sh: debootstrap failed, see $dir.debootstrap.log" >&2; exit 1; }
rm -f "$dir.debootstrap.log"
# What an installed system has and debootstrap leaves out: name
# resolution for the mirror and for localhost.
cp /etc/resolv.conf "$dir/etc/resolv.conf"
[[ -e $dir/etc/hosts ]] ||
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
mount -t proc proc "$dir/proc" && mounted+=("$dir/proc")
mount --rbind /sys "$dir/sys" && mounted+=("$dir/sys")
mount --rbind /dev "$dir/dev" && mounted+=("$dir/dev")
mkdir -p "$dir/root/strata"
git -C "$root" archive HEAD | tar -x -C "$dir/root/strata"

rc=0
echo "== in the chroot: ./deploy/quickstart.sh" >&2
chroot "$dir" /bin/bash -c 'cd /root/strata && ./deploy/quickstart.sh' >"$dir/quickstart.log" 2>&1 || rc=1
tail -n 3 "$dir/quickstart.log"
chroot "$dir" /bin/bash -c 'cd /root/strata &&
	deploy/dev-cluster.sh down --dir /var/tmp/strata-quickstart/cluster' >/dev/null 2>&1 || true
echo "== in the chroot: ./tests/run.sh" >&2
chroot "$dir" /bin/bash -c 'cd /root/strata && ./tests/run.sh' >"$dir/run.log" 2>&1 || rc=1
tail -n 1 "$dir/run.log"
[[ $rc == 0 ]] || echo "fresh-debian.sh: FAILED; logs: $dir/quickstart.log, $dir/run.log" >&2
exit "$rc"
