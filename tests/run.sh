#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Strata's whole test run, as CI runs it:
#   1. install what is missing (Debian 12 packages; needs root or sudo),
#   2. build three ways: release-like (build/), AddressSanitizer +
#      UndefinedBehaviorSanitizer (build-asan/), clang libFuzzer (build-fuzz/),
#   3. run every suite in build/ and build-asan/, each fuzz target for
#      FUZZ_SECONDS (default 6),
#   4. end with one line: "N passed, N failed".
# Counts are check test cases (plus one per fuzz target and per non-check
# test).  Exit status 0 only when nothing failed.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-6}
JOBS=${JOBS:-$(nproc)}

PKGS=(build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
      libuv1-dev librocksdb-dev libzstd-dev liburing-dev libssl-dev check
      libisal-dev libinih-dev libjansson-dev libsystemd-dev systemd openssl python3
      python3-torch mandoc)

say() { printf '== %s\n' "$*"; }

install_deps() {
	local missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

passed=0
failed=0
skipped=0

# Add up the results of one `meson test` run from its JSON log.
count_meson() {
	local log=$1
	if [ ! -s "$log" ]; then
		echo "no test log at $log: the test run itself failed"
		failed=$((failed + 1))
		return
	fi
	read -r p f s < <(/usr/bin/python3 - "$log" <<'PY'
import json, re, sys
p = f = s = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out)
    res = t["result"]
    if res == "SKIP":
        s += 1
    elif m:
        n, fl, er = map(int, m.groups())
        bad = fl + er
        if res != "OK" and bad == 0:
            bad = 1
        p += n - min(n, bad)
        f += bad
    elif res == "OK":
        p += 1
    else:
        f += 1
print(p, f, s)
PY
)
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

setup() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
	fi
	rm -f "$dir.setup.log"
	ninja -C "$dir" -j "$JOBS" "${targets[@]}" >/dev/null || ninja -C "$dir" -j 1 "${targets[@]}"
}

install_deps || { echo "dependency install failed"; echo "0 passed, 1 failed"; exit 1; }

targets=()
say "build (debugoptimized)"
if setup build; then
	say "test build/"
	meson test -C build --no-rebuild --print-errorlogs --num-processes "$JOBS" 2>&1 | tail -n 25
	count_meson build/meson-logs/testlog.json
else
	failed=$((failed + 1))
fi

say "build-asan (AddressSanitizer + UndefinedBehaviorSanitizer)"
if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=undefined; then
	say "test build-asan/"
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --no-rebuild --print-errorlogs --num-processes "$JOBS" \
		--timeout-multiplier 3 2>&1 | tail -n 25
	count_meson build-asan/meson-logs/testlog.json
else
	failed=$((failed + 1))
fi

say "build-fuzz (clang + libFuzzer)"
# Every target tests/meson.build defines (10 x FUZZ_SECONDS in all).
targets=(tests/fuzz_record tests/fuzz_meta tests/fuzz_proto tests/fuzz_http
	 tests/fuzz_config tests/fuzz_keys tests/fuzz_cutter tests/fuzz_clientconf
	 tests/fuzz_args tests/fuzz_tar tests/fuzz_policy tests/fuzz_audit)
if CC=clang setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false; then
	for t in "${targets[@]}"; do
		name=$(basename "$t")
		corpus="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
		work=$(mktemp -d)
		[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
		say "fuzz $name for ${FUZZ_SECONDS}s"
		if "build-fuzz/$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
			-print_final_stats=0 "$work" >"build-fuzz/$name.log" 2>&1; then
			passed=$((passed + 1))
			tail -n 1 "build-fuzz/$name.log"
		else
			failed=$((failed + 1))
			tail -n 40 "build-fuzz/$name.log"
		fi
		rm -rf "$work"
	done
else
	failed=$((failed + 1))
fi

[ "$skipped" -gt 0 ] && echo "($skipped suites skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
