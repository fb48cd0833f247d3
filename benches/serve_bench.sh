#!/usr/bin/env bash
# Daemon latency and throughput on the real hg38 demo loci (K562), release build, CPU.
#   cold/warm latency of 100 kb (dense) and 1 Mb (auto: candidates first; and mode=dense) views,
#   throughput under wrk on warm views, batch fill ratio, cold windows/s, and links (cold/warm).
# Needs `make build data`, curl, wrk (Debian package). Writes benches/results/serve.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in curl wrk python3; do command -v $tool >/dev/null || { echo "serve_bench.sh: needs $tool" >&2; exit 1; }; done
bin=target/release/cistrack
port=${PORT:-18790}
cache=$(mktemp -d)
log=$(mktemp)
$bin -q --config examples/hg38.toml --device cpu serve --bind 127.0.0.1:$port --cache-dir "$cache" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$cache" "$log"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.2; done
base="http://127.0.0.1:$port/v1/builds/hg38/enhancers"
v100k="$base?ref=chr22&start=17400000&end=17500000&wait=120000"
v1m="$base?ref=chr22&start=17200000&end=18200000&wait=120000"
v1m_dense="$v1m&mode=dense"
t() { curl -s -o /tmp/serve_bench_body.json -w '%{time_total}' "$1"; }
p50() { # p50 of N warm requests, ms
  local url=$1 n=${2:-21}
  for _ in $(seq "$n"); do t "$url"; echo; done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}'
}
windows() { python3 -c "import json; d=json.load(open('/tmp/serve_bench_body.json')); print(len(d.get('windows', [])), d['mode'], d['complete'], d['windows_needed'])"; }
# Baseline in the same run: `cistrack score` on the same 100-kb region, same model and batch size
# (ONNX Runtime plus input extraction, which benches/README.md measures at >200x inference).
baseline_s=$( { /usr/bin/time -f %e $bin -q --config examples/hg38.toml --device cpu score --no-cache --region chr22:17,400,001-17,500,000 -o /dev/null; } 2>&1 | tail -1 )
baseline_rate=$(awk -v s="$baseline_s" 'BEGIN {printf "%.0f", 500/s}')
out=benches/results/serve.md
mkdir -p benches/results
{
  echo "# cistrack serve on hg38 demo loci, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); device cpu"
  echo
  echo "baseline: \`cistrack score\` on chr22:17,400,001-17,500,000 (500 windows) took ${baseline_s} s = ${baseline_rate} windows/s"
  echo
  echo "| view | cold | warm p50 (21 requests) | windows | mode |"
  echo "|---|---:|---:|---:|---|"
  for name in 100k 1m 1m_dense; do
    eval url=\$v$name
    cold=$(t "$url"); read -r n mode complete needed < <(windows)
    cold_ms=$(awk -v s="$cold" 'BEGIN {printf "%.0f", s*1000}')
    rate=$(awk -v s="$cold" -v n="$needed" 'BEGIN {printf "%.0f", n/s}')
    warm=$(p50 "$url")
    ratio=$(awk -v r="$rate" -v b="$baseline_rate" 'BEGIN {printf "%.2f", r/b}')
    echo "| $name | ${cold_ms} ms (${needed} windows scored, ${rate} windows/s = ${ratio}x baseline) | ${warm} ms | $n | $mode |"
  done
  echo
  echo "links (link-epinformer), cold then warm p50:"
  echo
  echo "| view | cold | warm p50 (21 requests) | genes | links |"
  echo "|---|---:|---:|---:|---:|"
  for view in "chr17&start=42600000&end=42700000" "chr22&start=17200000&end=18200000"; do
    lurl="http://127.0.0.1:$port/v1/builds/hg38/links?ref=$view&wait=120000"
    cold=$(t "$lurl")
    read -r genes links < <(python3 -c "import json; d=json.load(open('/tmp/serve_bench_body.json')); print(len(d['genes']), len(d['links']))")
    warm=$(p50 "$lurl")
    echo "| ${view//&/ } | $(awk -v s="$cold" 'BEGIN {printf "%.0f", s*1000}') ms | ${warm} ms | $genes | $links |"
  done
  echo
  echo "wrk, 10 s, 4 connections, warm 100 kb view:"
  echo '```'
  wrk -t2 -c4 -d10s --latency "$v100k" | sed -n '1,20p'
  echo '```'
  echo
  echo "metrics after the run:"
  echo '```'
  curl -s "localhost:$port/metrics" | grep -E '^cistrack_(batch_fill_ratio|batches_total|batch_windows_total|windows_scored_total|inference_seconds_total|cache_hits_total)'
  echo '```'
} | tee "$out"
