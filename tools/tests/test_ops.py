"""The fused operators (csrc/modnet_ops.cpp) against the unfused modules they replace,
one by one and in the whole network, at several sizes, batch > 1, both dtypes; and
their refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from modnet import export, ops, reference
from modnet.model import HalfInstanceNorm, MODNet, MODNetCpu, MODNetCpuBf16

ROOT = Path(__file__).resolve().parents[2]
ONNX = ROOT / "models" / "source" / "modnet_photographic.onnx"
ASTRONAUT = ROOT / "data" / "images" / "astronaut.png"
CL = torch.channels_last


@pytest.fixture(scope="module", autouse=True)
def loaded():
    ops.load()


def bf16_close(ours: torch.Tensor, ref: torch.Tensor) -> bool:
    """Within one bfloat16 rounding of a float32 reference (8 significant bits)."""
    return bool(((ours.float() - ref).abs() <= ref.abs() * 2.0**-8 + 1e-6).all())


@pytest.mark.parametrize("shape, split, relu", [
    ((1, 64, 64, 112), 32, True),
    ((2, 32, 37, 51), 16, True),   # batch 2, odd sizes
    ((1, 16, 1, 7), 8, False),     # one row, no ReLU
    ((1, 8, 5, 5), 0, True),       # all channels normalised
    ((1, 8, 5, 5), 8, True),       # none: ReLU only
])
def test_ibnorm_relu_equals_half_instance_norm_then_relu(shape, split, relu):
    g = torch.Generator().manual_seed(1)
    # An offset much larger than the spread: the variance must keep its digits.
    y = (torch.randn(shape, generator=g) * 0.5 + 40.0).contiguous(memory_format=CL)
    ref = HalfInstanceNorm(shape[1], split)(y)
    ref = torch.relu(ref) if relu else ref
    ours = torch.ops.modnet.ibnorm_relu(y, split, 1e-5, relu)
    assert ours.is_contiguous(memory_format=CL) and ours.shape == y.shape
    assert float((ours - ref).abs().max()) <= 2e-4
    if not relu:
        assert float(ours.min()) < 0  # the ReLU really is off
    # Each image of a batch normalised by its own statistics.
    if shape[0] == 2:
        alone = torch.ops.modnet.ibnorm_relu(y[1:].contiguous(memory_format=CL), split, 1e-5, relu)
        assert torch.allclose(ours[1:], alone, atol=1e-6)
    # NCHW input is taken too, with the same result.
    assert torch.allclose(torch.ops.modnet.ibnorm_relu(y.contiguous(), split, 1e-5, relu), ours, atol=1e-6)
    yb = y.to(torch.bfloat16)
    refb = HalfInstanceNorm(shape[1], split)(yb.float())
    refb = torch.relu(refb) if relu else refb
    oursb = torch.ops.modnet.ibnorm_relu(yb, split, 1e-5, relu)
    assert oursb.dtype == torch.bfloat16 and bf16_close(oursb, refb)


def resized(x: torch.Tensor, f: int) -> torch.Tensor:
    if f == 1:
        return x
    scale = float(f) if f > 0 else 1.0 / -f
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n, h, w", [(1, 16, 28), (2, 9, 13), (1, 1, 1)])
def test_cat_resized_equals_interpolate_then_cat(dtype, n, h, w):
    g = torch.Generator().manual_seed(2)
    small = torch.randn(n, 5, h, w, generator=g).to(dtype).contiguous(memory_format=CL)
    mid = torch.randn(n, 3, 2 * h, 2 * w, generator=g).to(dtype)  # NCHW: converted
    big = torch.randn(n, 3, 8 * h, 8 * w, generator=g).to(dtype).contiguous(memory_format=CL)
    parts, factors = [small, mid, big], [2, 1, -4]
    ours = torch.ops.modnet.cat_resized([small, mid, big], [2, 1, -4])
    ref = torch.cat([resized(p.float(), f) for p, f in zip(parts, factors)], 1)
    assert ours.dtype == dtype and ours.shape == ref.shape and ours.is_contiguous(memory_format=CL)
    if dtype == torch.float32:
        assert float((ours - ref).abs().max()) <= 1e-6
    else:
        assert bf16_close(ours, ref)
    half = torch.ops.modnet.cat_resized([mid, small], [-2, 1])
    assert torch.allclose(half.float(), torch.cat([resized(mid.float(), -2), small.float()], 1), atol=1e-2)


def test_bad_input_is_refused_naming_the_part():
    a = torch.zeros(1, 4, 8, 8)
    with pytest.raises(RuntimeError, match="part 1 comes out 6x6"):
        torch.ops.modnet.cat_resized([a, torch.zeros(1, 4, 3, 3)], [1, 2])
    with pytest.raises(RuntimeError, match="factor 3 is not"):
        torch.ops.modnet.cat_resized([a], [3])
    with pytest.raises(RuntimeError, match="2 parts and 1 factors"):
        torch.ops.modnet.cat_resized([a, a], [1])
    with pytest.raises(RuntimeError, match="dtype or batch"):
        torch.ops.modnet.cat_resized([a, a.to(torch.bfloat16)], [1, 1])
    with pytest.raises(RuntimeError, match="expected float32 or bfloat16"):
        torch.ops.modnet.ibnorm_relu(a.double(), 2, 1e-5, True)
    with pytest.raises(RuntimeError, match="split 5 outside 0..4"):
        torch.ops.modnet.ibnorm_relu(a, 5, 1e-5, True)


@pytest.fixture(scope="module")
def model():
    if not ONNX.exists():
        pytest.fail(f"{ONNX} missing: run scripts/setup.sh first")
    return export.build_model(ONNX)


@pytest.mark.parametrize("size", [(192, 320), (288, 512)])
def test_fused_network_equals_the_unfused_one(model: MODNet, size):
    img = reference.preprocess(export.load_rgb(ASTRONAUT), 512)
    x = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
    pair = torch.cat((x, x.flip(3)), 0)  # batch 2
    fused, plain = export.script(MODNetCpu(model)), export.script(MODNetCpu(model, fused=False))
    assert "modnet::ibnorm_relu" in str(fused.graph) and "modnet::cat_resized" in str(fused.graph)
    with torch.no_grad():
        a, b = fused(pair), plain(pair)
        assert float((a - b).abs().max()) <= export.DEFAULT_TOLERANCE
        assert float((a[1] - fused(x.flip(3))[0]).abs().max()) <= 1e-5
        # bf16: the fused variant within the export's bounds of the unfused bf16 one.
        fb, pb = export.script(MODNetCpuBf16(model)), export.script(MODNetCpuBf16(model, fused=False))
        d = (fb(pair) - pb(pair)).abs()
    assert float(d.mean()) <= export.BF16_MEAN and float((d > export.BF16_FAR).float().mean()) <= export.BF16_FAR_SHARE
