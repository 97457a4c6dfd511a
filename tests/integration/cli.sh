#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The strata CLI against the node e2e.sh started (STRATA_* in the
# environment): a tree of files of sizes 0, 1, chunk-1, chunk, chunk+1 and
# ~100 MiB goes up with cp -r and comes back byte-identical; sync sends only
# what changed; errors give the documented exit codes.
#   cli.sh STRATA_BINARY WORKDIR
set -uo pipefail
S=$1
work=$2
C=$((4 * 1024 * 1024))
fails=0
pass=0
check() {	# name, then a command that must succeed
	local name=$1
	shift
	if "$@"; then pass=$((pass + 1)); else echo "cli: FAIL: $name"; fails=$((fails + 1)); fi
}
expect_rc() {	# name, wanted exit code, command...
	local name=$1 want=$2 rc
	shift 2
	"$@" >/dev/null 2>"$work/stderr"
	rc=$?
	if [ "$rc" = "$want" ]; then pass=$((pass + 1)); else
		echo "cli: FAIL: $name: exit $rc, wanted $want ($(cat "$work/stderr"))"
		fails=$((fails + 1))
	fi
}

src=$work/tree
mkdir -p "$src/deep/er"
: >"$src/zero"
head -c 1 /dev/urandom >"$src/one"
head -c $((C - 1)) /dev/urandom >"$src/deep/c-1"
head -c $C /dev/urandom >"$src/deep/c"
head -c $((C + 1)) /dev/urandom >"$src/deep/er/c+1"
head -c $((100 * 1024 * 1024 + 3)) /dev/urandom >"$src/big"

b=cli-$$
check "mb" "$S" -q mb "strata://$b"
expect_rc "mb twice" 1 "$S" -q mb "strata://$b"
check "cp -r up" "$S" -q cp -r --jobs 4 "$src" "strata://$b/tree/"
check "cp -r down" "$S" -q cp -r --jobs 4 "strata://$b/tree/" "$work/back/"
(cd "$src" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/want"
(cd "$work/back" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/got"
check "tree hashes" cmp -s "$work/want" "$work/got"
# A single file through cat, and stat's etag is the file's SHA-256.
check "cat" cmp -s "$src/one" <("$S" cat "strata://$b/tree/one")
check "stat etag" grep -q "$(sha256sum "$src/one" | cut -c1-64)" <("$S" stat "strata://$b/tree/one")
# ls with a delimiter shows the prefix once.
check "ls prefixes" test "$("$S" --json ls "strata://$b/tree/" | grep -c '"prefix":"tree/deep/"')" = 1
# sync: nothing, then exactly the one changed file.
check "sync nothing" grep -q '"files":0' <("$S" --json sync "$src" "strata://$b/tree/")
head -c 10 /dev/urandom >>"$src/one"
check "sync one" grep -q '"files":1,' <("$S" --json sync "$src" "strata://$b/tree/")
# Content type is kept and shown by stat.
check "content type" "$S" -q cp --content-type text/x-demo "$src/one" "strata://$b/typed"
check "stat content type" grep -q "text/x-demo" <("$S" stat "strata://$b/typed")
# remote -> remote
check "cp remote" "$S" -q cp "strata://$b/tree/deep/c" "strata://$b/copy"
check "copy equal" cmp -s "$src/deep/c" <("$S" cat "strata://$b/copy")
check "cp remote keeps content type" "$S" -q cp "strata://$b/typed" "strata://$b/typed2"
check "copy's content type" grep -q "text/x-demo" <("$S" stat "strata://$b/typed2")
# Errors and exit codes.
expect_rc "missing object" 1 "$S" -q cat "strata://$b/nothing"
expect_rc "missing bucket" 1 "$S" -q ls "strata://no-such-bucket-$$/"
expect_rc "usage" 2 "$S" cp
expect_rc "bad url" 2 "$S" ls "http://x/y"
expect_rc "wrong secret" 1 env STRATA_SECRET_KEY=wrong "$S" -q ls
expect_rc "rb non-empty" 1 "$S" -q rb "strata://$b"
# Lifecycle rules (the node applies them every second here, e2e.sh) and
# what `admin tiers` and `stat` show of the tiers.
wait_for() {	# seconds, command...: until the command succeeds
	local n=$1 i
	shift
	for i in $(seq 1 $((n * 10))); do "$@" && return 0; sleep 0.1; done
	return 1
}
check "lifecycle set cold" "$S" lifecycle set "strata://$b/tree/deep/" cold 0
check "lifecycle get" grep -q '"prefix":"tree/deep/","action":"cold","age_s":0' <("$S" lifecycle get --json "strata://$b")
is_cold() { "$S" stat "strata://$b/tree/deep/c" | grep -q " cold "; }
check "moved cold" wait_for 20 is_cold
check "cold bytes equal" cmp -s "$src/deep/c" <("$S" cat "strata://$b/tree/deep/c")
check "admin tiers" grep -q "^cold " <("$S" admin tiers)
check "admin tiers json" grep -q '"tier.hot.used_bytes":' <("$S" admin tiers --json)
check "lifecycle rm" "$S" lifecycle rm "strata://$b/tree/deep/"
check "lifecycle empty" test -z "$("$S" lifecycle get "strata://$b")"
"$S" -q cp "$src/one" "strata://$b/tmp/x"
check "lifecycle set delete" "$S" lifecycle set "strata://$b/tmp/" delete 1s
expired() { ! "$S" -q cat "strata://$b/tmp/x" >/dev/null 2>&1; }
check "expired" wait_for 20 expired
check "others kept" cmp -s "$src/one" <("$S" cat "strata://$b/typed")
check "lifecycle rm all" "$S" lifecycle rm "strata://$b"
expect_rc "lifecycle bad action" 2 "$S" lifecycle set "strata://$b/x" move 1d
expect_rc "lifecycle bad age" 2 "$S" lifecycle set "strata://$b/x" cold soon
expect_rc "lifecycle no bucket" 1 "$S" lifecycle get "strata://no-such-bucket-$$"
check "rm -r" "$S" -q rm -r "strata://$b/"
check "rb" "$S" -q rb "strata://$b"
# Access keys: an admin makes a user key; the user can store but not
# manage keys; a deleted key is refused; the last admin key stays.
keyout=$("$S" admin key create)
uid=$(echo "$keyout" | sed -n 's/^access_key = //p')
usec=$(echo "$keyout" | sed -n 's/^secret_key = //p')
check "key created" test -n "$uid" -a -n "$usec"
check "key listed" grep -q "$uid *user" <("$S" admin key list)
check "user key works" env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" -q mb "strata://$b-user"
expect_rc "user cannot manage keys" 1 env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" admin key list
check "the node's reason is shown" grep -q "Permission denied (an admin access key is required)" "$work/stderr"
expect_rc "last admin key kept" 1 "$S" admin key delete "$STRATA_ACCESS_KEY"
check "key deleted" "$S" admin key delete "$uid"
expect_rc "deleted key refused" 1 env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" -q ls
expect_rc "admin usage" 2 "$S" admin key delete
check "rb user bucket" "$S" -q rb "strata://$b-user"
echo "cli: $pass passed, $fails failed"
[ "$fails" = 0 ]
