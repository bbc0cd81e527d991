#!/usr/bin/env bash
# README command 2 (and CI): setup, test fixtures, format and lint checks, the Rust
# tests, the Python exporter tests, the Debian package (built, extracted and run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Fixtures need Python (bad TorchScript files, onnxruntime reference mattes).
fixture_inputs=(models/source/modnet_photographic.onnx data/images/astronaut.png tools/modnet/{fixtures,reference}.py)
want=$(cat "${fixture_inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat data/fixtures/.inputs.sha256 2>/dev/null)" != "$want" ]; then
  (cd tools && ../.venv/bin/python -m modnet.fixtures --onnx ../models/source/modnet_photographic.onnx \
      --images ../data/images --out ../data/fixtures)
  echo "$want" > data/fixtures/.inputs.sha256
fi

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "[test] cargo build (the plugin file, for the gst-launch tests) and cargo test"
cargo build --workspace --quiet
cargo test --workspace --quiet
echo "[test] pytest tools/tests"
(cd tools && ../.venv/bin/python -m pytest -q tests)
echo "[test] the Debian package (scripts/package_test.sh)"
bash scripts/package_test.sh
