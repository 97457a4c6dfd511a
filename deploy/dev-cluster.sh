#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A local Strata node (or N independent ones) on 127.0.0.1, for development
# and the quick start.
#
#   deploy/dev-cluster.sh up   [--nodes N] [--dir DIR] [--port P]
#   deploy/dev-cluster.sh down [--dir DIR]
#   deploy/dev-cluster.sh status [--dir DIR]
#
# up: makes (once) a CA and a node certificate with the openssl CLI, a master
# key and a config per node, starts every node that is not running, waits
# until each serves, and writes DIR/env with the STRATA_* exports for the
# CLI and libstrata (". DIR/env").  Running it again restarts only nodes that
# are down, with their data, keys, certificates and ports intact (--port
# only places new nodes).
# down: stops exactly the processes this script started (pid files, checked
# against their command line), and waits for them to exit.
#
# STRATAD=path overrides the daemon binary (default: build/daemon/stratad).
# STRATA_DEV_TIERS="key = value\n..." adds lines to each new node's [tiers]
# section (tests and benchmarks: capacities, the slow-device knobs), and
# STRATA_DEV_NODE the same to [node] (e.g. "io_threads = 2").
# STRATA_DEV_AUDIT=1 gives each new node an audit log, NODEDIR/audit.log
# ([audit] path; it turns the answer cache off, so benchmarks leave it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=${1:-}
[ -n "$cmd" ] && shift
nodes=1
dir=/var/tmp/strata-dev
base_port=7480
while [ $# -gt 0 ]; do
	case $1 in
	--nodes|--dir|--port)
		[ $# -ge 2 ] || { echo "dev-cluster: $1 wants a value" >&2; exit 2; } ;;
	esac
	case $1 in
	--nodes) nodes=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--port) base_port=$2; shift 2 ;;
	-h|--help) sed -n '3,/^set /{/^set /d;p}' "$0"; exit 0 ;;
	*) echo "dev-cluster: unknown option $1" >&2; exit 2 ;;
	esac
done
case $nodes in ''|0|*[!0-9]*) echo "dev-cluster: --nodes wants a number from 1" >&2; exit 2 ;; esac
case $base_port in ''|*[!0-9]*) echo "dev-cluster: --port wants a number" >&2; exit 2 ;; esac
# Configs and env name it: absolute, whatever the working directory.
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
stratad=${STRATAD:-$here/build/daemon/stratad}

say() { printf 'dev-cluster: %s\n' "$*"; }

# Its pid file names a process whose command line is a stratad's ending in
# exactly "-c DIR/stratad.conf" (compared as strings: DIR may hold spaces
# or characters special to grep); a pid reused by another process is not.
running() {	# node dir -> 0 if its stratad runs
	local pidf=$1/stratad.pid pid a
	local -a argv
	[ -f "$pidf" ] || return 1
	pid=$(cat "$pidf")
	case $pid in ''|*[!0-9]*) return 1 ;; esac
	mapfile -d '' argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
	[ ${#argv[@]} -ge 3 ] && [ "${argv[-2]}" = -c ] &&
		[ "${argv[-1]}" = "$1/stratad.conf" ] || return 1
	for a in "${argv[@]:0:${#argv[@]}-2}"; do
		case ${a##*/} in stratad*) return 0 ;; esac
	done
	return 1
}

make_certs() {
	# All three, or made again: an earlier 'up' that stopped half way
	# (an openssl failure, ^C) must not leave a CA without a node
	# certificate for good.
	[ -s "$dir/ca.pem" ] && [ -s "$dir/node.pem" ] && [ -s "$dir/node.key" ] && return 0
	command -v openssl >/dev/null || { echo "dev-cluster: needs the openssl CLI (apt-get install openssl)" >&2; exit 1; }
	say "creating a CA and a node certificate in $dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 \
		-subj "/CN=Strata dev CA" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/node.key" -out "$dir/node.csr" \
		-subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$dir/node.ext"
	openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -out "$dir/node.pem" -days 825 -extfile "$dir/node.ext" 2>/dev/null
	chmod 600 "$dir/ca.key" "$dir/node.key"
	rm -f "$dir/node.csr" "$dir/node.ext"
}

make_master() {
	[ -s "$dir/master.key" ] && return 0
	(umask 077; openssl rand -hex 32 >"$dir/master.key")
	chmod 600 "$dir/master.key"
}

make_node() {	# i -> writes its config
	local n=$dir/node$1 port=$((base_port + $1 - 1))
	mkdir -p "$n/state" "$n/hot" "$n/cold"
	[ -f "$n/stratad.conf" ] && return 0
	cat >"$n/stratad.conf" <<EOF
# Written by deploy/dev-cluster.sh; see stratad.conf(5).
[node]
id = $1
state_dir = $n/state
listen = 127.0.0.1:$port
$(printf '%b' "${STRATA_DEV_NODE:-}")

[tls]
cert = $dir/node.pem
key = $dir/node.key

[keys]
master_key = $dir/master.key

[tiers]
hot = $n/hot
cold = $n/cold
$(printf '%b' "${STRATA_DEV_TIERS:-}")

[log]
level = info
$( [ -n "${STRATA_DEV_AUDIT:-}" ] && printf '\n[audit]\npath = %s\n' "$n/audit.log")
EOF
}

# The port a node's config says it listens on (a node made earlier keeps
# its own, whatever --port says now).
node_port() {	# node dir
	sed -n 's/^listen = 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1/stratad.conf" | head -n 1
}

# A value for the shell that reads DIR/env: as it is when it is plain,
# else quoted (spaces, quotes, $).
shq() {
	case $1 in
	*[!A-Za-z0-9_./:@%+,=-]* | '') printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
	*) printf '%s' "$1" ;;
	esac
}

# Serving: its admin key written and its own "serving on" line in the log
# since it started (log bytes before it: $3), not merely something that
# answers on the port (another process could hold it, and the node would
# have exited on "address already in use").
# Until it exits, the child started for a node is alive: at first it is
# still this script's forked shell or nohup (not yet a stratad by its
# command line, which a loaded machine can make last), then the stratad.
alive() {	# pid
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

wait_serving() {	# node dir, port, log offset, pid
	local i
	for i in $(seq 1 300); do
		if [ -f "$1/state/admin.key" ] &&
			tail -c +"$(($3 + 1))" "$1/stratad.log" 2>/dev/null |
				grep -q "serving on 127.0.0.1:$2 " &&
			running "$1"; then
			return 0
		fi
		alive "$4" || { echo "dev-cluster: node in $1 exited; see $1/stratad.log" >&2; tail -n 5 "$1/stratad.log" >&2; return 1; }
		sleep 0.1
	done
	echo "dev-cluster: node in $1 did not start serving in 30 s; see $1/stratad.log" >&2
	return 1
}

up() {
	[ -x "$stratad" ] || { echo "dev-cluster: no daemon at $stratad (build first: meson setup build && ninja -C build)" >&2; exit 1; }
	mkdir -p "$dir"
	make_certs
	make_master
	for i in $(seq 1 "$nodes"); do
		local n=$dir/node$i port
		make_node "$i"
		port=$(node_port "$n")
		[ -n "$port" ] || { echo "dev-cluster: $n/stratad.conf has no 'listen = 127.0.0.1:PORT' line" >&2; exit 1; }
		[ "$port" = $((base_port + i - 1)) ] ||
			say "node $i keeps port $port (its config, made earlier); --port applies to new nodes"
		if running "$n"; then
			say "node $i already running (pid $(cat "$n/stratad.pid"), port $port)"
			continue
		fi
		local off
		off=$(stat -c %s "$n/stratad.log" 2>/dev/null || echo 0)
		nohup "$stratad" -c "$n/stratad.conf" >>"$n/stratad.log" 2>&1 &
		echo $! >"$n/stratad.pid"
		wait_serving "$n" "$port" "$off" "$(cat "$n/stratad.pid")"
		say "node $i serving on 127.0.0.1:$port (pid $(cat "$n/stratad.pid"), log $n/stratad.log)"
	done
	local ak sk
	ak=$(sed -n 's/^access_key = //p' "$dir/node1/state/admin.key")
	sk=$(sed -n 's/^secret_key = //p' "$dir/node1/state/admin.key")
	(umask 077; cat >"$dir/env" <<EOF
export STRATA_ENDPOINT=127.0.0.1:$(node_port "$dir/node1")
export STRATA_ACCESS_KEY=$ak
export STRATA_SECRET_KEY=$sk
export STRATA_CA=$(shq "$dir/ca.pem")
EOF
)
	say "wrote $dir/env (load it with: . $dir/env)"
}

down() {
	local n pid stopped=0
	for n in "$dir"/node*; do
		[ -d "$n" ] || continue
		if running "$n"; then
			pid=$(cat "$n/stratad.pid")
			# Requests under way get shutdown_grace_ms (10 s) to
			# finish; the store's close follows.
			kill -TERM "$pid"
			for _ in $(seq 1 300); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				say "pid $pid did not stop in 30 s; killing it"
				kill -KILL "$pid" || true
			fi
			stopped=$((stopped + 1))
		fi
		rm -f "$n/stratad.pid"
	done
	say "stopped $stopped node(s)"
}

status() {
	local n
	for n in "$dir"/node*; do
		[ -d "$n" ] || continue
		if running "$n"; then say "$(basename "$n"): running (pid $(cat "$n/stratad.pid"))"
		else say "$(basename "$n"): stopped"; fi
	done
}

case $cmd in
up) up ;;
down) down ;;
status) status ;;
*) sed -n '3,/^set /{/^set /d;p}' "$0" >&2; exit 2 ;;
esac
