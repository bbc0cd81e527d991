//! GStreamer video formats <-> the engine's pixel formats, shared by the element and
//! its tests.

use gst_video::VideoFormat;
use modnetmatte::{PixelFormat, YuvMatrix};

/// The engine's format for a GStreamer one (None: not handled).
pub fn to_pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    Some(match f {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Rgbx => PixelFormat::Rgbx,
        VideoFormat::Bgrx => PixelFormat::Bgrx,
        VideoFormat::Xrgb => PixelFormat::Xrgb,
        VideoFormat::Xbgr => PixelFormat::Xbgr,
        VideoFormat::Rgba => PixelFormat::Rgba,
        VideoFormat::Bgra => PixelFormat::Bgra,
        VideoFormat::Argb => PixelFormat::Argb,
        VideoFormat::Abgr => PixelFormat::Abgr,
        VideoFormat::Yuy2 => PixelFormat::Yuy2,
        VideoFormat::Nv12 => PixelFormat::Nv12,
        VideoFormat::I420 => PixelFormat::I420,
        VideoFormat::Gray8 => PixelFormat::Gray8,
        _ => return None,
    })
}

/// Every format the sink pad takes.
pub const SINK_FORMATS: [VideoFormat; 13] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::Yuy2,
    VideoFormat::Nv12,
    VideoFormat::I420,
];

/// The straight-alpha format `output=alpha` gives for an input format.
pub fn alpha_format(f: VideoFormat) -> VideoFormat {
    match f {
        VideoFormat::Bgr | VideoFormat::Bgrx | VideoFormat::Bgra => VideoFormat::Bgra,
        VideoFormat::Xrgb | VideoFormat::Argb => VideoFormat::Argb,
        VideoFormat::Xbgr | VideoFormat::Abgr => VideoFormat::Abgr,
        _ => VideoFormat::Rgba,
    }
}

/// The Y'CbCr matrix and range the caps' colorimetry gives (BT.601 unless BT.709).
pub fn yuv_matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    let c = info.colorimetry();
    let base = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::BT709,
        _ => YuvMatrix::BT601,
    };
    YuvMatrix {
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
        ..base
    }
}
