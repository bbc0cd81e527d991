#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and torch 2.11.0+cu130 under python3.
# Make the bundle first on the build machine (bash scripts/gpu_bundle.sh), then run
# this from the repository root there, with target/gpu-bundle/ copied along:
#   1. CUDA matte vs the onnxruntime reference on the real photo, fp32 (fails past
#      2/255) and fp16 (past 4/255);
#   2. the engine per frame at 512x512, 1280x720 and 1920x1080, CUDA fp32 and fp16,
#      and CPU;
#   3. the PyTorch-eager reference loop on the same GPU, fp32 and fp16.
# The engine is synchronous today (no pinned buffers or stream overlap yet).
set -uo pipefail
cd "$(dirname "$0")/.."
b=target/gpu-bundle
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
m() { "$b/matte-image" "$b/astronaut.png" --background "$b/rocket.jpg" --model "$b/modnet_photographic.pt" --out-dir /tmp/gpu-out "$@" | grep -v '^wrote'; }
echo "== 1. parity (CUDA vs onnxruntime reference, 512x512)"
m --device cuda --reference "$b/astronaut_ref512_matte.png" --repeat 5 || echo "PARITY FAILED"
m --device cuda --precision fp16 --reference "$b/astronaut_ref512_matte.png" --max-diff 4 --repeat 5 \
  || echo "FP16 PARITY FAILED"
echo "== 2. engine per frame"
for precision in fp32 fp16; do
  for size in 512x512 1280x720 1920x1080; do
    m --device cuda --precision "$precision" --size "$size" --repeat 50
  done
done
m --device cpu --size 1280x720 --repeat 5
echo "== 3. PyTorch eager on the same GPU"
(cd tools && python3 -m modnet.gpu_reference --state-dict "../$b/modnet_state_dict.pt" --sizes 512x512,1280x720,1920x1080)
