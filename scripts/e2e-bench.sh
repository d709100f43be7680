#!/usr/bin/env bash
# End-to-end benchmark: Vigil vs Prometheus on one remote-write workload.
#
# For each target server: start it on a free port with a fresh data dir and a config with no
# scrape jobs, send the 50k-series / 12M-sample remote-write load (examples/loadgen.rs),
# read the server's CPU time (/proc/<pid>/stat utime+stime) around the load and its peak
# RSS (/proc/<pid>/status VmHWM), time a 1h range query several times (p50/p99), then kill -9
# the server right after an acknowledged write, restart it on the same data dir and count the
# acknowledged samples it lost. Results go to $OUT/results.jsonl and a markdown table.
#
# usage: scripts/e2e-bench.sh [vigil|prometheus|both]   (default: both)
# env:   VIGIL_BIN PROM_BIN LOADGEN SERIES SAMPLES CONNS BATCH RUNS OUT
#        (build first: cargo build --release --bin vigil --example loadgen)
set -euo pipefail

TARGETS=${1:-both}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIGIL_BIN=${VIGIL_BIN:-$ROOT/target/release/vigil}
PROM_BIN=${PROM_BIN:-/usr/bin/prometheus}
LOADGEN=${LOADGEN:-$ROOT/target/release/examples/loadgen}
SERIES=${SERIES:-50000}
SAMPLES=${SAMPLES:-240}
CONNS=${CONNS:-4}
BATCH=${BATCH:-2000}
RUNS=${RUNS:-20}
OUT=${OUT:-$(mktemp -d /tmp/vigil-e2e.XXXXXX)}
QUERY=${QUERY:-'sum by (job) (rate(http_requests_total[5m]))'}
QUERY2=${QUERY2:-'sum by (job) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'}
CLK_TCK=$(getconf CLK_TCK)
HOUR_MS=3600000
# One end timestamp for every server, so they store identical data and must give identical
# query results (compared through the result checksum in results.jsonl).
END_MS=${END_MS:-$(( $(date +%s) * 1000 - 15000 ))}

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
printf 'global:\n  scrape_interval: 15s\n' > "$OUT/empty.yml"

log() { echo "[e2e $(date +%H:%M:%S)] $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU seconds (user+system) consumed so far by a process.
cpu_s() {
  # Fields after the ")" of the command name: state is $1, utime $12, stime $13.
  local rest
  rest=$(sed 's/^.*) //' "/proc/$1/stat")
  awk -v t="$CLK_TCK" '{ printf "%.3f", ($12 + $13) / t }' <<<"$rest"
}

# Peak resident set size in MiB.
hwm_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

rss_mib() {
  awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Anonymous (heap) and file-backed (mmapped chunks, binary) parts of the current RSS, MiB.
rss_split() {
  awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
       END { printf "{\"anon_mib\": %.1f, \"file_mib\": %.1f}", a / 1024, f / 1024 }' "/proc/$1/status"
}

wait_ready() { # port pid
  local i
  for i in $(seq 1 1200); do
    if curl -fs -o /dev/null "http://127.0.0.1:$1/-/ready"; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then log "server $2 died"; return 1; fi
    sleep 0.1
  done
  log "server on $1 not ready"; return 1
}

start_server() { # name port datadir logfile -> prints pid
  local name=$1 port=$2 data=$3 logf=$4
  case $name in
    vigil)
      "$VIGIL_BIN" --config.file="$OUT/empty.yml" --storage.tsdb.path="$data" \
        --web.listen-address="127.0.0.1:$port" >>"$logf" 2>&1 &
      ;;
    prometheus)
      "$PROM_BIN" --config.file="$OUT/empty.yml" --storage.tsdb.path="$data" \
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
        >>"$logf" 2>&1 &
      ;;
  esac
  echo $!
}

jget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

bench_one() {
  local name=$1 port data logf pid
  port=$(free_port)
  data=$OUT/$name-data
  logf=$OUT/$name.log
  rm -rf "$data"
  log "$name: starting on port $port, data $data"
  pid=$(start_server "$name" "$port" "$data" "$logf")
  wait_ready "$port" "$pid"
  local idle_rss cpu0 cpu1 load_json
  idle_rss=$(rss_mib "$pid")
  cpu0=$(cpu_s "$pid")
  log "$name: loading $SERIES series x $SAMPLES samples over $CONNS connections"
  load_json=$("$LOADGEN" load --url "http://127.0.0.1:$port/api/v1/write" --series "$SERIES" \
    --samples "$SAMPLES" --conns "$CONNS" --batch "$BATCH" --end-ms "$END_MS")
  cpu1=$(cpu_s "$pid")
  local hwm_ingest rss_ingest split_ingest
  hwm_ingest=$(hwm_mib "$pid")
  rss_ingest=$(rss_mib "$pid")
  split_ingest=$(rss_split "$pid")
  local samples cpu_per_m
  samples=$(jget "$load_json" samples)
  cpu_per_m=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$samples" 'BEGIN { printf "%.3f", (b - a) / (n / 1e6) }')
  log "$name: load $load_json"
  log "$name: cpu $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}') s, $cpu_per_m CPU-s/M, VmHWM $hwm_ingest MiB"

  local q1 q2 qcpu0 qcpu1
  qcpu0=$(cpu_s "$pid")
  q1=$("$LOADGEN" query --base "http://127.0.0.1:$port" --query "$QUERY" \
    --start-ms $((END_MS - HOUR_MS)) --end-ms "$END_MS" --runs "$RUNS")
  qcpu1=$(cpu_s "$pid")
  log "$name: query $q1"
  q2=$("$LOADGEN" query --base "http://127.0.0.1:$port" --query "$QUERY2" \
    --start-ms $((END_MS - HOUR_MS)) --end-ms "$END_MS" --runs "$RUNS")
  log "$name: query $q2"
  local hwm_all split_queries query_cpu_ms
  hwm_all=$(hwm_mib "$pid")
  split_queries=$(rss_split "$pid")
  # Server CPU per query run: less sensitive than latency to other load on the machine.
  query_cpu_ms=$(awk -v a="$qcpu0" -v b="$qcpu1" -v n="$RUNS" 'BEGIN { printf "%.1f", (b - a) * 1000 / n }')

  log "$name: crash probe"
  local crash_json verify_json restart_s t0 t1
  crash_json=$("$LOADGEN" crash --url "http://127.0.0.1:$port/api/v1/write" --pid "$pid" \
    --out "$OUT/$name-acked.json" --conns "$CONNS")
  wait "$pid" 2>/dev/null || true
  t0=$(date +%s.%N)
  pid=$(start_server "$name" "$port" "$data" "$logf")
  wait_ready "$port" "$pid"
  t1=$(date +%s.%N)
  restart_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  verify_json=$("$LOADGEN" verify --base "http://127.0.0.1:$port" --acked "$OUT/$name-acked.json")
  log "$name: after kill -9: $verify_json (restart to ready ${restart_s}s)"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  local disk_mib
  disk_mib=$(du -sm "$data" | cut -f1)

  python3 - "$name" "$load_json" "$q1" "$q2" "$verify_json" <<EOF >>"$RESULTS"
import json, sys
name, load, q1, q2, verify = sys.argv[1], *map(json.loads, sys.argv[2:])
print(json.dumps({
  "server": name, "load": load, "cpu_s": round($cpu1 - $cpu0, 3),
  "cpu_s_per_million": $cpu_per_m, "idle_rss_mib": $idle_rss,
  "vm_hwm_after_ingest_mib": $hwm_ingest, "rss_after_ingest_mib": $rss_ingest,
  "vm_hwm_after_queries_mib": $hwm_all, "query": q1, "query2": q2,
  "rss_split_after_ingest": $split_ingest, "rss_split_after_queries": $split_queries,
  "query_cpu_ms_per_run": $query_cpu_ms,
  "crash": verify, "restart_to_ready_s": $restart_s, "disk_mib": $disk_mib,
}))
EOF
}

case $TARGETS in
  vigil) bench_one vigil ;;
  prometheus) bench_one prometheus ;;
  both) bench_one vigil; bench_one prometheus ;;
  *) echo "usage: $0 [vigil|prometheus|both]" >&2; exit 2 ;;
esac

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| server | CPU-s / M samples | peak RSS MiB (ingest / +queries) | ingest samples/s | query p50 / p99 ms (server CPU ms) | query2 p50 / p99 ms | lost after kill -9 | restart s | disk MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    q, q2, c = r["query"], r["query2"], r["crash"]
    print(f'| {r["server"]} | {r["cpu_s_per_million"]:.2f} | {r["vm_hwm_after_ingest_mib"]:.0f} / {r["vm_hwm_after_queries_mib"]:.0f} '
          f'| {r["load"]["samples_per_s"]:.0f} | {q["p50_ms"]:.0f} / {q["p99_ms"]:.0f} ({r["query_cpu_ms_per_run"]:.0f}) | {q2["p50_ms"]:.0f} / {q2["p99_ms"]:.0f} '
          f'| {c["lost_samples"]} of {c["acked_samples"]} | {r["restart_to_ready_s"]} | {r["disk_mib"]} |')
EOF
log "results in $RESULTS"
