#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# stratad --check-config: the example configs in deploy/ pass; a config with
# several problems fails (exit 1) and names every one, each with file:line;
# a key file name too long once resolved is named with its bytes escaped;
# command-line mistakes exit 2 and say what is wrong.
#   STRATAD=path/to/stratad check-config.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${STRATAD:?}"
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }

for c in "$root/deploy/stratad.conf" "$root/deploy/stratad-cluster-node.conf"; do
	if out=$("$STRATAD" --check-config -c "$c" 2>&1) && [ "$out" = "$c: ok" ]; then
		ok "$(basename "$c") passes --check-config"
	else
		fail "$(basename "$c"): $out"
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/bad.conf" <<'CONF'
[node]
id = -3
listn = 127.0.0.1:7480
this line is not ini
max_connections = 0
[tls]
cert = node.pem
[store]
chunk_size = 12Q
zstd_level = 40
[log]
level = loud
access = maybe
[admin]
listen = nowhere
timeout_ms = 5
[clustr]
seeds = a
CONF
out=$("$STRATAD" --check-config -c "$work/bad.conf" 2>&1)
rc=$?
[ $rc -eq 1 ] && ok "a bad config exits 1" || fail "a bad config exits $rc"
f=$work/bad.conf
for want in \
	"$f:2: [node] id: invalid" \
	"$f:3: [node] listn: unknown key (did you mean [node] listen?)" \
	"$f:4: not a [section] or key = value line" \
	"$f:5: [node] max_connections: invalid" \
	"$f:9: [store] chunk_size: invalid" \
	"$f:10: [store] zstd_level: invalid" \
	"$f:12: [log] level: want error, warn, info or debug" \
	"$f:13: [log] access: want true or false" \
	"$f:15: [admin] listen: want host:port or off" \
	"$f:16: [admin] timeout_ms: invalid" \
	"$f:18: [clustr] seeds: unknown key" \
	"$f: [tiers] hot is required" \
	"$f: [tls] cert and key are required"; do
	if printf '%s\n' "$out" | grep -qF "$want"; then
		ok "reported: ${want#"$f"}"
	else
		fail "not reported: $want"
	fi
done
n=$(printf '%s\n' "$out" | grep -c .)
[ "$n" -eq 13 ] && ok "13 problems, 13 lines" || { fail "expected 13 lines, got $n:"; printf '%s\n' "$out"; }
# A valid config that a typo breaks: nothing else is reported.
printf '[node]\nstate_dir = /x\n[tls]\ncert = a\nkey = b\n[tiers]\nhot = /h\n[log]\nlevle = info\n' >"$work/typo.conf"
out=$("$STRATAD" --check-config -c "$work/typo.conf" 2>&1)
[ "$out" = "stratad: $work/typo.conf:9: [log] levle: unknown key (did you mean [log] level?)" ] &&
	ok "a typo: one line with the fix" || fail "typo: got: $out"
# A key file name too long once resolved against $CREDENTIALS_DIRECTORY:
# named with its control bytes escaped, as every other message does.
printf '[tls]\ncert = a\033]0;x\007.pem\nkey = k\n[tiers]\nhot = /h\n' >"$work/esc.conf"
creds=/$(printf 'c%.0s' $(seq 1 1020))
out=$(CREDENTIALS_DIRECTORY=$creds "$STRATAD" --check-config -c "$work/esc.conf" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -qF 'a\x1b]0;x\x07.pem is too long' &&
	! printf '%s' "$out" | LC_ALL=C grep -q "$(printf '\033')"; then
	ok "a path too long once resolved: exit 1, its bytes escaped"
else
	fail "path too long: exit $rc: $(printf '%s' "$out" | od -c | head -3)"
fi
out=$("$STRATAD" --check-config -c "$work/absent.conf" 2>&1)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "No such file" &&
	ok "a missing file: exit 1, says so" || fail "missing file: $out"

# The command line: usage errors exit 2 and say what is wrong; --version
# and --help exit 0, alone.
for args in "extra" "--version extra" "--help extra" "-c $work/typo.conf extra"; do
	# shellcheck disable=SC2086
	out=$("$STRATAD" $args 2>&1 >/dev/null)
	rc=$?
	[ $rc -eq 2 ] && printf '%s\n' "$out" | grep -q "^stratad: unexpected argument 'extra'" &&
		ok "stratad $args: exit 2, names the argument" ||
		fail "stratad $args: exit $rc: $out"
done
out=$("$STRATAD" -c '' 2>&1)
[ $? -eq 2 ] && [ "$(printf '%s\n' "$out" | head -n 1)" = "stratad: -c wants a file name" ] &&
	ok "stratad -c '': exit 2, says why" || fail "stratad -c '': $out"
for args in "--bogus" "-c"; do
	# shellcheck disable=SC2086
	"$STRATAD" $args >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] && ok "stratad $args: exit 2" || fail "stratad $args: exit $rc"
done
[ "$("$STRATAD" --version)" = "stratad 0.1.0" ] && ok "--version" || fail "--version"
"$STRATAD" --help | grep -q "^usage: stratad" && ok "--help" || fail "--help"
exit $bad
