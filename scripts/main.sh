#!/usr/bin/env bash
# README command 1: matte the astronaut photo with the Rust engine and write out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet --bin matte-image
target/release/matte-image data/images/astronaut.png --background data/images/rocket.jpg \
  --out-dir out --repeat 10 "$@"
# The same photo through onnxruntime on the original ONNX, for comparison.
(cd tools && ../.venv/bin/python -m modnet.speed --onnx ../models/source/modnet_photographic.onnx \
  --image ../data/images/astronaut.png --repeat 10)
