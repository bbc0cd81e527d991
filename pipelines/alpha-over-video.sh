#!/bin/sh
# Webcam -> modnetmatte output=alpha (the person on transparency) -> compositor, over
# a background video -> a window. The same shape puts the person over anything
# GStreamer can draw: replace the filesrc branch with another source.
#
#   BACKGROUND_VIDEO=beach.mp4 pipelines/alpha-over-video.sh
#
# Variables (defaults below): CAMERA, CAMERA_CAPS (see webcam-to-virtual-camera.sh),
# BACKGROUND_VIDEO (played once; black after it ends. `modnetmatte cam -b beach.mp4`
# loops it).
CAMERA=${CAMERA:-/dev/video0}
CAMERA_CAPS=${CAMERA_CAPS:-image/jpeg,width=1280,height=720,framerate=30/1}
BACKGROUND_VIDEO=${BACKGROUND_VIDEO:-background.mp4}
exec gst-launch-1.0 -e \
  compositor name=mix background=black ! videoconvert ! autovideosink sync=false \
  filesrc location="$BACKGROUND_VIDEO" ! decodebin ! videoconvert ! videoscale \
  ! video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 ! queue ! mix.sink_0 \
  v4l2src device="$CAMERA" ! "$CAMERA_CAPS" ! decodebin ! videoconvert \
  ! modnetmatte output=alpha ! queue ! mix.sink_1
