//! Shared by the CLI and pipeline tests: the files setup makes, test videos made from
//! the real-photo clip, and decoding a video back into frames.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Once;

use gst::prelude::*;

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

pub fn model() -> PathBuf {
    prepared("models/modnet_photographic.pt")
}

pub fn fixture(rel: &str) -> PathBuf {
    prepared(&format!("data/fixtures/{rel}"))
}

/// The real-photo clip (1280x720 JPEG frames at 30/s, made by setup).
pub fn clip_pattern() -> String {
    prepared("data/clip/frame_0000.jpg");
    root()
        .join("data/clip/frame_%04d.jpg")
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

/// A scratch folder, removed with everything in it when the returned value is dropped.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("modnetmatte-{name}-"))
        .tempdir()
        .expect("a scratch folder in the temporary directory")
}

/// Plays a description to EOS; panics with the bus error otherwise.
pub fn play(desc: &str) {
    let p = gst::parse::launch(desc).unwrap_or_else(|e| panic!("{e}: {desc}"));
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(300),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 300 s");
    let _ = p.set_state(gst::State::Null);
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{desc}: {} ({:?})", e.error(), e.debug());
    }
}

/// An MP4 (H.264, and AAC audio of the same length when `audio`) of the clip's first
/// `frames` frames at `w` x `h`.
pub fn make_clip_mp4(path: &Path, frames: u32, w: u32, h: u32, audio: bool) {
    init();
    // The clip's frames, looped when more are asked for than there are.
    let images = std::fs::read_dir(root().join("data/clip"))
        .map_or(0, |d| d.count() as u32)
        .max(1);
    let mut desc = format!(
        "multifilesrc location={} index=0 stop-index={} loop=true num-buffers={frames} \
         caps=image/jpeg,framerate=30/1 \
         ! jpegdec ! videoscale ! video/x-raw,width={w},height={h} ! videoconvert \
         ! x264enc ! queue ! mux.",
        clip_pattern(),
        frames.min(images) - 1
    );
    if audio {
        // 1600 samples at 48 kHz = one frame at 30/s.
        desc += &format!(
            "  audiotestsrc num-buffers={frames} samplesperbuffer=1600 \
             ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! queue ! mux."
        );
    }
    desc += &format!("  mp4mux name=mux ! filesink location={}", path.display());
    play(&desc);
}

/// An MP4 of a still photo repeated `frames` times.
pub fn make_still_mp4(path: &Path, photo: &Path, frames: u32, w: u32, h: u32) {
    init();
    play(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width={w},height={h} ! imagefreeze num-buffers={frames} \
         ! video/x-raw,framerate=30/1 ! videoconvert ! x264enc ! mp4mux ! filesink location={}",
        photo.display(),
        path.display()
    ));
}

/// A decoded video: RGBA frames, their size, and the stream's facts.
pub struct Decoded {
    pub frames: Vec<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    pub duration: gst::ClockTime,
    pub audio: bool,
}

pub fn decode(path: &Path) -> Decoded {
    init();
    let uri = gst::glib::filename_to_uri(path.canonicalize().unwrap(), None).unwrap();
    let info = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(30))
        .unwrap()
        .discover_uri(&uri)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA \
         ! appsink name=out sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = p
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (mut frames, mut size) = (Vec::new(), (0, 0));
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        let caps = s.caps().unwrap().structure(0).unwrap();
        size = (
            caps.get::<i32>("width").unwrap() as u32,
            caps.get::<i32>("height").unwrap() as u32,
        );
        let map = s.buffer().unwrap().map_readable().unwrap();
        frames.push(map.to_vec());
    }
    assert!(sink.is_eos(), "{}: decoding stalled", path.display());
    let _ = p.set_state(gst::State::Null);
    Decoded {
        frames,
        width: size.0,
        height: size.1,
        duration: info.duration().unwrap_or(gst::ClockTime::ZERO),
        audio: !info.audio_streams().is_empty(),
    }
}

/// Fraction of pixels whose RGB is within `tol` of `rgb`.
pub fn fraction_near(rgba: &[u8], rgb: [u8; 3], tol: u8) -> f64 {
    let n = rgba.len() / 4;
    let near = rgba
        .chunks_exact(4)
        .filter(|p| (0..3).all(|c| p[c].abs_diff(rgb[c]) <= tol))
        .count();
    near as f64 / n as f64
}

/// Fraction of pixels with alpha at most `lo` (transparent).
pub fn fraction_transparent(rgba: &[u8], lo: u8) -> f64 {
    let n = rgba.len() / 4;
    rgba.chunks_exact(4).filter(|p| p[3] <= lo).count() as f64 / n as f64
}

/// Fraction of pixels whose luma-ish mean differs by more than `tol` between frames.
pub fn fraction_changed(a: &[u8], b: &[u8], tol: u8) -> f64 {
    let n = a.len() / 4;
    let changed = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .filter(|(p, q)| {
            let m = |x: &[u8]| (x[0] as u16 + x[1] as u16 + x[2] as u16) / 3;
            m(p).abs_diff(m(q)) > tol as u16
        })
        .count();
    changed as f64 / n as f64
}

/// The clip's frame `i` as RGBA at `w` x `h`.
pub fn clip_frame(i: u32, w: u32, h: u32) -> Vec<u8> {
    let p = root().join(format!("data/clip/frame_{i:04}.jpg"));
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgba8()
        .into_raw()
}
