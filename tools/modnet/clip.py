"""A short 720p clip from the real photos for the demo: the astronaut, cut out with
onnxruntime's matte of the original model, walks across the coffee-shop photo.

    python -m modnet.clip --onnx models/source/modnet_photographic.onnx \
        --images data/images --out data/clip --frames 90
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image

from . import reference

W, H = 1280, 720


def cutout(onnx: Path, images: Path) -> Image.Image:
    """The astronaut as RGBA, its alpha the original model's matte at ref 512."""
    with Image.open(images / "astronaut.png") as im:
        person = np.array(im.convert("RGB"))
    alpha = reference.onnx_matte(str(onnx), person, 512)
    return Image.fromarray(np.dstack([person, np.round(alpha * 255).astype(np.uint8)]), "RGBA")


def placement(i: int, frames: int) -> Tuple[int, int, int]:
    """(size, x, y) of the person's square in frame i: it walks closer while crossing
    the room, with a small bob per step."""
    t = i / max(1, frames - 1)
    size = round(560 + 80 * t)
    x = round(-100 + t * (W - size + 200))
    y = H - size + round(12 * np.sin(t * 6 * np.pi))
    return size, x, y


def person_alpha(person: Image.Image, i: int, frames: int) -> np.ndarray:
    """The alpha frame i was pasted with, HxW float in [0, 1]: the clip's ground truth
    of where the person is."""
    size, x, y = placement(i, frames)
    canvas = Image.new("L", (W, H))
    canvas.paste(person.resize((size, size), Image.LANCZOS).getchannel("A"), (x, y))
    return np.asarray(canvas, dtype=np.float32) / 255.0

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.clip", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--frames", type=int, default=90)
    args = p.parse_args(argv)

    person = cutout(args.onnx, args.images)
    with Image.open(args.images / "coffee.png") as im:
        scene = im.convert("RGB")
    # Cover 1280x720 keeping the aspect ratio (crop the excess).
    scale = max(W / scene.width, H / scene.height)
    scene = scene.resize((round(scene.width * scale), round(scene.height * scale)), Image.LANCZOS)
    left, top = (scene.width - W) // 2, (scene.height - H) // 2
    scene = scene.crop((left, top, left + W, top + H))

    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("frame_*.jpg"):
        old.unlink()
    for i in range(args.frames):
        size, x, y = placement(i, args.frames)
        person_i = person.resize((size, size), Image.LANCZOS)
        frame = scene.copy()
        frame.paste(person_i, (x, y), person_i)
        frame.save(args.out / f"frame_{i:04d}.jpg", quality=92)
    print(f"wrote {args.frames} frames of {W}x{H} under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
