#!/usr/bin/env bash
# Install what cistrack needs on a fresh Debian 12 machine, and nothing more.
#
#   scripts/setup.sh              system packages, ONNX Runtime library, light Python venv
#   scripts/setup.sh --training   ... plus PyTorch and the ONNX exporter for models/training
#
# Idempotent and fast on re-runs: every step checks what is already there first.
# Everything it downloads lands in git-ignored folders of this repository:
#   .cistrack/onnxruntime/   libonnxruntime.so.* from the PyPI wheel onnxruntime==1.31.1
#   .venv/                   Python for the tests, the demo-data script and models/training
#   */node_modules/          npm packages of plugin/, examples/jbrowse/, examples/igv/
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TRAINING=0
for arg in "$@"; do
  case "$arg" in
    --training) TRAINING=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

# --- 1. Debian packages ------------------------------------------------------------------
# tabix/samtools/bcftools: fixture and VCF tools used by tests (samtools faidx is the FASTA reader's oracle).
# python3-pybigwig: Debian's pyBigWig is built with remote (HTTP) support, which the PyPI wheel lacks;
# the server tests read bigBed/bigWig back over HTTP with it (/usr/bin/python3).
# redis-server: tests/redis.rs starts one on a free loopback port (the shared cache tier).
# wrk: benches/soak.sh's load generator.
APT_PACKAGES=(tabix samtools bcftools python3-pybigwig redis-server wrk)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. ONNX Runtime shared library --------------------------------------------------------
ORT_VERSION=1.31.1
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ORT_DIR=$ROOT/.cistrack/onnxruntime
if [ ! -f "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  say "fetching ONNX Runtime $ORT_VERSION from PyPI (wheel $ORT_WHEEL)"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION" -d "$tmp"
  echo "$ORT_WHEEL_SHA256  $tmp/$ORT_WHEEL" | sha256sum -c --quiet -
  mkdir -p "$ORT_DIR"
  python3 - "$tmp/$ORT_WHEEL" "$ORT_DIR" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime") and ".so" in base:
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as dst:
                dst.write(src.read())
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
  rm -rf "$tmp"
fi

# --- 3. Python virtual environment ---------------------------------------------------------
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating Python venv in .venv"
  python3 -m venv "$VENV"
fi
install_reqs() {  # install a requirements file once per content hash
  local req=$1 stamp="$VENV/.installed-$(basename "$1" .txt)"
  local sum; sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "installing Python packages from ${req#"$ROOT"/}$([[ $req == *training* ]] && echo ' (PyTorch with its CUDA wheels: several GB, a few minutes)')"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$sum" > "$stamp"
  fi
}
install_reqs "$ROOT/scripts/requirements-dev.txt"
if ((TRAINING)); then
  install_reqs "$ROOT/scripts/requirements-training.txt"
fi
# --- 4. Genome-browser plugin, pages and their browser tests ---------------------------------
# Node.js >= 20.19 with npm (vite 8, vitest 4): the machine image has it (Node 20 and npm); Debian
# 12's own nodejs is 18, too old, so it is not installed from apt. Debian's chromium (no browser
# download: playwright-core drives /usr/bin/chromium). npm packages come from the committed
# package-lock.json files (`npm ci`, exact versions; every @jbrowse/* package pinned to 4.1.13).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup.sh: Node.js >= 20.19 with npm is needed for the genome-browser plugin and pages (not found)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "setup.sh: Node.js >= 20.19 is needed (vite 8); found $(node --version)" >&2
  exit 1
fi
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  say "installing Debian chromium (headless browser tests)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
npm_ci() {  # npm ci once per package-lock.json content
  local dir=$1 stamp="$ROOT/$1/node_modules/.cistrack-installed"
  local sum; sum=$(sha256sum "$ROOT/$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "installing npm packages in $dir (npm ci)"
    (cd "$ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$sum" > "$stamp"
  fi
}
npm_ci plugin
npm_ci examples/jbrowse
npm_ci examples/igv

say "ready: ONNX Runtime $ORT_VERSION in .cistrack/onnxruntime, Python in .venv$( ((TRAINING)) && echo ' (with training deps)')"
