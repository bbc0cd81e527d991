#!/bin/sh
# Webcam -> modnetmatte (background blurred) -> a window, mirrored like a selfie
# view: to try the matting and its settings before going live.
#
#   pipelines/webcam-to-window.sh
#
# Variables (defaults below): CAMERA, CAMERA_CAPS (see webcam-to-virtual-camera.sh).
# `modnetmatte preview` shows the original and the result side by side.
CAMERA=${CAMERA:-/dev/video0}
CAMERA_CAPS=${CAMERA_CAPS:-image/jpeg,width=1280,height=720,framerate=30/1}
exec gst-launch-1.0 -e \
  v4l2src device="$CAMERA" ! "$CAMERA_CAPS" ! decodebin ! videoconvert \
  ! videoflip video-direction=horiz \
  ! modnetmatte background=blur \
  ! videoconvert ! autovideosink sync=false
