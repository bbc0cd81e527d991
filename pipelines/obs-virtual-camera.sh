#!/bin/sh
# OBS through a virtual camera: webcam -> modnetmatte (background a flat keying
# green) -> v4l2loopback. In OBS: Sources + "Video Capture Device (V4L2)", device
# "modnetmatte" (the loopback); then right-click it, Filters, + "Chroma Key", key
# colour Green: the person appears over your OBS scene. A v4l2loopback device
# carries no alpha, hence the green; obs-gstreamer-source.txt gives OBS the alpha
# itself.
#
#   sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="modnetmatte" exclusive_caps=1
#   pipelines/obs-virtual-camera.sh
#
# Variables (defaults below): CAMERA, CAMERA_CAPS (see webcam-to-virtual-camera.sh),
# LOOPBACK.
CAMERA=${CAMERA:-/dev/video0}
CAMERA_CAPS=${CAMERA_CAPS:-image/jpeg,width=1280,height=720,framerate=30/1}
LOOPBACK=${LOOPBACK:-/dev/video10}
exec gst-launch-1.0 -e \
  v4l2src device="$CAMERA" ! "$CAMERA_CAPS" ! decodebin ! videoconvert \
  ! modnetmatte background=color background-color=0xff00ff00 \
  ! videoconvert ! video/x-raw,format=YUY2 ! v4l2sink device="$LOOPBACK" sync=false
