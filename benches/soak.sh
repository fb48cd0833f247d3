#!/usr/bin/env bash
# Soak test of the daemon: mixed warm and cold loopback load with wrk for a set time (default
# 10 minutes) on the hg38 demo build, release build, CPU. Reports requests/s, latency p50/p99,
# errors (non-2xx answers and socket errors) and the daemon's RSS after warm-up, every minute
# and at the end. The memory tier is set to 64 MiB so that it fills early; a daemon that holds
# its caches to their limits should then stay flat: the change over the second half is reported.
# Needs `make build data`, curl, wrk. Writes benches/results/soak.md.
#
# Usage: benches/soak.sh [SECONDS, default 600] [CONNECTIONS, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
conns=${2:-8}
for tool in curl wrk; do command -v $tool >/dev/null || { echo "soak.sh: needs $tool" >&2; exit 1; }; done
bin=target/release/cistrack
[ -x $bin ] || { echo "soak.sh: build first (make build)" >&2; exit 1; }
port=${PORT:-18791}
cache=$(mktemp -d)
log=$(mktemp)
lua=$(mktemp --suffix .lua)
# a small memory tier (64 MiB) so that it fills within the run: RSS is then expected flat
$bin -q --config examples/hg38.toml --device cpu serve --bind 127.0.0.1:$port --cache-dir "$cache" \
  --memory-cache 64 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$cache" "$log" "$lua"' EXIT
for _ in $(seq 300); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.2; done
rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
base="/v1/builds/hg38/enhancers"
# warm views: the demo's real K562 loci, scored once before the clock starts
warm=("ref=chr22&start=17400000&end=17500000" "ref=chr17&start=42600000&end=42700000"
      "ref=chr22&start=17200000&end=18200000" "ref=chr22&start=17450000&end=17460000")
for v in "${warm[@]}"; do curl -sf "localhost:$port$base?$v&wait=300000" >/dev/null; done
curl -sf "localhost:$port/v1/builds/hg38/tracks/scores.bw" -o /dev/null -H 'Range: bytes=0-65535' || true
# one request in ten is cold: a random 20-kb view of chr22 (new windows, or windows with no
# bases in the partial genome), answered with what is ready after 2 s
{
  echo 'local warm = {'
  for v in "${warm[@]}"; do echo "  \"$base?$v\","; done
  echo '  "/healthz", "/v1/builds", "/v1/builds/hg38/tracks/enhancers.bb"'
  echo '}'
  cat <<'LUA'
local n = 0
math.randomseed(20261207)
request = function()
  n = n + 1
  local path
  if n % 10 == 0 then
    local start = math.random(15000, 50000) * 1000
    path = "/v1/builds/hg38/enhancers?ref=chr22&start=" .. start .. "&end=" .. (start + 20000) .. "&wait=2000"
  else
    path = warm[(n % #warm) + 1]
  end
  return wrk.format("GET", path)
end
LUA
} >"$lua"
rss_start=$(rss)
samples=()
(
  for _ in $(seq $((seconds / 60))); do sleep 60; rss; done
) >"$log.rss" &
sampler=$!
wrk_out=$(wrk -t2 -c"$conns" -d"${seconds}s" --timeout 30s --latency -s "$lua" "http://127.0.0.1:$port")
wait $sampler || true
rss_end=$(rss)
mapfile -t samples <"$log.rss"
rm -f "$log.rss"
rss_max=$(printf '%s\n' "$rss_start" "${samples[@]}" "$rss_end" | sort -n | tail -1)
# flatness is judged over the second half of the run (the tiers and track files grow while the
# cache fills in the first minutes)
half=$(( ${#samples[@]} / 2 ))
rss_ref=${samples[$(( half > 0 ? half - 1 : 0 ))]:-$rss_start}
change=$(awk -v a="$rss_ref" -v b="$rss_end" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$wrk_out")
p50=$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")
p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")
total=$(awk '/requests in/ {print $1}' <<<"$wrk_out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$wrk_out")
sockerr=$(awk '/Socket errors/ {print $0}' <<<"$wrk_out")
out=benches/results/soak.md
mkdir -p benches/results
{
  echo "# cistrack serve soak, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "wrk, $seconds s, $conns connections, 2 threads; 9 in 10 requests warm (4 views, /healthz, /v1/builds, enhancers.bb), 1 in 10 a random cold 20-kb chr22 view"
  echo
  echo "| requests | requests/s | p50 | p99 | non-2xx | socket errors | RSS after warm-up | RSS at the end | max | RSS at half time | change over the second half |"
  echo "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
  echo "| $total | $rps | $p50 | $p99 | ${non2xx:-0} | ${sockerr:-none} | $((rss_start / 1024)) MiB | $((rss_end / 1024)) MiB | $((rss_max / 1024)) MiB | $((rss_ref / 1024)) MiB | $change % |"
  echo
  echo "RSS every minute (MiB): $(for s in "${samples[@]}"; do printf '%d ' $((s / 1024)); done)"
  echo
  echo '```'
  echo "$wrk_out"
  echo '```'
} | tee "$out"
