"""Side-by-side speed comparison on the same frames, thread count and input size:

  (a) our element in a gst-launch pipeline (decode -> modnetmatte output=matte),
      synchronous (max-in-flight=1) and pipelined (max-in-flight=2);
  (b) onnxruntime on the original MODNet ONNX with the same preprocessing (the runtime
      of the most used OBS background-removal plugin);
  (c) the official webcam demo's approach: PyTorch eager, one frame at a time.

Every contender decodes the JPEG frames itself and produces the frame-sized matte.
Prints frames/s, our ratios against (b) and (c), the model's GFLOP per frame and the
GFLOP/s reached; writes the table as markdown and a bar chart PNG.

    python -m modnet.compare --onnx ... --frames-dir data/clip --plugin-dir target/gst-plugin \
        --model models/modnet_photographic.pt --out out/compare
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from . import reference, weights
from .model import MODNet


def frames(dirname: Path, n: int):
    files = sorted(dirname.glob("frame_*.jpg"))[:n]
    if len(files) < n:
        sys.exit(f"error: {dirname} has {len(files)} frames, {n} needed (run scripts/main.sh once)")
    return files


def run_ours(args, files, in_flight: int) -> float:
    env = dict(os.environ, GST_PLUGIN_PATH=str(args.plugin_dir), GST_REGISTRY=str(args.plugin_dir / "registry.bin"))
    pipeline = (
        f"multifilesrc location={args.frames_dir}/frame_%04d.jpg index=0 stop-index={len(files) - 1} "
        f"caps=image/jpeg,framerate=30/1 ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! "
        f"modnetmatte model={args.model} output=matte ref-size={args.ref_size} num-threads={args.threads} "
        f"max-in-flight={in_flight} device=cpu ! fakesink sync=false"
    )
    def timed(p: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(["gst-launch-1.0", "-q", *p.split()], env=env, check=True)
        return time.perf_counter() - t0

    # A run of N frames minus a run of 1 frame: N-1 frames, without the start-up
    # (process, plugin and model load, warm-up), as the Python loops are timed.
    one = pipeline.replace(f"stop-index={len(files) - 1}", "stop-index=0")
    timed(one)  # page caches warm
    return (len(files) - 1) / max(1e-6, timed(pipeline) - timed(one))


def run_ort(args, files) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(args.onnx), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def one(f):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        x = reference.preprocess(rgb, args.ref_size).numpy()
        (out,) = sess.run(None, {name: x})
        return reference.postprocess(torch.from_numpy(out), rgb.shape[1], rgb.shape[0]).numpy()

    one(files[0])  # warm-up
    t0 = time.perf_counter()
    for f in files[1:]:
        one(f)
    return (len(files) - 1) / (time.perf_counter() - t0)


def eager_model(args) -> MODNet:
    m = MODNet()
    m.load_state_dict(weights.load_state_dict(args.onnx), strict=True)
    return m.eval()


def run_eager(args, files, model) -> float:
    def one(f):
        # As the official webcam demo: numpy frame -> tensor -> normalise -> resize -> net.
        rgb = np.asarray(Image.open(f).convert("RGB"))
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0).float()
        x = (x / 255.0 - 0.5) / 0.5
        rw, rh = reference.inference_size(w, h, args.ref_size)
        x = F.interpolate(x, size=(rh, rw), mode="area")
        with torch.no_grad():
            matte = model(x)
        matte = F.interpolate(matte, size=(h, w), mode="area")
        return matte[0, 0].numpy()

    one(files[0])
    t0 = time.perf_counter()
    for f in files[1:]:
        one(f)
    return (len(files) - 1) / (time.perf_counter() - t0)


def gflop(model, w, h, ref_size) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    rw, rh = reference.inference_size(w, h, ref_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, rh, rw))
    return counter.get_total_flops() / 1e9


def chart(rows, path: Path):
    width, bar_h, left = 900, 44, 330
    img = Image.new("RGB", (width, 70 + bar_h * len(rows)), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 10), "MODNet matte, frames per second (higher is better)", fill="black")
    top = max(r[1] for r in rows)
    for i, (name, fps) in enumerate(rows):
        y = 45 + i * bar_h
        d.text((10, y + 12), name, fill="black")
        length = int((width - left - 90) * fps / top)
        d.rectangle([left, y, left + length, y + bar_h - 12], fill=(46, 117, 182) if "ours" in name else (160, 160, 160))
        d.text((left + length + 8, y + 12), f"{fps:.2f}", fill="black")
    img.save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--frames-dir", required=True, type=Path)
    p.add_argument("--plugin-dir", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="writes OUT.md and OUT.png")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    args.onnx, args.model = args.onnx.resolve(), args.model.resolve()
    args.frames_dir, args.plugin_dir = args.frames_dir.resolve(), args.plugin_dir.resolve()
    torch.set_num_threads(args.threads)

    files = frames(args.frames_dir, args.frames)
    with Image.open(files[0]) as im:
        w, h = im.size
    rw, rh = reference.inference_size(w, h, args.ref_size)
    print(f"{len(files)} frames of {w}x{h}, network input {rw}x{rh}, {args.threads} threads", flush=True)
    model = eager_model(args)
    results = {}
    for name, fn in [
        ("ours, synchronous (max-in-flight=1)", lambda: run_ours(args, files, 1)),
        ("ours, pipelined (max-in-flight=2)", lambda: run_ours(args, files, 2)),
        ("onnxruntime (Python)", lambda: run_ort(args, files)),
        ("PyTorch eager (Python, official loop)", lambda: run_eager(args, files, model)),
    ]:
        results[name] = fn()
        print(f"  {name}: {results[name]:.3f} frames/s", flush=True)

    flops = gflop(model, w, h, args.ref_size)
    best = max(v for k, v in results.items() if k.startswith("ours"))
    ort_fps = results["onnxruntime (Python)"]
    eager_fps = results["PyTorch eager (Python, official loop)"]
    lines = [
        f"{len(files)} frames of {w}x{h} (network input {rw}x{rh}, ref-size {args.ref_size}), "
        f"{args.threads} threads, matte out, JPEG decoding included; {flops:.1f} GFLOP per frame.",
        "",
        "| contender | frames/s | ms/frame | GFLOP/s | ours (best) vs it |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, fps in results.items():
        ratio = "" if name.startswith("ours") else f"{best / fps:.2f}x"
        lines.append(f"| {name} | {fps:.3f} | {1000 / fps:.0f} | {flops * fps:.1f} | {ratio} |")
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\nours vs onnxruntime: {best / ort_fps:.2f}x; ours vs PyTorch eager: {best / eager_fps:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table + "\n")
    chart(list(results.items()), args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
