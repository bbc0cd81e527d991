"""Time onnxruntime on the original MODNet ONNX for one photo, with the reference
preprocessing: the yardstick printed next to the Rust engine's own time.

    python -m modnet.speed --onnx models/source/modnet_photographic.onnx --image photo.png
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from . import reference


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--image", required=True, type=Path)
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args(argv)

    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(args.onnx), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    with Image.open(args.image) as im:
        rgb = np.array(im.convert("RGB"))
    h, w = rgb.shape[:2]
    x = reference.preprocess(rgb, args.ref_size).numpy()
    sess.run(None, {name: x})  # warm-up, as the engine does at load
    pre, inf, post = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        x = reference.preprocess(rgb, args.ref_size).numpy()
        t1 = time.perf_counter()
        (out,) = sess.run(None, {name: x})
        t2 = time.perf_counter()
        reference.postprocess(torch.from_numpy(out), w, h)
        t3 = time.perf_counter()
        pre.append(t1 - t0)
        inf.append(t2 - t1)
        post.append(t3 - t2)
    ms = lambda v: statistics.median(v) * 1e3  # noqa: E731
    total = [a + b + c for a, b, c in zip(pre, inf, post)]
    print(
        f"onnxruntime {ort.__version__}, {args.threads} threads, {w}x{h} -> {x.shape[3]}x{x.shape[2]}: "
        f"per frame (median of {args.repeat}): preprocess {ms(pre):.1f} ms, inference {ms(inf):.1f} ms, "
        f"postprocess {ms(post):.1f} ms, total {ms(total):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
