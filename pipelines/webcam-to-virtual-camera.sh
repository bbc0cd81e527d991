#!/bin/sh
# Webcam -> modnetmatte (background blurred) -> virtual camera, for Zoom, Meet,
# Teams, Chrome and OBS. Needs a v4l2loopback device:
#
#   sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="modnetmatte" exclusive_caps=1
#   pipelines/webcam-to-virtual-camera.sh
#
# Then pick the camera "modnetmatte" in the meeting app. Variables (defaults below):
# CAMERA, CAMERA_CAPS (the webcam mode; `v4l2-ctl -d /dev/video0 --list-formats-ext`
# lists yours: most USB webcams give 1280x720 MJPEG at 30 frames/s, and raw YUY2 only
# at a low rate), LOOPBACK. `modnetmatte cam` does the same and picks the mode itself.
# YUY2 on the loopback is the format browsers read most reliably.
CAMERA=${CAMERA:-/dev/video0}
CAMERA_CAPS=${CAMERA_CAPS:-image/jpeg,width=1280,height=720,framerate=30/1}
LOOPBACK=${LOOPBACK:-/dev/video10}
exec gst-launch-1.0 -e \
  v4l2src device="$CAMERA" ! "$CAMERA_CAPS" ! decodebin ! videoconvert \
  ! modnetmatte background=blur \
  ! videoconvert ! video/x-raw,format=YUY2 ! v4l2sink device="$LOOPBACK" sync=false
