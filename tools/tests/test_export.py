"""The exporter: both input formats, the DataParallel prefix, bad files rejected
clearly, the self-check failing loudly. Uses the real weights made by setup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from modnet import export, reference, weights
from modnet.model import MODNet

ROOT = Path(__file__).resolve().parents[2]
ONNX = ROOT / "models" / "source" / "modnet_photographic.onnx"
ASTRONAUT = ROOT / "data" / "images" / "astronaut.png"


@pytest.fixture(scope="module")
def onnx_state_dict():
    if not ONNX.exists():
        pytest.fail(f"{ONNX} missing: run scripts/setup.sh first")
    return weights.load_state_dict(ONNX)


@pytest.fixture(scope="module")
def small_input():
    # A real photo at a small size keeps each forward pass cheap.
    return reference.preprocess(export.load_rgb(ASTRONAUT), 256)


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "modnet.pt"
    assert export.main(["--weights", str(ONNX), "--out", str(out), "--verify-image", str(ASTRONAUT)]) == 0
    return out


def official_layout(sd, prefix="module."):
    """The state_dict as the official training code saves it: the backbone twice,
    the training-only heads, optionally DataParallel's prefix."""
    out = dict(sd)
    for k, v in sd.items():
        if k.startswith("backbone."):
            out["lr_branch." + k] = v.clone()
    g = torch.Generator().manual_seed(0)
    out["lr_branch.conv_lr.layers.0.weight"] = torch.randn(1, 32, 3, 3, generator=g)
    out["lr_branch.conv_lr.layers.0.bias"] = torch.randn(1, generator=g)
    out["hr_branch.conv_hr.0.layers.0.weight"] = torch.randn(32, 35, 3, 3, generator=g)
    out["hr_branch.conv_hr.1.layers.0.weight"] = torch.randn(1, 32, 1, 1, generator=g)
    return {prefix + k: v for k, v in out.items()}


def run(path, x):
    with torch.no_grad():
        return torch.jit.load(str(path))(x)


def test_onnx_export_matches_onnxruntime(onnx_export, small_input):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {"input": small_input.numpy()})
    ours = run(onnx_export, small_input)
    assert ours.dtype == torch.float32 and tuple(ours.shape) == (1, 1, 256, 256)
    assert float((ours - torch.from_numpy(ref)).abs().max()) <= 1e-4
    assert 0.0 <= float(ours.min()) and float(ours.max()) <= 1.0


def test_onnx_state_dict_is_complete_and_backbone_bn_is_identity(onnx_state_dict):
    template = MODNet().state_dict()
    assert set(onnx_state_dict) == set(template)
    bn_var = onnx_state_dict["backbone.model.features.0.1.running_var"]
    assert torch.allclose(bn_var, torch.full_like(bn_var, 1 - weights.BN_EPS))


@pytest.mark.parametrize("prefix", ["module.", ""], ids=["dataparallel", "bare"])
def test_ckpt_export_equals_onnx_export(tmp_path, onnx_state_dict, onnx_export, small_input, prefix):
    ckpt = tmp_path / "modnet_photographic_portrait_matting.ckpt"
    torch.save(official_layout(onnx_state_dict, prefix), ckpt)
    out = tmp_path / "from_ckpt.pt"
    assert export.main(["--weights", str(ckpt), "--out", str(out), "--verify-image", str(ASTRONAUT)]) == 0
    diff = float((run(out, small_input) - run(onnx_export, small_input)).abs().max())
    assert diff <= 1e-6


def test_ckpt_wrapped_in_a_dict(tmp_path, onnx_state_dict):
    ckpt = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": official_layout(onnx_state_dict)}, ckpt)
    assert set(weights.load_state_dict(ckpt)) == set(MODNet().state_dict())


def expect_rejected(capsys, path, tmp_path, *fragments):
    out = tmp_path / "never.pt"
    assert export.main(["--weights", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err, err
    for f in fragments:
        assert f in err, err
    assert not out.exists()


def test_missing_file(capsys, tmp_path):
    expect_rejected(capsys, tmp_path / "nope.onnx", tmp_path, "no such file")


def test_truncated_onnx(capsys, tmp_path):
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(ONNX.read_bytes()[: 1 << 20])
    expect_rejected(capsys, bad, tmp_path, "not a readable ONNX model")


def test_truncated_ckpt(capsys, tmp_path, onnx_state_dict):
    good = tmp_path / "good.ckpt"
    torch.save(official_layout(onnx_state_dict), good)
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(good.read_bytes()[:100_000])
    expect_rejected(capsys, bad, tmp_path, "not a loadable PyTorch checkpoint")


def test_foreign_files(capsys, tmp_path):
    expect_rejected(capsys, ASTRONAUT, tmp_path, "neither an ONNX model nor a PyTorch checkpoint")
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    expect_rejected(capsys, empty, tmp_path, "the file is empty")


def test_foreign_onnx_model(capsys, tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.zeros(108, np.float32))
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "not_modnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [w],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    expect_rejected(capsys, path, tmp_path, "not MODNet")


def test_foreign_checkpoint(capsys, tmp_path):
    path = tmp_path / "resnet.ckpt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict(), path)
    expect_rejected(capsys, path, tmp_path, "not MODNet weights", "missing", "unexpected")
    notdict = tmp_path / "list.ckpt"
    torch.save([torch.zeros(1)], notdict)
    expect_rejected(capsys, notdict, tmp_path, "not a state_dict")


def test_wrong_shapes_are_named(capsys, tmp_path, onnx_state_dict):
    sd = dict(onnx_state_dict)
    sd["f_branch.conv_f2x.layers.0.weight"] = torch.zeros(32, 64, 1, 1)
    path = tmp_path / "bad_shape.ckpt"
    torch.save(sd, path)
    expect_rejected(capsys, path, tmp_path, "f_branch.conv_f2x.layers.0.weight has shape (32, 64, 1, 1)")


def test_failed_verification_writes_nothing(capsys, tmp_path):
    out = tmp_path / "strict.pt"
    args = ["--weights", str(ONNX), "--out", str(out), "--verify-image", str(ASTRONAUT), "--tolerance", "1e-12"]
    assert export.main(args) == 1
    assert "verification failed, nothing written" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_size_rule_matches_the_shared_table():
    table = (ROOT / "tests" / "data" / "size_rule.tsv").read_text().splitlines()
    rows = [list(map(int, line.split())) for line in table if line.strip() and not line.startswith("#")]
    assert len(rows) >= 20
    for w, h, ref, rw, rh in rows:
        assert reference.inference_size(w, h, ref) == (rw, rh), (w, h, ref)


def test_cpu_variant_is_channels_last_and_matches_the_plain_export(tmp_path, onnx_export, small_input):
    out = tmp_path / "modnet_cpu.pt"
    assert export.main(["--weights", str(ONNX), "--out", str(out), "--verify-image", str(ASTRONAUT), "--cpu"]) == 0
    m = torch.jit.load(str(out))
    assert m.input_channels_last() is True
    # Frozen: no BatchNorm left, and no NCHW round trips (aten::contiguous/instance_norm).
    graph = str(m.graph)
    assert "batch_norm" not in graph and "instance_norm" not in graph
    # The element-wise work runs as the fused operators (csrc/modnet_ops.cpp).
    assert "modnet::ibnorm_relu" in graph and "modnet::cat_resized" in graph and "aten::cat" not in graph
    # The backbone's ReLU6s and residual adds are its convolutions' oneDNN post-ops.
    assert "mkldnn::_convolution_pointwise" in graph
    assert not any(op in graph for op in ("aten::clamp", "aten::hardtanh", "aten::add"))
    cl = small_input.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ours, plain = m(cl), run(onnx_export, small_input)
        assert torch.equal(m(small_input), ours)  # any layout in, same matte
    assert ours.shape == plain.shape
    assert float((ours - plain).abs().max()) <= 2e-4
    assert float(plain.std()) > 0.1
    # A batch (the device path's) gives each frame its own matte.
    pair = torch.cat((small_input, small_input.flip(3)), 0)
    with torch.no_grad():
        both = m(pair)
        assert float((both[0] - ours[0]).abs().max()) <= 1e-5
        assert float((both[1] - m(small_input.flip(3))[0]).abs().max()) <= 1e-5


def test_fp16_and_cpu_are_exclusive(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        export.main(["--weights", str(ONNX), "--out", str(tmp_path / "x.pt"), "--fp16", "--cpu"])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


COFFEE = ROOT / "data" / "images" / "coffee.png"


def test_bf16_variant_is_checked_on_every_image_and_keeps_the_contract(tmp_path, small_input):
    out = tmp_path / "m_bf16.pt"
    args = ["--weights", str(ONNX), "--out", str(out), "--bf16", "--verify-image", str(ASTRONAUT),
            "--verify-image", str(COFFEE)]
    assert export.main(args) == 0
    m = torch.jit.load(str(out))
    assert m.input_channels_last() is True
    # Frozen weights: bfloat16 ones for the bf16 convolutions, float32 for the backbone's.
    dtypes = [n.output().toIValue().dtype for n in m.graph.nodes()
              if n.kind() == "prim::Constant" and n.output().type().kind() == "TensorType"]
    assert dtypes.count(torch.bfloat16) >= 30 and dtypes.count(torch.float32) >= 30
    assert "modnet::ibnorm_relu" in str(m.graph)
    with torch.no_grad():
        y = m(small_input)
    assert y.dtype == torch.float32 and tuple(y.shape) == (1, 1, *small_input.shape[2:])


def test_bf16_export_past_its_bounds_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "BF16_P99", 1e-9)
    out = tmp_path / "m_bf16.pt"
    args = ["--weights", str(ONNX), "--out", str(out), "--bf16", "--verify-image", str(COFFEE)]
    assert export.main(args) == 1
    assert not out.exists()
    assert "coffee.png" in capsys.readouterr().err
