//! Helpers shared by the element tests: real-photo frames in any format, decoding
//! outputs back to RGB, and the files setup makes.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::Once;

use gst_video::VideoFormat;
use gst_video::prelude::*;
use modnetmatte::composite;
use modnetmatte::frame::{Plane, PlaneMut};
use modnetmatte::{Frame, FrameMut, PixelFormat, YuvMatrix};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn prepared(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test.sh` first",
        p.display()
    );
    p
}

pub fn model() -> String {
    prepared("models/modnet_photographic.pt")
        .display()
        .to_string()
}

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().expect("gstreamer initialises");
        gstmodnet::plugin_register_static().expect("plugin registers");
    });
}

pub use gstmodnet::formats::{SINK_FORMATS, yuv_matrix as matrix};

pub fn pixel_format(f: VideoFormat) -> PixelFormat {
    gstmodnet::formats::to_pixel_format(f).unwrap_or_else(|| panic!("no pixel format for {f:?}"))
}

/// The astronaut photo scaled to `w` x `h`, packed RGB.
pub fn photo_rgb(w: u32, h: u32) -> Vec<u8> {
    image::open(prepared("data/images/astronaut.png"))
        .expect("astronaut decodes")
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}

/// A buffer in `info`'s layout (GStreamer's strides) holding packed RGB `rgb`.
pub fn buffer_from_rgb(info: &gst_video::VideoInfo, rgb: &[u8]) -> gst::Buffer {
    let (w, h) = (info.width(), info.height());
    let src = composite::from_rgb(pixel_format(info.format()), w, h, matrix(info), rgb).unwrap();
    let strides: Vec<usize> = src
        .format
        .plane_sizes(w as usize, h as usize)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let buffer = gst::Buffer::with_size(info.size()).unwrap();
    let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, info).unwrap();
    for (i, plane) in src.planes.iter().enumerate() {
        let stride = frame.plane_stride()[i] as usize;
        let dst = frame.plane_data_mut(i as u32).unwrap();
        for (row, chunk) in plane.chunks_exact(strides[i]).enumerate() {
            dst[row * stride..row * stride + chunk.len()].copy_from_slice(chunk);
        }
    }
    frame.into_buffer()
}

/// Any output buffer back to packed RGB (GRAY8: the grey value three times), and
/// the alpha channel where the format has one.
/// Pushes a frame of `rgb` at `ms` milliseconds into the harness (it must take it).
pub fn push_at(h: &mut gst_check::Harness, info: &gst_video::VideoInfo, rgb: &[u8], ms: u64) {
    let mut b = buffer_from_rgb(info, rgb);
    b.get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_mseconds(ms));
    h.push(b).unwrap();
}

/// A flush and a new segment, then frames at `ms` x 100 ms and EOS: the timestamps
/// (ms) of what comes out after the flush.
pub fn flush_then(
    h: &mut gst_check::Harness,
    info: &gst_video::VideoInfo,
    rgb: &[u8],
    ms: std::ops::Range<u64>,
) -> Vec<u64> {
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    for n in ms {
        push_at(h, info, rgb, 100 * n);
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut after = Vec::new();
    while let Some(b) = h.try_pull() {
        after.push(b.pts().unwrap().mseconds());
    }
    after
}

pub fn decode(info: &gst_video::VideoInfo, buffer: &gst::BufferRef) -> (Vec<u8>, Option<Vec<u8>>) {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).unwrap();
    let format = pixel_format(info.format());
    let (w, h) = (info.width(), info.height());
    let planes = (0..frame.n_planes())
        .map(|i| Plane {
            data: frame.plane_data(i).unwrap(),
            stride: frame.plane_stride()[i as usize] as usize,
        })
        .collect();
    let f = Frame {
        format,
        width: w,
        height: h,
        planes,
        matrix: matrix(info),
    };
    if format == PixelFormat::Gray8 {
        let p = &f.planes[0];
        let gray: Vec<u8> = (0..h as usize)
            .flat_map(|y| {
                p.data[y * p.stride..y * p.stride + w as usize]
                    .iter()
                    .copied()
            })
            .collect();
        return (gray.iter().flat_map(|&g| [g, g, g]).collect(), Some(gray));
    }
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    let ones = vec![255u8; (w * h) as usize];
    let mut out = FrameMut {
        format: PixelFormat::Rgba,
        width: w,
        height: h,
        planes: vec![PlaneMut {
            data: &mut rgba,
            stride: w as usize * 4,
        }],
        matrix: YuvMatrix::BT601,
    };
    composite::with_alpha(&f, &ones, &mut out).unwrap();
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let alpha = format.packed_rgb().and_then(|p| p.extra).filter(|_| {
        matches!(
            format,
            PixelFormat::Rgba | PixelFormat::Bgra | PixelFormat::Argb | PixelFormat::Abgr
        )
    });
    let alpha = alpha.map(|e| {
        let p = &f.planes[0];
        (0..h as usize)
            .flat_map(|y| (0..w as usize).map(move |x| (y, x)))
            .map(|(y, x)| p.data[y * p.stride + x * 4 + e])
            .collect()
    });
    (rgb, alpha)
}

/// Mean RGB of a box around (fx, fy) given as fractions of the frame.
pub fn mean_at(rgb: &[u8], w: u32, h: u32, fx: f64, fy: f64) -> [f64; 3] {
    let (cx, cy) = ((fx * w as f64) as i64, (fy * h as f64) as i64);
    let r = (w.min(h) as i64 / 40).max(1);
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in (cy - r).max(0)..=(cy + r).min(h as i64 - 1) {
        for x in (cx - r).max(0)..=(cx + r).min(w as i64 - 1) {
            let i = ((y * w as i64 + x) * 3) as usize;
            for c in 0..3 {
                sum[c] += rgb[i + c] as f64;
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

pub fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Points in the astronaut photo (fractions of its size): on her and off her, read
/// off the onnxruntime reference matte (alpha 1.0 and 0.0 there).
pub const PERSON: [(f64, f64); 3] = [(0.45, 0.25), (0.59, 0.78), (0.2, 0.88)];
pub const BACKGROUND: [(f64, f64); 3] = [(0.94, 0.08), (0.04, 0.04), (0.94, 0.59)];
