"""Test fixtures the Rust tests need and cannot make themselves (they need Python):

- TorchScript files that load but break the MODNet contract, one per way to break it;
- onnxruntime reference mattes (16-bit PNG) of real photos, made with the reference
  preprocessing, for the Rust parity tests, with the exact input they were made from.

    python -m modnet.fixtures --onnx models/source/modnet_photographic.onnx \
        --images data/images --out data/fixtures
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import reference


class WrongShape(torch.nn.Module):
    """Three channels instead of one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class HalfSize(torch.nn.Module):
    """Right channel count, wrong spatial size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.avg_pool2d(x[:, :1], 2))


class WrongDtype(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x[:, :1]).double()


class OutOfRange(torch.nn.Module):
    """Logits instead of a sigmoid: values outside [0,1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 4.0


class ReturnsTuple(torch.nn.Module):
    """The official training-mode output (semantic, detail, matte)."""

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = torch.sigmoid(x[:, :1])
        return m, m, m


class NeedsTwoInputs(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x[:, :1] + y[:, :1])


BAD_MODELS = {
    "wrong_shape": WrongShape,
    "half_size": HalfSize,
    "wrong_dtype": WrongDtype,
    "out_of_range": OutOfRange,
    "returns_tuple": ReturnsTuple,
    "needs_two_inputs": NeedsTwoInputs,
}

# name -> (image file, crop box or None, ref_size). The crops exercise the resize path
# of the preprocessing (the full astronaut at ref 512 needs no resize).
REFERENCES = {
    "astronaut_ref512": ("astronaut.png", None, 512),
    "astronaut_ref256": ("astronaut.png", None, 256),
    "astronaut_crop_ref512": ("astronaut.png", (0, 40, 500, 400), 512),
}


def write_bad_models(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, cls in BAD_MODELS.items():
        torch.jit.save(torch.jit.script(cls()), str(out / f"{name}.pt"))


def write_references(onnx_path: Path, images: Path, out: Path, threads: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (file, box, ref_size) in REFERENCES.items():
        with Image.open(images / file) as im:
            im = im.convert("RGB")
            if box is not None:
                im = im.crop(box)
            rgb = np.array(im)
            im.save(out / f"{name}_input.png")
        matte = reference.onnx_matte(str(onnx_path), rgb, ref_size, threads)
        png16 = np.round(matte * 65535.0).astype(np.uint16)
        Image.fromarray(png16).save(out / f"{name}_matte.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.fixtures", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    write_bad_models(args.out / "bad_models")
    write_references(args.onnx, args.images, args.out / "reference", args.threads)
    print(f"wrote fixtures under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
