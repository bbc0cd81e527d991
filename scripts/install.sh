#!/usr/bin/env bash
# For the current user, after setup: the `modnetmatte` program into ~/.local/bin, and
# the GStreamer plugin into ~/.local/share/gstreamer-1.0/plugins, where gst-launch-1.0,
# OBS's obs-gstreamer source and any GStreamer application find the element without
# GST_PLUGIN_PATH. Both load libtorch from this checkout's .venv: keep the checkout.
# PREFIX=/somewhere puts the program in /somewhere/bin instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet -p modnetmatte-cli -p gst-plugin-modnet
prefix=${PREFIX:-$HOME/.local}
plugins=${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins
install -Dm755 target/release/modnetmatte "$prefix/bin/modnetmatte"
install -Dm644 target/release/libgstmodnet.so "$plugins/libgstmodnet.so"
echo "[install] $prefix/bin/modnetmatte and $plugins/libgstmodnet.so"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "[install] add $prefix/bin to PATH" ;; esac
if ! ls /sys/devices/virtual/video4linux/video* >/dev/null 2>&1; then
  echo "[install] for a virtual camera: sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"modnetmatte\" exclusive_caps=1"
fi
