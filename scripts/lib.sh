# shellcheck shell=bash
# lib.sh: what the load scripts share; source it (". scripts/lib.sh").
#
#   PIDS+=($!)        processes killed on exit (trap set here)
#   free_port         a TCP port nobody listens on (never 6379)
#   wait_http URL S   wait up to S seconds for URL to answer 2xx
#   await_ready NAME URL LOG   wait_http URL 15, or print LOG's tail and fail
#   start_redis LOG [ARG...]   a redis-server on a free port (REDIS_PORT), answering PING
#   stop_pid PID      SIGTERM, then SIGKILL if still running 10 s later
#   install_peer DIR  the Socket.IO peer (from PEER_SRC) copied to DIR, npm ci there
#   NODE_FLAGS        our node's flags for load runs

PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
	local p low high=32767
	# Below the kernel's ephemeral range (32768 by default): a port there can
	# be taken as a source port by any outgoing connection before we bind it.
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=0
	[ "${low:-0}" -gt 20001 ] && high=$((low - 1))
	while :; do
		p=$((20000 + RANDOM % (high - 20000 + 1)))
		[ "$p" = 6379 ] && continue
		if ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
}

wait_http() { # url timeout_s
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.1
	done
	return 1
}

# await_ready NAME URL LOG: wait up to 15 s for URL (a server just started
# in the background) to answer; when it does not, print the tail of its LOG
# and fail.
await_ready() {
	wait_http "$2" 15 && return 0
	echo "$(basename "$0"): $1 did not become ready; log:" >&2
	tail -5 "$3" >&2
	return 1
}

# start_redis LOG [ARG...]: a redis-server on a free loopback port without
# persistence, ARGs added to its command line, output to LOG; killed on exit
# (PIDS). Returns once it answers PING, with its port in REDIS_PORT.
start_redis() {
	local log=$1 i
	shift
	REDIS_PORT=$(free_port)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --protected-mode no "$@" >"$log" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$(basename "$0"): redis-server on port $REDIS_PORT did not answer PING; log:" >&2
	tail -5 "$log" >&2
	return 1
}

# stop_pid PID: stop a server with SIGTERM (it drains), SIGKILL after 10 s.
stop_pid() {
	local i
	kill "$1" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
}

# install_peer DIR: the Socket.IO reference gateway the benchmarks compare
# against, kept outside this repository (PEER_SRC names its sources: server.js,
# package.json, package-lock.json), copied to DIR and installed there with
# npm ci, unless DIR already holds its node_modules. Never changes PEER_SRC.
install_peer() {
	[ -d "$1/node_modules" ] && return 0
	mkdir -p "$1"
	cp "$PEER_SRC/server.js" "$PEER_SRC/package.json" "$PEER_SRC/package-lock.json" "$1/"
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

# Our node's defaults allow 30 messages a minute per user, 60 connection
# attempts a minute and 32 handshakes at once per address: load runs need
# high limits. A script that takes extra node flags from its environment
# reads them before sourcing this file, which sets NODE_FLAGS.
# shellcheck disable=SC2034 # used by the scripts that source this file
NODE_FLAGS=(--dev --log-level warn --stats-interval 0 --drain-period 1s
	--limit-messages 100000000 --limit-typing 100000000 --limit-joins 100000000 --limit-connects 100000000 --limit-reactions 100000000
	--max-user-connections 100000 --max-connections 20000 --max-pending-handshakes 20000 --max-pending-handshakes-per-ip 20000)
