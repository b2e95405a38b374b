#!/usr/bin/env bash
# Compares Envoy with no filter, with a proxy-wasm filter that makes no host call (empty, from
# bench/probe-filter), with meshguard (verification, role rule and security headers alone as
# meshguard-auth, and with inspection of path, query and headers on as meshguard),
# and with Envoy's native jwt_authn + rbac (with and without its JWT cache) doing the same
# HS256 check and admin role rule. native-headers adds to the cached native chain the rest of
# meshguard-auth's work: claim headers, and the six security headers with Server removed.
#
# The Envoys (each --concurrency 1) run side by side and wrk visits them in turn, round
# after round, so that noise from the shared machine hits every variant alike. Printed per
# variant: median requests per second, median p50 and p99 latency, and Envoy CPU time per
# request (utime + stime of the Envoy process over the run), then ratios against the native
# chain with its cache.
#
# Environment: ENVOY_BIN (default: envoy on PATH), ROUNDS (5), DURATION (5s),
# CONNECTIONS (16), THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY=${ENVOY_BIN:-$(command -v envoy || true)}
[ -n "$ENVOY" ] || { echo "bench: set ENVOY_BIN or put envoy on PATH (make bench does)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
VARIANTS=(none empty meshguard-auth meshguard native-cache native-nocache native-headers)
declare -A PORT=([none]=10001 [meshguard]=10002 [native-cache]=10003 [native-nocache]=10004
    [meshguard-auth]=10005 [empty]=10006 [native-headers]=10007)

cargo build --quiet --release -p meshguard-dev --bin meshguard-token
TOKEN=$(target/release/meshguard-token --sub bench --roles admin --ttl 36000)
URL_PATH=/admin/stats
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

declare -A PID
for variant in "${VARIANTS[@]}"; do
    "$ENVOY" -c "bench/envoy-$variant.yaml" --concurrency 1 --log-level error \
        --disable-hot-restart >"$WORK/$variant.log" 2>&1 &
    PID[$variant]=$!
    PIDS+=("$!")
done

# Each variant must answer 200 with the token and 403 for a token without the role, so
# that every variant is checked to do the same work.
READER=$(target/release/meshguard-token --sub reader --roles reader --ttl 36000)
for variant in "${VARIANTS[@]}"; do
    port=${PORT[$variant]}
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.1
    done
    ok=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$URL_PATH")
    denied=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $READER" "http://127.0.0.1:$port$URL_PATH")
    echo "bench: $variant answers $ok with the admin token and $denied with a reader token"
    [ "$ok" = 200 ] || { cat "$WORK/$variant.log"; exit 1; }
    if [ "$variant" != none ] && [ "$variant" != empty ] && [ "$denied" != 403 ]; then
        echo "bench: $variant does not apply the role rule" >&2
        exit 1
    fi
    wrk -t1 -c4 -d1s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$URL_PATH" >/dev/null
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

RESULTS="$WORK/results.tsv"
for round in $(seq "$ROUNDS"); do
    for variant in "${VARIANTS[@]}"; do
        port=${PORT[$variant]}
        before=$(cpu_ticks "${PID[$variant]}")
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
            -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$URL_PATH")
        after=$(cpu_ticks "${PID[$variant]}")
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        [ -z "$non2xx" ] || { echo "bench: $variant answered $non2xx non-2xx responses" >&2; exit 1; }
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$rps" "$p50" "$p99" \
            "$((after - before))" "$requests" >>"$RESULTS"
        echo "round $round $variant: $rps req/s, p50 $p50, p99 $p99"
    done
done

python3 - "$RESULTS" "$TICKS_PER_SECOND" <<'EOF'
import statistics, sys

def micros(text):
    units = {"us": 1, "ms": 1000, "s": 1_000_000}
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(text)

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
ticks_per_second = int(sys.argv[2])
variants = list(dict.fromkeys(row[1] for row in rows))
summary = {}
for variant in variants:
    mine = [row for row in rows if row[1] == variant]
    cpu = [int(r[5]) / ticks_per_second * 1e6 / int(r[6]) for r in mine]
    summary[variant] = {
        "rps": statistics.median(float(r[2]) for r in mine),
        "p50": statistics.median(micros(r[3]) for r in mine),
        "p99": statistics.median(micros(r[4]) for r in mine),
        "cpu": statistics.median(cpu),
    }
base = summary["none"]["cpu"]
print()
print(f"{'variant':<16}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'CPU us/req':>12}{'added':>8}")
for variant, s in summary.items():
    print(f"{variant:<16}{s['rps']:>10.0f}{s['p50']:>10.0f}{s['p99']:>10.0f}"
          f"{s['cpu']:>12.1f}{s['cpu'] - base:>8.1f}")
native = summary["native-cache"]
print()
for variant in ("empty", "meshguard-auth", "meshguard", "native-nocache", "native-headers"):
    s = summary[variant]
    print(f"{variant} / native-cache: req/s x{s['rps'] / native['rps']:.2f}, "
          f"CPU per request x{s['cpu'] / native['cpu']:.2f}")
EOF
