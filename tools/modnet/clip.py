"""A short 720p clip from the real photos for the demo: the astronaut, cut out with
onnxruntime's matte of the original model, walks across the coffee-shop photo.

    python -m modnet.clip --onnx models/source/modnet_photographic.onnx \
        --images data/images --out data/clip --frames 90
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from . import reference

W, H = 1280, 720


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.clip", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--frames", type=int, default=90)
    args = p.parse_args(argv)

    with Image.open(args.images / "astronaut.png") as im:
        person = np.array(im.convert("RGB"))
    alpha = reference.onnx_matte(str(args.onnx), person, 512)
    cutout = Image.fromarray(np.dstack([person, np.round(alpha * 255).astype(np.uint8)]), "RGBA")
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
        t = i / max(1, args.frames - 1)
        size = round(560 + 80 * t)  # walks closer while crossing the room
        person_i = cutout.resize((size, size), Image.LANCZOS)
        x = round(-100 + t * (W - size + 200))
        y = H - size + round(12 * np.sin(t * 6 * np.pi))  # a small bob per step
        frame = scene.copy()
        frame.paste(person_i, (x, y), person_i)
        frame.save(args.out / f"frame_{i:04d}.jpg", quality=92)
    print(f"wrote {args.frames} frames of {W}x{H} under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
