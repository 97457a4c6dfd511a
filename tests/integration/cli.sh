#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The strata CLI against the node e2e.sh started (STRATA_* in the
# environment): a tree of files of sizes 0, 1, chunk-1, chunk, chunk+1 and
# ~100 MiB goes up with cp -r and comes back byte-identical; sync sends only
# what changed; errors give the documented exit codes and name the right
# thing; downloads into a FIFO, /dev/null or a symlink, SIGTERM mid-download
# (no temporary file left), closed standard streams, a dangling symlink or
# a symlink loop in an uploaded tree, --range edges and control characters
# in keys (ls and error messages); tree downloads of unsafe keys ('..',
# '.', empty components, a leading '/') and of directory markers; the
# mode of downloaded files; a remote copy of an object being replaced; a
# local file that changes while cp, cp -r or sync uploads it, and files
# whose size is not their length (/proc, /sys, standard input part read);
# the warning for a config file with a secret that others can read, and
# --secret-key overwritten in the command line; a FIFO or a directory as
# the CA file; a secret sent as a key id kept out of the node's log.
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
expect_rc "jobs negative" 2 "$S" --jobs=-18446744073709551615 ls "strata://$b"
expect_rc "jobs sign" 2 "$S" --jobs=+4 ls "strata://$b"
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
# A node's message is printed once, not repeated in brackets.
expect_rc "missing bucket again" 1 "$S" -q ls "strata://no-such-bucket-$$/"
check "message once" test "$(grep -o "no such bucket" "$work/stderr" | wc -l)" = 1
# Usage errors (2): a URL without the key an object command needs, a bad
# bucket name, a lifecycle age over the limit or a prefix where none is
# taken, extra arguments to help and --version, stdin without a key.
expect_rc "stat without key" 2 "$S" stat "strata://$b"
expect_rc "cat without key" 2 "$S" cat "strata://$b"
expect_rc "bad bucket name" 2 "$S" stat "strata://Bad_Name/k"
expect_rc "ipv4 bucket name" 2 "$S" ls "strata://10.1.2.3/"
# Names libstrata refuses before sending (too short, too long): a usage
# error, for a listing too (it freed a pointer never set).
long=$(printf 'b%.0s' $(seq 1 64))
for u in "strata://b1" "strata://b1/" "strata://$long/"; do
	for i in 1 2 3; do
		expect_rc "ls $u" 2 "$S" ls "$u"
	done
	expect_rc "cp -r $u" 2 "$S" cp -r "$u" "$work/nothing/"
	expect_rc "sync to $u" 2 "$S" sync "$src/deep" "$u"
	expect_rc "rm -r $u" 2 "$S" rm -r "$u"
done
expect_rc "lifecycle age too big" 2 "$S" lifecycle set "strata://$b/x" cold 18446744073709551615
check "age limit named" grep -q "36500d" "$work/stderr"
expect_rc "lifecycle get prefix" 2 "$S" lifecycle get "strata://$b/x"
expect_rc "help unknown" 2 "$S" help bogus
expect_rc "help extra" 2 "$S" help cp extra
expect_rc "version extra" 2 "$S" --version extra
expect_rc "stdin needs a key" 2 "$S" cp - "strata://$b/"
check "stdin key message" grep -q "the destination needs an object key" "$work/stderr"
# No endpoint: the message names the config file that was read.
printf '# no endpoint here\n' >"$work/noendpoint.conf"
expect_rc "no endpoint" 2 env -u STRATA_ENDPOINT STRATA_CONFIG="$work/noendpoint.conf" "$S" ls
check "no endpoint: names \$STRATA_CONFIG" grep -qF "put endpoint in $work/noendpoint.conf" "$work/stderr"
expect_rc "no endpoint (XDG)" 2 env -u STRATA_ENDPOINT -u STRATA_CONFIG XDG_CONFIG_HOME="$work/xdg" "$S" ls
check "no endpoint: names the XDG file" grep -qF "put endpoint in $work/xdg/strata/config" "$work/stderr"
check "no key '-'" test -z "$("$S" ls "strata://$b/-" 2>&1)"
# A config file holding a secret key that its group or others can read:
# one warning naming it (the command still works); none for 0600 or 0400,
# nor for a file without a secret (a commented one, an empty value).
cfg=$work/secret.conf
printf 'endpoint = %s\nsecret_key = %s\n' "$STRATA_ENDPOINT" "$STRATA_SECRET_KEY" >"$cfg"
for mode in 644 640 604; do
	chmod "$mode" "$cfg"
	STRATA_CONFIG=$cfg "$S" ls "strata://$b/r/" >/dev/null 2>"$work/stderr"
	check "config $mode: still works" test $? = 0
	check "config $mode: one line" test "$(wc -l <"$work/stderr")" = 1
	check "config $mode: warned" grep -qF "strata: warning: $cfg holds a secret key and is readable by " "$work/stderr"
	check "config $mode: chmod named" grep -qF "(mode 0$mode); make it private: chmod 600 $cfg" "$work/stderr"
done
mkdir -p "$work/xdg2/strata"
cp "$cfg" "$work/xdg2/strata/config"
chmod 644 "$work/xdg2/strata/config"
env -u STRATA_CONFIG XDG_CONFIG_HOME="$work/xdg2" "$S" ls "strata://$b/r/" >/dev/null 2>"$work/stderr"
check "XDG config 644: warned" grep -qF "strata: warning: $work/xdg2/strata/config holds a secret key" "$work/stderr"
for mode in 600 400; do
	chmod "$mode" "$cfg"
	STRATA_CONFIG=$cfg "$S" ls "strata://$b/r/" >/dev/null 2>"$work/stderr"
	check "config $mode: no warning" test ! -s "$work/stderr"
done
for body in 'endpoint = x:1' '# secret_key = old' 'secret_key = ""'; do
	printf '%s\n' "$body" >"$cfg"
	chmod 644 "$cfg"
	STRATA_CONFIG=$cfg "$S" ls "strata://$b/r/" >/dev/null 2>"$work/stderr"
	check "config 644 with '$body': no warning" test ! -s "$work/stderr"
done
# --range: a start at or past the end of a non-empty object is an error,
# whatever the end; an empty object reads empty from 0.
printf abc >"$work/abc"
: >"$work/empty"
"$S" -q cp "$work/abc" "strata://$b/r/abc" && "$S" -q cp "$work/empty" "strata://$b/r/empty"
expect_rc "range start = size" 1 "$S" cat --range 3- "strata://$b/r/abc"
expect_rc "range 3-3" 1 "$S" cat --range 3-3 "strata://$b/r/abc"
expect_rc "range past end" 1 "$S" cat --range 10-20 "strata://$b/r/abc"
check "range last byte" test "$("$S" cat --range 2- "strata://$b/r/abc")" = c
check "range cut at end" test "$("$S" cat --range 1-99 "strata://$b/r/abc")" = bc
check "range empty object" test -z "$("$S" cat --range 0- "strata://$b/r/empty")"
expect_rc "range not digits" 2 "$S" cat --range -1- "strata://$b/r/abc"
# ls escapes control characters for people; --json keeps the key.
nl_key=$(printf 'esc/a\nb\033[31m')
"$S" -q cp "$work/abc" "strata://$b/$nl_key"
check "ls escapes" test "$("$S" ls "strata://$b/esc/" | grep -c 'esc/a\\nb\\x1b\[31m$')" = 1
check "ls one line per key" test "$("$S" ls "strata://$b/esc/" | wc -l)" = 1
check "ls --json raw key" grep -q '"key":"esc/a\\u000ab\\u001b\[31m"' <("$S" --json ls "strata://$b/esc/")
# A tree download writes nothing outside its directory: keys whose part
# below the prefix is not a safe relative path ('..', '.', empty
# components, a leading '/') are skipped; a leading '/' is not dropped
# (trav//lead would land on trav/lead's file). Remote to remote keeps
# every key as it is.
for k in ok ../../outside ./dot a//b /lead; do
	"$S" -q cp "$work/abc" "strata://$b/trav/$k"
done
"$S" --json cp -r "strata://$b/trav" "$work/travdl" >"$work/out" 2>"$work/stderr"
check "traversal: exit 1" test $? = 1
check "traversal: skipped keys counted as failed" grep -q '"files":5,"failed":4,' "$work/out"
check "traversal: nothing outside" test ! -e "$work/outside" -a ! -e "$work/../outside"
check "traversal: safe key downloaded" cmp -s "$work/abc" "$work/travdl/ok"
check "traversal: only it" test "$(find "$work/travdl" -type f | wc -l)" = 1
check "traversal: leading / skipped" grep -q "skipping trav//lead: not a safe local path" "$work/stderr"
check "remote to remote cp -r" "$S" -q cp -r "strata://$b/trav/" "strata://$b/trav2/"
check "remote to remote keeps a leading /" "$S" -q stat "strata://$b/trav2//lead"
check "remote to remote: every key" test "$("$S" ls -r "strata://$b/trav2/" | wc -l)" = 5
# A key ending in '/' (a directory marker, which the CLI does not make:
# written with the Python binding where it loads) comes down as a
# directory when it is empty, and is skipped when it is not; remote to
# remote it is copied as it is.
py=/usr/bin/python3
if [ -n "${STRATA_PYTHONPATH:-}" ] && [ "${STRATA_SANITIZE:-none}" = none ] &&
	PYTHONPATH=$STRATA_PYTHONPATH "$py" -c "
import strata
c = strata.Client()
for k, v in (('mk/empty/', b''), ('mk/full/', b'x'), ('mk/empty/f', b'f')):
    c.put('$b', k, v)
"; then
	"$S" --json cp -r "strata://$b/mk" "$work/mk" >"$work/out" 2>"$work/stderr"
	check "marker: exit 1 (one skipped)" test $? = 1
	check "marker: summary" grep -q '"files":2,"failed":1,' "$work/out"
	check "marker: empty one is a directory" test -d "$work/mk/empty" -a -f "$work/mk/empty/f"
	check "marker: full one skipped" grep -q "skipping mk/full/: not a safe local path" "$work/stderr"
	check "marker: no other message" test "$(wc -l <"$work/stderr")" = 1
	check "marker: remote to remote" "$S" -q cp -r "strata://$b/mk/" "strata://$b/mk2/"
	check "marker: copied as it is" "$S" -q stat "strata://$b/mk2/empty/"
else
	echo "cli: directory markers not checked (the Python binding does not load here)"
fi
# Keys in error messages are escaped too: a skipped key, and a failed
# download (the file esc2/ESC is in the way of esc2/ESC/y).
e=$(printf '\033[31m')
for k in "../$e" "$e" "$e/y"; do "$S" -q cp "$work/abc" "strata://$b/esc2/$k"; done
"$S" -q cp -r --jobs 1 "strata://$b/esc2" "$work/esc2" 2>"$work/stderr"
check "escaped: no raw control byte" test "$(grep -cF "$e" "$work/stderr")" = 0
check "escaped: skipped key" grep -qF 'skipping esc2/../\x1b[31m: not a safe' "$work/stderr"
check "escaped: failed download" grep -qF "strata://$b/esc2/\x1b[31m/y -> $work/esc2/\x1b[31m/y: " "$work/stderr"
# A downloaded file's mode: the umask's for a new one, its own for one
# replaced.
(umask 077 && "$S" -q cp "strata://$b/r/abc" "$work/private" &&
	"$S" -q cp -r "strata://$b/r" "$work/privtree")
check "umask 077: new file 600" test "$(stat -c %a "$work/private")" = 600
check "umask 077: tree file 600" test "$(stat -c %a "$work/privtree/abc")" = 600
(umask 002 && "$S" -q cp "strata://$b/r/abc" "$work/shared")
check "umask 002: new file 664" test "$(stat -c %a "$work/shared")" = 664
chmod 640 "$work/shared"
"$S" -q cp "strata://$b/r/abc" "$work/shared"
check "replaced file keeps 640" test "$(stat -c %a "$work/shared")" = 640
# Remote to remote while the source is being replaced by objects of
# another size and content type: every copy is one whole version, never
# the first bytes of a bigger one cut at the size stat saw, and carries
# that version's content type, not the one of the version stat saw (the
# races are between the copy's stat and its get, so the old code failed
# these within a few dozen tries, not on every run).  A copy may fail
# (the source replaced at each try), never store a mix.
head -c 300000 /dev/urandom >"$work/v1"
head -c 900000 /dev/urandom >"$work/v2"
"$S" -q cp --content-type type/one "$work/v1" "strata://$b/race"
rm -f "$work/race-done"
( for i in $(seq 1 300); do
	[ -e "$work/race-done" ] && break
	"$S" -q cp --content-type type/two "$work/v2" "strata://$b/race"
	"$S" -q cp --content-type type/one "$work/v1" "strata://$b/race"
done ) &
writer=$!
torn=0
mixed=
copied=0
for i in $(seq 1 100); do
	"$S" -q cp "strata://$b/race" "strata://$b/race-copy" 2>/dev/null || continue
	copied=$((copied + 1))
	"$S" cat "strata://$b/race-copy" >"$work/race-out"
	if cmp -s "$work/race-out" "$work/v1"; then
		want=type/one
	elif cmp -s "$work/race-out" "$work/v2"; then
		want=type/two
	else
		torn=$(stat -c %s "$work/race-out")
		break
	fi
	got=$("$S" stat --json "strata://$b/race-copy" | sed -n 's/.*"content_type":"\([^"]*\)".*/\1/p')
	if [ "$got" != "$want" ]; then
		mixed="copy $i: the bytes of $want with content type $got"
		break
	fi
done
touch "$work/race-done"
wait "$writer"
check "remote copy of an object being replaced: never torn ($torn)" test "$torn" = 0
check "remote copy of an object being replaced: its own content type ($mixed)" test -z "$mixed"
check "remote copy of an object being replaced: copies made ($copied)" test "$copied" -ge 50 -o -n "$mixed" -o "$torn" != 0
# A local file that changes while it is being uploaded: the upload fails,
# naming the file and saying so, and stores nothing (the object before it
# is intact; a new key stays absent); a tree upload or sync fails that file
# alone.  The CLI is stopped once it has read part of the file (its fd's
# offset in /proc), the file changed, the CLI continued.
stop_mid_read() {	# pid, file: 0 with pid stopped part way through file
	local pid=$1 file=$2 size fd pos i
	size=$(stat -c %s "$file")
	for i in $(seq 1 3000); do
		for fd in /proc/"$pid"/fd/*; do
			[ "$(readlink "$fd" 2>/dev/null)" = "$file" ] || continue
			pos=$(sed -n 's/^pos:[[:space:]]*//p' "/proc/$pid/fdinfo/${fd##*/}" 2>/dev/null)
			[ "${pos:-0}" -gt 0 ] || continue
			kill -STOP "$pid"
			pos=$(sed -n 's/^pos:[[:space:]]*//p' "/proc/$pid/fdinfo/${fd##*/}" 2>/dev/null)
			[ "${pos:-0}" -gt 0 ] && [ "$pos" -lt "$size" ] && return 0
			kill -CONT "$pid"
			return 1
		done
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}
chg=$work/changing
mkdir -p "$chg"
printf a >"$chg/a"
printf z >"$chg/z"
printf old >"$work/old"
changed_upload() {	# how (shrink|grow|rewrite), strata args... (file $chg/big)
	local how=$1 pid
	shift
	cp "$src/big" "$chg/big"
	"$S" "$@" >"$work/out" 2>"$work/stderr" &
	pid=$!
	if ! stop_mid_read "$pid" "$chg/big"; then
		wait "$pid"
		echo "cli: FAIL: the upload of $chg/big was not caught part way"
		fails=$((fails + 1))
		return 1
	fi
	case $how in
	shrink) truncate -s 1000 "$chg/big" ;;
	grow) head -c 1000 /dev/urandom >>"$chg/big" ;;
	rewrite) printf X | dd of="$chg/big" conv=notrunc status=none ;;
	esac
	kill -CONT "$pid"
	wait "$pid"
}
"$S" -q cp "$work/old" "strata://$b/changing/big"
changed_upload shrink -q cp "$chg/big" "strata://$b/changing/big"
check "file shrank: exit 1" test $? = 1
check "file shrank: said so" grep -qF "strata: $chg/big -> strata://$b/changing/big: the file changed while it was being uploaded (it shrank from $((100 * 1024 * 1024 + 3)) to 1000 bytes); nothing was stored" "$work/stderr"
check "file shrank: the old object intact" cmp -s "$work/old" <("$S" cat "strata://$b/changing/big")
changed_upload grow -q cp "$chg/big" "strata://$b/changing/new"
check "file grew: exit 1" test $? = 1
check "file grew: said so" grep -qF "strata: $chg/big -> strata://$b/changing/new: the file changed while it was being uploaded (it grew from" "$work/stderr"
expect_rc "file grew: nothing stored" 1 "$S" -q stat "strata://$b/changing/new"
changed_upload shrink --json cp -r --jobs 1 "$chg" "strata://$b/changing/tree/"
check "cp -r, a file shrank: exit 1" test $? = 1
check "cp -r, a file shrank: summary" grep -q '"files":3,"failed":1,' "$work/out"
check "cp -r, a file shrank: said so" grep -qF "strata: $chg/big -> strata://$b/changing/tree/big: the file changed while it was being uploaded (it shrank" "$work/stderr"
check "cp -r, a file shrank: one message" test "$(wc -l <"$work/stderr")" = 1
check "cp -r, a file shrank: the others stored" test "$("$S" ls -r "strata://$b/changing/tree/" | wc -l)" = 2
expect_rc "cp -r, a file shrank: it is not" 1 "$S" -q stat "strata://$b/changing/tree/big"
changed_upload rewrite --json sync --jobs 1 "$chg" "strata://$b/changing/sync/"
check "sync, a file rewritten: exit 1" test $? = 1
check "sync, a file rewritten: summary" grep -q '"files":3,"failed":1,' "$work/out"
check "sync, a file rewritten: said so" grep -qF "strata: $chg/big -> strata://$b/changing/sync/big: the file changed while it was being uploaded (modified, still" "$work/stderr"
check "sync, a file rewritten: the others stored" test "$("$S" ls -r "strata://$b/changing/sync/" | wc -l)" = 2
expect_rc "sync, a file rewritten: it is not" 1 "$S" -q stat "strata://$b/changing/sync/big"
rm -rf "$chg"
# Files whose size is not their length: /proc's say 0 and have bytes
# (sent as a stream, not stored empty), /sys's say a page and have fewer
# (sent again as a stream, not failed as changed); standard input part
# read is sent from where it is.
check "cp /proc/version" "$S" -q cp /proc/version "strata://$b/proc/version"
check "/proc/version stored whole" cmp -s /proc/version <("$S" cat "strata://$b/proc/version")
check "/proc/version not stored empty" test -n "$("$S" cat "strata://$b/proc/version")"
sysf=/sys/devices/system/cpu/online
if [ -r "$sysf" ] && [ "$(stat -c %s "$sysf")" -gt "$(wc -c <"$sysf")" ]; then
	check "cp $sysf" "$S" -q cp "$sysf" "strata://$b/proc/online"
	check "$sysf stored whole" cmp -s "$sysf" <("$S" cat "strata://$b/proc/online")
else
	echo "cli: a /sys file shorter than its size not checked ($sysf)"
fi
printf 'hello world' >"$work/hello"
{ head -c 6 >/dev/null; "$S" -q cp - "strata://$b/proc/rest"; } <"$work/hello"
check "cp - of a part read file: exit 0" test $? = 0
check "cp - of a part read file: the rest" test "$("$S" cat "strata://$b/proc/rest")" = world
# Closed standard streams: never handed to a socket, and an error.
"$S" cat "strata://$b/r/abc" >&- 2>"$work/stderr"
check "cat >&- fails" test $? = 1
check "cat >&- message" grep -q "standard output is closed" "$work/stderr"
# A reader that goes away (strata stat | head) is not an error to report.
{ sleep 0.2; "$S" stat "strata://$b/r/abc" 2>"$work/stderr"; echo $? >"$work/rc"; } | true
check "stat into a closed pipe: exit 1" test "$(cat "$work/rc")" = 1
check "stat into a closed pipe: no message" test ! -s "$work/stderr"
timeout 20 "$S" cp - "strata://$b/r/stdin" <&- 2>"$work/stderr"
check "cp - <&- fails" test $? = 1
check "cp - <&- message" grep -q "standard input is closed" "$work/stderr"
# Downloads into what is not a regular file write into it: a FIFO (no
# temporary file beside it), a null device (still a device); a symlink to
# a file replaces the target and keeps the link; a dangling one is
# refused; a link to standard output writes standard output.  (Never the
# system's /dev/null or /dev/stdout as root: a regression would replace
# them.  Without root, /dev/null is safe: /dev is not writable.)
dl=$work/dl
mkdir -p "$dl"
mkfifo "$dl/fifo"
timeout 20 cat "$dl/fifo" >"$dl/from-fifo" &
reader=$!
check "cp to fifo" timeout 20 "$S" -q cp "strata://$b/r/abc" "$dl/fifo"
wait "$reader"
check "fifo got the bytes" cmp -s "$work/abc" "$dl/from-fifo"
check "fifo still a fifo" test -p "$dl/fifo"
check "no temp beside fifo" test -z "$(find "$dl" -name '*.strata-*')"
null=/dev/null
if [ "$(id -u)" = 0 ]; then
	null=$dl/null
	mknod -m 666 "$null" c 1 3
fi
check "cp to a null device" "$S" -q cp "strata://$b/r/abc" "$null"
check "null still a device" test -c "$null"
echo old >"$dl/target"
ln -s target "$dl/link"
check "cp to symlink" "$S" -q cp "strata://$b/r/abc" "$dl/link"
check "link kept" test -L "$dl/link"
check "target replaced" cmp -s "$work/abc" "$dl/target"
ln -s nowhere "$dl/dangling"
expect_rc "cp to dangling symlink" 1 "$S" -q cp "strata://$b/r/abc" "$dl/dangling"
check "dangling not created" test ! -e "$dl/nowhere"
ln -s /proc/self/fd/1 "$dl/stdout"
"$S" -q cp "strata://$b/r/abc" "$dl/stdout" >"$dl/out"
check "cp to stdout's file" cmp -s "$work/abc" "$dl/out"
check "stdout link kept" test -L "$dl/stdout"
# SIGTERM during a download removes its temporary file.
mkdir -p "$work/sig"
"$S" -q cp "strata://$b/tree/big" "$work/sig/big" &
dpid=$!
for _ in $(seq 1 500); do
	[ -n "$(find "$work/sig" -name 'big.strata-*')" ] && break
	sleep 0.01
done
check "temp file seen" test -n "$(find "$work/sig" -name 'big.strata-*')"
kill -TERM "$dpid"
wait "$dpid"
check "killed by TERM" test $? = 143
check "no temp after TERM" test -z "$(find "$work/sig" -mindepth 1)"
# One dangling symlink fails alone: the rest of the tree goes up, the
# summary is printed, the local path is named, the exit status is 1.
# Names of downloads in progress are never uploaded.
part=$work/part
mkdir -p "$part/sub"
printf x >"$part/a"
printf y >"$part/sub/b"
ln -s nowhere "$part/dangling"
printf z >"$part/c.strata-Ab3xY9"
"$S" --json cp -r "$part" "strata://$b/part/" >"$work/out" 2>"$work/stderr"
check "partial cp -r exit 1" test $? = 1
check "partial summary" grep -q '"files":3,"failed":1,' "$work/out"
check "local path named" grep -q "$part/dangling: No such file or directory (dangling symlink)" "$work/stderr"
check "destination not blamed" test -z "$(grep "strata://$b/part" "$work/stderr")"
check "the others uploaded" test "$("$S" ls -r "strata://$b/part/" | wc -l)" = 2
check "temp name skipped" test -z "$("$S" ls -r "strata://$b/part/" | grep strata-)"
"$S" --json sync "$part" "strata://$b/part/" >"$work/out" 2>"$work/stderr"
check "partial sync exit 1" test $? = 1
check "partial sync summary" grep -q '"files":1,"failed":1,' "$work/out"
# Symlinks in a tree are followed, but one back up to a directory the walk
# is inside (a loop) is reported and skipped, not walked forever.
loop=$work/loop
mkdir -p "$loop/sub"
printf f >"$loop/sub/f"
ln -s .. "$loop/sub/up"
ln -s sub "$loop/alias"
timeout 30 "$S" --json cp -r "$loop" "strata://$b/loop/" >"$work/out" 2>"$work/stderr"
check "symlink loop cp -r exit 1" test $? = 1
check "symlink loop summary" grep -q '"files":4,"failed":2,' "$work/out"
check "symlink loop named" grep -q "$loop/sub/up: symbolic link loop" "$work/stderr"
check "symlink loop: files once each" test "$("$S" ls -r "strata://$b/loop/" | wc -l)" = 2
expect_rc "sync a file" 2 "$S" sync "$work/abc" "strata://$b/part/"
check "sync a file message" grep -q "is not a directory" "$work/stderr"
expect_rc "cp -r a file" 2 "$S" cp -r "$work/abc" "strata://$b/part/"
expect_rc "cp -r stdin" 2 "$S" cp -r - "strata://$b/part/"
check "cp -r stdin message" grep -q "from standard input" "$work/stderr"
# Connection settings: the CA file and endpoint are named.
expect_rc "missing CA" 2 "$S" --ca "$work/no-ca.pem" ls
check "missing CA named" grep -q "$work/no-ca.pem: No such file" "$work/stderr"
echo garbage >"$work/garbage.pem"
expect_rc "garbage CA" 2 "$S" --ca "$work/garbage.pem" ls
check "garbage CA named" grep -q "CA file $work/garbage.pem" "$work/stderr"
# A FIFO as the CA file is refused at once (it used to block until a
# writer came), and so is a directory.
mkfifo "$work/ca.fifo"
expect_rc "FIFO CA" 2 timeout 20 "$S" --ca "$work/ca.fifo" ls
check "FIFO CA named" grep -qF "CA file $work/ca.fifo: not a regular file" "$work/stderr"
expect_rc "directory CA" 2 "$S" --ca "$work" ls
check "directory CA named" grep -qF "CA file $work: Is a directory" "$work/stderr"
expect_rc "bad endpoint" 2 "$S" --endpoint localhost ls
check "bad endpoint named" grep -q "endpoint 'localhost': expected HOST:PORT" "$work/stderr"
expect_rc "unresolvable host" 1 timeout 30 "$S" --endpoint no-such-host.invalid:7480 ls
check "resolver message" grep -q "cannot resolve no-such-host.invalid" "$work/stderr"
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
check "lifecycle set every object" "$S" lifecycle set "strata://$b/" delete 3650d
check "lifecycle set one prefix" "$S" lifecycle set "strata://$b/keep/" cold 3650d
check "lifecycle rm the empty prefix's rule" "$S" lifecycle rm "strata://$b/"
check "lifecycle rm left the other" test "$("$S" lifecycle get --json "strata://$b" | grep -c '"prefix":"keep/"')" = 1
check "lifecycle rm left only it" test "$("$S" lifecycle get "strata://$b" | wc -l)" = 1
expect_rc "lifecycle rm the empty prefix again" 1 "$S" lifecycle rm "strata://$b/"
check "lifecycle rm all again" "$S" lifecycle rm "strata://$b"
expect_rc "lifecycle bad action" 2 "$S" lifecycle set "strata://$b/x" move 1d
expect_rc "lifecycle bad age" 2 "$S" lifecycle set "strata://$b/x" cold soon
expect_rc "lifecycle no bucket" 1 "$S" lifecycle get "strata://no-such-bucket-$$"
# --secret-key does not stay on the command line, where anyone on the
# host reads it (ps, /proc/PID/cmdline): strata overwrites it once read.
mkfifo "$work/argv.fifo"
"$S" -q --secret-key "$STRATA_SECRET_KEY" cp - "strata://$b/argv" <"$work/argv.fifo" &
argv_pid=$!
exec 9>"$work/argv.fifo"
argv_gone=no
for _ in $(seq 50); do
	if ! tr '\0' ' ' <"/proc/$argv_pid/cmdline" | grep -qF "$STRATA_SECRET_KEY"; then
		argv_gone=yes
		break
	fi
	sleep 0.1
done
check "--secret-key not left in /proc/PID/cmdline" test "$argv_gone" = yes
echo argv >&9
exec 9>&-
check "--secret-key upload" wait "$argv_pid"
check "--secret-key upload stored" test "$("$S" cat "strata://$b/argv")" = argv
check "rm -r" "$S" -q rm -r "strata://$b/"
check "rb" "$S" -q rb "strata://$b"
# Access keys: an admin makes a user key; the user can store but not
# manage keys; a deleted key is refused; the last admin key stays.
keyout=$("$S" admin key create 2>"$work/create.err")
uid=$(echo "$keyout" | sed -n 's/^access_key = //p')
usec=$(echo "$keyout" | sed -n 's/^secret_key = //p')
check "key created" test -n "$uid" -a -n "$usec"
check "key created: no policy, says so" grep -q "has no access policy and may do nothing" "$work/create.err"
check "key listed" grep -q "$uid *user" <("$S" admin key list)
expect_rc "user key without a policy: refused" 1 env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" -q mb "strata://$b-user"
check "refused: the reason" grep -q "access denied: bucket:create on $b-user (the access key has no policy)" "$work/stderr"
echo '{"version": 1, "statements": [{"effect": "allow", "actions": ["*"], "resources": ["*"]}]}' >"$work/all.json"
check "key set --policy" "$S" admin key set "$uid" --policy "$work/all.json"
check "user key works" env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" -q mb "strata://$b-user"
expect_rc "user cannot manage keys" 1 env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" admin key list
check "the node's reason is shown" grep -q "Permission denied (an admin access key is required)" "$work/stderr"
expect_rc "last admin key kept" 1 "$S" admin key delete "$STRATA_ACCESS_KEY"
check "key deleted" "$S" admin key delete "$uid"
expect_rc "deleted key refused" 1 env STRATA_ACCESS_KEY="$uid" STRATA_SECRET_KEY="$usec" "$S" -q ls
# The key and the secret swapped: the secret, sent as a key id, does not
# reach the node's log (e2e.sh's node, in $work/cluster).
expect_rc "key and secret swapped" 1 env STRATA_ACCESS_KEY="$STRATA_SECRET_KEY" STRATA_SECRET_KEY="$STRATA_ACCESS_KEY" "$S" -q ls
node_log=$work/cluster/node1/stratad.log
check "swapped: the node logs the failure" grep -q "authentication failed for an unknown key id" "$node_log"
check "swapped: the secret is not in the node's log" test -f "$node_log" -a -z "$(grep -F "$STRATA_SECRET_KEY" "$node_log")"
expect_rc "admin usage" 2 "$S" admin key delete
expect_rc "key delete ''" 2 "$S" admin key delete ''
check "key delete '': says why" grep -q "^strata: : not an access key id" "$work/stderr"
expect_rc "key delete of a deleted key" 1 "$S" admin key delete "$uid"
check "key delete: no such key" grep -q "^strata: $uid: no such access key" "$work/stderr"
expect_rc "key delete control bytes" 1 "$S" admin key delete "$(printf 'AK\033[31m')"
check "key delete: control bytes escaped" grep -qF 'strata: AK\x1b[31m: no such access key' "$work/stderr"
check "rb user bucket" "$S" -q rb "strata://$b-user"

# Access policies (strata-policy(7)): a key that may use its own bucket,
# not delete under keep/, and read shared/ of another bucket while its
# team attribute is vision.
p=$b-pol
cat >"$work/pol.json" <<JSON
{"version": 1, "statements": [
  {"effect": "allow", "actions": ["bucket:create", "bucket:delete", "bucket:list"],
   "resources": ["$p-u"]},
  {"effect": "allow", "actions": ["object:*"], "resources": ["$p-u/*"]},
  {"effect": "deny", "actions": ["object:delete"], "resources": ["$p-u/keep/*"]},
  {"effect": "allow", "actions": ["object:get", "object:list", "object:stat"],
   "resources": ["$p/shared/*"],
   "conditions": {"principal": {"team": ["vision"]}, "source_ip": ["127.0.0.0/8", "::1/128"]}}]}
JSON
echo '{"version": 1, "statements": [{"effect": "allow", "actions": ["object:gett"], "resources": ["*"]}]}' >"$work/bad.json"
nkeys=$("$S" admin key list | wc -l)
expect_rc "key create with a bad policy" 1 "$S" admin key create --policy "$work/bad.json"
check "bad policy: the reason" grep -q 'bad policy: .*object:gett' "$work/stderr"
check "bad policy: no key made" test "$("$S" admin key list | wc -l)" = "$nkeys"
: >"$work/empty.json"
expect_rc "key create with an empty policy file" 1 "$S" admin key create --policy "$work/empty.json"
check "empty policy: says so" grep -q "empty: not a policy document" "$work/stderr"
printf '{"version": 1, "statements": [{"effect": "allow", "actions": ["*"], "resources": ["\377"]}]}' >"$work/notutf8.json"
expect_rc "key create with a policy that is not UTF-8" 1 "$S" admin key create --policy "$work/notutf8.json"
check "not UTF-8: refused as a bad policy" grep -q "invalid access policy document" "$work/stderr"
check "empty or not UTF-8: no key made" test "$("$S" admin key list | wc -l)" = "$nkeys"
expect_rc "key create --attr without =" 2 "$S" admin key create --attr team
keyout=$("$S" admin key create --policy "$work/pol.json" --attr team=vision)
pid=$(echo "$keyout" | sed -n 's/^access_key = //p')
psec=$(echo "$keyout" | sed -n 's/^secret_key = //p')
check "policy key created" test -n "$pid" -a -n "$psec"
U() { env STRATA_ACCESS_KEY="$pid" STRATA_SECRET_KEY="$psec" "$S" "$@"; }
check "policy: admin makes $p" "$S" -q mb "strata://$p"
echo shared >"$work/s.txt"
check "policy: admin puts shared/a" "$S" -q cp "$work/s.txt" "strata://$p/shared/a"
check "policy: admin puts private/b" "$S" -q cp "$work/s.txt" "strata://$p/private/b"
check "policy: own bucket" U -q mb "strata://$p-u"
expect_rc "policy: other bucket refused" 1 U -q mb "strata://$p-v"
check "policy: put own" U -q cp "$work/s.txt" "strata://$p-u/keep/x"
check "policy: get own" test "$(U cat "strata://$p-u/keep/x")" = shared
expect_rc "policy: explicit deny wins" 1 U -q rm "strata://$p-u/keep/x"
check "policy: deny's reason" grep -q "access denied: object:delete on $p-u/keep/x (denied by a policy statement)" "$work/stderr"
check "policy: shared readable" test "$(U cat "strata://$p/shared/a")" = shared
check "policy: stat shared" U stat "strata://$p/shared/a"
expect_rc "policy: private refused" 1 U cat "strata://$p/private/b"
expect_rc "policy: no put to shared" 1 U -q cp "$work/s.txt" "strata://$p/shared/c"
check "policy: listing shows what it may list" test "$(U ls "strata://$p/" | grep -c .)" = 1
check "policy: listing: shared/" grep -q "shared/" <(U ls "strata://$p/")
check "policy: bucket list filtered" test "$(U ls | grep -c "strata://$p")" = 1
check "policy: show own key" grep -q "attribute: team=vision" <(U admin key show)
expect_rc "policy: show another key" 1 U admin key show "$uid"
expect_rc "policy: user cannot set" 1 U admin key set "$pid" --no-policy
check "policy: key show --json" grep -q '"attributes":{"team":"vision"}' <("$S" admin key show --json "$pid")
check "policy: key set --attr" "$S" admin key set "$pid" --attr team=nlp
expect_rc "policy: condition no longer holds" 1 U cat "strata://$p/shared/a"
check "policy: key set --no-attrs" "$S" admin key set "$pid" --no-attrs
check "policy: attributes gone" test -z "$("$S" admin key show --json "$pid" | grep -F '"team"')"
check "policy: own rm under another prefix" U -q cp "$work/s.txt" "strata://$p-u/tmp" 
check "policy: rm allowed" U -q rm "strata://$p-u/tmp"
check "policy: key set --no-policy" "$S" admin key set "$pid" --no-policy
expect_rc "policy: no policy, nothing" 1 U cat "strata://$p-u/keep/x"
expect_rc "key set usage" 2 "$S" admin key set "$pid"
expect_rc "key set of no key" 1 "$S" admin key set AK000000000000000000 --no-attrs
check "policy: cleanup" "$S" -q rm -r "strata://$p-u/"
check "policy: cleanup rb" "$S" -q rb "strata://$p-u"
check "policy: cleanup p" "$S" -q rm -r "strata://$p/"
check "policy: cleanup rb p" "$S" -q rb "strata://$p"
check "policy: key deleted" "$S" admin key delete "$pid"
echo "cli: $pass passed, $fails failed"
[ "$fails" = 0 ]
