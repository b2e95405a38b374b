#!/usr/bin/env bash
# Benchmarks meshguard-ratelimit on loopback and prints medians over several runs.
#
# 1. Ceiling: redis-benchmark runs the service's own Lua script (EVALSHA) on a private
#    redis-server, with as many connections as the load generator keeps calls in flight.
# 2. The service with that Redis, then with the memory store, each driven by
#    meshguard-ratelimit-loadgen closed-loop (maximum rate) and open-loop at a fixed rate.
#
# Every process listens on 127.0.0.1 and is stopped on exit. Settings (environment):
#   RUNS=3 DURATION=10s RATE=5000 CONCURRENCY=64 CONNECTIONS=4 CEILING_REQUESTS=300000
#   SKIP_BUILD=1 to use already built release binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
RATE=${RATE:-5000}
CONCURRENCY=${CONCURRENCY:-64}
CONNECTIONS=${CONNECTIONS:-4}
CEILING_REQUESTS=${CEILING_REQUESTS:-300000}
VALUES=100000

for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found on PATH (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p meshguard-ratelimit --bins)
fi
SERVICE=$TARGET_DIR/release/meshguard-ratelimit
LOADGEN=$TARGET_DIR/release/meshguard-ratelimit-loadgen

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Picks a port on 127.0.0.1 that nothing accepts connections on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

wait_port() {
  local port=$1
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench.sh: nothing listens on 127.0.0.1:$port" >&2
  exit 1
}

# Prints the median of the numbers on standard input.
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Prints the value of FIELD=... from loadgen output lines on standard input, one per line.
field() {
  grep -o "$1=[0-9.]*" | cut -d= -f2
}

cat >"$WORK/limits.yaml" <<'YAML'
domain: bench
descriptors:
  - name: bench
    entries:
      - key: k
    limits:
      - requests: 1000
        window: 1m
YAML

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
wait_port "$REDIS_PORT"

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "== $(redis-server --version | cut -d' ' -f1-3), $("$SERVICE" --version), $(uname -r)"
echo "== load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

SHA=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$(cat "$ROOT/ratelimit/src/store/sliding_window.lua")")
: >"$WORK/ceiling.csv"
for run in $(seq "$RUNS"); do
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  redis-benchmark -p "$REDIS_PORT" -c "$CONCURRENCY" -n "$CEILING_REQUESTS" -r "$VALUES" --csv \
    EVALSHA "$SHA" 1 "meshguard:rl:{__rand_int__}:log:60000:p5:bench1:k6:v__rand_int__" \
    1 "m__rand_int__" 1 60000000 1000 0 | tail -n 1 >>"$WORK/ceiling.csv"
done
# CSV columns: test, rps, avg, min, p50, p95, p99, max (milliseconds).
CEILING_RPS=$(cut -d, -f2 "$WORK/ceiling.csv" | tr -d '"' | median)
CEILING_P99=$(cut -d, -f7 "$WORK/ceiling.csv" | tr -d '"' | median)
echo "ceiling (redis-benchmark EVALSHA, -c $CONCURRENCY): median rps=$CEILING_RPS p99_ms=$CEILING_P99 over $RUNS runs"

# Runs the service with extra arguments and both load shapes, RUNS times each.
bench_service() {
  local name=$1
  shift
  local grpc_port http_port pid
  grpc_port=$(free_port)
  http_port=$(free_port)
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  "$SERVICE" serve --config "$WORK/limits.yaml" --grpc-addr "127.0.0.1:$grpc_port" \
    --http-addr "127.0.0.1:$http_port" "$@" 2>"$WORK/$name.log" &
  pid=$!
  PIDS+=("$pid")
  wait_port "$grpc_port"
  : >"$WORK/$name-closed.txt"
  : >"$WORK/$name-open.txt"
  for run in $(seq "$RUNS"); do
    "$LOADGEN" --target "127.0.0.1:$grpc_port" --duration "$DURATION" --concurrency "$CONCURRENCY" \
      --connections "$CONNECTIONS" --values "$VALUES" | tee -a "$WORK/$name-closed.txt"
  done
  for run in $(seq "$RUNS"); do
    "$LOADGEN" --target "127.0.0.1:$grpc_port" --duration "$DURATION" --rate "$RATE" \
      --connections "$CONNECTIONS" --values "$VALUES" | tee -a "$WORK/$name-open.txt"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local closed_rps closed_p99 open_p50 open_p99 errors
  closed_rps=$(field rps <"$WORK/$name-closed.txt" | median)
  closed_p99=$(field p99_ms <"$WORK/$name-closed.txt" | median)
  open_p50=$(field p50_ms <"$WORK/$name-open.txt" | median)
  open_p99=$(field p99_ms <"$WORK/$name-open.txt" | median)
  errors=$(cat "$WORK/$name-closed.txt" "$WORK/$name-open.txt" | field errors | awk '{ s += $1 } END { print s + 0 }')
  echo "$name: closed-loop median rps=$closed_rps p99_ms=$closed_p99; open-loop $RATE/s median p50_ms=$open_p50 p99_ms=$open_p99; errors=$errors"
  if [[ $name == redis ]]; then
    echo "redis: closed-loop rate / ceiling = $(awk -v a="$closed_rps" -v b="$CEILING_RPS" 'BEGIN { printf "%.2f", a / b }')"
  fi
}

bench_service redis --redis-url "redis://127.0.0.1:$REDIS_PORT"
bench_service memory
