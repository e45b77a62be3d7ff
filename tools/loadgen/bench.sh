#!/usr/bin/env bash
# The load figures of ARCHITECTURE.md, reproducibly: start a host binary on a fresh database,
# replay the captures with antenna-loadgen, print one JSON line per workload.
#
#   tools/loadgen/bench.sh HOST_BINARY [sqlite|postgres|postgres2] [DURATION] [WORKLOADS]
#
# WORKLOADS (default "small small-c2 mixed"): small / small-c2 (Claude Code batches, 16 / 2
# clients), mixed (Claude Code + Copilot + Codex, 16 clients), long (one prompt receiving 1,500
# one-record batches: first and last 50 medians, long_prompt.py), fair (one prompt receiving
# 1,000 batches of 100 tool results, a 100,001-fragment trace, while a second project sends
# small batches: their p50/p99).
#
# sqlite: one host on a fresh SQLite file; postgres: one host on a fresh PostgreSQL database;
# postgres2: two hosts (replicas) on one fresh database, each driven by its own load generator
# with half the workers (their figures add up). PostgreSQL: $ANTENNA_TEST_POSTGRES_URL's server.
# Everything runs on loopback and stops by itself.
set -euo pipefail
host_bin=$(realpath "$1")
engine=${2:-sqlite}
duration=${3:-10s}
workloads=${4:-small small-c2 mixed}
root=$(cd "$(dirname "$0")/../.." && pwd)
loadgen="$root/target/release/antenna-loadgen"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${pg_db:-}" ]]; then psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

database_url() {
  case $engine in
    sqlite) echo "sqlite://$work/antenna.db" ;;
    postgres*)
      pg_server="${ANTENNA_TEST_POSTGRES_URL%/*}/postgres"
      pg_db="antenna_bench_$$_$RANDOM"
      psql "$pg_server" -qc "CREATE DATABASE $pg_db" >/dev/null
      echo "${ANTENNA_TEST_POSTGRES_URL%/*}/$pg_db" ;;
  esac
}

start_host() { # port url -> pid
  ANTENNA_LISTEN="127.0.0.1:$1" ANTENNA_GRPC_LISTEN=off ANTENNA_DATABASE_URL="$2" \
    ANTENNA_CACHE_DIR="$work/cache" ANTENNA_PUBLIC_KEY=pk-local ANTENNA_SECRET_KEY=sk-local RUST_LOG=warn \
    "$host_bin" serve >"$work/host-$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && { echo "$pid"; return; }
    sleep 0.1
  done
  echo "host on port $1 did not start; its log:" >&2; cat "$work/host-$1.log" >&2; exit 1
}

run() { # name concurrency captures...
  local name=$1 concurrency=$2; shift 2
  local captures=("${@/#/$root/fixtures/}")
  if [[ $engine == postgres2 ]]; then
    "$loadgen" "${captures[@]}" --endpoint "http://127.0.0.1:$port_a/api/public/otel" --concurrency $((concurrency / 2)) \
      --duration "$duration" --host-pid "$pid_a" --json >"$work/a.json" &
    local a=$!
    "$loadgen" "${captures[@]}" --endpoint "http://127.0.0.1:$port_b/api/public/otel" --concurrency $((concurrency / 2)) \
      --duration "$duration" --host-pid "$pid_b" --json >"$work/b.json"
    wait $a
    python3 - "$name" "$work/a.json" "$work/b.json" <<'PY'
import json, sys
name, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
print(json.dumps({"workload": name, "replicas": 2,
  "requests_per_s": round(a["requests_per_s"] + b["requests_per_s"]),
  "records_per_s": round(a["records_per_s"] + b["records_per_s"]),
  "p50_ms": max(a["latency_ms"]["p50"], b["latency_ms"]["p50"]),
  "p99_ms": max(a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
  "errors": len(a.get("errors") or {}) + len(b.get("errors") or {}),
  "host_peak_rss_mib": round(max(a["host_rss_kb"]["peak"], b["host_rss_kb"]["peak"]) / 1024)}))
PY
  else
    "$loadgen" "${captures[@]}" --endpoint "http://127.0.0.1:$port_a/api/public/otel" --concurrency "$concurrency" \
      --duration "$duration" --host-pid "$pid_a" --json >"$work/a.json"
    python3 - "$name" "$work/a.json" <<'PY'
import json, sys
name, a = sys.argv[1], json.load(open(sys.argv[2]))
print(json.dumps({"workload": name, "replicas": 1,
  "requests_per_s": round(a["requests_per_s"]), "records_per_s": round(a["records_per_s"]),
  "p50_ms": a["latency_ms"]["p50"], "p99_ms": a["latency_ms"]["p99"],
  "errors": len(a.get("errors") or {}), "host_peak_rss_mib": round(a["host_rss_kb"]["peak"] / 1024),
  "host_cpu_cores": a.get("host_cpu_cores")}))
PY
  fi
}

url=$(database_url)
port_a=$((20000 + RANDOM % 10000)); port_b=$((port_a + 1))
pid_a=$(start_host "$port_a" "$url"); pids+=("$pid_a")
if [[ $engine == postgres2 ]]; then pid_b=$(start_host "$port_b" "$url"); pids+=("$pid_b"); fi

for workload in $workloads; do
  case $workload in
    small) run claude-code-small 16 claude-code/protobuf-content-on ;;
    small-c2) run claude-code-small-c2 2 claude-code/protobuf-content-on ;;
    mixed) run mixed 16 claude-code/protobuf-content-on copilot-cli/json-content-on codex/binary-content-on ;;
    long) python3 "$root/tools/loadgen/long_prompt.py" "http://127.0.0.1:$port_a" 1500 ;;
    fair)
      keys=$(ANTENNA_DATABASE_URL="$url" "$host_bin" project create probe 2>/dev/null | awk '/^public key:/ {p=$3} /^secret key:/ {s=$3} END {print p ":" s}')
      python3 "$root/tools/loadgen/long_prompt.py" "http://127.0.0.1:$port_a" 1000 --per-batch 100 --probe "$keys" ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
  esac
done
