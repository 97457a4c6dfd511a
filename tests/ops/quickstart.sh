#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/quickstart.sh when the build fails: it stops there (exit non-zero,
# no node started) and shows why.  A copy of the script runs in a scratch
# tree with stand-ins for dpkg-query (everything installed), meson and a
# ninja that fails the way a compiler error does (on standard output).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/tree/deploy" "$work/bin"
cp "$root/deploy/quickstart.sh" "$work/tree/deploy/"
printf '#!/bin/sh\necho "dev-cluster: started" >>"%s/dev-cluster.ran"\n' "$work" \
	>"$work/tree/deploy/dev-cluster.sh"
cat >"$work/bin/dpkg-query" <<'EOF'
#!/bin/sh
printf 'install ok installed'
EOF
cat >"$work/bin/meson" <<'EOF'
#!/bin/sh
echo "The Meson build system"
EOF
cat >"$work/bin/ninja" <<'EOF'
#!/bin/sh
echo "[1/2] Compiling C object daemon/stratad.p/main.c.o"
echo "FAILED: daemon/stratad.p/main.c.o"
echo "../daemon/main.c:42:1: error: quickstart-test-compile-error"
exit 1
EOF
chmod +x "$work/bin/"* "$work/tree/deploy/"*.sh

out=$(PATH="$work/bin:$PATH" QUICKSTART_DIR="$work/qs" timeout 60 \
	bash "$work/tree/deploy/quickstart.sh" 2>&1)
rc=$?
[ $rc -ne 0 ] && ok "a failed build: quickstart exits $rc" || fail "a failed build: exit 0"
printf '%s\n' "$out" | grep -q "error: quickstart-test-compile-error" &&
	ok "the compiler's error is shown" ||
	{ fail "the compiler's error is not shown; the output was:"; printf '%s\n' "$out"; }
[ ! -e "$work/dev-cluster.ran" ] && ok "no node is started after a failed build" ||
	fail "dev-cluster.sh ran after a failed build"
exit $bad
