#!/usr/bin/env bash
# Redis's own cost per send_message: INFO cpu over a steady window and INFO
# commandstats, in the chat scenario (2,000 users in chats of 2, 1,000
# messages/s over two nodes). Everything runs on free ports (never 6379).
#
#   bash scripts/redis-cost.sh standalone   # two realtime nodes on one Redis
#   bash scripts/redis-cost.sh cluster      # ... on a Redis Cluster, 3 masters + 3 replicas
#   bash scripts/redis-cost.sh cluster0     # ... on a Redis Cluster, 3 masters, no replicas
#   bash scripts/redis-cost.sh peer         # two Socket.IO peer nodes (Redis adapter) on one Redis
#   BARE=1 bash scripts/redis-cost.sh standalone   # plus tools/barescript at 1,000 calls/s
#   SCENARIO=typing bash scripts/redis-cost.sh standalone   # typing events instead of messages
#   RATE=2500 bash scripts/redis-cost.sh standalone   # messages (or typing events) per second, default 1000
#   NODE_FLAGS='--history-size 500' bash scripts/redis-cost.sh standalone   # extra flags for the nodes
#   SLOWLOG=1 bash scripts/redis-cost.sh standalone   # plus every command of the window from the slow log,
#                                                     # EVALSHA split by script (sha, key count, first argument)
#   PERF=1 PERF_OUT=/tmp/redis.perf bash scripts/redis-cost.sh standalone   # perf profile of Redis, kept
#
# Printed per send: Redis CPU (user, sys), client reads and writes, bytes in
# and out, and every command's calls and usec (INFO commandstats; a command
# called from a script is counted on its own line and inside EVALSHA's).
#
# The window is 5 s, starting about 1 s after the sends do (connects and
# joins done) in a 15 s run.
# Redis CPU per send = (used_cpu_sys + used_cpu_user over the window, summed
# over the masters) / (XADD calls in the window; PUBLISH calls for the peer
# and for typing).
# PEER_SRC: the Socket.IO peer's sources (server.js, package.json,
# package-lock.json), default ../shared/peers/socketio.
set -euo pipefail
mode=${1:?usage: redis-cost.sh standalone|cluster|cluster0|peer}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_SRC=${PEER_SRC:-$root/../shared/peers/socketio}
extra_flags=${NODE_FLAGS:-} # lib.sh sets NODE_FLAGS to the load-run flags
. "$root/scripts/lib.sh"    # PIDS, free_port, await_ready, start_redis, install_peer, NODE_FLAGS
work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT

(cd "$root" && go build -o "$work/realtime" ./cmd/realtime && go build -o "$work/bench" ./cmd/bench && go build -o "$work/barescript" ./tools/barescript)

masters=()
case $mode in
standalone | peer)
	start_redis "$work/redis.log"
	masters=("$REDIS_PORT")
	eng=(--redis-url "redis://127.0.0.1:$REDIS_PORT/0")
	;;
cluster | cluster0)
	n=6 replicas=1
	[ "$mode" = cluster0 ] && n=3 replicas=0
	addrs=()
	for ((i = 0; i < n; i++)); do
		mkdir -p "$work/n$i"
		start_redis "$work/n$i/redis.log" --dir "$work/n$i" --cluster-port "$(free_port)" --cluster-enabled yes \
			--cluster-config-file "$work/n$i/nodes.conf" --cluster-node-timeout 1000 --repl-diskless-sync-delay 0
		addrs+=("127.0.0.1:$REDIS_PORT")
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes >/dev/null
	sleep 3
	for a in "${addrs[@]}"; do
		redis-cli -p "${a#*:}" info replication | grep -q role:master && masters+=("${a#*:}")
	done
	eng=(--redis-cluster-addrs "$(IFS=,; echo "${addrs[*]}")")
	;;
*)
	echo "redis-cost: unknown mode $mode" >&2
	exit 2
	;;
esac

n1=$(free_port) n2=$(free_port)
if [ "$mode" = peer ]; then
	install_peer "$work/peer"
	for p in "$n1" "$n2"; do
		(cd "$work/peer" && PORT=$p JWT_SECRET=dev-secret REDIS_URL=redis://127.0.0.1:${masters[0]} exec node server.js) >>"$work/nodes.log" 2>&1 &
		PIDS+=($!)
		await_ready "peer node :$p" "http://127.0.0.1:$p/health" "$work/nodes.log"
	done
else
	for p in "$n1" "$n2"; do
		admin=$(free_port)
		# --stats-interval 10s (the default; NODE_FLAGS turns it off): the stats
		# line's cluster reads are part of what a node costs Redis.
		# shellcheck disable=SC2086 # extra_flags: extra serve flags, split on spaces
		"$work/realtime" serve "${NODE_FLAGS[@]}" --stats-interval 10s --addr "127.0.0.1:$p" --admin-addr "127.0.0.1:$admin" "${eng[@]}" $extra_flags >>"$work/nodes.log" 2>&1 &
		PIDS+=($!)
		await_ready "realtime node :$p" "http://127.0.0.1:$admin/readyz" "$work/nodes.log"
	done
fi

snapshot() { # snapshot <suffix>: every master's INFO cpu and commandstats
	for m in "${masters[@]}"; do
		redis-cli -p "$m" info cpu | awk -F: '/used_cpu_(sys|user):/ {s += $2} /used_cpu_user:/ {u = $2} END {print s, u}' >"$work/cpu$1.$m"
		redis-cli -p "$m" info commandstats >"$work/cs$1.$m"
		redis-cli -p "$m" info stats | grep -E '^(total_(reads|writes)_processed|total_net_(input|output)_bytes|pubsub_(channels|patterns)):' >>"$work/cs$1.$m"
		redis-cli -p "$m" info clients | grep -E '^connected_clients:' >>"$work/cs$1.$m"
	done
}
scenario=${SCENARIO:-chat}
"$work/bench" --scenario "$scenario" --conns 2000 --chat-size 2 --rate "${RATE:-1000}" --duration 15s \
	--targets "127.0.0.1:$n1,127.0.0.1:$n2" --jwt-secret dev-secret >"$work/bench.out" 2>&1 &
bench=$!
if [ -n "${BARE:-}" ]; then
	"$work/barescript" --addr "127.0.0.1:${masters[0]}" --rate 1000 --duration 14s >"$work/bare.out" 2>&1 &
	PIDS+=($!)
fi
# The window starts 1 s after the load does (connects and joins take longer
# on a loaded machine): when Redis sees at least 500 publishes a second.
pubs() { for m in "${masters[@]}"; do redis-cli -p "$m" info commandstats; done |
	awk -F'[=,:]' '/^cmdstat_s?publish:/ {s += $3} END {print s + 0}'; }
prev=$(pubs) started=
for ((i = 0; i < 60; i++)); do
	sleep 1
	cur=$(pubs)
	if ((cur - prev >= ${RATE:-1000} / 2)); then started=1 && break; fi
	prev=$cur
done
[ -n "$started" ] || { echo "redis-cost: the load did not start" >&2; tail "$work/bench.out" >&2; exit 1; }
sleep 1
if [ -n "${SLOWLOG:-}" ]; then # SLOWLOG=1: every command of the window in the slow log, for a per-script breakdown
	for m in "${masters[@]}"; do
		redis-cli -p "$m" config set slowlog-max-len 100000 >/dev/null
		redis-cli -p "$m" slowlog reset >/dev/null
		redis-cli -p "$m" config set slowlog-log-slower-than 0 >/dev/null
	done
fi
snapshot 0
t0=$(date +%s.%N)
if [ -n "${PERF:-}" ]; then # PERF=1: a CPU profile of the (first) Redis over the window
	perf record -q -g -o "$work/perf.data" -p "$(redis-cli -p "${masters[0]}" info server | awk -F: '/process_id/ {print $2+0}')" -- sleep 5 2>/dev/null
else
	sleep 5
fi
snapshot 1
t1=$(date +%s.%N)
if [ -n "${SLOWLOG:-}" ]; then
	for m in "${masters[@]}"; do
		redis-cli -p "$m" config set slowlog-log-slower-than 10000 >/dev/null
		redis-cli -p "$m" --json slowlog get 100000 >"$work/slowlog.$m.json"
	done
fi
wait "$bench" || true

python3 - "$mode" "$scenario" "$work" "$t0" "$t1" "${masters[@]}" <<'PY'
import re, sys
mode, scenario, work, t0, t1, masters = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6:]
cpu, user, stats, io = 0.0, 0.0, {}, {}
print(f"mode {mode}: window {t1 - t0:.2f} s, {len(masters)} master(s)")
for m in masters:
    (c1, u1), (c0, u0) = (map(float, open(f"{work}/cpu{i}.{m}").read().split()) for i in (1, 0))
    c, u = c1 - c0, u1 - u0
    cpu += c; user += u
    print(f"  master :{m}  Redis CPU {c:.3f} s (user {u:.3f}, sys {c - u:.3f})")
    for f, sign in ((f"{work}/cs1.{m}", 1), (f"{work}/cs0.{m}", -1)):
        for line in open(f):
            g = re.match(r"total_(reads|writes)_processed:(\d+)", line)
            if g:
                io[g.group(1)] = io.get(g.group(1), 0) + sign * int(g.group(2))
            g = re.match(r"total_net_(input|output)_bytes:(\d+)", line)
            if g:
                io[g.group(1)] = io.get(g.group(1), 0) + sign * int(g.group(2))
            g = re.match(r"(connected_clients|pubsub_channels|pubsub_patterns):(\d+)", line)
            if g and sign == 1:
                io[g.group(1)] = io.get(g.group(1), 0) + int(g.group(2))
            g = re.match(r"cmdstat_(\w+):calls=(\d+),usec=(\d+),.*failed_calls=(\d+)", line)
            if g:
                d = stats.setdefault(g.group(1), [0, 0, 0])
                d[0] += sign * int(g.group(2)); d[1] += sign * int(g.group(3)); d[2] += sign * int(g.group(4))
pubs = stats.get("publish", [0])[0] + stats.get("spublish", [0])[0] - stats.get("fcall", [0])[0]
sends = pubs if mode == "peer" or scenario != "chat" else stats.get("xadd", [0])[0] - stats.get("fcall", [0])[0]
if sends <= 0:  # a build that appends nothing
    sends = pubs
print(f"  sends in the window {sends}; Redis CPU per send {cpu / max(sends, 1) * 1e6:.1f} µs (user {user / max(sends, 1) * 1e6:.1f}, sys {(cpu - user) / max(sends, 1) * 1e6:.1f}; all masters)")
print(f"  Redis reads per send {io.get('reads', 0) / max(sends, 1):.2f}, writes per send {io.get('writes', 0) / max(sends, 1):.2f} (client reads and writes, all connections)")
for k, (calls, usec, failed) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
    if calls > 0:
        print(f"  {k:18s} calls {calls:7d}  per send {calls / max(sends, 1):5.2f}  usec/call {usec / calls:6.1f}  usec per send {usec / max(sends, 1):6.1f}  failed {failed}")
import glob, json
for f in glob.glob(f"{work}/slowlog.*.json"):
    by = {}
    for e in json.load(open(f, errors="replace")):
        args = e[3]
        name = args[0].lower()
        if name in ("evalsha", "fcall") and len(args) > 3:
            # the script's sha (or function), its key count and its first argument name it
            name = f"{name} {args[1][:8]} keys={args[2]} argv1={args[3 + int(args[2])] if len(args) > 3 + int(args[2]) else ''}"
        d = by.setdefault(name, [0, 0])
        d[0] += 1; d[1] += e[2]
    print(f"  slow log ({f.rsplit('/', 1)[1]}, every command of the window, usec wall):")
    for k, (calls, usec) in sorted(by.items(), key=lambda kv: -kv[1][1])[:20]:
        print(f"    {k[:70]:70s} calls {calls:7d}  per send {calls / max(sends, 1):5.2f}  usec/call {usec / calls:6.1f}  usec per send {usec / max(sends, 1):6.1f}")
print(f"  bytes per send: in {io.get('input', 0) / max(sends, 1):.0f}, out {io.get('output', 0) / max(sends, 1):.0f}")
print(f"  at the end: clients {io.get('connected_clients', 0)}, pub/sub channels {io.get('pubsub_channels', 0)}, patterns {io.get('pubsub_patterns', 0)}")
PY
grep -E '^  (sent|deliveries|lost|duplicates|ms) ' "$work/bench.out"
if [ -n "${PERF:-}" ]; then
	[ -n "${PERF_OUT:-}" ] && cp "$work/perf.data" "$PERF_OUT"
	perf report -i "$work/perf.data" --stdio --no-children --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -8
	perf report -i "$work/perf.data" --stdio --no-children --sort dso,sym 2>/dev/null | grep -E '^ +[0-9]' | head -${PERF_LINES:-40}
fi
