"""Side-by-side speed comparison on the same frames, thread count and input size:

  (a) our element in a gst-launch pipeline (decode -> modnetmatte output=matte,
      max-in-flight=1, as `auto` runs it on a CPU), steady state: the median interval
      between frames at the sink; and the same element fed raw RGB frames (no decoder:
      the element's own per-frame time, against (b));
  (b) our bare forward pass: the Rust engine's inference stage alone (matte-image --repeat);
  (c) onnxruntime on the original MODNet ONNX with the same preprocessing (the runtime
      of the most used OBS background-removal plugin);
  (d) the official webcam demo's approach: PyTorch eager, one frame at a time.

Every contender but (b) and the raw-frame element decodes the JPEG frames itself and produces the frame-sized
matte. Each ref-size's contenders run in turn, --rounds times, and the medians are
reported: this machine's speed drifts by 20% between minutes. Prints the CPU model,
frames/s, our ratios against (c) and (d), the model's GFLOP per frame, the GFLOP/s
reached and their share of this CPU's fp32 peak (measured: a large matrix product
at the same thread count); writes the table as markdown and a bar chart PNG.

    python -m modnet.compare --onnx ... --frames-dir data/clip --plugin-dir target/gst-plugin \
        --model models/modnet_photographic.pt --out out/compare
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def gemm_peak(threads: int) -> float:
    """The practical fp32 peak of these cores at this thread count, in GFLOP/s: the
    faster of a 2048^3 matrix product (torch's BLAS, MKL in the wheel: slow on AMD)
    and the same work as a 1x1 convolution on channels-last input (oneDNN's brgemm,
    the kernels the network runs)."""
    torch.set_num_threads(threads)

    def best(f, flop: float) -> float:
        f()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return flop / sorted(times)[len(times) // 2] / 1e9

    n = 2048
    a, b = torch.rand(n, n), torch.rand(n, n)
    x = torch.rand(1, n, 32, 64).contiguous(memory_format=torch.channels_last)
    w = torch.rand(n, n, 1, 1).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        return max(best(lambda: torch.mm(a, b), 2 * n**3), best(lambda: F.conv2d(x, w), 2 * n * n * 32 * 64))


def bf16_peak(threads: int) -> float:
    """The same 2048^3 matrix product in bfloat16 (oneDNN/MKL use AMX or AVX512-BF16
    where the CPU has them), GFLOP/s."""
    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.rand(n, n).bfloat16(), torch.rand(n, n).bfloat16()
    torch.mm(a, b)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / sorted(times)[len(times) // 2] / 1e9


def cpu_has_bf16() -> bool:
    """Whether the CPU lists AMX-BF16 or AVX512-BF16 (what precision=auto looks at)."""
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return ("amx_bf16" in flags and "amx_tile" in flags) or "avx512_bf16" in flags


def run_bare(args, photo: Path, w: int, h: int, ref_size: int) -> float:
    """Frames/s of the Rust engine's forward pass alone (the element's model file and
    process settings), from `matte-image --repeat`: the median inference stage of
    back-to-back frames on one thread, the only OpenMP team in its process."""
    with tempfile.TemporaryDirectory() as out_dir:
        out = subprocess.run(
            [str(args.matte_image), "--threads", str(args.threads), "--device", "cpu", "--repeat", "5",
             "--precision", args.precision,
             "--size", f"{w}x{h}", "--ref-size", str(ref_size), "--model", str(args.model),
             "--background", str(photo), "--out-dir", out_dir, str(photo)],
            check=True, capture_output=True, text=True,
        ).stdout
    ms = float(re.search(r"inference ([0-9.]+) ms", out).group(1))
    return 1000.0 / ms


def run_ours(args, files, in_flight: int, raw: Path | None = None) -> float:
    """Frames/s of the element in gst-launch, steady state: the median time between
    consecutive frames reaching the sink (basesink's debug log stamps each one), so
    process start, model load and warm-up are left out. With `raw` (the frames
    decoded into one file of packed RGB) there is no decoder in the pipeline: the
    element's own per-frame time, which the bare forward is compared with."""
    env = dict(os.environ, GST_PLUGIN_PATH=str(args.plugin_dir), GST_REGISTRY=str(args.plugin_dir / "registry.bin"),
               GST_DEBUG="basesink:5", GST_DEBUG_NO_COLOR="1")
    if raw is None:
        source = (f"multifilesrc location={args.frames_dir}/frame_%04d.jpg index=0 stop-index={len(files) - 1} "
                  f"caps=image/jpeg,framerate=30/1 ! jpegdec ! videoconvert ! video/x-raw,format=RGB")
    else:
        source = (f"filesrc location={raw} blocksize={args.width * args.height * 3} ! rawvideoparse "
                  f"width={args.width} height={args.height} format=rgb framerate=30/1")
    pipeline = (
        f"{source} ! modnetmatte model={args.model} output=matte ref-size={args.ref_size} "
        f"num-threads={args.threads} max-in-flight={in_flight} device=cpu precision={args.precision} "
        f"! fakesink sync=false"
    )
    log = subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], env=env, check=True,
                         capture_output=True, text=True).stderr
    stamps = [_gst_seconds(line.split()[0]) for line in log.splitlines() if "rendering object" in line]
    if len(stamps) != len(files):
        raise RuntimeError(f"{len(stamps)} frames reached the sink, expected {len(files)}")
    return 1.0 / statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def _gst_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def write_raw(files, path: Path) -> Path:
    """The frames decoded (as the ort and eager loops decode them) into one file of
    packed RGB for the decoder-free element run."""
    with open(path, "wb") as f:
        for name in files:
            f.write(np.asarray(Image.open(name).convert("RGB")).tobytes())
    return path


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
    p.add_argument("--matte-image", required=True, type=Path, help="target/release/matte-image")
    p.add_argument("--out", required=True, type=Path, help="writes OUT.md and OUT.png")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--ref-sizes", default="512,256", help="comma list")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precisions", default="",
                   help="comma list of fp32, bf16 (default: fp32, and bf16 where the CPU has AMX or AVX512-BF16)")
    args = p.parse_args(argv)
    precisions = [x for x in args.precisions.split(",") if x] or (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"])
    args.onnx, args.model = args.onnx.resolve(), args.model.resolve()
    args.frames_dir, args.plugin_dir = args.frames_dir.resolve(), args.plugin_dir.resolve()
    args.matte_image = args.matte_image.resolve()
    torch.set_num_threads(args.threads)

    files = frames(args.frames_dir, args.frames)
    with Image.open(files[0]) as im:
        w, h = im.size
    cpu = cpu_model()
    peak = gemm_peak(args.threads)
    peaks = {"fp32": peak}
    if "bf16" in precisions:
        peaks["bf16"] = bf16_peak(args.threads)
    print(f"{cpu}, {os.cpu_count()} cores; {args.threads} threads; GEMM peak "
          + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) + " GFLOP/s; bf16 instructions: "
          + ("yes" if cpu_has_bf16() else "no"), flush=True)
    model = eager_model(args)
    args.width, args.height = w, h
    raw = write_raw(files, args.out.parent / "compare_frames.rgb")
    names = {}
    for prec in precisions:
        names[f"ours-{prec}"] = f"ours {prec}, element (steady state, JPEG decoding in the pipeline)"
        names[f"raw-{prec}"] = f"ours {prec}, element on raw RGB frames (no decoder)"
        names[f"bare-{prec}"] = f"ours {prec}, bare forward (inference stage, back to back)"
    names["ort"] = "onnxruntime fp32 (Python)"
    names["eager"] = "PyTorch eager fp32 (Python, official loop)"
    lines = [
        f"{cpu}, {os.cpu_count()} cores, {args.threads} threads; {len(files)} frames of {w}x{h}, matte out, "
        f"JPEG decoding included but for the raw-frame element and the bare forward; the element's time is the "
        f"median interval between frames at the sink; medians of {args.rounds} rounds run in turn; "
        "peaks (2048^3 GEMM): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()) + "; "
        "% of peak against the peak of the contender's precision.",
        "",
        "| ref-size (input) | contender | frames/s | ms/frame | GFLOP/s | % of peak | ours vs it |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    chart_rows = []
    for ref_size in [int(r) for r in args.ref_sizes.split(",")]:
        args.ref_size = ref_size
        rw, rh = reference.inference_size(w, h, ref_size)
        flops = gflop(model, w, h, ref_size)
        runs = {k: [] for k in names}
        for r in range(args.rounds):
            for prec in precisions:
                args.precision = prec
                runs[f"ours-{prec}"].append(run_ours(args, files, 1))
                runs[f"raw-{prec}"].append(run_ours(args, files, 1, raw))
                runs[f"bare-{prec}"].append(run_bare(args, files[0], w, h, ref_size))
            runs["ort"].append(run_ort(args, files))
            runs["eager"].append(run_eager(args, files, model))
            print(f"  ref {ref_size} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in runs.items()) + " frames/s",
                  flush=True)
        fps = {k: statistics.median(v) for k, v in runs.items()}
        for k, name in names.items():
            prec = k.split("-")[1] if "-" in k else "fp32"
            ratio = ""
            if k.startswith("ours-"):
                ratio = f"{fps[k] / fps['ort']:.2f}x onnxruntime"
            elif k.startswith("bare-"):
                ratio = f"element(raw)/bare {fps[k] / fps['raw-' + prec]:.2f}"
            lines.append(f"| {ref_size} ({rw}x{rh}) | {name} | {fps[k]:.3f} | {1000 / fps[k]:.0f} | "
                         f"{flops * fps[k]:.1f} | {100 * flops * fps[k] / peaks[prec]:.0f}% | {ratio} |")
            chart_rows.append((f"{name} @{ref_size}", fps[k]))
        summary = ", ".join(f"ours {p} vs onnxruntime {fps['ours-' + p] / fps['ort']:.2f}x" for p in precisions)
        print(f"ref {ref_size} ({flops:.1f} GFLOP/frame): {summary}", flush=True)
    table = "\n".join(lines)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table + "\n")
    chart(chart_rows, args.out.with_suffix(".png"))
    raw.unlink()
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
