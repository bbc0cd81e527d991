#!/usr/bin/env bash
# The side-by-side speed comparison (tools/modnet/compare.py): our element,
# synchronous and pipelined, vs onnxruntime and PyTorch eager on the same 720p frames
# with the same thread count. Writes out/compare.md and out/compare.png.
#   FRAMES=16 REF_SIZE=512 THREADS=2 bash scripts/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet -p gst-plugin-modnet
mkdir -p target/gst-plugin out
cp target/release/libgstmodnet.so target/gst-plugin/
if [ ! -f data/clip/frame_0089.jpg ]; then
  (cd tools && ../.venv/bin/python -m modnet.clip --onnx ../models/source/modnet_photographic.onnx \
      --images ../data/images --out ../data/clip --frames 90)
fi
cd tools && ../.venv/bin/python -m modnet.compare --onnx ../models/source/modnet_photographic.onnx \
  --model ../models/modnet_photographic.pt --frames-dir ../data/clip --plugin-dir ../target/gst-plugin \
  --out ../out/compare --frames "${FRAMES:-16}" --ref-size "${REF_SIZE:-512}" --threads "${THREADS:-2}"
