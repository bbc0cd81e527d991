#!/usr/bin/env bash
# GPU check, one command, for a machine with an NVIDIA GPU and torch 2.11.0+cu130
# under python3 (no GStreamer needed: the bundle carries the libraries it uses).
# Make the bundle on the build machine first (bash scripts/gpu_bundle.sh), then run
# this from the repository root there, with target/gpu-bundle/ copied along:
#   1. CUDA matte vs the onnxruntime reference on the real photo: fp32 (fails past
#      2/255) and fp16 (past 4/255);
#   2. throughput and per-frame latency at 1280x720 and 1920x1080 (I420, ref-size
#      512), fp32 and fp16, max-in-flight 1 and 2, through the element
#      (element-bench: its own pads in and out, upstream buffers from the pool the
#      element proposes, page-locked on CUDA) and through the bare engine
#      (engine-bench: the same device path, no GStreamer);
#   3. overlap: each stage waited for and timed alone, summed, next to the
#      pipelined time per frame;
#   4. PyTorch eager in Python on the same GPU (the official demo's loop), fp32 and fp16.
# Everything lands in one markdown table.
#
# GPU_CHECK_DEVICE=cpu GPU_CHECK_FRAMES=5 runs the same steps on a CPU (a smoke test
# of this script; parts 1 and 4 need CUDA and are skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
b=target/gpu-bundle
device=${GPU_CHECK_DEVICE:-cuda}
frames=${GPU_CHECK_FRAMES:-300}
sizes=${GPU_CHECK_SIZES:-1280x720 1920x1080}
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null \
  || echo .venv/libtorch/lib)
export LD_LIBRARY_PATH="$PWD/$b/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Only the statically registered element: no plugin scan, a private registry.
export GST_PLUGIN_SYSTEM_PATH_1_0="" GST_PLUGIN_PATH_1_0="" GST_REGISTRY_1_0=/tmp/modnetmatte-gpu-check.bin
export MODNETMATTE_MODEL="$b/modnet_photographic.pt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fail=0
m() { "$b/matte-image" "$b/astronaut.png" --background "$b/rocket.jpg" --model "$b/modnet_photographic.pt" --out-dir /tmp/gpu-out "$@" | grep -v '^wrote'; }
if [ "$device" = cuda ]; then
  echo "== 1. parity (CUDA vs onnxruntime reference, 512x512)"
  m --device cuda --reference "$b/astronaut_ref512_matte.png" --repeat 5 || { echo "FP32 PARITY FAILED"; fail=1; }
  m --device cuda --precision fp16 --reference "$b/astronaut_ref512_matte.png" --max-diff 4 --repeat 5 \
    || { echo "FP16 PARITY FAILED"; fail=1; }
fi
rows=$(mktemp)
common=(--device "$device" --frames "$frames" --warmup 30 --photo "$b/astronaut.png" --model "$b/modnet_photographic.pt")
for precision in fp32 fp16; do
  for size in $sizes; do
    echo "== $precision $size" >&2
    "$b/engine-bench" "${common[@]}" --precision "$precision" --size "$size" --in-flight 1,2 --stages >>"$rows" \
      || { echo "engine-bench $precision $size FAILED"; fail=1; }
    "$b/element-bench" "${common[@]}" --precision "$precision" --size "$size" --in-flight 1,2 >>"$rows" \
      || { echo "element-bench $precision $size FAILED"; fail=1; }
  done
done
# The blurred background (more work on the GPU per frame) at the target setting.
"$b/element-bench" "${common[@]}" --precision fp16 --size 1920x1080 --in-flight 2 --background blur >>"$rows" \
  || { echo "element-bench blur FAILED"; fail=1; }
if [ "$device" = cuda ]; then
  (cd tools && LD_LIBRARY_PATH="$torch_lib" python3 -m modnet.gpu_reference \
     --sizes "$(echo $sizes | tr ' ' ,)") | grep '^|' >>"$rows" || { echo "eager reference FAILED"; fail=1; }
fi
echo
echo "== 2-4. one table (ref-size 512; latency: push to output; stages alone: each waited for)"
echo "| path | frame | precision | device | background | mode | throughput | latency / stages | notes |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
cat "$rows"
rm -f "$rows"
exit $fail
