"""The reference loop for the GPU check: MODNet in PyTorch eager mode, one frame at a
time, the way the official webcam demo runs it (upload, normalise, resize, forward,
resize back, download), at fp32 and fp16. Prints one line per configuration.

    python3 -m modnet.gpu_reference --sizes 1280x720,1920x1080 [--state-dict modnet_state_dict.pt]

Needs only torch (no numpy or PIL): frames are random uint8 images of each size and,
without --state-dict, the weights are random too (scripts/gpu_check.sh: the bundle
has no room for them), as timing does not depend on either.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from .model import MODNet
from .reference import inference_size


def run(model, frame_cpu, ref_size, half, warmup, repeat):
    h, w = frame_cpu.shape[:2]
    rw, rh = inference_size(w, h, ref_size)
    dtype = torch.float16 if half else torch.float32
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeat):
            t0 = time.perf_counter()
            x = frame_cpu.cuda().permute(2, 0, 1).unsqueeze(0).to(dtype)
            x = (x / 255.0 - 0.5) / 0.5
            x = F.interpolate(x, size=(rh, rw), mode="area")
            matte = model(x)
            matte = F.interpolate(matte, size=(h, w), mode="bilinear", align_corners=False)
            out = (matte[0, 0] * 255).round().clamp(0, 255).byte().cpu()
            t1 = time.perf_counter()
            if i >= warmup:
                times.append(t1 - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m modnet.gpu_reference", description=__doc__.split("\n\n")[0])
    p.add_argument("--state-dict", help="weights (default: random; the timing is the same)")
    p.add_argument("--sizes", default="1280x720,1920x1080")
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: torch sees no CUDA device", file=sys.stderr)
        return 1
    model = MODNet()
    if args.state_dict:
        sd = torch.load(args.state_dict, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    model = model.eval().cuda()
    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        frame = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8)
        for half in (False, True):
            m = model.half() if half else model.float()
            t, _ = run(m, frame, args.ref_size, half, args.warmup, args.repeat)
            print(f"| pytorch eager (matte only) | {size} RGB | {'fp16' if half else 'fp32'} | cuda | - | - "
                  f"| one at a time | {1 / t:.0f} frames/s, {t * 1e3:.2f} ms/frame | latency median {t * 1e3:.2f} ms | "
                  f"ref {args.ref_size}, median of {args.repeat} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
