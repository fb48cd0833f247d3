#!/usr/bin/env bash
# End-to-end `cistrack annotate` on the real hg38 common-SNP VCFs and 2,000 generated indels on
# real chr22 sequence (demo build), with wall time,
# variants/s and peak memory (GNU time), and two baselines measured in the same run:
#   - `cistrack score` on the demo locus: the model's end-to-end windows/s on this machine, so
#     annotation's windows/s is reported as a ratio of it;
#   - the same annotation again with a warm score cache.
# Needs `make build data` and GNU time (/usr/bin/time). Writes benches/results/annotate_e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /usr/bin/time ]] || { echo "annotate_e2e.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
bin=target/release/cistrack
data=../shared/data/hg38/variants
cfg=examples/hg38.toml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p benches/results
out=benches/results/annotate_e2e.md

# run NAME CMD...: wall seconds, peak RSS (MiB) and the summary line, into $tmp/NAME.*
run() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" > /dev/null 2> "$tmp/$name.err"
  read -r secs kib < "$tmp/$name.time"
  echo "$secs $((kib / 1024))" > "$tmp/$name.res"
}
field() { cut -d' ' -f"$2" "$tmp/$1.res"; }
summary() { grep -o 'annotated .*' "$tmp/$1.err" | head -1; }

echo "baseline: cistrack score on chr22:17.2-17.8 Mb" >&2
run score "$bin" -q --config "$cfg" --device cpu score --no-cache --region chr22:17,200,001-17,800,000 -o /dev/null
score_wps=$(python3 -c "print(3000 / $(field score 1))")

# indels: 2,000 deletions and insertions of 1-20 bp at random positions with real sequence in
# chr22:17.2-17.8 Mb (true hg38 there; seeded), REF read from the FASTA, sorted
python3 - "$tmp/indels.vcf" <<'EOF_PY'
import random, subprocess, sys
random.seed(15)
start, end = 17_200_001, 17_800_000
seq = "".join(subprocess.run(["samtools", "faidx", "../shared/data/hg38/genome/hg38.partial.fa.gz",
                              f"chr22:{start}-{end}"], capture_output=True, text=True,
                             check=True).stdout.split("\n")[1:]).upper()
records = set()
while len(records) < 2000:
    i = random.randrange(1, len(seq) - 40)
    n = random.randint(1, 20)
    ref = seq[i:i + n + 1]
    if "N" in ref:
        continue
    if random.random() < 0.5:
        alt = ref[0]
    else:
        ref, alt = ref[0], ref[0] + "".join(random.choice("ACGT") for _ in range(n))
    records.add((start + i, ref, alt))
with open(sys.argv[1], "w") as out:
    out.write("##fileformat=VCFv4.2\n##contig=<ID=chr22,length=50818468>\n")
    out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for pos, ref, alt in sorted(records):
        out.write(f"chr22\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.\n")
EOF_PY

declare -A files=([chr22]="$data/common_snps.hg38.chr22.vcf.gz" [genome]="$data/common_snps.hg38.vcf.gz" [indels]="$tmp/indels.vcf")
{
  echo "# cistrack annotate, real hg38 common SNPs (demo build: real sequence only at the loci), $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD)"
  echo
  echo "Baseline in the same run: \`cistrack score\` chr22:17.2-17.8 Mb (3,000 windows) $(field score 1) s = $(printf %.0f "$score_wps") windows/s."
  echo
  echo "| input | records | run | wall s | records/s | scored ALT | windows | windows/s | vs score | from cache | peak RSS MiB |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"

for set in chr22 indels genome; do
  vcf=${files[$set]}
  records=$(zcat -f "$vcf" | grep -vc '^#')
  echo "annotate $set ($records records): cold, no cache" >&2
  run "$set-cold" "$bin" --config "$cfg" --device cpu annotate --no-cache -i "$vcf"
  echo "annotate $set: fill the cache, then warm" >&2
  run "$set-fill" "$bin" --config "$cfg" --device cpu annotate --cache-dir "$tmp/cache" -i "$vcf"
  run "$set-warm" "$bin" --config "$cfg" --device cpu annotate --cache-dir "$tmp/cache" -i "$vcf"
  # the motif scan's cost: the warm run again without it (the demo config names JASPAR 2024)
  run "$set-warm_no_motifs" "$bin" --config "$cfg" --device cpu annotate --cache-dir "$tmp/cache" -i "$vcf" --no-motifs
  # and the link model's consequences (CISTRACK_LINKS) left out
  run "$set-warm_no_link_effects" "$bin" --config "$cfg" --device cpu annotate --cache-dir "$tmp/cache" -i "$vcf" --no-link-effects
  for r in cold warm warm_no_motifs warm_no_link_effects; do
    line=$(summary "$set-$r")
    python3 - "$set" "$r" "$records" "$(field "$set-$r" 1)" "$(field "$set-$r" 2)" "$score_wps" "$line" >> "$out" <<'EOF'
import re, sys
name, run, records, secs, rss, score_wps, line = sys.argv[1:]
records, secs, score_wps = int(records), float(secs), float(score_wps)
alleles = int(re.search(r"\((\d+) ALT alleles", line).group(1))
windows = int(re.search(r"(\d+) windows of which", line).group(1))
cached = int(re.search(r"of which (\d+) from the cache", line).group(1))
wps = windows / secs
print(f"| {name} | {records:,} | {run} | {secs:.1f} | {records / secs:,.0f} | {alleles:,} | {windows:,} | {wps:,.0f} | {wps / score_wps:.2f}x | {cached:,} | {rss} |")
EOF
  done
  # the notes go below the table
  echo "- $set cold: $(summary "$set-cold")" >> "$tmp/notes.md"
  grep -o 'not scored, by reason.*' "$tmp/$set-cold.err" | sed 's/^/  - /' >> "$tmp/notes.md" || true
  grep -o 'REF against the FASTA.*' "$tmp/$set-cold.err" | sed 's/^/  - /' >> "$tmp/notes.md" || true
done
echo >> "$out"
cat "$tmp/notes.md" >> "$out"
echo "wrote $out" >&2
cat "$out"
