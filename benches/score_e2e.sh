#!/usr/bin/env bash
# End-to-end `cistrack score` throughput on the real hg38 demo locus (3,000 windows), as
# ratios within one run: batch sizes against each other, and 1 vs all ONNX Runtime threads.
# Needs hyperfine (Debian package) and `make build data`. Writes benches/results/score_e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "score_e2e.sh: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
bin=target/release/cistrack
region=${REGION:-chr22:17,200,001-17,800,000}
mkdir -p benches/results
out=benches/results/score_e2e.md
{
  echo "# cistrack score, $region (hg38 demo build), $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD)"
  echo
} > "$out"
hyperfine --warmup 1 --runs "${RUNS:-3}" --export-markdown /tmp/cistrack_batch.md -L b 1,4,16,64 \
  "$bin -q --config examples/hg38.toml --device cpu score --no-cache --region $region --batch-size {b} -o /dev/null"
hyperfine --warmup 1 --runs "${RUNS:-3}" --export-markdown /tmp/cistrack_threads.md -L t "1,$(nproc)" \
  "$bin -q --config examples/hg38.toml --device cpu --threads {t} score --no-cache --region $region -o /dev/null"
{ cat /tmp/cistrack_batch.md; echo; cat /tmp/cistrack_threads.md; } >> "$out"
echo "wrote $out" >&2
