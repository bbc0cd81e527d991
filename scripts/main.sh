#!/usr/bin/env bash
# README command 1: the demo. A 720p clip made from the real photos goes through
#   modnetmatte background=image  ->  out/demo.mp4, and a side-by-side still
# out/still.png (the input frame | the element's output); then through the
# `modnetmatte` program (out/demo-cli.mp4, out/preview.png). Also mattes the photo
# itself with the engine alone (out/astronaut_*.png) and times it against
# onnxruntime. REF_SIZE=256 bash scripts/main.sh runs the demo at ref-size 256.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ref=${REF_SIZE:-512}

cargo build --release --quiet --workspace
# A folder holding only our plugin (GST_PLUGIN_PATH on target/release would also
# scan target/release/deps and find a second copy).
mkdir -p target/gst-plugin out
cp target/release/libgstmodnet.so target/gst-plugin/
export GST_PLUGIN_PATH=$PWD/target/gst-plugin GST_REGISTRY=$PWD/target/gst-plugin/registry.bin


echo "[main] demo: 90 frames of 1280x720 through modnetmatte ref-size=$ref"
start=$(date +%s.%N)
GST_DEBUG=modnetmatte:4 GST_DEBUG_NO_COLOR=1 gst-launch-1.0 -q -e \
  multifilesrc location=data/clip/frame_%04d.jpg caps=image/jpeg,framerate=30/1 ! jpegdec ! videoconvert \
  ! video/x-raw,format=I420 ! modnetmatte ref-size="$ref" background=image background-image=data/images/rocket.jpg \
  ! videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location=out/demo.mp4 2> out/demo.log
end=$(date +%s.%N)
python3 -c "import sys; print(f'[main] demo pipeline: 90 frames in {float(sys.argv[2])-float(sys.argv[1]):.1f} s = {90/(float(sys.argv[2])-float(sys.argv[1])):.2f} frames/s (decode, matte, encode; everything included)')" "$start" "$end"
grep -o 'stopped: .*' out/demo.log | tail -n1 | sed 's/^/[main] element /'

# The still: frame 45, input on the left, output on the right.
gst-launch-1.0 -q \
  multifilesrc location=data/clip/frame_%04d.jpg index=45 stop-index=45 caps=image/jpeg,framerate=30/1 \
  ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
  t. ! queue ! mix.sink_0 \
  t. ! queue ! modnetmatte ref-size="$ref" background=image background-image=data/images/rocket.jpg ! mix.sink_1 \
  compositor name=mix sink_1::xpos=1280 ! videoconvert ! pngenc ! filesink location=out/still.png

echo "[main] wrote out/demo.mp4 (the matted clip) and out/still.png (input | output, frame 45)"

# What the network shows of the room on this clip at this ref-size (the clip knows where
# the person was pasted): MODNet, not the element, decides this; see the README.
(cd tools && ../.venv/bin/python -m modnet.leak --onnx ../models/source/modnet_photographic.onnx \
  --images ../data/images --clip ../data/clip --ref-size "$ref") | sed 's/^/[main] MODNet on the clip: /'

# The same clip through the `modnetmatte` program, as a user runs it: an MP4 with a
# soundtrack in, the matted MP4 with its audio out; and the preview's side by side.
gst-launch-1.0 -q -e \
  multifilesrc location=data/clip/frame_%04d.jpg caps=image/jpeg,framerate=30/1 ! jpegdec ! videoconvert \
  ! x264enc speed-preset=veryfast ! queue ! mux. \
  audiotestsrc num-buffers=90 samplesperbuffer=1600 volume=0.1 ! audio/x-raw,rate=48000,channels=2 \
  ! audioconvert ! avenc_aac ! queue ! mux. mp4mux name=mux ! filesink location=out/clip.mp4
target/release/modnetmatte file out/clip.mp4 out/demo-cli.mp4 -y -b data/images/rocket.jpg --ref-size 256
target/release/modnetmatte preview out/clip.mp4 --frames 1 --size 640x360 -b data/images/rocket.jpg \
  --sink "pngenc ! filesink location=out/preview.png"
echo "[main] wrote out/demo-cli.mp4 (modnetmatte file, audio kept) and out/preview.png (modnetmatte preview)"

# The engine alone on the photo, and onnxruntime on the same input for comparison.
target/release/matte-image data/images/astronaut.png --background data/images/rocket.jpg \
  --out-dir out --repeat 10
(cd tools && ../.venv/bin/python -m modnet.speed --onnx ../models/source/modnet_photographic.onnx \
  --image ../data/images/astronaut.png --repeat 10)
