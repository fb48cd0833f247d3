#!/usr/bin/env bash
# End-to-end enhancer-gene links on the real hg38 demo build, as ratios within one run: genes/s
# of `cistrack links` cold (empty cache) and warm (every gene from the cache), with the E2G score
# (2-Mb reach) and with the link model alone (its 100-kb reach, no E2G). Needs `make build data`.
# Writes benches/results/links_e2e.md. REGION and RUNS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/cistrack
region=${REGION:-chr17:41,000,001-44,000,000}
runs=${RUNS:-3}
mkdir -p benches/results
out=benches/results/links_e2e.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
# one timed run: prints "seconds genes"
run() {
  local cache=$1; shift
  local t0 t1 genes
  t0=$(now)
  "$bin" --config examples/hg38.toml --device cpu links --region "$region" --cache-dir "$cache" -o "$tmp/out.tsv" "$@" 2>"$tmp/err"
  t1=$(now)
  genes=$(cut -f4 "$tmp/out.tsv" | grep -v -e '^gene_id' -e '^##' | sort -u | wc -l)
  echo "$(echo "$t1 - $t0" | bc -l) $genes"
}
{
  echo "# cistrack links, $region (hg38 demo build), $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD); $runs runs each, median"
  echo
  echo "| pipeline | cache | genes | median s | genes/s |"
  echo "|---|---|---:|---:|---:|"
} > "$out"
for mode in e2g attention; do
  args=()
  [ "$mode" = attention ] && args=(--no-e2g)
  for state in cold warm; do
    times=()
    for i in $(seq "$runs"); do
      cache="$tmp/cache-$mode"
      [ "$state" = cold ] && rm -rf "$cache"
      [ "$state" = warm ] && [ ! -d "$cache" ] && run "$cache" "${args[@]}" >/dev/null
      read -r s genes < <(run "$cache" "${args[@]}")
      times+=("$s")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
    label=$([ "$mode" = e2g ] && echo "link model + E2G (2-Mb reach)" || echo "link model only (100-kb reach)")
    printf '| %s | %s | %d | %.3f | %.1f |\n' "$label" "$state" "$genes" "$median" "$(echo "$genes / $median" | bc -l)" >> "$out"
  done
done
cat "$out"
echo "wrote $out" >&2
