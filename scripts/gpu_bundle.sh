#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh needs on a GPU machine into target/gpu-bundle/
# (under 64 MiB: the stripped binary, the TorchScript model, the state_dict for the
# eager reference, the photo and its onnxruntime reference matte).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f data/fixtures/reference/astronaut_ref512_matte.png ] || bash scripts/test.sh
cargo build --release --quiet --bin matte-image
b=target/gpu-bundle
rm -rf "$b" && mkdir -p "$b"
strip -o "$b/matte-image" target/release/matte-image
cp models/modnet_photographic.pt data/images/astronaut.png data/images/rocket.jpg \
   data/fixtures/reference/astronaut_ref512_matte.png "$b/"
(cd tools && ../.venv/bin/python -c "
import torch; from modnet import export
torch.save(export.build_model(export.Path('../models/source/modnet_photographic.onnx')).state_dict(), '../$b/modnet_state_dict.pt')")
du -sh "$b"
