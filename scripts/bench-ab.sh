#!/usr/bin/env bash
# bench-ab.sh: the same bench scenario against two realtime binaries, runs
# alternating (A, B, A, B, ...) so a busy machine's drift falls on both, one
# node on a fresh redis-server (free port, never 6379) flushed between runs;
# prints `bench compare`'s table of medians (A ÷ B).
#
#   scripts/bench-ab.sh BIN_A BIN_B [bench flags...]
#
# Environment: RUNS (default 5 each), NAME_A, NAME_B, TITLE, WORK (results
# and logs; default a new /tmp directory), BENCH (default: built from ./cmd/bench).
# Example (the presence measurement in docs/BENCHMARKS.md):
#
#   scripts/bench-ab.sh /tmp/realtime-a /tmp/realtime-b --scenario reconnect --conns 19000 \
#     --reconnect-fraction 1 --reconnect-timeout 60s --procs 2 --connect-concurrency 128
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,16p "$0" >&2; exit 2; }
BIN_A=$1 BIN_B=$2
shift 2
RUNS=${RUNS:-5}
WORK=${WORK:-$(mktemp -d /tmp/bench-ab.XXXXXX)}
SECRET=bench-ab-secret
mkdir -p "$WORK"
echo "bench-ab: work directory $WORK" >&2
if [ -z "${BENCH:-}" ]; then
	BENCH=$WORK/bench
	go build -o "$BENCH" ./cmd/bench
fi

. "$(dirname "$0")/lib.sh" # PIDS, free_port, await_ready, start_redis, stop_pid, NODE_FLAGS

start_redis "$WORK/redis.log" --maxclients 20000

# redis_cpu prints the CPU seconds redis-server has used so far.
redis_cpu() {
	redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' |
		awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { print s }'
}

# run BIN NAME I: one node from BIN, one bench run, result in $WORK/NAME-I.json.
run() {
	local bin=$1 name=$2 i=$3 port admin pid
	shift 3
	port=$(free_port) admin=$(free_port)
	REALTIME_JWT_SECRET=$SECRET "$bin" serve "${NODE_FLAGS[@]}" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
		--addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" >"$WORK/$name-$i.log" 2>&1 &
	pid=$!
	PIDS+=($pid)
	await_ready "$name" "http://127.0.0.1:$admin/readyz" "$WORK/$name-$i.log" || exit 1
	local cpu0
	cpu0=$(redis_cpu)
	"$BENCH" --quiet --targets "127.0.0.1:$port" --jwt-secret $SECRET --local-ips 127.0.0.2-127.0.0.40 \
		--server-pids "$pid" --json "$WORK/$name-$i.json" "$@" || echo "bench-ab: $name run $i failed" >&2
	echo "$(redis_cpu) - $cpu0" | bc >"$WORK/$name-$i.redis-cpu"
	stop_pid "$pid"
	redis-cli -p "$REDIS_PORT" flushall >/dev/null
}

A=() B=()
for ((i = 1; i <= RUNS; i++)); do
	run "$BIN_A" a "$i" "$@"
	A+=("$WORK/a-$i.json")
	run "$BIN_B" b "$i" "$@"
	B+=("$WORK/b-$i.json")
done
# medians of what the table leaves out: the node's and Redis's CPU seconds.
for name in a b; do
	python3 - "$WORK" "$name" <<'PY'
import glob, json, statistics, sys
work, name = sys.argv[1], sys.argv[2]
node = [json.load(open(f))["servers"]["cpuSeconds"] for f in sorted(glob.glob(f"{work}/{name}-*.json"))]
redis = [float(open(f).read()) for f in sorted(glob.glob(f"{work}/{name}-*.redis-cpu"))]
med = lambda v: statistics.median(v) if v else float("nan")
print(f"{name}: node CPU s median {med(node):.2f} {node}; Redis CPU s median {med(redis):.2f} {redis}")
PY
done
ls_existing() { local f out=""; for f in "$@"; do [ -f "$f" ] && out+="${out:+,}$f"; done; echo "$out"; }
"$BENCH" compare --title "${TITLE:-A/B}" --name-a "${NAME_A:-A}" --a "$(ls_existing "${A[@]}")" \
	--name-b "${NAME_B:-B}" --b "$(ls_existing "${B[@]}")"
