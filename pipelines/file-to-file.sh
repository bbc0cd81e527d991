#!/bin/sh
# A video file -> modnetmatte (background replaced by a picture) -> MP4 (H.264).
#
#   INPUT=talk.mp4 BACKGROUND_IMAGE=office.jpg OUTPUT=talk-office.mp4 pipelines/file-to-file.sh
#
# Variables (defaults below): INPUT (anything GStreamer decodes), BACKGROUND_IMAGE
# (PNG or JPEG, scaled to cover the frame), OUTPUT. Video only: `modnetmatte file`
# also keeps the audio, shows progress and writes WebM, MKV or MOV.
INPUT=${INPUT:-input.mp4}
BACKGROUND_IMAGE=${BACKGROUND_IMAGE:-background.jpg}
OUTPUT=${OUTPUT:-output.mp4}
exec gst-launch-1.0 -e \
  filesrc location="$INPUT" ! decodebin name=dec \
  dec. ! videoconvert ! queue \
  ! modnetmatte background=image background-image="$BACKGROUND_IMAGE" \
  ! videoconvert ! x264enc speed-preset=faster ! queue ! mp4mux faststart=true \
  ! filesink location="$OUTPUT"
