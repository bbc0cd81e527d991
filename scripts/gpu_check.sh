#!/usr/bin/env bash
# GPU check, one command, for a machine with an NVIDIA GPU and torch 2.11.0+cu130
# under python3 (no GStreamer needed: the bundle carries the libraries it uses).
# Make the bundle on the build machine first (bash scripts/gpu_bundle.sh), then run
# this from the repository root there, with target/gpu-bundle/ copied along:
#
#   1. parity: the device path's matte (output=matte) vs the onnxruntime reference on
#      the real photo, fp32 (fails past 2/255) and fp16 (past 4/255), CUDA graphs off
#      and on (past the capture), batch 1 and 4; and matte-image (the plain path);
#   2. throughput and per-frame latency, 1280x720 and 1920x1080 I420 at ref-size 512,
#      fp32 and fp16, CUDA graphs off and on, batch 1/4/8: through the element
#      (element-bench: its own pads, upstream buffers from the pool the element
#      proposes, page-locked on CUDA; latency push to output at batch 1 with 1 frame
#      in flight) and through the bare engine (engine-bench);
#   3. overlap: each stage waited for and timed alone, summed, next to the pipelined
#      time per frame (engine rows "stages alone");
#   4. PyTorch eager on the same GPU (the official demo's loop), fp32 and fp16;
#   5. the network's own GPU time (CUDA graph replays in PyTorch, contiguous and
#      channels-last) and its top kernels (tools/modnet/gpu_profile.py).
#
# The most important rows come first (the target setting, fp16 1080p), each step has
# its own time limit and the whole check a budget (GPU_CHECK_BUDGET seconds, 400 by
# default): what does not fit is listed as skipped. Everything lands in one markdown
# table, also written with the logs to $OUT (or /tmp/gpu-check).
#
# GPU_CHECK_DEVICE=cpu GPU_CHECK_FRAMES=3 GPU_CHECK_SIZES=160x120 GPU_CHECK_REF_SIZE=64
# runs the same steps on a CPU (a smoke test of this script; parts 1 and 4 need CUDA
# and are skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
b=target/gpu-bundle
device=${GPU_CHECK_DEVICE:-cuda}
frames=${GPU_CHECK_FRAMES:-150}
sizes=${GPU_CHECK_SIZES:-1920x1080 1280x720}
batches=${GPU_CHECK_BATCHES:-1,4,8}
precisions=${GPU_CHECK_PRECISIONS:-fp16 fp32}
budget=${GPU_CHECK_BUDGET:-400}
step_limit=${GPU_CHECK_STEP_LIMIT:-120}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
log="$out/gpu_check.log"
: >"$log"
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null \
  || echo .venv/libtorch/lib)
export LD_LIBRARY_PATH="$PWD/$b/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Only the statically registered element: no plugin scan, a private registry.
export GST_PLUGIN_SYSTEM_PATH_1_0="" GST_PLUGIN_PATH_1_0="" GST_REGISTRY_1_0=/tmp/modnetmatte-gpu-check.bin
export GST_DEBUG=${GST_DEBUG:-modnetmatte:4}
export MODNETMATTE_MODEL="$b/modnet_photographic.pt"
{
  echo "== machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  lscpu | grep -m1 'Model name' || true
  python3 -c 'import torch; print("torch", torch.__version__)' 2>&1 || true
} | tee -a "$log"
start=$SECONDS
fail=0
rows="$out/rows.md"
: >"$rows"
# step NAME CMD...: runs CMD within the step limit and the budget; rows on stdout go
# to the table, everything else to the log.
step() {
  local name=$1; shift
  local left=$((budget - (SECONDS - start)))
  if ((left < 20)); then
    echo "| skipped | $name | | | | | | out of time (budget ${budget} s) | |" >>"$rows"
    echo "== $name: skipped (budget)" | tee -a "$log"
    return
  fi
  local limit=$((left < step_limit ? left : step_limit))
  echo "== $name (limit ${limit} s)" | tee -a "$log"
  local t0=$SECONDS
  # Through bash -c, so that a step may be one of the functions below.
  timeout -k 5 "$limit" bash -c "$(declare -f m eager profile); \"\$@\"" step "$@" >"$out/step.out" 2>>"$log"
  local rc=$?
  tee -a "$log" <"$out/step.out" | grep '^|' >>"$rows"
  echo "   $name: rc $rc, $((SECONDS - t0)) s" | tee -a "$log"
  if ((rc != 0)); then
    echo "| FAILED | $name | | | | | | rc $rc (see the log) | |" >>"$rows"
    fail=1
  fi
}
m() {
  "$b/matte-image" "$b/astronaut.png" --background "$b/rocket.jpg" --model "$b/modnet_photographic.pt" \
    --out-dir /tmp/gpu-out "$@" | grep -v '^wrote' | sed 's/^/| parity | /'
}
common=(--device "$device" --frames "$frames" --warmup 30 --photo "$b/astronaut.png" --model "$b/modnet_photographic.pt"
        --ref-size "${GPU_CHECK_REF_SIZE:-512}")
bench() { # precision size
  step "engine $1 $2" "$b/engine-bench" "${common[@]}" --precision "$1" --size "$2" --graphs off,on \
    --batch "$batches" --in-flight 2 --stages
  step "element $1 $2" "$b/element-bench" "${common[@]}" --precision "$1" --size "$2" --graphs off,on \
    --batch "$batches" --in-flight 2
  step "element latency $1 $2" "$b/element-bench" "${common[@]}" --precision "$1" --size "$2" --graphs off,on \
    --batch 1 --in-flight 1
}
eager() {
  (cd tools && LD_LIBRARY_PATH="$torch_lib" python3 -m modnet.gpu_reference --sizes "$(echo $sizes | tr ' ' ,)")
}
profile() {
  (cd tools && LD_LIBRARY_PATH="$torch_lib" python3 -m modnet.gpu_profile --models "../$b" --size 896x512)
}
# The functions run in a child bash (step): it needs these.
export b torch_lib sizes

parity=(--device "$device" --size 512x512 --format rgb --photo "$b/astronaut.png" --model "$b/modnet_photographic.pt"
        --reference "$b/astronaut_ref512_matte.png" --graphs off,on --batch 1,4)
if [ "$device" = cuda ]; then
  step "parity fp32 (device path)" "$b/engine-bench" "${parity[@]}" --precision fp32 --max-diff 2
  step "parity fp16 (device path)" "$b/engine-bench" "${parity[@]}" --precision fp16 --max-diff 4
  step "parity fp32 (matte-image)" m --device cuda --reference "$b/astronaut_ref512_matte.png" --repeat 5
fi
first=${sizes%% *}
top=${precisions%% *}
bench "$top" "$first"
step "element $top $first batch 16" "$b/element-bench" "${common[@]}" --precision "$top" --size "$first" \
  --graphs on --batch 16 --in-flight 2
if [ "$device" = cuda ]; then
  step "pytorch eager" eager
  step "gpu profile (network alone)" profile
fi
for size in $sizes; do
  for precision in $precisions; do
    [ "$size/$precision" = "$first/$top" ] && continue
    bench "$precision" "$size"
  done
done
# The blurred background (more work on the GPU per frame) at the target setting.
step "element blur fp16 $first" "$b/element-bench" "${common[@]}" --precision fp16 --size "$first" \
  --graphs on --batch 1,8 --in-flight 2 --background blur

{
  echo
  echo "== one table (ref-size 512; I420 in; latency: push to output; stages alone: each waited for; $((SECONDS - start)) s)"
  echo "| path | frame | precision | device | background | graphs | mode | throughput | latency / stages | notes |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  cat "$rows"
} | tee "$out/table.md"
grep -E 'WARN|ERROR|CRITICAL|panicked|FAILED' "$log" | sort | uniq -c | sort -rn | head -20
exit $fail
