#!/usr/bin/env bash
# The scoring core end to end, in one run on this machine, as ratios against baselines measured
# in the same run (the one-core issue's targets):
#   - the ONNX Runtime floor: the region's windows read and encoded up front, only the model
#     calls timed (examples/ort_floor.rs; same model, batch size and threads as `score`);
#   - `cistrack score --no-cache` on the same region: windows/s and the ratio to the floor;
#   - `cistrack annotate --no-cache` on the real chr22 common SNPs: windows/s and the ratio to
#     `score` (annotation's windows are the reference and alternate windows of every SNV);
#   - the daemon, cold (empty cache): a dense 100-kb view, windows/s and the ratio to the floor;
#     warm: p50 and p90 of 21 requests for a 1-Mb view already in the cache;
#   - `cistrack links` genes/s on the demo locus, cold and warm.
# Each measure is the median of RUNS runs (default 3), taken in turn (floor, score, annotate,
# daemon, then again), so that a slow spell of a shared machine hits every measure alike.
# Needs `make build data` (and builds the example). Writes benches/results/pipeline_e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example ort_floor
bin=target/release/cistrack
cfg=examples/hg38.toml
region=${REGION:-chr22:17,200,001-17,800,000}
snps=../shared/data/hg38/variants/common_snps.hg38.chr22.vcf.gz
threads=${THREADS:-$(nproc)}
tmp=$(mktemp -d)
source scripts/daemon.sh
cleanup() {
  stop_daemon
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p benches/results
out=benches/results/pipeline_e2e.md
now() { date +%s.%N; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

runs=${RUNS:-3}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# seconds of one request
fetch() { curl -fsS -o "$tmp/answer.json" -w '%{time_total}' "$1"; }
for run in $(seq "$runs"); do
  echo "run $run of $runs: ONNX Runtime floor, score, annotate, daemon" >&2
  floor_line=$(target/release/examples/ort_floor "$cfg" "$region" "" "$threads")
  floor_windows=$(sed 's/.*windows=\([0-9]*\).*/\1/' <<<"$floor_line")
  batch=$(sed 's/.*batch=\([0-9]*\).*/\1/' <<<"$floor_line")
  sed 's/.*windows_per_s=\([0-9.]*\).*/\1/' <<<"$floor_line" >> "$tmp/floor"

  t0=$(now)
  "$bin" -q --config "$cfg" --device cpu --threads "$threads" score --no-cache --region "$region" -o /dev/null
  t1=$(now)
  echo "$floor_windows / ($t1 - $t0)" | bc -l >> "$tmp/score"

  t0=$(now)
  "$bin" --config "$cfg" --device cpu --threads "$threads" annotate --no-cache -i "$snps" -o /dev/null 2> "$tmp/annotate.err"
  t1=$(now)
  annotate_windows=$(grep -o '[0-9]* windows of which' "$tmp/annotate.err" | head -1 | cut -d' ' -f1)
  echo "$annotate_windows / ($t1 - $t0)" | bc -l >> "$tmp/annotate"

  rm -rf "$tmp/dcache"
  start_daemon "$tmp/daemon.log" --device cpu --threads "$threads" --cache-dir "$tmp/dcache"
  base="$daemon_url/v1/builds/hg38"
  dense_s=$(fetch "$base/enhancers?ref=chr22&start=17200000&end=17300000&mode=dense&wait=120000")
  dense_windows=$(python3 -c "import json; print(len(json.load(open('$tmp/answer.json'))['windows']))")
  echo "$dense_windows / $dense_s" | bc -l >> "$tmp/dense"
  view="$base/enhancers?ref=chr22&start=17000000&end=18000000&wait=120000"
  fetch "$view" > /dev/null # fills the cache
  for _ in $(seq 1 21); do fetch "$view"; echo; done >> "$tmp/warm"
  stop_daemon
done
floor_wps=$(median < "$tmp/floor")
score_wps=$(median < "$tmp/score")
annotate_wps=$(median < "$tmp/annotate")
dense_wps=$(median < "$tmp/dense")
sort -g "$tmp/warm" > "$tmp/warm.sorted"
n=$(wc -l < "$tmp/warm.sorted")
p50=$(sed -n "$(( (n + 1) / 2 ))p" "$tmp/warm.sorted")
p90=$(sed -n "$(( (n * 9 + 9) / 10 ))p" "$tmp/warm.sorted")

echo "links" >&2
links_run() {
  local t0 t1
  t0=$(now)
  "$bin" -q --config "$cfg" --device cpu --threads "$threads" links --region "$region" --cache-dir "$tmp/lcache" -o "$tmp/links.tsv"
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
links_cold=$(links_run)
links_warm=$(links_run)
genes=$(grep -v -e "^#" -e "^chrom" "$tmp/links.tsv" | cut -f4 | sort -u | wc -l)

{
  echo "# The scoring core end to end, $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD); CPU, batch $batch, $threads ONNX Runtime threads; region $region (hg38 demo build); median of $runs runs ($n warm requests)"
  echo
  echo "| what | measure | value | ratio | target |"
  echo "|---|---|---:|---:|---|"
  printf '| ONNX Runtime floor (inputs pre-encoded) | windows/s | %.1f | 1.00 | baseline |\n' "$floor_wps"
  printf '| `score --no-cache` | windows/s | %.1f | %s × floor | ≥ 0.9 |\n' "$score_wps" "$(ratio "$score_wps" "$floor_wps")"
  printf '| `annotate --no-cache`, %s windows (chr22 common SNPs) | windows/s | %.1f | %s × score | ≥ 0.9 |\n' "$annotate_windows" "$annotate_wps" "$(ratio "$annotate_wps" "$score_wps")"
  printf '| daemon cold, dense 100-kb view (%s windows) | windows/s | %.1f | %s × floor | ≥ 0.9 |\n' "$dense_windows" "$dense_wps" "$(ratio "$dense_wps" "$floor_wps")"
  printf '| daemon warm, 1-Mb view (%s requests) | p50 / p90 ms | %.1f / %.1f | | p50 < 5 |\n' "$n" "$(echo "$p50 * 1000" | bc -l)" "$(echo "$p90 * 1000" | bc -l)"
  printf '| `links`, %s genes, cold | genes/s | %.1f | | |\n' "$genes" "$(echo "$genes / $links_cold" | bc -l)"
  printf '| `links`, warm (cache) | genes/s | %.1f | | |\n' "$(echo "$genes / $links_warm" | bc -l)"
} > "$out"
cat "$out"
echo "wrote $out" >&2
