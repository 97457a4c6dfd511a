#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# serve.sh: Strata's serving path beside nginx serving the same bytes over
# the same TLS, in one run on 127.0.0.1, and the goals:
#
#   GET 64 MiB objects, 2 connections    >= 0.8 x nginx MB/s
#   GET 4 KiB objects, 64 connections    >= 0.8 x nginx requests/s
#   batch get of 1,000 x 4 KiB           >= 5 x faster than 1,000 GETs
#
# A Strata node is started with deploy/dev-cluster.sh (a temporary --dir, a
# free port); strata-bench uploads the objects (bytes derived from the
# keys, verified on the first GET of each) and `strata cp -r` exports them
# into nginx's root, so both servers serve identical bytes.  nginx 1.22+
# runs from a temporary prefix as the current user with TLS 1.3 only,
# TLS_AES_256_GCM_SHA384 only, the node's own certificate, one worker per
# core (wrk: one thread per core, at most one per connection),
# sendfile on, access_log off; wrk drives it.  Strata's node negotiates
# the same suite (checked with openssl s_client below).  For 4 KiB GETs
# strata-bench drives its 64 connections the way wrk drives nginx's: from
# one event-loop thread per core (--io event, libstrata's strata_conn_*),
# one request in flight on each; a run with one blocking thread per
# connection is shown beside it for the record.  Every number is
# the median of ROUNDS runs, alternating Strata and nginx (S N, N S, ...).
# Client and server share the machine's cores, for both servers alike.
#
# Usage: tests/bench/serve.sh
# Environment:
#   BUILD     meson build directory (default: <repo>/build)
#   ROUNDS=3  runs per measurement (the median is used)
#   SECS=5    seconds per throughput run
#   TMPDIR    where the temporary directory goes (default /tmp)
#
# Needs nginx and wrk for the baselines: installs them with apt-get when
# missing and run as root, else says so and skips the nginx columns.
# MB is 10^6 bytes.  Exit status 0 when it ran (PASS or MISS alike), 1 when
# a measurement failed.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
bench=$BUILD/client/strata-bench
cli=$BUILD/client/strata
stratad=$BUILD/daemon/stratad
bucket=serve-bench

for f in "$bench" "$cli" "$stratad"; do
	if [[ ! -x $f ]]; then
		echo "serve.sh: $f not found; build first: ninja -C $BUILD" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-serve-bench.XXXXXX")
cluster=$work/cluster
ngx=$work/nginx
www=$work/www
nginx_pid=

cleanup() {
	local rc=$?
	local pid=
	[[ -s $ngx/nginx.pid ]] && pid=$(cat "$ngx/nginx.pid")
	pid=${pid:-$nginx_pid}
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true	# nginx: fast shutdown
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	if [[ -d $cluster ]]; then
		"$root/deploy/dev-cluster.sh" down --dir "$cluster" >&9 2>&9 || true
	fi
	rm -rf -- "$work"
	exit "$rc"
}
# A signal's trap can run inside a redirection of stderr (run_logged):
# cleanup reports on the script's own stderr, kept as fd 9.
exec 9>&2
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

notes=()
note() { notes+=("$*"); echo "note: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "== $*" >&2; }

# ---- tools ----

missing=()
have nginx || missing+=(nginx)
have wrk || missing+=(wrk)
if ((${#missing[@]})); then
	if [[ $(id -u) == 0 ]] && have apt-get; then
		say "installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		if ! apt-get install -y "${missing[@]}" >/dev/null 2>&1; then
			apt-get update >/dev/null 2>&1 || true
			apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
				note "apt-get install ${missing[*]} failed"
		fi
	else
		note "${missing[*]} missing and not root (or no apt-get): not installed"
	fi
fi
baseline=yes
if ! have nginx; then
	note "no nginx: the nginx baselines are skipped"
	baseline=no
elif ! have wrk; then
	note "no wrk: the nginx baselines are skipped"
	baseline=no
fi

# ---- helpers ----

# shellcheck source=../lib.sh
. "$root/tests/lib.sh"	# free_port
ncpu=$(nproc)
# wrk_threads CONNS: one wrk thread per core, at most one per connection
wrk_threads() { echo $(($1 < ncpu ? $1 : ncpu)); }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# jget FILE KEY: the first top-level-or-nested "KEY":number in a JSON line
jget() { grep -o "\"$2\":[-0-9.e]*" "$1" | head -n 1 | cut -d: -f2; }
fmt() { if [[ $2 == n/a ]]; then echo n/a; else awk -v v="$2" "BEGIN { printf \"$1\", v }"; fi; }
verdict() {	# verdict RATIO GOAL: PASS when RATIO >= GOAL
	if [[ $1 == n/a ]]; then echo n/a
	elif awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; then echo PASS
	else echo MISS; fi
}

commands=()
srv_pids=()
clk_tck=$(getconf CLK_TCK)
# server_ticks: user + system CPU of the processes in srv_pids, in ticks
server_ticks() {
	local t=0 p v
	for p in "${srv_pids[@]}"; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# run_logged NAME CMD...: run, keep stdout in $work/NAME, the command's
# user + system CPU seconds in $work/NAME.cpu and the servers' (srv_pids)
# in $work/NAME.srv
run_logged() {
	local name=$1 t0 TIMEFORMAT='%U %S'
	shift
	t0=$(server_ticks)
	if ! { time "$@" >"$work/$name" 2>"$work/$name.err"; } 2>"$work/$name.time"; then
		echo "serve.sh: failed: $*" >&2
		cat "$work/$name.err" >&2
		exit 1
	fi
	calc "($(server_ticks) - $t0) / $clk_tck" >"$work/$name.srv"
	awk '{ printf "%.6g", $1 + $2 }' "$work/$name.time" >"$work/$name.cpu"
}

# ---- the Strata node ----

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
sport=$(free_port)
say "starting a Strata node on 127.0.0.1:$sport in $cluster"
STRATAD=$stratad "$root/deploy/dev-cluster.sh" up --dir "$cluster" --port "$sport" >&2
# shellcheck disable=SC1091
. "$cluster/env"
tls_of() {	# tls_of PORT: "TLSv1.3 TLS_AES_256_GCM_SHA384"
	timeout 5 openssl s_client -connect "127.0.0.1:$1" -brief \
		-CAfile "$cluster/ca.pem" </dev/null 2>&1 |
		awk -F': ' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 }
			    END { print p, c }'
}
strata_tls=$(tls_of "$sport")
strata_pids=("$(cat "$cluster/node1/stratad.pid")")

B=(--bucket "$bucket" --json)
say "uploading 4 x 64 MiB and 1,000 x 4 KiB objects (and verifying them)"
run_logged prep-big "$bench" --workload get "${B[@]}" --size 64M --count 4 \
	--concurrency 2 --ops 4 --prefix big/
run_logged prep-small "$bench" --workload get "${B[@]}" --size 4K \
	--count 1000 --concurrency 8 --ops 1000 --prefix small/

# ---- nginx ----

nport=
nginx_tls="not run"
if [[ $baseline == yes ]]; then
	say "exporting the objects for nginx with strata cp -r"
	mkdir -p "$www" "$ngx/logs" "$ngx/tmp"
	"$cli" -q cp -r "strata://$bucket/big/" "$www/big/" >&2
	"$cli" -q cp -r "strata://$bucket/small/" "$www/small/" >&2
	chmod -R a+rX "$www"
	nport=$(free_port)
	user_line=
	if [[ $(id -u) == 0 ]]; then
		# As root the workers would otherwise run as nobody.
		user_line="user $(id -un) $(id -gn);"
	fi
	cat >"$ngx/nginx.conf" <<EOF
# Written by tests/bench/serve.sh
$user_line
worker_processes $ncpu;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	default_type application/octet-stream;
	client_body_temp_path $ngx/tmp/body;
	proxy_temp_path $ngx/tmp/proxy;
	fastcgi_temp_path $ngx/tmp/fastcgi;
	uwsgi_temp_path $ngx/tmp/uwsgi;
	scgi_temp_path $ngx/tmp/scgi;
	server {
		listen 127.0.0.1:$nport ssl;
		ssl_certificate $cluster/node.pem;
		ssl_certificate_key $cluster/node.key;
		ssl_protocols TLSv1.3;
		ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
		ssl_session_tickets off;
		root $www;
	}
}
EOF
	say "starting nginx on 127.0.0.1:$nport"
	nginx -p "$ngx" -e "$ngx/logs/error.log" -c "$ngx/nginx.conf" \
		>"$ngx/logs/stdout" 2>&1 &
	nginx_pid=$!
	for _ in $(seq 1 100); do
		curl -sf --cacert "$cluster/ca.pem" -o /dev/null \
			"https://127.0.0.1:$nport/small/obj-00000000" && break
		kill -0 "$nginx_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! curl -sf --cacert "$cluster/ca.pem" -o /dev/null \
		"https://127.0.0.1:$nport/small/obj-00000000"; then
		note "nginx did not start: $(tail -n 3 "$ngx/logs/error.log" 2>/dev/null | tr '\n' ' ')"
		baseline=no
	else
		nginx_tls=$(tls_of "$nport")
		mapfile -t nginx_pids < <(pgrep -P "$nginx_pid")
		nginx_pids+=("$nginx_pid")
		# Same bytes from both servers (the first object of each size).
		for k in big/obj-00000000 small/obj-00000999; do
			if ! cmp -s <(curl -sf --cacert "$cluster/ca.pem" \
					"https://127.0.0.1:$nport/$k") \
				    <("$cli" cat "strata://$bucket/$k"); then
				echo "serve.sh: nginx and Strata differ on $k" >&2
				exit 1
			fi
		done
	fi
fi

# wrk's script: cycle through PREFIX00000000..COUNT-1, report exact sums.
cat >"$work/wrk.lua" <<'EOF'
local prefix, count, n = "/", 1, 0
function init(args)
	prefix = args[1]
	count = tonumber(args[2])
	n = math.random(count) - 1
end
function request()
	n = (n + 1) % count
	return wrk.format("GET", string.format("%s%08d", prefix, n))
end
function done(s, latency, requests)
	local e = s.errors
	io.write(string.format("WRK requests=%d bytes=%d duration_us=%d errors=%d non2xx=%d\n",
		s.requests, s.bytes, s.duration,
		e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
wk() { grep '^WRK ' "$work/$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wrk_run NAME CONNS PREFIX COUNT SIZE: writes $work/NAME; fails on any
# error, or when the responses were shorter than SIZE bytes each
wrk_run() {
	run_logged "$1" wrk -t"$(wrk_threads "$2")" -c"$2" -d"${SECS}s" --timeout 30s \
		-s "$work/wrk.lua" "https://127.0.0.1:$nport" -- "$3" "$4"
	local line
	line=$(grep '^WRK ' "$work/$1")
	case $line in
	*" errors=0 non2xx=0") ;;
	*) echo "serve.sh: wrk reported errors: $line" >&2; exit 1 ;;
	esac
	# bytes count partial responses too: allow one in flight per connection
	if ! awk -v b="$(wk "$1" bytes)" -v r="$(wk "$1" requests)" -v s="$5" \
		'BEGIN { exit !(r > 0 && b >= r * s) }'; then
		echo "serve.sh: wrk got short responses: $line" >&2
		exit 1
	fi
}

# ---- (a) GET 64 MiB, 2 connections; (b) GET 4 KiB, 64 connections ----

a_s=() a_n=() b_s=() b_n=()
strata_a=("$bench" --workload get "${B[@]}" --size 64M --count 4
	  --concurrency 2 --duration "$SECS" --prefix big/)
# 4 KiB: 64 connections driven from one thread per core, as wrk drives
# nginx's (--io event); then, for the record, one blocking thread per
# connection (--io threads), which on shared cores spends much of the CPU
# on waking a thread per answer.
strata_b=("$bench" --workload get "${B[@]}" --size 4K --count 1000
	  --concurrency 64 --duration "$SECS" --prefix small/ --io event)
strata_bt=("$bench" --workload get "${B[@]}" --size 4K --count 1000
	   --concurrency 64 --duration "$SECS" --prefix small/ --io threads)
commands+=("${strata_a[*]}" "${strata_b[*]}" "${strata_bt[*]}")
if [[ $baseline == yes ]]; then
	commands+=("wrk -t$(wrk_threads 2) -c2 -d${SECS}s --timeout 30s -s wrk.lua https://127.0.0.1:$nport -- /big/obj- 4"
		   "wrk -t$(wrk_threads 64) -c64 -d${SECS}s --timeout 30s -s wrk.lua https://127.0.0.1:$nport -- /small/obj- 1000")
fi

# per-run CPU: server seconds per GB (a) or microseconds per request (b),
# and the same for the client
a_ss=() a_sc=() a_ns=() a_nc=() b_ss=() b_sc=() b_ns=() b_nc=()
b_t=() b_ts=() b_tc=()
a_strata() {
	srv_pids=("${strata_pids[@]}")
	run_logged "a-s$1" "${strata_a[@]}"
	a_s+=("$(jget "$work/a-s$1" mb_per_s)")
	local gb
	gb=$(calc "$(jget "$work/a-s$1" bytes) / 1e9")
	a_ss+=("$(calc "$(cat "$work/a-s$1.srv") / $gb")")
	a_sc+=("$(calc "$(cat "$work/a-s$1.cpu") / $gb")")
}
a_nginx() {
	srv_pids=("${nginx_pids[@]}")
	wrk_run "a-n$1" 2 /big/obj- 4 67108864
	a_n+=("$(calc "$(wk "a-n$1" bytes) / $(wk "a-n$1" duration_us)")")
	local gb
	gb=$(calc "$(wk "a-n$1" bytes) / 1e9")
	a_ns+=("$(calc "$(cat "$work/a-n$1.srv") / $gb")")
	a_nc+=("$(calc "$(cat "$work/a-n$1.cpu") / $gb")")
}
b_strata() {
	srv_pids=("${strata_pids[@]}")
	run_logged "b-s$1" "${strata_b[@]}"
	local conns ops
	# Event mode: 64 connections for the gets, plus each thread's idle
	# one from the upload check.
	conns=$(jget "$work/b-s$1" connections)
	((conns >= 64 && conns <= 64 + $(jget "$work/b-s$1" threads))) ||
		note "strata-bench held $conns connections, not 64"
	b_s+=("$(jget "$work/b-s$1" ops_per_s)")
	ops=$(jget "$work/b-s$1" ops)
	b_ss+=("$(calc "$(cat "$work/b-s$1.srv") * 1e6 / $ops")")
	b_sc+=("$(calc "$(cat "$work/b-s$1.cpu") * 1e6 / $ops")")
	run_logged "b-t$1" "${strata_bt[@]}"
	b_t+=("$(jget "$work/b-t$1" ops_per_s)")
	ops=$(jget "$work/b-t$1" ops)
	b_ts+=("$(calc "$(cat "$work/b-t$1.srv") * 1e6 / $ops")")
	b_tc+=("$(calc "$(cat "$work/b-t$1.cpu") * 1e6 / $ops")")
}
b_nginx() {
	srv_pids=("${nginx_pids[@]}")
	wrk_run "b-n$1" 64 /small/obj- 1000 4096
	local ops
	ops=$(wk "b-n$1" requests)
	b_n+=("$(calc "$ops * 1e6 / $(wk "b-n$1" duration_us)")")
	b_ns+=("$(calc "$(cat "$work/b-n$1.srv") * 1e6 / $ops")")
	b_nc+=("$(calc "$(cat "$work/b-n$1.cpu") * 1e6 / $ops")")
}

for m in a b; do
	say "($m) $([[ $m == a ]] && echo 'GET 64 MiB, 2 connections' || echo 'GET 4 KiB, 64 connections'), $ROUNDS rounds of ${SECS} s each side"
	for ((r = 1; r <= ROUNDS; r++)); do
		if [[ $baseline == yes ]] && ((r % 2 == 0)); then
			"${m}_nginx" "$r"; "${m}_strata" "$r"
		else
			"${m}_strata" "$r"
			if [[ $baseline == yes ]]; then "${m}_nginx" "$r"; fi
		fi
	done
done

# ---- (c) batch get of 1,000 x 4 KiB vs 1,000 single GETs ----

say "(c) batch get of 1,000 x 4 KiB vs 1,000 single GETs, $ROUNDS rounds"
strata_cb=("$bench" --workload batch "${B[@]}" --size 4K --count 1000
	   --batch-keys 1000 --concurrency 1 --ops 1 --prefix small/)
strata_cs=("$bench" --workload get "${B[@]}" --size 4K --count 1000
	   --concurrency 1 --ops 1000 --prefix small/)
commands+=("${strata_cb[*]}" "${strata_cs[*]}")
c_b=() c_s=() c_r=()
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2 == 0)); then
		run_logged "c-s$r" "${strata_cs[@]}"
		run_logged "c-b$r" "${strata_cb[@]}"
	else
		run_logged "c-b$r" "${strata_cb[@]}"
		run_logged "c-s$r" "${strata_cs[@]}"
	fi
	[[ $(jget "$work/c-b$r" objects) == 1000 ]] ||
		{ echo "serve.sh: the batch did not deliver 1,000 objects" >&2; exit 1; }
	c_b+=("$(calc "$(jget "$work/c-b$r" elapsed_s) * 1000")")
	c_s+=("$(calc "$(jget "$work/c-s$r" elapsed_s) * 1000")")
	c_r+=("$(calc "${c_s[-1]} / ${c_b[-1]}")")
done

# ---- the table ----

a_sm=$(median "${a_s[@]}") b_sm=$(median "${b_s[@]}")
b_tm=$(median "${b_t[@]}")
a_nm=n/a b_nm=n/a a_ratio=n/a b_ratio=n/a bt_ratio=n/a
if [[ $baseline == yes ]]; then
	a_nm=$(median "${a_n[@]}") b_nm=$(median "${b_n[@]}")
	a_ratio=$(calc "$a_sm / $a_nm")
	b_ratio=$(calc "$b_sm / $b_nm")
	bt_ratio=$(calc "$b_tm / $b_nm")
fi
c_bm=$(median "${c_b[@]}") c_sm=$(median "${c_s[@]}") c_rm=$(median "${c_r[@]}")

echo
echo "Strata serving vs nginx on 127.0.0.1 ($(nproc) CPUs, $(uname -r)); median of $ROUNDS, ${SECS} s runs"
nginx_ver=none
have nginx && nginx_ver=$(nginx -v 2>&1 | sed 's/.*: //')
echo "Load average (1/5/15 min) at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "TLS: Strata $strata_tls; nginx $nginx_tls ($nginx_ver)"
echo
echo "| metric | Strata | nginx (or baseline) | ratio | goal | result |"
echo "|---|---|---|---|---|---|"
printf '| GET 64 MiB objects, 2 connections (MB/s) | %s | %s | %s | >= 0.8x nginx | %s |\n' \
	"$(fmt %.0f "$a_sm")" "$(fmt %.0f "$a_nm")" "$(fmt %.2f "$a_ratio")" \
	"$(verdict "$a_ratio" 0.8)"
printf '| GET 4 KiB objects, 64 connections (req/s) | %s | %s | %s | >= 0.8x nginx | %s |\n' \
	"$(fmt %.0f "$b_sm")" "$(fmt %.0f "$b_nm")" "$(fmt %.2f "$b_ratio")" \
	"$(verdict "$b_ratio" 0.8)"
printf '| (the same, one blocking client thread per connection) | %s | %s | %s | (for the record) | - |\n' \
	"$(fmt %.0f "$b_tm")" "$(fmt %.0f "$b_nm")" "$(fmt %.2f "$bt_ratio")"
printf '| batch get 1,000 x 4 KiB vs 1,000 single GETs (ms wall; baseline = singles) | %s | %s | %s | >= 5x faster | %s |\n' \
	"$(fmt %.2f "$c_bm")" "$(fmt %.2f "$c_sm")" "$(fmt %.2f "$c_rm")" \
	"$(verdict "$c_rm" 5)"
echo
echo "Runs (in order measured): (a) Strata MB/s ${a_s[*]}; nginx ${a_n[*]:-n/a}"
echo "  (b) Strata req/s ${b_s[*]} (blocking threads: ${b_t[*]}); nginx ${b_n[*]:-n/a}"
echo "  (c) batch ms ${c_b[*]}; singles ms ${c_s[*]}; ratios ${c_r[*]} (ratio column: median of the per-round ratios)"
medf() { local f=$1; shift; if (($#)); then fmt "$f" "$(median "$@")"; else echo n/a; fi; }
echo "CPU (median; includes each client's start-up and verification):"
echo "  (a) CPU s per GB served: stratad $(medf %.2f "${a_ss[@]}"), nginx $(medf %.2f "${a_ns[@]}");" \
     "client: strata-bench $(medf %.2f "${a_sc[@]}"), wrk $(medf %.2f "${a_nc[@]}")"
echo "  (b) CPU us per 4 KiB GET: stratad $(medf %.1f "${b_ss[@]}"), nginx $(medf %.1f "${b_ns[@]}");" \
     "client: strata-bench $(medf %.1f "${b_sc[@]}"), wrk $(medf %.1f "${b_nc[@]}")"
echo "      blocking client threads: stratad $(medf %.1f "${b_ts[@]}"), strata-bench $(medf %.1f "${b_tc[@]}")"
echo
echo "Command: $0 (BUILD=$BUILD ROUNDS=$ROUNDS SECS=$SECS)"
echo "Runs used (environment from dev-cluster's env file):"
for c in "${commands[@]}"; do
	echo "  $c"
done
if ((${#notes[@]})); then
	echo
	echo "Notes:"
	for n in "${notes[@]}"; do
		echo "  - $n"
	done
fi
