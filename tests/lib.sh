# SPDX-License-Identifier: Apache-2.0
# Shell helpers that the test and benchmark scripts source.

# free_port: print a TCP port on 127.0.0.1 that nothing listens on (yet),
# tried at random in 20000-32767 (below Linux's ephemeral range, so no
# outgoing connection holds it a moment later); fails after 50 busy tries.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12768))
		if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port on 127.0.0.1" >&2
	return 1
}

# dev_up ROOT DIR: deploy/dev-cluster.sh up --dir DIR on a free port, tried
# again on another (DIR made afresh) if something took the port between
# free_port and the node's bind; sets $port.  Other failures fail at once.
dev_up() {
	local root=$1 dir=$2 try
	for try in 1 2 3; do
		port=$(free_port) || return 1
		if "$root/deploy/dev-cluster.sh" up --dir "$dir" --port "$port" >/dev/null; then
			return 0
		fi
		grep -qi "address already in use" "$dir/node1/stratad.log" 2>/dev/null || return 1
		echo "dev_up: port $port was taken meanwhile; another (try $try)" >&2
		"$root/deploy/dev-cluster.sh" down --dir "$dir" >/dev/null 2>&1 || true
		rm -rf "$dir"
	done
	return 1
}
