#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `meson install --destdir` and what an installed copy is used for: a C
# program builds and runs against the installed header and pkg-config file;
# the Python package lands where Debian's python3 looks for it (for a /usr
# or /usr/local prefix) and imports, naming the installed libstrata; the
# man pages and the systemd unit (pointing at the installed stratad) are
# there.
#   install.sh BUILD_DIR
set -u
build=${1:?usage: install.sh BUILD_DIR}
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/dest

if ! out=$(meson install -C "$build" --no-rebuild --destdir "$dest" 2>&1); then
	echo "FAIL: meson install:"; printf '%s\n' "$out"; exit 1
fi
pc=$(find "$dest" -name libstrata.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no libstrata.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
ok "installed (prefix $prefix)"

# A C program against the installed header and pkg-config file.
cat >"$work/t.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <strata/strata.h>

int main(void)
{
	strata_client *c = NULL;
	struct strata_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "127.0.0.1:1";
	/* No access key: refused before any connection. */
	if (strata_client_new(&cfg, &c) == 0)
		return 1;
	puts(strata_strerror(STRATA_ENOBUCKET));
	return 0;
}
EOF
export PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_PATH=${pc%/*}
# A sanitized build's library wants its runtime first: link the program
# the same way, and leave out what loads the library into python3.
san=
if ldd "$(find "$dest" -name 'libstrata.so.*.*' | head -n 1)" | grep -q libasan; then
	san="-fsanitize=address,undefined"
	export ASAN_OPTIONS=detect_leaks=0
fi
if flags=$(pkg-config --cflags --libs libstrata) &&
	cc -std=c17 -Wall -Wextra -Werror -pedantic $san "$work/t.c" $flags -o "$work/t" 2>"$work/cc.err"; then
	ok "a C program builds with pkg-config --cflags --libs libstrata"
	libdir=$(pkg-config --variable=libdir libstrata)
	if out=$(LD_LIBRARY_PATH=$libdir "$work/t" 2>&1) && [ -n "$out" ]; then
		ok "and runs against the installed libstrata ($out)"
	else
		fail "the C program: $out"
	fi
else
	fail "the C program does not build:"; cat "$work/cc.err"
fi
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH

# The Python package.
init=$(find "$dest" -path '*/strata/__init__.py' | head -n 1)
if [ -z "$init" ]; then
	echo "note: no Python package installed (no python3 at setup)"
else
	pydir=${init%/strata/__init__.py}
	pydir=${pydir#"$dest"}
	case $prefix in
	/usr | /usr/local)
		/usr/bin/python3 -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' "$pydir" &&
			ok "the Python package is in $pydir, on Debian's python3's sys.path" ||
			fail "the Python package is in $pydir, which /usr/bin/python3 does not read" ;;
	*) echo "note: prefix $prefix: python3 reads the package only with PYTHONPATH" ;;
	esac
	lib=$(sed -n 's/^LIBRARY = "\(.*\)"$/\1/p' "$dest$pydir/strata/_libpath.py")
	[ -n "$lib" ] && [ -e "$dest$lib" ] &&
		ok "the package loads $lib, which is installed" ||
		fail "strata/_libpath.py names '$lib', not installed"
	# (The destdir copy of libstrata stands in for the installed one.)
	if [ -n "$san" ]; then
		echo "note: a sanitized libstrata: import not tried"
	else
		out=$(STRATA_LIBRARY=$dest$lib PYTHONPATH=$dest$pydir /usr/bin/python3 -c \
			'import strata; print(strata.Client.__name__)' 2>&1) &&
			ok "import strata works" || fail "import strata: $out"
	fi
fi

# Man pages, and the unit naming the installed daemon.
for m in man1/strata.1 man1/strata-bench.1 man3/libstrata.3 man5/stratad.conf.5 man8/stratad.8; do
	[ -f "$dest$prefix/share/man/$m" ] || fail "man page $m not installed"
done
ok "man pages checked"
unit=$(find "$dest" -name stratad.service | head -n 1)
exe=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit" 2>/dev/null)
[ -n "$exe" ] && [ -x "$dest$exe" ] && ok "stratad.service runs $exe, which is installed" ||
	fail "stratad.service: ExecStart=$exe"
exit $bad
