#!/usr/bin/env bash
# scATAC fragments as a build's accessibility: what reading them costs.
#
# 1. Scoring: `cistrack score` (no cache) over chr22:17.40-17.44 Mb (200 windows) on the
#    bundled scATAC build (`tests/data/scatac.toml`, group `common`: cut sites from the real
#    fragments, read through tabix for every window) against the demo build (bigWig signals),
#    in the same run.
# 2. Opening a large file: the real chr22 fragments replicated FRAGMENTS_COPIES times (default 40,
#    2.3 M fragments; each copy's barcodes suffixed, so 4,000 cells), bgzipped and indexed here;
#    `cistrack doctor` opens the build, which needs the fragments per cell group: the first
#    open counts them in one pass over the file, later opens read the counts kept in
#    `<cache_dir>/fragments/`. Median of 3 runs each. Scoring the same 200 windows on it
#    shows the cost of 40 times the fragments per window.
# Needs `make build data`. Writes benches/results/fragments_e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/target/release/cistrack
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p benches/results
out=benches/results/fragments_e2e.md
copies=${FRAGMENTS_COPIES:-40}
region=chr22:17,400,001-17,440,000
windows=200
fragments=$root/../shared/data/hg38/scatac/test.fragments.tsv.gz

seconds() { # command... -> wall seconds
  local t0
  t0=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  python3 -c "print(f'{$(date +%s.%N) - $t0:.3f}')"
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
score() { # config build -> seconds
  seconds "$bin" -q --config "$1" --build "$2" --device cpu score --no-cache --region "$region" -o "$tmp/out.bed"
}

echo "scoring $region: demo build (bigWig) and scATAC build (fragments)" >&2
score examples/hg38.toml hg38 > /dev/null # warm the page cache and ONNX Runtime
bigwig_s=$(median "$(score examples/hg38.toml hg38)" "$(score examples/hg38.toml hg38)" "$(score examples/hg38.toml hg38)")
small_s=$(median "$(score tests/data/scatac.toml common)" "$(score tests/data/scatac.toml common)" "$(score tests/data/scatac.toml common)")

echo "building a fragments file of $copies copies" >&2
python3 - "$fragments" "$copies" "$tmp/big.tsv" "$root/tests/data/scatac/groups.tsv" "$tmp/groups.tsv" <<'EOF'
import gzip, sys
src, copies, dst, groups_in, groups_out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lines = [l.rstrip("\n").split("\t") for l in gzip.open(src, "rt") if not l.startswith("#")]
rows = [(f[0], int(f[1]), int(f[2]), f"{f[3]}-{k}", f[4]) for k in range(copies) for f in lines]
rows.sort(key=lambda r: (r[0], r[1], r[2]))
with open(dst, "w") as out:
    for r in rows:
        out.write("\t".join(map(str, r)) + "\n")
table = [l.rstrip("\n").split("\t") for l in open(groups_in) if l.strip() and not l.startswith("#")]
with open(groups_out, "w") as out:
    for k in range(copies):
        for barcode, group in table:
            out.write(f"{barcode}-{k}\t{group}\n")
EOF
bgzip -f "$tmp/big.tsv"
tabix -p bed "$tmp/big.tsv.gz"
n_fragments=$(zcat "$tmp/big.tsv.gz" | wc -l)
size_mb=$(python3 -c "import os; print(f'{os.path.getsize(\"$tmp/big.tsv.gz\") / 1e6:.1f}')")
cat > "$tmp/big.toml" <<EOF
models_dir = "$root/models"
cache_dir = "$tmp/cache"
[builds.big]
fasta = "$root/../shared/data/hg38/genome/hg38.partial.fa.gz"
models = { student = "enhancer-student/0.2.0" }
[builds.big.signals.accessibility]
fragments = "$tmp/big.tsv.gz"
groups = "$tmp/groups.tsv"
group = "common"
EOF
doctor() { seconds "$bin" -q --config "$tmp/big.toml" doctor; }
echo "opening it: counting ($n_fragments fragments) against the kept counts" >&2
counted=()
for _ in 1 2 3; do
  rm -rf "$tmp/cache/fragments"
  counted+=("$(doctor)")
done
kept=("$(doctor)" "$(doctor)" "$(doctor)")
counted_s=$(median "${counted[@]}")
kept_s=$(median "${kept[@]}")
big_s=$(median "$(score "$tmp/big.toml" big)" "$(score "$tmp/big.toml" big)" "$(score "$tmp/big.toml" big)")

rate() { python3 -c "print(f'{$1 / $2:.0f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
{
  echo "# scATAC fragments as accessibility, $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD); median of 3 runs"
  echo
  echo "| what | seconds | rate | against the baseline |"
  echo "|---|---:|---:|---:|"
  echo "| baseline: \`score\` $region, demo build (bigWig signals) | $bigwig_s | $(rate $windows "$bigwig_s") windows/s | 1.00 |"
  echo "| same windows, bundled scATAC build (57,115 fragments, cut sites of group \`common\` via tabix) | $small_s | $(rate $windows "$small_s") windows/s | $(ratio "$bigwig_s" "$small_s") |"
  echo "| same windows, $copies copies ($n_fragments fragments, $size_mb MB bgzip) | $big_s | $(rate $windows "$big_s") windows/s | $(ratio "$bigwig_s" "$big_s") |"
  echo "| open the $copies-copy build, counting fragments per group (\`doctor\`, no kept counts) | $counted_s | $(rate "$n_fragments" "$counted_s") fragments/s | — |"
  echo "| open it again (counts kept in \`<cache_dir>/fragments/\`) | $kept_s | — | $(ratio "$counted_s" "$kept_s")× faster than counting |"
} > "$out"
cat "$out"
