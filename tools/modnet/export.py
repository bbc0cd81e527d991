"""Export MODNet weights (official ONNX or .ckpt) to a TorchScript file for the engine.

    python -m modnet.export --weights modnet.onnx --out models/modnet_photographic.pt \
        --verify-image data/images/astronaut.png

The output takes float32 [1,3,H,W] in [-1,1] (H, W multiples of 32) and returns the
matte, float32 [1,1,H,W] in [0,1]. The export checks itself before writing: the
scripted module against onnxruntime on the source ONNX (or, for a checkpoint, against
the eager PyTorch model), on the verification image at the reference size.
With --fp16 it writes the half-precision variant for CUDA (`MODNetFp16`: float32
in and out, half inside but for the backbone's first blocks), checked against the
same reference within 4/255. With --cpu it writes the variant the engine loads on a
CPU (`MODNetCpu`: IBNorm's BatchNorm folded, channels-last end to end), checked like
the plain export. With --bf16 it writes that CPU variant in bfloat16 for CPUs with AMX
or AVX512-BF16 (`MODNetCpuBf16`), checked on every --verify-image against the float32
model: mean |diff| <= 0.5/255, p99 <= 4/255, at most 0.1% of pixels past 16/255.
Exit status: 0 written, 1 verification failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import reference
from .model import MODNet, MODNetCpu, MODNetCpuBf16, MODNetFp16
from .weights import WeightsError, detect_format, load_state_dict

DEFAULT_TOLERANCE = 1e-4
FP16_TOLERANCE = 4 / 255
# The bf16 variant's bounds against float32, in alpha units.
BF16_MEAN = 0.5 / 255
BF16_P99 = 4 / 255
BF16_FAR = 16 / 255
BF16_FAR_SHARE = 0.001


class VerificationError(Exception):
    pass


def build_model(weights: Path) -> MODNet:
    model = MODNet()
    model.load_state_dict(load_state_dict(weights), strict=True)
    return model.eval()


def script(model: torch.nn.Module) -> torch.jit.ScriptModule:
    with torch.no_grad():
        scripted = torch.jit.script(model)
        # Freezing inlines the weights as constants and folds the backbone's
        # conv+BatchNorm pairs; numerics are checked below like any other change.
        # The CPU variant's layout query survives freezing (the engine asks it).
        keep = ["input_channels_last"] if hasattr(model, "input_channels_last") else []
        return torch.jit.freeze(scripted.eval(), preserved_attrs=keep)


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def verify(scripted, weights: Path, model: MODNet, image: np.ndarray, ref_size: int, tol: float) -> float:
    """Max |diff| between the scripted matte and the reference; raises past `tol`."""
    x = reference.preprocess(image, ref_size)
    with torch.no_grad():
        ours = scripted(x)
    if ours.dtype != torch.float32 or tuple(ours.shape) != (1, 1, x.shape[2], x.shape[3]):
        raise VerificationError(f"scripted output has dtype {ours.dtype} and shape {tuple(ours.shape)}")
    if detect_format(weights) == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
        (ref,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        ref = torch.from_numpy(ref)
        against = "onnxruntime on the source ONNX"
    else:
        with torch.no_grad():
            ref = model(x)
        against = "the eager PyTorch model"
    diff = float((ours - ref).abs().max())
    print(f"verify: {x.shape[3]}x{x.shape[2]} max|diff| = {diff:.2e} ({diff * 255:.2f}/255) against {against} "
          f"(limit {tol:.2e})")
    if not diff <= tol:  # also catches NaN
        raise VerificationError(f"scripted matte differs from {against} by {diff:.3e} > {tol:.0e}")
    return diff


def verify_bf16(scripted, model: MODNet, images: list[Path], ref_size: int) -> None:
    """The bf16 variant against the float32 model on each image; raises past the bounds."""
    for path in images:
        x = reference.preprocess(load_rgb(path), ref_size)
        with torch.no_grad():
            ours, ref = scripted(x), model(x)
        if ours.dtype != torch.float32 or ours.shape != ref.shape:
            raise VerificationError(f"{path.name}: output has dtype {ours.dtype} and shape {tuple(ours.shape)}")
        d = (ours - ref).abs().flatten()
        mean, p99 = float(d.mean()), float(torch.quantile(d[:: max(1, d.numel() // 1_000_000)], 0.99))
        far, worst = float((d > BF16_FAR).float().mean()), float(d.max())
        print(f"verify bf16: {path.name} {x.shape[3]}x{x.shape[2]}: mean {mean * 255:.3f}/255, "
              f"p99 {p99 * 255:.2f}/255, max {worst * 255:.1f}/255, {far * 100:.4f}% past 16/255")
        if not (mean <= BF16_MEAN and p99 <= BF16_P99 and far <= BF16_FAR_SHARE):
            raise VerificationError(f"{path.name}: bf16 matte outside the bounds against float32 "
                                    f"(mean <= 0.5/255, p99 <= 4/255, <= 0.1% past 16/255)")


def export(
    weights: Path,
    out: Path,
    images: list[Path],
    ref_size: int = 512,
    tol: float = DEFAULT_TOLERANCE,
    fp16: bool = False,
    cpu: bool = False,
    bf16: bool = False,
):
    model = build_model(weights)
    variant = MODNetFp16(model) if fp16 else MODNetCpu(model) if cpu else MODNetCpuBf16(model) if bf16 else model
    scripted = script(variant)
    if bf16:
        verify_bf16(scripted, model, images, ref_size)
    elif images:
        verify(scripted, weights, model, load_rgb(images[0]), ref_size, tol)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.jit.save(scripted, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, type=Path, help="official MODNet .onnx or .ckpt")
    p.add_argument("--out", required=True, type=Path, help="TorchScript file to write")
    p.add_argument("--verify-image", type=Path, action="append", default=[],
                   help="RGB image for the self-check (skipped if absent; --bf16 checks each one given)")
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--tolerance", type=float, help=f"max |diff| (default {DEFAULT_TOLERANCE:g}; --fp16: 4/255)")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--fp16", action="store_true", help="write the half-precision variant for CUDA")
    variant.add_argument("--cpu", action="store_true", help="write the channels-last variant for CPUs")
    variant.add_argument("--bf16", action="store_true", help="write the bfloat16 CPU variant (AMX, AVX512-BF16)")
    args = p.parse_args(argv)
    if args.tolerance is None:
        args.tolerance = FP16_TOLERANCE if args.fp16 else DEFAULT_TOLERANCE
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        export(args.weights, args.out, args.verify_image, args.ref_size, args.tolerance, args.fp16, args.cpu,
               args.bf16)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except VerificationError as e:
        print(f"error: verification failed, nothing written: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
