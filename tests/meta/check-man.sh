#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Keep the man pages honest:
#   - every man/*.[1-8] page is clean under `mandoc -T lint -W warning`
#     (without mandoc: `groff -ww -z -mandoc` prints nothing);
#   - every function libstrata.so exports is documented in man/libstrata.3
#     (as .Fn or .Fo);
#   - every key of stratad's config table (daemon/config.c, keys[]) is an
#     `.It Cm KEY` of man/stratad.conf.5, under its `.Ss [section]`;
#   - every strata command (client/strata.c, cmd_helps[]) is an `.It Cm CMD`
#     of man/strata.1, and every long option (longs[]) appears as `Fl \-NAME`.
#   - every strata-bench workload and long option is in man/strata-bench.1.
#
#   check-man.sh PATH/TO/libstrata.so
# Exits 0 when all holds, else 1 with one line per problem.
set -u
lib=${1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
bad=0
fail() {
	echo "check-man: $*"
	bad=1
}

# ---- 1. lint every page ----------------------------------------------------
pages=$(ls man/*.[1-8] 2>/dev/null)
[ -n "$pages" ] || fail "no man pages in man/"
if command -v mandoc >/dev/null 2>&1; then
	for p in $pages; do
		out=$(mandoc -T lint -W warning "$p" 2>&1)
		rc=$?
		if [ -n "$out" ] || [ $rc -ne 0 ]; then
			fail "$p: mandoc -T lint -W warning (exit $rc):"
			printf '%s\n' "$out" | sed 's/^/    /'
		fi
	done
elif command -v groff >/dev/null 2>&1; then
	echo "check-man: mandoc not found; linting with groff"
	for p in $pages; do
		out=$(groff -ww -z -mandoc "$p" 2>&1)
		if [ -n "$out" ]; then
			fail "$p: groff -ww -z -mandoc:"
			printf '%s\n' "$out" | sed 's/^/    /'
		fi
	done
else
	fail "neither mandoc nor groff is installed: cannot lint man/"
fi

# ---- 2. libstrata's exports are in libstrata.3 -------------------------------
if [ -z "$lib" ]; then
	fail "usage: check-man.sh PATH/TO/libstrata.so"
elif [ ! -f "$lib" ]; then
	fail "$lib: no such file (build libstrata first)"
elif [ ! -f man/libstrata.3 ]; then
	fail "man/libstrata.3 is missing"
else
	syms=$(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
	[ -n "$syms" ] || fail "$lib: nm found no exported functions"
	for f in $syms; do
		grep -Eq "^\.(Fn|Fo) $f( |\$)" man/libstrata.3 ||
			fail "man/libstrata.3: exported function $f is not documented (no .Fn/.Fo $f)"
	done
fi

# ---- 3. stratad's config keys are in stratad.conf.5 --------------------------
# Table lines look like:  { "node", "id", K_U32, ... },
want=$(awk '/^static const struct key keys\[\] = [{]/ { t = 1; next }
	    t && /^\};/ { exit }
	    t && match($0, /[{] *"[^"]*", *"[^"]*"/) {
		    split(substr($0, RSTART, RLENGTH), q, "\"")
		    print q[2] "." q[4]
	    }' daemon/config.c)
[ -n "$want" ] || fail "daemon/config.c: found no keys[] table to check against"
have=$(awk '/^\.Ss \[[a-z_]+\]/ { s = $2; gsub(/[][]/, "", s); next }
	    /^\.Sh / { s = "" }
	    /^\.It Cm [a-z_]+/ && s != "" { print s "." $3 }' man/stratad.conf.5 2>/dev/null)
for k in $want; do
	printf '%s\n' "$have" | grep -qx "$k" ||
		fail "man/stratad.conf.5: key ${k#*.} of [${k%%.*}] is not documented (no .It Cm ${k#*.} under .Ss [${k%%.*}])"
done

# ---- 4. strata's commands and options are in strata.1 ------------------------
# cmd_helps[] lines look like:  { "mb", "usage: strata mb ...
cmds=$(sed -n 's/^[[:space:]]*{ "\([a-z]*\)", "usage: strata .*/\1/p' client/strata.c)
for c in mb rb ls cp sync rm cat stat; do
	printf '%s\n' "$cmds" | grep -qx "$c" ||
		fail "client/strata.c: no help text found for command $c"
done
# longs[] lines look like:  { "endpoint", required_argument, NULL, O_ENDPOINT },
longs=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", \(no\|required\|optional\)_argument,.*/\1/p' client/strata.c)
[ -n "$longs" ] || fail "client/strata.c: found no long options to check against"
for c in $cmds; do
	grep -Eq "^\.It Cm $c( |\$)" man/strata.1 ||
		fail "man/strata.1: command $c is not documented (no .It Cm $c)"
done
for o in $longs; do
	esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
	grep -Eq "Fl \\\\-$esc( |\$)" man/strata.1 ||
		fail "man/strata.1: option --$o is not documented (no Fl \\-$(printf '%s' "$o" | sed 's/-/\\-/g'))"
done

# ---- 5. strata-bench's workloads and options are in strata-bench.1 ----------
blongs=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", \(no\|required\|optional\)_argument,.*/\1/p' client/strata-bench.c)
[ -n "$blongs" ] || fail "client/strata-bench.c: found no long options to check against"
for o in $blongs; do
	esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
	grep -Eq "Fl \\\\-$esc( |\$)" man/strata-bench.1 ||
		fail "man/strata-bench.1: option --$o is not documented"
done
wls=$(awk '/^static const char \*const workload_names\[\] = [{]/ { t = 1; next }
	   t && /^\};/ { exit }
	   t { gsub(/[",]/, " "); print }' client/strata-bench.c)
[ -n "$wls" ] || fail "client/strata-bench.c: found no workload_names[]"
for w in $wls; do
	grep -Eq "^\.It Cm $w\$" man/strata-bench.1 ||
		fail "man/strata-bench.1: workload $w is not documented (no .It Cm $w)"
done

[ $bad = 0 ] && echo "man pages: ok"
exit $bad
