"""The fused operators of csrc/modnet_ops.cpp (`torch.ops.modnet.*`) for export and
verification: built once into a shared library against this venv's torch, cached by
the source's hash, and loaded with torch.ops.load_library. The engine compiles the same
file into itself (build.rs), so a CPU variant exported here runs there unchanged.

    from modnet import ops
    ops.load()  # then torch.ops.modnet.ibnorm_relu / cat_resized exist
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).resolve().parents[2] / "csrc" / "modnet_ops.cpp"
_loaded = False


class OpsBuildError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("MODNET_OPS_CACHE", Path(__file__).resolve().parents[2] / "target" / "pyops"))


def build(source: Path = SOURCE) -> Path:
    """Compile `source` (if not cached) and return the library's path."""
    torch_dir = Path(torch.__file__).parent
    key = hashlib.sha256(source.read_bytes() + torch.__version__.encode()).hexdigest()[:16]
    lib = cache_dir() / f"libmodnet_ops_{key}.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lib.parent, suffix=".so.tmp")
    os.close(fd)
    cmd = [
        os.environ.get("CXX", "g++"), "-O3", "-DMODNET_OPS_REGISTER_AT_LOAD", "-std=c++17", "-shared", "-fPIC", "-fopenmp",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}",
        "-I", str(torch_dir / "include"), "-I", str(torch_dir / "include/torch/csrc/api/include"),
        str(source), "-o", tmp,
        "-L", str(torch_dir / "lib"), "-ltorch", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}",
    ]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise OpsBuildError(f"compiling {source} failed:\n{r.stderr[-4000:]}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def load() -> None:
    """Register torch.ops.modnet.* in this process (once)."""
    global _loaded
    if not _loaded:
        torch.ops.load_library(str(build()))
        _loaded = True


if __name__ == "__main__":
    print(build())
    sys.exit(0)
