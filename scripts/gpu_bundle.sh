#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh needs on a GPU machine into target/gpu-bundle/
# (under 64 MiB): the stripped binaries (matte-image, engine-bench, element-bench),
# the GStreamer and GLib libraries element-bench links (the device image has no
# GStreamer; it needs no GStreamer plugin), the TorchScript model, the state_dict for
# the eager reference (stored fp16), the photo and its onnxruntime reference matte.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f data/fixtures/reference/astronaut_ref512_matte.png ] || bash scripts/test.sh
cargo build --release --quiet --bin matte-image --bin engine-bench
cargo build --release --quiet -p modnetmatte-cli --bin element-bench
b=target/gpu-bundle
rm -rf "$b" && mkdir -p "$b/lib"
for bin in matte-image engine-bench element-bench; do
  strip -o "$b/$bin" "target/release/$bin"
done
# Every shared library element-bench needs except libc's family, the C++ runtime and
# libtorch (the device's torch provides that one).
ldd target/release/element-bench | awk '$3 ~ /^\// {print $3}' \
  | grep -v -E '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so|torch|c10|gomp' \
  | while read -r lib; do cp -L "$lib" "$b/lib/"; done
cp models/modnet_photographic.pt data/images/astronaut.png data/images/rocket.jpg \
   data/fixtures/reference/astronaut_ref512_matte.png "$b/"
(cd tools && ../.venv/bin/python -c "
import torch; from modnet import export
sd = export.build_model(export.Path('../models/source/modnet_photographic.onnx')).state_dict()
# Stored in half precision to fit the carry limit (the reference loop times, and casts back).
torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, '../$b/modnet_state_dict.pt')")
du -sh "$b"
