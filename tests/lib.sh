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
