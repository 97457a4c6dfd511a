#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Debian package lists of deploy/quickstart.sh and tests/run.sh name
# every package that provides a pkg-config dependency() of the build, so
# that both work on a fresh Debian 12: for each required dependency('X')
# in a meson.build, the package that owns X.pc here (dpkg -S) must be in
# both PKGS lists (the quick start's build makes the tests too).
# Exit 77 (skipped) without dpkg or pkg-config.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
command -v dpkg >/dev/null && command -v pkg-config >/dev/null ||
	{ echo "dpkg or pkg-config not installed: skipped"; exit 77; }
bad=0
fail() {
	echo "check-deps: $*"
	bad=1
}

# The words of a script's PKGS=( ... ) array, one per line.
pkgs_of() {
	sed -n '/^PKGS=(/,/)/p' "$1" | sed 's/^PKGS=(//; s/).*//' | tr -s ' \t' '\n' | grep .
}
quick=$(pkgs_of deploy/quickstart.sh)
run=$(pkgs_of tests/run.sh)
[ -n "$quick" ] || fail "deploy/quickstart.sh: no PKGS=( ... ) list found"
[ -n "$run" ] || fail "tests/run.sh: no PKGS=( ... ) list found"

n=0
while IFS=: read -r file line; do
	dep=$(printf '%s\n' "$line" | sed -n "s/.*dependency('\([^']*\)'.*/\1/p")
	case $dep in '' | threads) continue ;; esac
	n=$((n + 1))
	dir=$(pkg-config --variable=pcfiledir "$dep" 2>/dev/null)
	if [ -z "$dir" ]; then
		fail "$file: dependency('$dep'): no $dep.pc on this machine"
		continue
	fi
	pkg=$(dpkg -S "$dir/$dep.pc" 2>/dev/null | sed -n '1s/[:,].*//p')
	if [ -z "$pkg" ]; then
		fail "$file: dependency('$dep'): no Debian package owns $dir/$dep.pc"
		continue
	fi
	printf '%s\n' "$run" | grep -qx "$pkg" ||
		fail "tests/run.sh: PKGS lacks $pkg ($file: dependency('$dep'))"
	printf '%s\n' "$quick" | grep -qx "$pkg" ||
		fail "deploy/quickstart.sh: PKGS lacks $pkg ($file: dependency('$dep'))"
done < <(grep -rn --include=meson.build --exclude-dir='build*' "dependency('" . |
	 grep -v "required: *false" | sed 's|^\./||; s|:[0-9]*:|:|')
[ $n -gt 5 ] || fail "found only $n dependency() calls in the meson.build files"

[ $bad = 0 ] && echo "package lists: ok ($n dependencies)"
exit $bad
