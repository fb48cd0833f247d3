#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for a set time and prints a Markdown row per
# target: executions, executions per second, corpus size and findings (crash-, oom- and
# timeout- files libFuzzer leaves in fuzz/artifacts/TARGET/). Needs the nightly toolchain;
# installs cargo-fuzz on first use. Seeds come from fuzz/seeds/TARGET; the growing corpus is
# kept in fuzz/corpus/TARGET (ignored by git), so later runs start where earlier ones stopped.
#
# Usage: [PARALLEL=1] benches/fuzz.sh [SECONDS per target, default 600] [TARGET ...]
# Exit status 1 when any target found something: turn each finding into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(region query vcf_line bed_line)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "CPU: $cpu, $(nproc) cores; $seconds s per target; commit $(git rev-parse --short HEAD); $(cargo +nightly --version)"
echo
echo "| target | seconds | executions | executions/s | corpus files | findings |"
echo "|---|---:|---:|---:|---:|---:|"
run_target() {
  local t=$1 log="fuzz/artifacts/$1.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  cp -n "fuzz/seeds/$t/"* "fuzz/corpus/$t/" 2>/dev/null || true
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1) >"$log" 2>&1 || true
  local execs rate corpus findings
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  findings=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  echo "| $t | $seconds | ${execs:-?} | ${rate:-?} | $corpus | $findings |" >"fuzz/artifacts/$t.row"
  if [ "$findings" -gt 0 ] || [ -z "$execs" ]; then
    echo "  $t: see $log and fuzz/artifacts/$t/" >&2
  fi
}
# build once, then run the targets one after another, or all at once with PARALLEL=1 (the
# same time per target in a quarter of the wall time, each with a share of the cores)
(cd fuzz && cargo +nightly fuzz build) >/dev/null 2>&1
for t in "${targets[@]}"; do
  if [ "${PARALLEL:-0}" = 1 ]; then run_target "$t" & else run_target "$t"; fi
done
wait
found=0
for t in "${targets[@]}"; do
  cat "fuzz/artifacts/$t.row"
  grep -q '| 0 |$' "fuzz/artifacts/$t.row" && ! grep -q '| ? |' "fuzz/artifacts/$t.row" || found=1
done
exit $found
