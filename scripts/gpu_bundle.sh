#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh needs on a GPU machine into target/gpu-bundle/
# (under 64 MiB): the stripped binaries (matte-image, engine-bench, element-bench),
# the GStreamer and GLib libraries element-bench links (the device image has no
# GStreamer; it needs no GStreamer plugin), the TorchScript model and its fp16
# variant, the photo and its onnxruntime reference matte. (The eager reference loop
# times random weights: a state_dict would not fit the 64 MiB a device run carries.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f data/fixtures/reference/astronaut_ref512_matte.png ] || bash scripts/test.sh
cargo build --release --quiet -p modnetmatte-cli --bin matte-image --bin engine-bench --bin element-bench
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
cp models/modnet_photographic.pt models/modnet_photographic_fp16.pt data/images/astronaut.png data/images/rocket.jpg \
   data/fixtures/reference/astronaut_ref512_matte.png "$b/"
du -sh "$b"
