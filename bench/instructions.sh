#!/usr/bin/env bash
# Counts the instructions Envoy executes per request for each variant of bench/envoy.sh, under
# valgrind's callgrind. Unlike requests per second, the count hardly depends on what else the
# shared machine runs, so small differences between variants can be trusted.
#
# Each Envoy (--concurrency 1) starts under callgrind with instrumentation off, is warmed up
# with wrk, then counts over two wrk runs. Printed per variant: instructions per request,
# those added to Envoy without a filter, and the ratio of the added instructions to those of
# the native chain with its JWT cache. Counted are user-space instructions of every Envoy
# thread; the kernel's share of a request (sockets) is the same for every variant and is
# not counted.
#
# HOSTCALLS=1 also runs the probe filter (bench/probe-filter) with one kind of host call at a
# time, which prices each kind of call the meshguard filter makes.
#
# Environment: ENVOY_BIN (default: envoy on PATH; the pip wrapper script works, func-e does
# not: point ENVOY_BIN at the binary `func-e which` prints), DURATION (6s per run),
# PARALLEL (2 Envoys at a time), HOSTCALLS (0).
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY=${ENVOY_BIN:-$(command -v envoy || true)}
[ -n "$ENVOY" ] || { echo "instructions: set ENVOY_BIN or put envoy on PATH" >&2; exit 1; }
for tool in valgrind callgrind_control wrk curl; do
    command -v "$tool" >/dev/null ||
        { echo "instructions: $tool is missing (apt-get install valgrind wrk curl)" >&2; exit 1; }
done
DURATION=${DURATION:-6s}
PARALLEL=${PARALLEL:-2}
HOSTCALLS=${HOSTCALLS:-0}

cargo build --quiet --release -p meshguard-dev --bin meshguard-token
TOKEN=$(target/release/meshguard-token --sub bench --roles admin --ttl 36000)
URL_PATH=/admin/stats
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# name, configuration file, listener port
VARIANTS=(
    "none bench/envoy-none.yaml 10001"
    "empty bench/envoy-empty.yaml 10006"
    "meshguard-auth bench/envoy-meshguard-auth.yaml 10005"
    "meshguard bench/envoy-meshguard.yaml 10002"
    "native-cache bench/envoy-native-cache.yaml 10003"
    "native-nocache bench/envoy-native-nocache.yaml 10004"
    "native-headers bench/envoy-native-headers.yaml 10007"
)
if [ "$HOSTCALLS" = 1 ]; then
    port=10040
    for op in read_request_headers read_request_header read_time add_request_headers \
        rewrite_request_headers increment_counter read_response_headers \
        rewrite_response_headers set_response_headers; do
        port=$((port + 1))
        sed -e "s/value: \"\"/value: \"$op\"/" -e "s/port_value: 10006/port_value: $port/" \
            -e "s/port_value: 9916/port_value: $((port - 1000))/" \
            bench/envoy-empty.yaml >"$WORK/probe-$op.yaml"
        VARIANTS+=("probe:$op $WORK/probe-$op.yaml $port")
    done
fi

# Prints "name instructions requests" for one variant.
count() {
    local name=$1 config=$2 port=$3 out="$WORK/$1.cg"
    # The pip wrapper execs the binary, and callgrind follows the exec with the same pid.
    valgrind --tool=callgrind --trace-children=yes --instr-atstart=no \
        --smc-check=all-non-file --callgrind-out-file="$out.%p" \
        "$ENVOY" -c "$config" --concurrency 1 --log-level error --disable-hot-restart \
        >"$WORK/$name.log" 2>&1 &
    local pid=$!

    local up=""
    for _ in $(seq 300); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then up=1; break; fi
        sleep 1
    done
    if [ -z "$up" ]; then
        echo "instructions: $name did not start" >&2
        tail -5 "$WORK/$name.log" >&2
        kill "$pid" 2>/dev/null
        return 1
    fi

    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$port$URL_PATH")
    [ "$status" = 200 ] ||
        { echo "instructions: $name returned $status, expected 200" >&2; kill "$pid"; return 1; }

    # Warm-up without counting, so that V8 has compiled the hot Wasm functions.
    wrk -t1 -c4 -d3s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$URL_PATH" >/dev/null
    callgrind_control -i on "$pid" >/dev/null 2>&1

    local requests=0 run
    for _ in 1 2; do
        run=$(wrk -t1 -c4 -d"$DURATION" -H "Authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$port$URL_PATH" | awk '/requests in/ {print $1}')
        requests=$((requests + run))
    done

    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true

    local total
    total=$(cat "$out".* | awk '/^totals:/ {sum += $2} END {print sum + 0}')
    echo "$name $total $requests"
}

RESULTS="$WORK/results"
running=0
for variant in "${VARIANTS[@]}"; do
    # shellcheck disable=SC2086
    count $variant >>"$RESULTS" &
    running=$((running + 1))
    if [ "$running" -ge "$PARALLEL" ]; then
        wait -n || { echo "instructions: a variant failed" >&2; exit 1; }
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || { echo "instructions: a variant failed" >&2; exit 1; }
    running=$((running - 1))
done

python3 - "$RESULTS" "${VARIANTS[@]%% *}" <<'EOF'
import sys

counted = {}
for line in open(sys.argv[1]):
    name, total, requests = line.split()
    counted[name] = int(total) / int(requests)
rows = {name: counted[name] for name in sys.argv[2:]}
base = rows["none"]
native = rows["native-cache"] - base
print()
print(f"{'variant':<34}{'instr/req':>11}{'added':>10}{'added / native-cache':>22}")
for name, per_request in rows.items():
    added = per_request - base
    print(f"{name:<34}{per_request:>11.0f}{added:>10.0f}{added / native:>22.2f}")
if any(name.startswith("probe:") for name in rows):
    empty = rows["empty"]
    print()
    print("probe operations, instructions above the empty filter:")
    for name, per_request in rows.items():
        if name.startswith("probe:"):
            print(f"  {name[6:]:<30}{per_request - empty:>8.0f}")
EOF
