#!/usr/bin/env bash
#! `make demo` (and `make demo-igv`): the daemon on the demo build and a genome-browser page,
#! until Ctrl-C, which stops both.
#!
#!   examples/jbrowse/demo.sh [jbrowse|igv] [DAEMON_PORT=8765] [WEB_PORT=8766]
#!
#! Expects what `make demo` builds first: target/release/cistrack, the derived signals
#! (make data), plugin/dist, examples/jbrowse/dist and the GENCODE BED12 (make browser).
set -euo pipefail
cd "$(dirname "$0")/../.."
page=${1:-jbrowse}
port=${2:-8765}
web=${3:-8766}
genome=../shared/data/hg38/genome
annotation=.cistrack/derived/hg38/browser

case "$page" in
  jbrowse) mounts=(/=examples/jbrowse/dist /plugin/=plugin/dist) ;;
  igv) mounts=(/=examples/igv /igv/=examples/igv/node_modules/igv/dist) ;;
  *) echo "demo.sh: unknown page $page (jbrowse or igv)" >&2; exit 2 ;;
esac

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

target/release/cistrack --config examples/hg38.toml serve --bind "127.0.0.1:$port" &
pids+=($!)
node examples/jbrowse/serve.mjs --port "$web" "${mounts[@]}" "/genome/=$genome" "/annotation/=$annotation" &
pids+=($!)

for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the daemon did not start" >&2; exit 1; }

query=""
[ "$port" = 8765 ] || query="?daemon=http://127.0.0.1:$port"
echo
echo "  cistrack daemon   http://127.0.0.1:$port  (build hg38: partial GRCh38, K562 signals)"
echo "  $page page     http://127.0.0.1:$web/$query"
echo "  scATAC groups    http://127.0.0.1:$web/${query:-?}${query:+&}view=scatac  (build hg38_scatac: one track per cell group)"
echo
echo "  Open the page in a browser (it starts at chr17:42,600,001-42,700,000; a cold 100-kb view"
echo "  takes several seconds of CPU scoring, then comes from the cache). Ctrl-C stops both."
echo "  For percentiles in the feature details, run once beside it (about 2 minutes on 2 cores):"
echo "    target/release/cistrack --config examples/hg38.toml precompute --background --background-windows 5000"
echo
# Returns when either process ends (or on Ctrl-C); the EXIT trap stops the other.
wait -n "${pids[@]}"
