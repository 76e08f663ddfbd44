#!/usr/bin/env bash
# bench-compare.sh: measure realtime and the Socket.IO peer side by side on
# this machine and write the tables into docs/BENCHMARKS.md.
#
# Starts one redis-server on a free port (never 6379), two realtime nodes on
# it (--redis-url; if this build cannot run on Redis, one node on the
# embedded engine, and the tables say so), two peer nodes
# (the Node.js Socket.IO reference gateway, kept outside this repository:
# PEER_SRC names its directory; copied to a work directory and installed
# with npm ci, never changed), and runs the same bench scenarios against each
# system in turn, RUNS times (medians are reported), restarting the servers
# before every run so memory is measured from a fresh process.
#
# Every run is bounded (bench --deadline); the whole script takes about
# 25 minutes with RUNS=3 on a 2-core machine.
#
# Environment:
#   RUNS=3            runs per scenario and system (medians of RUNS)
#   SCENARIOS="idle idle-max fanout chat reconnect"   what to run
#   FANOUT_RATES="25 50 100 200"   fanout messages/s (× 2000 members = deliveries/s)
#   IDLE_MAX=19000    connections for idle-max and reconnect (one node)
#   WORK=dir          keep binaries, logs and JSON results there (default: a temp dir)
#   DOC=docs/BENCHMARKS.md   where the tables go (between the bench-compare markers)
#   PEER_SRC=dir      the Socket.IO peer's source (default ../shared/peers/socketio)
#   RENDER_ONLY=1     run nothing: rewrite the tables from the results already in WORK
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-"idle idle-max fanout chat reconnect"}
FANOUT_RATES=${FANOUT_RATES:-"25 50 100 200"}
IDLE_MAX=${IDLE_MAX:-19000}
DOC=${DOC:-docs/BENCHMARKS.md}
WORK=${WORK:-$(mktemp -d /tmp/bench-compare.XXXXXX)}
PEER_SRC=${PEER_SRC:-../shared/peers/socketio}
SECRET=bench-compare-secret
LOCAL_IPS=127.0.0.2-127.0.0.40
mkdir -p "$WORK/results" "$WORK/logs"
echo "bench-compare: work directory $WORK" >&2

. "$(dirname "$0")/lib.sh" # PIDS, free_port, await_ready, start_redis, stop_pid, install_peer, NODE_FLAGS
# --- build and install -------------------------------------------------------
go build -o "$WORK/bench" ./cmd/bench
if [ "${RENDER_ONLY:-0}" != 1 ]; then
go build -o "$WORK/realtime" ./cmd/realtime
echo "$(date -u +%Y-%m-%d) $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$WORK/measured"
install_peer "$WORK/peer"

start_redis "$WORK/logs/redis.log" --maxclients 20000
REDIS_URL=redis://127.0.0.1:$REDIS_PORT


OURS_MODE=redis # or single
SYS_PIDS=()     # server PIDs of the system under test
SYS_TARGETS=""  # its WebSocket addresses
SYS_METRICS=""  # its /metrics URLs (ours only)

stop_system() {
	local p
	for p in "${SYS_PIDS[@]:-}"; do
		[ -n "$p" ] || continue
		stop_pid "$p"
	done
	SYS_PIDS=()
	redis-cli -p "$REDIS_PORT" flushall >/dev/null
}

# await_server PID NAME LOG READY_URL PORT: records the server just started
# in the background as part of the system under test, waits for READY_URL
# to answer and adds its WebSocket port to SYS_TARGETS; when it does not
# answer, prints the tail of its LOG and fails.
await_server() {
	local pid=$1 name=$2 log=$3 url=$4 port=$5
	SYS_PIDS+=("$pid")
	PIDS+=("$pid")
	await_ready "$name" "$url" "$log" || return 1
	SYS_TARGETS+="${SYS_TARGETS:+,}127.0.0.1:$port"
}

# start_ours N: N realtime nodes on the shared Redis (or one embedded node).
start_ours() {
	local n=$1 i port admin
	SYS_TARGETS="" SYS_METRICS=""
	[ "$OURS_MODE" = single ] && n=1
	for ((i = 0; i < n; i++)); do
		port=$(free_port) admin=$(free_port)
		local redis=()
		[ "$OURS_MODE" = redis ] && redis=(--redis-url "$REDIS_URL")
		REALTIME_JWT_SECRET=$SECRET "$WORK/realtime" serve "${NODE_FLAGS[@]}" "${redis[@]}" \
			--addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" --node-id "bench-$i" \
			>>"$WORK/logs/realtime-$i.log" 2>&1 &
		await_server $! "realtime node $i" "$WORK/logs/realtime-$i.log" "http://127.0.0.1:$admin/readyz" "$port" || return 1
		SYS_METRICS+="${SYS_METRICS:+,}http://127.0.0.1:$admin/metrics"
	done
}

# start_peer N: N Socket.IO peer nodes on the shared Redis.
start_peer() {
	local n=$1 i port
	SYS_TARGETS="" SYS_METRICS=""
	for ((i = 0; i < n; i++)); do
		port=$(free_port)
		(cd "$WORK/peer" && PORT=$port JWT_SECRET=$SECRET REDIS_URL=$REDIS_URL exec node server.js) \
			>>"$WORK/logs/peer-$i.log" 2>&1 &
		await_server $! "peer node $i" "$WORK/logs/peer-$i.log" "http://127.0.0.1:$port/health" "$port" || return 1
	done
}

# Does this build run on Redis? Try one node.
if ! start_ours 1 2>/dev/null; then
	OURS_MODE=single
	echo "bench-compare: realtime does not run with --redis-url here; measuring ONE node on the embedded engine" >&2
fi
stop_system

# bench_run system name nodes args...: one run; the JSON result goes to
# results/<name>-<system>-<run>.json and the command line to commands.txt.
bench_run() {
	local system=$1 name=$2 nodes=$3 run=$4
	shift 4
	if [ "$system" = ours ]; then start_ours "$nodes"; else start_peer "$nodes"; fi
	local pids
	pids=$(IFS=,; echo "${SYS_PIDS[*]}")
	local out="$WORK/results/$name-$system-$run.json"
	local cmd=("$WORK/bench" --targets "$SYS_TARGETS" --jwt-secret "$SECRET" --local-ips "$LOCAL_IPS"
		--server-pids "$pids" ${SYS_METRICS:+--metrics-urls "$SYS_METRICS"} --quiet --json "$out" "$@")
	echo "bench-compare: [$run/$RUNS] $name on $system" >&2
	if [ "$run" = 1 ]; then
		printf '%s: bench %s\n' "$name/$system" "$(printf '%q ' "$@" | sed "s|$WORK/||g")" >>"$WORK/commands.txt"
	fi
	"${cmd[@]}" >"$WORK/logs/$name-$system-$run.txt" 2>&1 || echo "bench-compare: $name on $system run $run did not pass (see $WORK/logs/$name-$system-$run.txt)" >&2
	tail -3 "$WORK/logs/$name-$system-$run.txt" | sed 's/^/    /' >&2
	stop_system
}

echo "$OURS_MODE" >"$WORK/mode"
fi
if [ "${RENDER_ONLY:-0}" != 1 ]; then
: >"$WORK/commands.txt"

for run in $(seq "$RUNS"); do
	for s in $SCENARIOS; do
		case $s in
		idle)
			for sys in ours peer; do
				bench_run $sys idle-10k 2 "$run" --scenario idle --conns 10000 --chat-size 10 --duration 15s --procs 1 --connect-concurrency 128
			done
			;;
		idle-max)
			for sys in ours peer; do
				bench_run $sys idle-max 1 "$run" --scenario idle --conns "$IDLE_MAX" --chat-size 10 --duration 15s --procs 2 --connect-concurrency 128
			done
			;;
		fanout)
			for r in $FANOUT_RATES; do
				for sys in ours peer; do
					bench_run $sys "fanout-$r" 2 "$run" --scenario fanout --conns 2000 --rate "$r" --duration 10s --drain 10s
				done
			done
			;;
		chat)
			for sys in ours peer; do
				bench_run $sys chat 2 "$run" --scenario chat --conns 2000 --chat-size 10 --rate 1000 --duration 10s --drain 10s
			done
			;;
		reconnect)
			for sys in ours peer; do
				bench_run $sys reconnect 1 "$run" --scenario reconnect --conns "$IDLE_MAX" --reconnect-fraction 1 --reconnect-timeout 60s --procs 2 --connect-concurrency 128
			done
			;;
		esac
	done
done

fi
declare -a TABLES=()
for s in $SCENARIOS; do
	case $s in
	idle) TABLES+=("idle-10k|idle: 10,000 connections over two nodes, each in a chat of 10, held 15 s") ;;
	idle-max) TABLES+=("idle-max|idle: $IDLE_MAX connections on ONE node (the most one process holds under a 20,000-file limit), held 15 s") ;;
	fanout) for r in $FANOUT_RATES; do
		TABLES+=("fanout-$r|fanout: one chat of 2,000 members over two nodes, $r messages/s = $((r * 2000)) deliveries/s offered, 10 s")
	done ;;
	chat) TABLES+=("chat|chat: 2,000 users in chats of 10 over two nodes, 1,000 messages/s in total (10,000 deliveries/s), 10 s") ;;
	reconnect) TABLES+=("reconnect|connect storm: $IDLE_MAX clients on ONE node dropped at once and reconnecting") ;;
	esac
done
OURS_MODE=$(cat "$WORK/mode" 2>/dev/null || echo redis)
REALTIME_VERSION=$("$WORK/realtime" version 2>/dev/null | head -1 || echo unknown)
read -r MEASURED_ON GIT_REV <"$WORK/measured" || { MEASURED_ON=$(date -u +%Y-%m-%d); GIT_REV=unknown; }
OURS_NAME=realtime
PEER_NAME="Socket.IO peer"
if [ "$OURS_MODE" = single ]; then
	OURS_SETUP="one realtime node on the embedded engine"
else
	OURS_SETUP="two realtime nodes on one Redis"
fi
# --- write the tables ------------------------------------------------------
SECTION="$WORK/section.md"
{
	echo "<!-- bench-compare:begin (written by scripts/bench-compare.sh; edits inside are overwritten) -->"
	echo "## Side by side: realtime vs the Socket.IO peer"
	echo
	echo "Measured $MEASURED_ON at commit \`$GIT_REV\` ($REALTIME_VERSION) on this machine:"
	echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, load generator and servers on the same cores,"
	echo "medians of $RUNS runs each, systems interleaved run by run, servers restarted before every run."
	echo "The machine is shared and noisy: compare the ratios more than the absolute figures."
	echo
	if [ "$OURS_MODE" = single ]; then
		echo "**Note: this build of realtime could not run on Redis (\`--redis-url\`), so our side is ONE node on the"
		echo "embedded engine while the peer runs two nodes on Redis.** Two-node tables run our single node against"
		echo "the peer's two."
		echo
	fi
	echo "realtime: $OURS_SETUP. Socket.IO peer: two socket.io 4.8 nodes with the Redis adapter on the same Redis"
	echo "(the Node.js reference gateway, unmodified, not part of this repository). Tables that say \"ONE node\" use one node of each."
	echo "Ratios are realtime ÷ Socket.IO peer; ✓ marks the better side where they differ by more than 5 %."
	echo "Latencies run from a timestamp taken just before each send to the read that brought the message; lost"
	echo "means not delivered 10 s after the last send. Server CPU and memory come from /proc/<pid> of every server"
	echo "process (utime+stime, VmRSS); memory per connection is the RSS growth from before connecting to"
	echo "connections held, over the connections held."
	echo
	for t in "${TABLES[@]}"; do
		name=${t%%|*} title=${t#*|}
		a=$(ls "$WORK"/results/"$name"-ours-*.json 2>/dev/null | paste -sd, || true)
		b=$(ls "$WORK"/results/"$name"-peer-*.json 2>/dev/null | paste -sd, || true)
		"$WORK/bench" compare --title "$title" --name-a "$OURS_NAME" --a "$a" --name-b "$PEER_NAME" --b "$b" || true
	done
	echo "### Commands"
	echo
	echo "Servers, as started by \`scripts/bench-compare.sh\` (fresh processes for every run):"
	echo
	echo '```sh'
	echo "redis-server --port \$REDIS_PORT --save '' --appendonly no"
	if [ "$OURS_MODE" = redis ]; then
		echo "REALTIME_JWT_SECRET=$SECRET realtime serve ${NODE_FLAGS[*]} --redis-url redis://127.0.0.1:\$REDIS_PORT --addr 127.0.0.1:\$PORT --admin-addr 127.0.0.1:\$ADMIN   # ×2"
	else
		echo "REALTIME_JWT_SECRET=$SECRET realtime serve ${NODE_FLAGS[*]} --addr 127.0.0.1:\$PORT --admin-addr 127.0.0.1:\$ADMIN   # one node, embedded engine"
	fi
	echo "PORT=\$PORT JWT_SECRET=$SECRET REDIS_URL=redis://127.0.0.1:\$REDIS_PORT node \$PEER_SRC/server.js   # ×2"
	echo '```'
	echo
	echo "Load, each with \`--targets <the system's nodes> --jwt-secret $SECRET --local-ips $LOCAL_IPS --server-pids <their PIDs> --json <file>\`:"
	echo
	echo '```sh'
	cat "$WORK/commands.txt"
	echo '```'
	echo "<!-- bench-compare:end -->"
} >"$SECTION"

mkdir -p "$(dirname "$DOC")"
if [ -f "$DOC" ] && grep -q '<!-- bench-compare:begin' "$DOC"; then
	awk -v section="$SECTION" '
		/<!-- bench-compare:begin/ { while ((getline line < section) > 0) print line; skip = 1; next }
		/<!-- bench-compare:end -->/ { skip = 0; next }
		!skip { print }
	' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
else
	{ [ -f "$DOC" ] && cat "$DOC" && echo; cat "$SECTION"; } >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
fi
echo "bench-compare: wrote $DOC (results in $WORK/results)" >&2
