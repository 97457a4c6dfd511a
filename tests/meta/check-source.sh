#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# House rules that a compiler does not check: every source file starts with
# the SPDX line, and every .c file includes "banned.h" as its last include.
set -u
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 1
bad=0
for f in $(find daemon proto client include tests -name '*.[ch]' 2>/dev/null); do
	if [ "$(head -n 1 "$f")" != "// SPDX-License-Identifier: Apache-2.0" ]; then
		echo "$f: first line must be // SPDX-License-Identifier: Apache-2.0"
		bad=1
	fi
	case "$f" in
	*.c)
		last=$(grep -E '^#include' "$f" | tail -n 1)
		if [ "$last" != '#include "banned.h"' ]; then
			echo "$f: the last #include must be \"banned.h\" (found: $last)"
			bad=1
		fi
		;;
	esac
done
[ $bad = 0 ] && echo "source rules: ok"
exit $bad
