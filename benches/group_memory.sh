#!/usr/bin/env bash
# What a cell group costs the daemon in memory.
#
# The real chr22 fragments (../shared/data/hg38/scatac) with their 100 barcodes dealt into
# CELL_GROUPS groups (default 20, round robin); one build reads group g01. The daemon is started,
# asked for the view once with the build's own group (its model session warmed), then with
# `group=*` (every other group's engine started and its view scored), then with `group=*` again.
# Reports the daemon's resident memory (VmRSS) at each step and the growth per extra group, and
# the `cistrack_model_sessions` gauge (ONNX Runtime sessions open). Needs `make build data`.
# CISTRACK_BIN runs another binary (a baseline). Writes benches/results/group_memory.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${CISTRACK_BIN:-$root/target/release/cistrack}
groups=${CELL_GROUPS:-20}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p benches/results
out=benches/results/group_memory.md
view="ref=chr22&start=17400000&end=17410000"

grep -v '^#' tests/data/scatac/groups.tsv | cut -f1 |
  awk -v n="$groups" '{ printf "%s\tg%02d\n", $1, (NR - 1) % n + 1 }' > "$tmp/groups.tsv"
cat > "$tmp/config.toml" <<EOF
models_dir = "$root/models"
[builds.cells]
fasta = "$root/../shared/data/hg38/genome/hg38.partial.fa.gz"
models = { student = "enhancer-student/0.2.0" }
[builds.cells.signals.accessibility]
fragments = "$root/../shared/data/hg38/scatac/test.fragments.tsv.gz"
groups = "$tmp/groups.tsv"
group = "g01"
EOF

"$bin" --config "$tmp/config.toml" --device cpu serve --bind 127.0.0.1:0 ${SERVE_ARGS:-} \
  --cache-dir "$tmp/cache" 2> "$tmp/serve.log" &
pid=$!
addr=
for _ in $(seq 600); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$tmp/serve.log" | head -1 | sed 's|listening on http://||') || true
  [ -n "$addr" ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$tmp/serve.log" >&2; exit 1; }
rss() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
get() { curl -sf "http://$addr/v1/builds/cells/enhancers?$view&wait=600000$1" > /dev/null; }
sessions() { curl -sf "http://$addr/metrics" | awk '$1 == "cistrack_model_sessions" { print $2 }'; }

get ""
own=$(rss)
t0=$(date +%s.%N)
get "&group=*"
all_s=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")
all=$(rss)
get "&group=*"
again=$(rss)
n_sessions=$(sessions)
per=$(python3 -c "print(f'{($all - $own) / ($groups - 1):.1f}')")
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD)

{
  echo "# Memory per cell group ($(date -u +%F), commit $commit)"
  echo
  echo "CPU: $cpu, $(nproc) cores. Real chr22 fragments, 100 barcodes in $groups groups; view"
  echo "chr22:17.40-17.41 Mb (50 windows); 0.2.0 student on the CPU; daemon VmRSS."
  echo
  echo "| step | VmRSS (MB) |"
  echo "|---|---:|"
  echo "| own group's view scored (1 engine) | $own |"
  echo "| \`group=*\` scored ($groups engines; $all_s s) | $all |"
  echo "| \`group=*\` again (cached) | $again |"
  echo
  echo "Per extra group: $per MB. ONNX Runtime sessions open: $n_sessions."
} > "$out"
cat "$out"
