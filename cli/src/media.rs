//! Media files: what an input holds (GStreamer's discoverer), and a video played in a
//! loop as a background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use gst::prelude::*;

use crate::describe::{Geometry, quote_path};

/// What the `file` command and the background loop need to know of a file.
#[derive(Debug, Clone)]
pub struct MediaInfo {
    pub geometry: Geometry,
    pub audio: bool,
    pub duration: Option<gst::ClockTime>,
}

/// Reads a media file's streams, with an error naming the file and the reason.
pub fn discover(path: &Path, what: &str) -> Result<MediaInfo> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow!("{what} {}: cannot be read: {e}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {}: not a file", path.display());
    }
    let abs = std::fs::canonicalize(path)?;
    let uri = gst::glib::filename_to_uri(&abs, None)
        .map_err(|e| anyhow!("{what} {}: {e}", path.display()))?;
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(30))?;
    let info = discoverer.discover_uri(&uri).map_err(|e| {
        anyhow!(
            "{what} {}: not a video GStreamer can decode ({e})",
            path.display()
        )
    })?;
    let video = info.video_streams();
    let v = video.first().ok_or_else(|| {
        anyhow!(
            "{what} {}: has no video stream (or no decoder for it is installed)",
            path.display()
        )
    })?;
    let fps = v.framerate();
    let fps = if fps.numer() > 0 && fps.denom() > 0 {
        (fps.numer(), fps.denom())
    } else {
        (30, 1) // a still image or an unknown rate
    };
    Ok(MediaInfo {
        geometry: Geometry {
            width: v.width(),
            height: v.height(),
            fps,
        },
        audio: !info.audio_streams().is_empty(),
        duration: info.duration(),
    })
}

/// videocrop margins (left, right, top, bottom) that make `src` the shape of `dst`
/// by cutting the longer side evenly (the picture covers the frame, nothing stretched).
pub fn cover_crop(src: (u32, u32), dst: (u32, u32)) -> (u32, u32, u32, u32) {
    let (sw, sh) = (src.0 as u64, src.1 as u64);
    let (dw, dh) = (dst.0 as u64, dst.1 as u64);
    if sw * dh > dw * sh {
        let keep = (sh * dw / dh).max(1);
        let cut = (sw - keep) as u32;
        (cut / 2, cut - cut / 2, 0, 0)
    } else {
        let keep = (sw * dh / dw).max(1);
        let cut = (sh - keep) as u32;
        (0, 0, cut / 2, cut - cut / 2)
    }
}

/// Running time where the matted stream ended, once it has.
pub type StreamEnd = Arc<std::sync::Mutex<Option<gst::ClockTime>>>;

/// A video decoded in its own pipeline, looped without a gap (segment seeks), scaled to
/// cover the output and fed into the main pipeline's appsrc `bgsrc` with timestamps
/// that keep counting across loops, until it covers `until` (the matted stream's end).
pub struct LoopedVideo {
    pipeline: gst::Pipeline,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LoopedVideo {
    pub fn start(
        path: &Path,
        size: (u32, u32),
        appsrc: gst_app::AppSrc,
        until: StreamEnd,
    ) -> Result<LoopedVideo> {
        let info = discover(path, "background video")?;
        let fps = info.geometry.fps;
        let (pipeline, sink) = decoder(path, (info.geometry.width, info.geometry.height), size)?;
        let frame = feed_into(&appsrc, size, fps);
        let stop = Arc::new(AtomicBool::new(false));
        // From here on, an early return stops and joins what was started (Drop).
        let mut this = LoopedVideo {
            pipeline: pipeline.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        let bus = start_looping(&pipeline, path)?;
        // Started only now: before its pipeline starts, an appsink says it is at EOS.
        let feeder = Feeder {
            sink,
            appsrc,
            frame,
            until,
            stop: stop.clone(),
        };
        this.threads.push(
            std::thread::Builder::new()
                .name("modnetmatte-bgfeed".into())
                .spawn(move || feeder.run())?,
        );
        let (weak, name) = (pipeline.downgrade(), PathBuf::from(path));
        this.threads.push(
            std::thread::Builder::new()
                .name("modnetmatte-bgloop".into())
                .spawn(move || loop_on_bus(&bus, &weak, &name, &stop))?,
        );
        Ok(this)
    }
}

/// The pipeline that decodes the background video, cropped and scaled from `from` to
/// cover `size`, into its appsink.
fn decoder(
    path: &Path,
    from: (u32, u32),
    size: (u32, u32),
) -> Result<(gst::Pipeline, gst_app::AppSink)> {
    let (l, r, t, b) = cover_crop(from, size);
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         videocrop left={l} right={r} top={t} bottom={b} ! videoscale ! \
         video/x-raw,format=I420,width={},height={},pixel-aspect-ratio=1/1 ! \
         appsink name=sink sync=false max-buffers=4",
        quote_path(path),
        size.0,
        size.1
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("background pipeline is not a pipeline"))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("background appsink")?;
    Ok((pipeline, sink))
}

/// Sets the appsrc's caps for frames of `size` at `fps`; the frame duration.
fn feed_into(appsrc: &gst_app::AppSrc, size: (u32, u32), fps: (i32, i32)) -> gst::ClockTime {
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", size.0 as i32)
        .field("height", size.1 as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("framerate", gst::Fraction::new(fps.0, fps.1))
        .build();
    appsrc.set_caps(Some(&caps));
    appsrc.set_format(gst::Format::Time);
    appsrc.set_property("block", true);
    appsrc.set_max_buffers(2);
    gst::ClockTime::SECOND
        .mul_div_floor(fps.1 as u64, fps.0 as u64)
        .unwrap_or(gst::ClockTime::from_mseconds(33))
}

/// Prerolls the decoder and starts it looping by segment seeks (SEGMENT_DONE instead
/// of EOS at the end, answered by `loop_on_bus`); its bus.
fn start_looping(pipeline: &gst::Pipeline, path: &Path) -> Result<gst::Bus> {
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| anyhow!("background video {}: cannot be played", path.display()))?;
    let bus = pipeline.bus().context("background pipeline has no bus")?;
    match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    ) {
        Some(m) => {
            if let gst::MessageView::Error(e) = m.view() {
                bail!("background video {}: {}", path.display(), e.error());
            }
        }
        None => bail!("background video {}: did not start in 30 s", path.display()),
    }
    seek_to_start(pipeline, gst::SeekFlags::FLUSH | gst::SeekFlags::SEGMENT).map_err(|_| {
        anyhow!(
            "background video {}: cannot seek, so cannot loop",
            path.display()
        )
    })?;
    pipeline.set_state(gst::State::Playing)?;
    Ok(bus)
}

fn seek_to_start(p: &gst::Pipeline, flags: gst::SeekFlags) -> Result<(), gst::glib::BoolError> {
    p.seek(
        1.0,
        flags,
        gst::SeekType::Set,
        gst::ClockTime::ZERO,
        gst::SeekType::None,
        gst::ClockTime::NONE,
    )
}

/// Answers the loop's SEGMENT_DONE with a seek back to the start, until stopped.
fn loop_on_bus(
    bus: &gst::Bus,
    weak: &gst::glib::WeakRef<gst::Pipeline>,
    name: &Path,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        let Some(p) = weak.upgrade() else { return };
        match msg.view() {
            gst::MessageView::SegmentDone(_) => {
                let _ = seek_to_start(&p, gst::SeekFlags::SEGMENT);
            }
            gst::MessageView::Error(e) => {
                eprintln!("background video {}: {}", name.display(), e.error());
                return;
            }
            _ => {}
        }
    }
}

/// Moves frames from the loop into the main pipeline on a thread of its own, so that
/// nothing of ours ever blocks one of the main pipeline's streaming threads.
struct Feeder {
    sink: gst_app::AppSink,
    appsrc: gst_app::AppSrc,
    frame: gst::ClockTime,
    until: StreamEnd,
    stop: Arc<AtomicBool>,
}

impl Feeder {
    fn run(self) {
        let mut n: u64 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(200))
            else {
                if self.sink.is_eos() {
                    let _ = self.appsrc.end_of_stream();
                    return;
                }
                continue;
            };
            let Some(buffer) = sample.buffer_owned() else {
                continue;
            };
            let mut buffer = buffer.copy();
            {
                let b = buffer.make_mut();
                b.set_pts(self.frame * n);
                b.set_dts(gst::ClockTime::NONE);
                b.set_duration(self.frame);
            }
            n += 1;
            if !self.push(buffer) {
                return;
            }
            // Ends only once the background covers the matted stream, however far
            // behind it was when that stream ended.
            let end = *self.until.lock().unwrap_or_else(|p| p.into_inner());
            if end.is_some_and(|end| self.frame * n >= end) {
                let _ = self.appsrc.end_of_stream();
                return;
            }
        }
    }

    /// Pushes one frame; false once the main pipeline is done with the background.
    fn push(&self, buffer: gst::Buffer) -> bool {
        // FLUSHING: the main pipeline is not playing (yet, or any more); EOS: the
        // matted stream ended and so does the background.
        loop {
            match self.appsrc.push_buffer(buffer.clone()) {
                Ok(_) => return true,
                Err(gst::FlowError::Flushing) if !self.stop.load(Ordering::Relaxed) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(_) => return false,
            }
        }
    }
}

impl Drop for LoopedVideo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_crop_cuts_the_long_side_evenly() {
        assert_eq!(cover_crop((1920, 1080), (1280, 720)), (0, 0, 0, 0));
        // 4:3 into 16:9: cut top and bottom.
        assert_eq!(cover_crop((640, 480), (1280, 720)), (0, 0, 60, 60));
        // 16:9 into a square: cut left and right.
        assert_eq!(cover_crop((1280, 720), (100, 100)), (280, 280, 0, 0));
        assert_eq!(cover_crop((101, 50), (50, 50)), (25, 26, 0, 0));
    }
}
