#!/usr/bin/env bash
# The side-by-side speed comparison (tools/modnet/compare.py): our element (steady
# state) and its bare forward vs onnxruntime and PyTorch eager on the same 720p frames
# with the same thread count, at ref-size 512 and 256, with the CPU model and its
# measured fp32 peak. Writes out/compare.md and out/compare.png.
# Each precision the CPU runs (fp32; bf16 where it has AMX or AVX512-BF16), or PRECISIONS.
#   FRAMES=10 REF_SIZES=512,256 ROUNDS=3 THREADS=2 PRECISIONS=fp32,bf16 bash scripts/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two builds: with --bin, cargo would build no library target, and the plugin copied
# below would be whatever release build was there before.
cargo build --release --quiet -p gst-plugin-modnet
cargo build --release --quiet -p modnetmatte-cli --bin matte-image
mkdir -p target/gst-plugin out
cp target/release/libgstmodnet.so target/gst-plugin/
if [ ! -f data/clip/frame_0089.jpg ]; then
  (cd tools && ../.venv/bin/python -m modnet.clip --onnx ../models/source/modnet_photographic.onnx \
      --images ../data/images --out ../data/clip --frames 90)
fi
cd tools && ../.venv/bin/python -m modnet.compare --onnx ../models/source/modnet_photographic.onnx \
  --model ../models/modnet_photographic.pt --frames-dir ../data/clip --plugin-dir ../target/gst-plugin \
  --matte-image ../target/release/matte-image --out ../out/compare --frames "${FRAMES:-10}" \
  --ref-sizes "${REF_SIZES:-512,256}" --rounds "${ROUNDS:-3}" --threads "${THREADS:-2}" \
  --precisions "${PRECISIONS:-}"
