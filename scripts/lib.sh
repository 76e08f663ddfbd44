# shellcheck shell=bash
# lib.sh: what the load scripts share; source it (". scripts/lib.sh").
#
#   PIDS+=($!)        processes killed on exit (trap set here)
#   free_port         a TCP port nobody listens on (never 6379)
#   wait_http URL S   wait up to S seconds for URL to answer 2xx
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
	local p
	while :; do
		# Below the kernel's ephemeral range (from 32768): a port there can be
		# taken as a source port by any outgoing connection before we bind it.
		p=$((20000 + RANDOM % 12768))
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

# Our node's defaults allow 30 messages a minute per user, 60 connection
# attempts a minute and 32 handshakes at once per address: load runs need
# high limits.
# shellcheck disable=SC2034 # used by the scripts that source this file
NODE_FLAGS=(--dev --log-level warn --stats-interval 0 --drain-period 1s
	--limit-messages 100000000 --limit-typing 100000000 --limit-joins 100000000 --limit-connects 100000000
	--max-user-connections 100000 --max-connections 20000 --max-pending-handshakes 20000 --max-pending-handshakes-per-ip 20000)
