#!/usr/bin/env bash
# In-silico mutagenesis through the daemon (`/v1/builds/hg38/ism`) on the demo build: one
# 1,000-bp view of real chr22 sequence (4,000 model windows: each base's reference window and
# its three substitutions), cold (fresh cache) and warm (asked again), with the model's own
# windows/s on this machine measured in the same run (`cistrack score`, no cache) as baseline.
# Needs `make build data`. Writes benches/results/ism_e2e.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/cistrack
cfg=examples/hg38.toml
tmp=$(mktemp -d)
daemon_pid=
trap '[[ -n $daemon_pid ]] && kill $daemon_pid 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p benches/results
out=benches/results/ism_e2e.md
view="ref=chr22&start=${ISM_START:-19443236}&end=${ISM_END:-19444236}"

echo "baseline: cistrack score on chr22:17.2-17.8 Mb" >&2
t0=$(date +%s.%N)
"$bin" -q --config "$cfg" --device cpu score --no-cache --region chr22:17,200,001-17,800,000 -o /dev/null
score_s=$(python3 -c "import sys; print(f'{$(date +%s.%N) - $t0:.2f}')")
score_wps=$(python3 -c "print(3000 / $score_s)")

echo "daemon on a fresh cache" >&2
"$bin" --config "$cfg" --device cpu serve --bind 127.0.0.1:0 --cache-dir "$tmp/cache" 2> "$tmp/serve.log" &
daemon_pid=$!
for _ in $(seq 1 240); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$tmp/serve.log" | head -1 | sed 's|listening on http://||') || true
  [[ -n ${addr:-} ]] && break
  sleep 0.5
done
[[ -n ${addr:-} ]] || { cat "$tmp/serve.log" >&2; exit 1; }

# ask (wait 1 s per answer) until complete; print seconds and positions
ism() {
  python3 - "http://$addr/v1/builds/hg38/ism?$view" <<'EOF'
import json, sys, time, urllib.request
url = sys.argv[1]
t0 = time.time()
answers = 0
while True:
    with urllib.request.urlopen(url + "&wait=1000") as r:
        v = json.load(r)
    answers += 1
    if v["complete"]:
        break
print(f"{time.time() - t0:.2f} {v['positions_needed']} {answers}")
EOF
}
read -r cold_s positions cold_answers < <(ism)
read -r warm_s _ warm_answers < <(ism)
rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$daemon_pid/status")
windows=$((4 * positions))
{
  echo "# in-silico mutagenesis through the daemon, demo build, $(date -u +%Y-%m-%d)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD)"
  echo
  echo "Baseline in the same run: \`cistrack score\` chr22:17.2-17.8 Mb (3,000 windows, no cache) ${score_s} s = $(printf %.0f "$score_wps") windows/s."
  echo
  echo "| view | positions | windows | run | wall s | answers | windows/s | vs score | daemon peak RSS MiB |"
  echo "|---|---:|---:|---|---:|---:|---:|---:|---:|"
  python3 - "$view" "$positions" "$windows" "$cold_s" "$cold_answers" "$warm_s" "$warm_answers" "$score_wps" "$rss" <<'EOF'
import sys
view, positions, windows, cold, cold_n, warm, warm_n, score_wps, rss = sys.argv[1:]
positions, windows, score_wps = int(positions), int(windows), float(score_wps)
wps = windows / float(cold)
print(f"| {view} | {positions:,} | {windows:,} | cold | {float(cold):.2f} | {cold_n} | {wps:,.0f} | {wps / score_wps:.2f}x | {rss} |")
print(f"| {view} | {positions:,} | 0 (cache) | warm | {float(warm):.2f} | {warm_n} | — | — | {rss} |")
EOF
} > "$out"
echo "wrote $out" >&2
cat "$out"
