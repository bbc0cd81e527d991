"""MODNet's reference preprocessing, mirrored exactly by the Rust engine
(src/net/preprocess.rs): the same size rule and the same libtorch resize operators, so
that a matte from the Rust engine and one from this module can be compared pixel
for pixel."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIDE = 32
# The official rule scales small frames up so their short side is ref_size; for
# extreme aspect ratios that makes the long side explode (100x1 -> 51200x512). We cap
# the long side at this multiple of ref_size.
MAX_LONG_SIDE_FACTOR = 4


def inference_size(width: int, height: int, ref_size: int = 512) -> Tuple[int, int]:
    """(width, height) the network sees for a frame of the given size."""
    if width < 1 or height < 1 or ref_size < MIN_SIDE:
        raise ValueError(f"invalid size {width}x{height} or ref_size {ref_size}")
    if max(width, height) < ref_size or min(width, height) > ref_size:
        if width >= height:
            rh, rw = ref_size, int(width / height * ref_size)
        else:
            rw, rh = ref_size, int(height / width * ref_size)
    else:
        rw, rh = width, height
    cap = MAX_LONG_SIDE_FACTOR * ref_size
    if max(rw, rh) > cap:
        scale = cap / max(rw, rh)
        rw, rh = int(rw * scale), int(rh * scale)
    rw = max(MIN_SIDE, rw - rw % 32)
    rh = max(MIN_SIDE, rh - rh % 32)
    return rw, rh


def resize(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Area averaging when shrinking (the official choice), bilinear otherwise."""
    h, w = x.shape[-2], x.shape[-1]
    if (w, h) == (width, height):
        return x
    if width <= w and height <= h:
        return F.adaptive_avg_pool2d(x, (height, width))
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def preprocess(rgb: np.ndarray, ref_size: int = 512) -> torch.Tensor:
    """uint8 HxWx3 RGB -> float32 [1,3,h,w] in [-1,1] at the inference size."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError("expected a uint8 HxWx3 or HxWx4 image")
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.array(rgb[:, :, :3], copy=True)).permute(2, 0, 1).unsqueeze(0).float()
    x = (x / 255.0 - 0.5) / 0.5
    rw, rh = inference_size(w, h, ref_size)
    return resize(x, rw, rh).contiguous()


def postprocess(matte: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[1,1,h,w] matte -> [height,width] float32 in [0,1] at the frame size (bilinear)."""
    if matte.shape[-2:] != (height, width):
        matte = F.interpolate(matte, size=(height, width), mode="bilinear", align_corners=False)
    return matte[0, 0].clamp(0.0, 1.0)


def onnx_matte(onnx_path: str, rgb: np.ndarray, ref_size: int = 512, threads: int = 0) -> np.ndarray:
    """The matte of `rgb` computed by onnxruntime on the original ONNX file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    x = preprocess(rgb, ref_size)
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    return postprocess(torch.from_numpy(out), rgb.shape[1], rgb.shape[0]).numpy()
