"""How much of the room the network shows on the demo clip: the clip knows where the
person is (the alpha it was pasted with), so every pixel the matte keeps outside the
person is a piece of the room a user meant to hide.

    python -m modnet.leak --onnx models/source/modnet_photographic.onnx \
        --images data/images --clip data/clip --ref-size 512

The mattes are onnxruntime's on the original model, which the engine matches within
the export tolerance: what this measures is the network and the ref-size, not the
element.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict

import numpy as np
from PIL import Image

from . import clip, reference

# A pixel is room where the pasted alpha is below this, person above 1 - it.
ROOM = 0.02
# The room "shows" where the matte keeps more than this of it (a quarter of its
# colour is then visible in the composite).
SHOWN = 0.25


def shown_percent(matte: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    """Share of the room the matte shows, and of the person it loses, in percent."""
    if matte.shape != truth.shape:
        raise ValueError(f"matte {matte.shape} and truth {truth.shape} differ in size")
    room, person = truth < ROOM, truth > 1.0 - ROOM
    shown = 100.0 * np.count_nonzero(room & (matte > SHOWN)) / max(1, np.count_nonzero(room))
    lost = 100.0 * np.count_nonzero(person & (matte < 1.0 - SHOWN)) / max(1, np.count_nonzero(person))
    return {"room_shown": shown, "person_lost": lost}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m modnet.leak", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--clip", required=True, type=Path)
    p.add_argument("--ref-size", type=int, default=512)
    p.add_argument("--every", type=int, default=6, help="measure every Nth frame")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)

    frames = sorted(args.clip.glob("frame_*.jpg"))
    if not frames:
        print(f"error: no frame_*.jpg under {args.clip}: make the clip first (python -m modnet.clip)", file=sys.stderr)
        return 1
    person = clip.cutout(args.onnx, args.images)
    rows = []
    for i in range(0, len(frames), max(1, args.every)):
        with Image.open(frames[i]) as im:
            rgb = np.array(im.convert("RGB"))
        matte = reference.onnx_matte(str(args.onnx), rgb, args.ref_size, args.threads)
        rows.append((i, shown_percent(matte, clip.person_alpha(person, i, len(frames)))))
    shown = np.array([r["room_shown"] for _, r in rows])
    lost = np.array([r["person_lost"] for _, r in rows])
    worst = rows[int(np.argmax(shown))][0]
    print(
        f"ref-size {args.ref_size}, {len(rows)} of {len(frames)} frames: room shown (matte > {SHOWN} where the "
        f"person is absent) median {np.median(shown):.2f}%, max {shown.max():.1f}% (frame {worst}); "
        f"person lost median {np.median(lost):.2f}%, max {lost.max():.1f}%"
    )
    print("per frame, room shown %: " + " ".join(f"{i}:{r['room_shown']:.1f}" for i, r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
