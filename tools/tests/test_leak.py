"""The demo clip's ground truth (where the person was pasted) and the room-shown
measure built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modnet import clip, leak

ROOT = Path(__file__).resolve().parents[2]
ONNX = ROOT / "models" / "source" / "modnet_photographic.onnx"
IMAGES = ROOT / "data" / "images"
CLIP = ROOT / "data" / "clip"


@pytest.fixture(scope="module")
def person():
    if not (CLIP / "frame_0045.jpg").exists():
        pytest.fail(f"{CLIP} has no clip: run scripts/setup.sh first")
    return clip.cutout(ONNX, IMAGES)


def test_truth_matches_the_clip(person):
    frames = len(list(CLIP.glob("frame_*.jpg")))
    for i in (0, 45, frames - 1):
        truth = clip.person_alpha(person, i, frames)
        size, x, y = clip.placement(i, frames)
        frame = np.asarray(Image.open(CLIP / f"frame_{i:04d}.jpg").convert("RGB"), dtype=np.float32)
        # The person's own pixels, where the paste was opaque, must be in the frame
        # there (within JPEG's error); a wrong placement puts the room there instead.
        canvas = Image.new("RGB", (clip.W, clip.H))
        canvas.paste(person.resize((size, size), Image.LANCZOS).convert("RGB"), (x, y))
        inside = truth > 0.99
        assert inside.mean() > 0.05, f"frame {i}: the person covers only {inside.mean():.3f}"
        err = np.abs(frame - np.asarray(canvas, dtype=np.float32))[inside].mean()
        assert err < 4.0, f"frame {i}: mean |frame - pasted person| {err:.1f} where the person is opaque"
        # And far from it the truth says room.
        assert truth[:, : max(0, x - 2)].max(initial=0.0) == 0.0


def test_shown_percent_counts_room_and_person():
    truth = np.zeros((10, 10), np.float32)
    truth[:, :5] = 1.0  # left half person, right half room
    assert leak.shown_percent(truth, truth) == {"room_shown": 0.0, "person_lost": 0.0}
    assert leak.shown_percent(np.ones_like(truth), truth)["room_shown"] == 100.0
    matte = truth.copy()
    matte[:2, 5:] = 0.3  # 10 of 50 room pixels kept above 0.25
    matte[0, :5] = 0.5  # 5 of 50 person pixels below 0.75
    assert leak.shown_percent(matte, truth) == {"room_shown": 20.0, "person_lost": 10.0}
    with pytest.raises(ValueError, match="differ in size"):
        leak.shown_percent(matte[:5], truth)
