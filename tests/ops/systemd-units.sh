#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/systemd/stratad.service passes `systemd-analyze verify` (with the
# built stratad in place of /usr/sbin/stratad), its sandbox rates "OK" or
# better with `systemd-analyze security`, and the sysusers.d and tmpfiles.d
# entries apply cleanly in a scratch root.  Exit 77 (skipped) only when
# systemd-analyze is not installed.
#   STRATAD=path/to/stratad systemd-units.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${STRATAD:?}"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }
bad=0
fail() { echo "FAIL: $*"; bad=1; }
ok() { echo "ok: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unit=$root/deploy/systemd/stratad.service
sed "s|/usr/sbin/stratad|$STRATAD|g" "$unit" >"$work/stratad.service"
if out=$(systemd-analyze verify --man=no "$work/stratad.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify: clean"
else
	fail "systemd-analyze verify:"; printf '%s\n' "$out"
fi
# systemctl reload fails on a config with errors: it is checked first.
reloads=$(sed -n 's/^ExecReload=//p' "$unit")
if [ "$(printf '%s\n' "$reloads" | head -n 1)" = "/usr/sbin/stratad --check-config -c /etc/strata/stratad.conf" ] &&
	[ "$(printf '%s\n' "$reloads" | sed -n 2p)" = '/bin/kill -HUP $MAINPID' ]; then
	ok "ExecReload= checks the config, then sends SIGHUP"
else
	fail "ExecReload=: $reloads"
fi
for k in Type=notify WatchdogSec= Restart=on-failure NoNewPrivileges=yes \
	ProtectSystem=strict CapabilityBoundingSet= LoadCredential=node.pem \
	StateDirectory=strata SystemCallArchitectures=native; do
	grep -q "^$k" "$unit" && ok "unit has $k" || fail "unit lacks $k"
done
if out=$(systemd-analyze security --offline=yes "$work/stratad.service" 2>&1); then
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for stratad.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
	case $level in
	*" OK"|*" SAFE") ok "systemd-analyze security: $level" ;;
	*) fail "systemd-analyze security: exposure '$level'" ;;
	esac
else
	echo "note: this systemd-analyze has no 'security --offline'; not rated"
fi

# sysusers.d then tmpfiles.d in a scratch root: the user exists, the
# directories come out owned by it with the modes the unit expects.
r=$work/root
mkdir -p "$r/etc"
touch "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$r/etc/gshadow"
if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
	systemd-sysusers --root="$r" "$root/deploy/sysusers.d/strata.conf" >/dev/null 2>&1 &&
		grep -q '^strata:' "$r/etc/passwd" && ok "sysusers.d: user strata" ||
		fail "sysusers.d/strata.conf does not apply"
	if systemd-tmpfiles --root="$r" --create "$root/deploy/tmpfiles.d/strata.conf" 2>&1; then
		uid=$(sed -n 's/^strata:x:\([0-9]*\):.*/\1/p' "$r/etc/passwd")
		for d in var/lib/strata var/lib/strata/hot var/lib/strata/cold; do
			st=$(stat -c '%a %u' "$r/$d" 2>/dev/null)
			[ "$st" = "700 $uid" ] && ok "tmpfiles.d: /$d 0700 strata" || fail "/$d: '$st'"
		done
	else
		fail "tmpfiles.d/strata.conf does not apply"
	fi
else
	echo "note: systemd-sysusers/systemd-tmpfiles absent; entries not applied"
fi
exit $bad
