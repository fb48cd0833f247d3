#!/usr/bin/env bash
# Carry what benches/cuda_e2e.py needs to a GPU machine that has no network and no Rust: one
# xz-compressed tar, split into parts of at most PART_MIB (for transfer limits), holding
#   lib/   libonnxruntime.so.1.31.1 and its CUDA execution provider from the PyPI wheel
#          onnxruntime-gpu==1.31.1 (CUDA 13, cuDNN 9), the provider's GPU kernels pruned to
#          one architecture (ARCH, default 90: H100/H200) so that it shrinks from 271 to ~50 MiB
#          compressed; kernels for other architectures are removed from each fat binary, the
#          rest of the library is byte for byte the wheel's;
#   bin/   target/release/cistrack and target/release/examples/ort_floor, stripped;
#   data/  the demo build's inputs for chr22 (the partial hg38 chr22 sequence, the derived
#          K562 bigWigs cut to chr22, genes, aliases, candidates) and hg38.toml pointing at them.
# The GPU machine needs python3 (tar and lzma from its standard library), the NVIDIA driver,
# and the CUDA 13 runtime, cuBLAS, cuRAND, cuFFT and cuDNN 9 libraries (PyTorch's nvidia-* wheels
# have them; `unpack` puts their lib folders on LD_LIBRARY_PATH).
#
#   benches/cuda_bundle.sh pack DIR            # here, after `make build data`: DIR/p1, DIR/p2, ...
#   source benches/cuda_bundle.sh unpack DIR   # there: unpacks to DIR/bundle, sets ORT_DYLIB_PATH
#                                              # and LD_LIBRARY_PATH, cds to the repository
#   python3 benches/cuda_e2e.py --config "$CUDA_BUNDLE/data/hg38.toml" \
#       --bin "$CUDA_BUNDLE/bin/cistrack" --floor-bin "$CUDA_BUNDLE/bin/ort_floor"
set -euo pipefail

pack() {
  local dir=$1 root work wheel
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  local data=$root/../shared/data/hg38 b=$work/bundle
  mkdir -p "$b/lib" "$b/bin" "$b/data"

  echo "[bundle] ONNX Runtime GPU 1.31.1 (PyPI wheel)" >&2
  wheel=$(ls "$root"/.cistrack/wheels/onnxruntime_gpu-1.31.1-*.whl 2>/dev/null | head -1 || true)
  if [[ -z $wheel ]]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 onnxruntime-gpu==1.31.1 -d "$root/.cistrack/wheels"
    wheel=$(ls "$root"/.cistrack/wheels/onnxruntime_gpu-1.31.1-*.whl | head -1)
  fi
  (cd "$work" && python3 -m zipfile -e "$wheel" wheel >/dev/null)
  cp "$work"/wheel/onnxruntime/capi/libonnxruntime.so.1.31.1 \
    "$work"/wheel/onnxruntime/capi/libonnxruntime_providers_shared.so "$b/lib/"
  ln -s libonnxruntime.so.1.31.1 "$b/lib/libonnxruntime.so"
  python3 "$root/benches/fatbin_prune.py" --arch "${ARCH:-90}" \
    "$work"/wheel/onnxruntime/capi/libonnxruntime_providers_cuda.so "$b/lib/libonnxruntime_providers_cuda.so"
  rm -rf "$work/wheel"

  echo "[bundle] binaries" >&2
  strip -o "$b/bin/cistrack" "$root/target/release/cistrack"
  strip -o "$b/bin/ort_floor" "$root/target/release/examples/ort_floor"

  echo "[bundle] chr22 inputs" >&2
  samtools faidx "$data/genome/hg38.partial.fa.gz" chr22 | bgzip -i -I "$b/data/chr22.fa.gz.gzi" > "$b/data/chr22.fa.gz"
  samtools faidx "$b/data/chr22.fa.gz"
  cp "$data/genome/hg38.chrom.sizes" "$data/k562/abc_reference/CollapsedGeneBounds.hg38.bed.gz" \
    "$data/k562/genes/GeneName2ENSID.csv.gz" \
    "$data/k562/candidates/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz"* "$b/data/"
  "$root/.venv/bin/python" - "$root/.cistrack/derived/hg38" "$b/data" <<'PY'
import sys, pyBigWig
src, dst = sys.argv[1:]
for name in ("k562.h3k27ac.candidates.bw", "k562.dnase.candidates.bw"):
    a = pyBigWig.open(f"{src}/{name}")
    b = pyBigWig.open(f"{dst}/{name}", "w")
    b.addHeader([("chr22", a.chroms("chr22"))])
    iv = a.intervals("chr22") or []
    b.addEntries(["chr22"] * len(iv), [s for s, _, _ in iv], ends=[e for _, e, _ in iv], values=[v for *_, v in iv])
    b.close()
PY
  sed -e 's|^models_dir = .*|models_dir = "@MODELS@"|' -e 's|^cache_dir = .*|cache_dir = "cache"|' \
    -e 's|"\.\./\.\./shared/data/hg38/[^"]*/\([^"/]*\)"|"\1"|g' -e 's|"\.\./\.cistrack/derived/hg38/\([^"]*\)"|"\1"|' \
    -e 's|hg38.partial.fa.gz|chr22.fa.gz|' "$root/examples/hg38.toml" > "$b/data/hg38.toml"

  echo "[bundle] compressing" >&2
  rm -f "$dir"/p*/bundle.tar.xz.*
  tar -C "$work" -cf - bundle | xz -9 -T0 | split -b "${PART_MIB:-30}M" -d -a 2 - "$work/bundle.tar.xz."
  local i=1 part
  for part in "$work"/bundle.tar.xz.*; do
    mkdir -p "$dir/p$i"
    mv "$part" "$dir/p$i/"
    i=$((i + 1))
  done
  du -sh "$dir"/p* >&2
}

unpack() {
  local dir=$1
  dir=$(cd "$dir" && pwd)
  if [[ ! -d $dir/bundle ]]; then
    cat "$dir"/p*/bundle.tar.xz.* | python3 -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall(sys.argv[1])" "$dir"
  fi
  export CUDA_BUNDLE=$dir/bundle
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  sed -i "s|@MODELS@|$repo/models|" "$CUDA_BUNDLE/data/hg38.toml"
  export ORT_DYLIB_PATH=$CUDA_BUNDLE/lib/libonnxruntime.so.1.31.1
  local nvidia
  nvidia=$(python3 -c "import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]) + '/nvidia')" 2>/dev/null || true)
  if [[ -n $nvidia ]]; then
    LD_LIBRARY_PATH=$(ls -d "$nvidia"/*/lib | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
  fi
  cd "$repo"
}

case "${1:-}" in
  pack) pack "$2" ;;
  unpack) unpack "$2" ;;
  *) sed -n '2,23p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
