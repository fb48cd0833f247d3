#!/usr/bin/env bash
# Records what cistrack writes on the demo loci, so that a refactor can be checked for
# "no behaviour change": run it before and after, then `diff -r BEFORE AFTER`.
#
#   scripts/record_outputs.sh OUT_DIR        (needs `make build data`; about 3 minutes on 2 cores)
#
# Records: `score` (BED, bedGraph, bigBed/bigWig decoded to text) for the student and the
# teacher, at the default and a finer stride; `annotate` on real SNVs and indels (VCF) and on
# candidate elements (BED), cold and from a filled cache; `links` (TSV, BEDPE); the daemon's
# /v1/builds, /refnames, /enhancers (dense, candidates, elements only), /links and the track
# files it serves. Fields that describe a run rather than its result (times, cache hit
# counts, pending work) are removed from JSON; everything else must be byte-identical.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/record_outputs.sh OUT_DIR}
bin=${CISTRACK_BIN:-target/release/cistrack}
cfg=examples/hg38.toml
py=.venv/bin/python
vars=../shared/data/hg38/variants
mkdir -p "$out"
tmp=$(mktemp -d)
source scripts/daemon.sh
cleanup() {
  stop_daemon
  rm -rf "$tmp"
}
trap cleanup EXIT
c() { "$bin" -q --config "$cfg" --device cpu "$@"; }

# bigWig / bigBed to text (pyBigWig from the venv)
bbi_text() {
  "$py" - "$1" <<'EOF'
import sys, pyBigWig
f = pyBigWig.open(sys.argv[1])
if f.isBigWig():
    for chrom, length in sorted(f.chroms().items()):
        for s, e, v in f.intervals(chrom) or []:
            print(chrom, s, e, f"{v:.6g}", sep="\t")
else:
    print(f.SQL().decode().strip())
    for chrom, length in sorted(f.chroms().items()):
        for s, e, rest in f.entries(chrom, 0, length) or []:
            print(chrom, s, e, rest, sep="\t")
EOF
}

echo "score" >&2
c score --region chr22:17,200,001-17,800,000 -o "$out/score.student.bed" \
  -o "$tmp/s.bb" --windows "$out/score.student.bedGraph" --windows "$tmp/s.bw"
bbi_text "$tmp/s.bb" > "$out/score.student.bb.txt"
bbi_text "$tmp/s.bw" > "$out/score.student.bw.txt"
c score -m teacher --region chr22:18,400,001-18,460,000 -o "$out/score.teacher.bed" \
  --windows "$out/score.teacher.bedGraph"
c score --stride 100 --region chr2:1,000,001-1,030,000 -o "$out/score.stride100.bed" \
  --windows "$out/score.stride100.bedGraph"
c score --region chr6:29,000,001-29,100,000 --threshold 0.3 -o "$out/score.chr6.bed" \
  --windows "$out/score.chr6.bedGraph"

echo "annotate" >&2
zcat "$vars/common_snps.hg38.chr22.vcf.gz" | awk 'NR <= 2500' > "$tmp/snps.vcf"
c annotate --no-cache -i "$tmp/snps.vcf" -o "$out/annotate.snps.vcf"
c annotate --no-cache -i "$vars/HGSVC_chr22_17200000_17800000.vcf.gz" -o "$out/annotate.indels.vcf"
zcat ../shared/data/hg38/k562/candidates/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz \
  | awk '$1 == "chr22" && $2 >= 17200000 && $3 <= 17800000' | cut -f1-3 > "$tmp/cand.bed"
c annotate --no-cache --format bed -i "$tmp/cand.bed" -o "$out/annotate.candidates.bed"
c annotate --cache-dir "$tmp/acache" -i "$tmp/snps.vcf" -o /dev/null
c annotate --cache-dir "$tmp/acache" -i "$tmp/snps.vcf" -o "$out/annotate.snps.warm.vcf"
# the command line names this run's paths
sed -i -e '/^##cistrack_command=/d' -e 's/ command=.*$//' "$out"/annotate.*

echo "links" >&2
c links --cache-dir "$tmp/lcache" --region chr22:17,200,001-17,800,000 -o "$out/links.tsv"
c links --cache-dir "$tmp/lcache" --region chr22:18,400,001-18,500,000 --min-score threshold \
  -o "$out/links.bedpe"

echo "daemon" >&2
start_daemon "$tmp/daemon.log" --device cpu --cache-dir "$tmp/dcache" --workers 1 --threads 2
base=$daemon_url
# GET PATH NAME: the JSON answer without run-dependent fields, waiting for complete views
get() {
  local path=$1 name=$2
  for _ in $(seq 1 60); do
    curl -fsS "$base$path" > "$tmp/answer.json"
    "$py" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("complete", True) else 1)' \
      "$tmp/answer.json" && break
  done
  "$py" - "$tmp/answer.json" > "$out/$name" <<'EOF'
import json, sys
RUN = {"elapsed_ms", "cached", "computed", "pending", "queued", "took_ms", "from_cache"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in RUN}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
print(json.dumps(strip(json.load(open(sys.argv[1]))), indent=1, sort_keys=True))
EOF
}
b=/v1/builds/hg38
get /v1/builds builds.json
get $b/refnames refnames.json
get "$b/enhancers?ref=chr22&start=17200000&end=17300000&wait=30000" enhancers.dense.json
get "$b/enhancers?ref=chr22&start=17200000&end=17800000&mode=candidates&wait=30000" enhancers.candidates.json
get "$b/enhancers?ref=22&start=18400000&end=18420000&include=elements&model=teacher&wait=30000" enhancers.teacher.json
get "$b/links?ref=chr22&start=17200000&end=17800000&wait=30000" links.json
get "$b/links?ref=chr22&start=18400000&end=18500000&min_score=threshold&wait=30000" links.threshold.json
for track in enhancers.bb scores.bw; do
  curl -fsS "$base$b/tracks/$track" -o "$tmp/$track" && bbi_text "$tmp/$track" > "$out/track.$track.txt" \
    || echo "no $track" > "$out/track.$track.txt"
done
curl -fsS "$base/metrics" | grep -o '^[a-z_]*' | sort -u > "$out/metrics.names"
echo "recorded $(ls "$out" | wc -l) files in $out" >&2
