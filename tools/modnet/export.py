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
the plain export.
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
from .model import MODNet, MODNetCpu, MODNetFp16
from .weights import WeightsError, detect_format, load_state_dict

DEFAULT_TOLERANCE = 1e-4
FP16_TOLERANCE = 4 / 255


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


def export(
    weights: Path,
    out: Path,
    image_path: Path | None,
    ref_size: int = 512,
    tol: float = DEFAULT_TOLERANCE,
    fp16: bool = False,
    cpu: bool = False,
):
    model = build_model(weights)
    scripted = script(MODNetFp16(model) if fp16 else MODNetCpu(model) if cpu else model)
    if image_path is not None:
        verify(scripted, weights, model, load_rgb(image_path), ref_size, tol)
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
    p.add_argument("--verify-image", type=Path, help="RGB image for the self-check (skipped if absent)")
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--tolerance", type=float, help=f"max |diff| (default {DEFAULT_TOLERANCE:g}; --fp16: 4/255)")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--fp16", action="store_true", help="write the half-precision variant for CUDA")
    variant.add_argument("--cpu", action="store_true", help="write the channels-last variant for CPUs")
    args = p.parse_args(argv)
    if args.tolerance is None:
        args.tolerance = FP16_TOLERANCE if args.fp16 else DEFAULT_TOLERANCE
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        export(args.weights, args.out, args.verify_image, args.ref_size, args.tolerance, args.fp16, args.cpu)
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
