//! The `modnetmatte` subclass of GstVideoFilter: properties, caps, and the per-frame
//! glue between GStreamer buffers and the engine.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef};

use modnetmatte::composite::{self, OwnedFrame};
use modnetmatte::frame::{Plane, PlaneMut};
use modnetmatte::graphs::Status as GraphStatus;
use modnetmatte::render::{BackgroundSource, OutputKind, RenderSpec, RenderState};
use modnetmatte::schedule::{Scheduler, Step};
use modnetmatte::temporal::{Temporal, TemporalConfig};
use modnetmatte::transfer::{self, Transfer};
use modnetmatte::{
    DeviceRequest, Engine, EngineConfig, Frame, FrameMut, Matte, PixelFormat, StageTimings,
    YuvMatrix,
};

use super::{Background, Compositing, Output, Precision};
use crate::formats::{SINK_FORMATS, alpha_format, to_pixel_format, yuv_matrix};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "modnetmatte",
        gst::DebugColorFlags::empty(),
        Some("MODNet background replacement"),
    )
});

/// Environment variable naming the model file (checked before the data directories).
pub const MODEL_ENV: &str = "MODNETMATTE_MODEL";
/// File name looked for in `<data dir>/modnetmatte/`.
pub const MODEL_FILE: &str = "modnet_photographic.pt";

const DEFAULT_COLOR: u32 = 0xFF00_B140; // chroma-key green, easy to key out downstream
const DEFAULT_BLUR: u32 = 16;
const DEFAULT_REF_SIZE: u32 = 512;
const MAX_SIDE: i32 = 4096;
const DEFAULT_IN_FLIGHT: u32 = 2;
/// Largest `batch`.
const MAX_BATCH: u32 = 32;
/// Frames per forward pass with batch=0 (auto) on the CUDA device path when upstream
/// is not live (file jobs); see scripts/gpu_check.sh for the measurement.
const AUTO_BATCH_CUDA: usize = 8;

// ------------------------------------------------------------------ formats

/// Output formats for an input format (`to_src`), or input formats for an output one.
fn map_format(output: Output, f: VideoFormat, to_src: bool) -> Vec<VideoFormat> {
    match (output, to_src) {
        (Output::Composite, _) => SINK_FORMATS.iter().copied().filter(|&s| s == f).collect(),
        (Output::Alpha, true) if SINK_FORMATS.contains(&f) => vec![alpha_format(f)],
        (Output::Matte, true) if SINK_FORMATS.contains(&f) => vec![VideoFormat::Gray8],
        (Output::Alpha, false) => SINK_FORMATS
            .iter()
            .copied()
            .filter(|&s| alpha_format(s) == f)
            .collect(),
        (Output::Matte, false) if f == VideoFormat::Gray8 => SINK_FORMATS.to_vec(),
        _ => vec![],
    }
}

fn caps_for(formats: &[VideoFormat]) -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(formats.iter().copied())
        .width_range(1..=MAX_SIDE)
        .height_range(1..=MAX_SIDE)
        .build()
}

// ------------------------------------------------------------------ settings and state

#[derive(Debug, Clone)]
struct Settings {
    output: Output,
    background: Background,
    background_color: u32,
    background_image: Option<String>,
    blur_radius: u32,
    model: Option<String>,
    device: String,
    precision: Precision,
    ref_size: u32,
    threshold: f64,
    num_threads: u32,
    mask_every: u32,
    temporal_smoothing: f64,
    ofd: bool,
    max_in_flight: u32,
    drop_late: bool,
    compositing: Compositing,
    cuda_graphs: bool,
    batch: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            output: Output::default(),
            background: Background::default(),
            background_color: DEFAULT_COLOR,
            background_image: None,
            blur_radius: DEFAULT_BLUR,
            model: None,
            device: "auto".into(),
            precision: Precision::default(),
            ref_size: DEFAULT_REF_SIZE,
            threshold: 0.0,
            num_threads: 0,
            mask_every: 1,
            temporal_smoothing: 0.0,
            ofd: false,
            max_in_flight: DEFAULT_IN_FLIGHT,
            drop_late: false,
            compositing: Compositing::Auto,
            cuda_graphs: true,
            batch: 0,
        }
    }
}

/// A decoded background picture, kept at its own size; scaled per caps.
struct Picture {
    path: String,
    image: image::RgbImage,
}

/// The background in the stream's format and size, rebuilt when either changes.
struct PreparedBackground {
    key: (Background, u32, Option<String>, PixelFormat, u32, u32),
    /// Shared with the device path's jobs, which upload it once per new `Arc`.
    frame: Arc<OwnedFrame>,
}

/// What the worker hands back for one input buffer, in submission order.
enum Done {
    Matte(gst::Buffer, Result<(Matte, StageTimings), String>),
    /// mask-every: this frame reuses the previous matte.
    Reuse(gst::Buffer),
    /// The device path: the finished output buffer (`reused`: no network run).
    Rendered {
        result: Result<(gst::Buffer, StageTimings), String>,
        reused: bool,
        /// (page-locked, device) bytes the device path held after this frame.
        memory: (usize, usize),
        graphs: GraphStatus,
    },
    /// The device path: a batch's frames, in order.
    Batch(Vec<Done>),
}

/// A frame ready to go out: an input buffer with its final matte (rendered on the
/// streaming thread), or an output buffer the device path has finished.
enum Ready {
    Matte(gst::Buffer, Vec<f32>),
    Out(gst::Buffer),
}

/// The device path's per-stream objects, used by one job at a time on the worker.
type DevicePath = Arc<Mutex<(Transfer, RenderState)>>;

/// An input buffer and whether it gets its own network run (mask-every, drop-late).
type Queued = (gst::Buffer, bool);

struct State {
    engine: Arc<Engine>,
    /// Runs the network on its own thread, up to max-in-flight frames ahead.
    scheduler: Scheduler<Done>,
    /// Frames submitted since start or the last flush (mask-every counts them).
    submitted: u64,
    last_size: (u32, u32),
    /// From downstream QoS: frames due before this running time are late.
    earliest: Option<gst::ClockTime>,
    output: Output,
    /// Fixed at start: it changes the latency the element reports.
    ofd: bool,
    in_info: Option<gst_video::VideoInfo>,
    out_info: Option<gst_video::VideoInfo>,
    temporal: Temporal,
    /// Input buffers whose matte is not final yet (OFD holds one back).
    pending: VecDeque<gst::Buffer>,
    /// Frames waiting to be rendered (CPU path) and pushed.
    ready: VecDeque<Ready>,
    /// Set when output frames are made on the network's device (`compositing`).
    device_path: Option<DevicePath>,
    /// Frames per forward pass on the device path (decided per caps: `batch`, and
    /// 1 when upstream is live), and the frames collected for the next one.
    batch_size: usize,
    batch: Vec<Queued>,
    picture: Option<Picture>,
    background: Option<PreparedBackground>,
    /// Last picture path that failed to load, so the warning is posted once.
    failed_picture: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    frames: u64,
    reused: u64,
    late: u64,
    inference: Duration,
    last_inference: Duration,
    total: Duration,
    preprocess: Duration,
    postprocess: Duration,
    compositing: Duration,
    upload: Duration,
    download: Duration,
    /// Device path: start of a frame to its output on the host, summed.
    wall: Duration,
    /// Device path frames (their stage times are issue times on CUDA).
    device_frames: u64,
    /// Where output frames are made ("cpu", or the device the network runs on).
    compositing_on: String,
    /// CUDA device of the network, for the driver's memory figures.
    cuda_ordinal: Option<usize>,
    /// Page-locked host bytes and device bytes the device path holds.
    pinned_bytes: usize,
    device_bytes: usize,
    /// Frames per forward pass now.
    batch: u32,
    /// Whether CUDA graphs were asked for and can be used (CUDA device path).
    graphs_wanted: bool,
    graphs: GraphStatus,
    /// The capture failure has been logged.
    graph_failure_logged: bool,
}

#[derive(Default)]
pub struct ModnetMatte {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

/// Locks without panicking on a poisoned mutex: the data is plain values.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The model file to load: the `model` property, else $MODNETMATTE_MODEL, else
/// `modnetmatte/modnet_photographic.pt` under $XDG_DATA_HOME (~/.local/share), then
/// each of $XDG_DATA_DIRS (/usr/local/share:/usr/share).
pub fn find_model(property: Option<&str>) -> Result<PathBuf, String> {
    if let Some(p) = property.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(d) => dirs.push(PathBuf::from(d)),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                dirs.push(Path::new(&home).join(".local/share"));
            }
        }
    }
    let system = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(
        system
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    let candidates: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("modnetmatte").join(MODEL_FILE))
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "no model file: set the model property or {MODEL_ENV}, or install {MODEL_FILE} in one of: {}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

fn load_picture(path: &str) -> Result<Picture, String> {
    let image = image::open(path).map_err(|e| format!("background image {path}: {e}"))?;
    Ok(Picture {
        path: path.to_string(),
        image: image.to_rgb8(),
    })
}

fn argb_to_rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

/// `cuda-graphs` in stats: off, waiting (warm-up), on (how many), or the failure.
fn graphs_summary(s: &Stats) -> String {
    match (&s.graphs.failure, s.graphs_wanted, s.graphs.captured) {
        (_, false, _) => "off".into(),
        (Some(why), _, _) => format!("failed, plain forwards: {why}"),
        (None, true, 0) => "on (not captured yet)".into(),
        (None, true, n) => format!("on ({n} captured)"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl ModnetMatte {
    fn stats_structure(&self) -> gst::Structure {
        let s = lock(&self.stats).clone();
        // Stage times per network run; compositing and total per output frame.
        let inferred = s.frames.saturating_sub(s.reused);
        let per = |d: Duration, n: u64| if n == 0 { 0.0 } else { ms(d) / n as f64 };
        let builder = gst::Structure::builder("modnetmatte-stats")
            .field("frames", s.frames)
            .field("frames-matte-reused", s.reused)
            .field("frames-late-reused", s.late)
            .field("mean-inference-ms", per(s.inference, inferred))
            .field("last-inference-ms", ms(s.last_inference))
            .field("mean-preprocess-ms", per(s.preprocess, inferred))
            .field("mean-postprocess-ms", per(s.postprocess, inferred))
            .field("mean-compositing-ms", per(s.compositing, s.frames))
            .field("mean-total-ms", per(s.total, s.frames))
            .field("compositing-on", s.compositing_on.as_str())
            .field("mean-upload-ms", per(s.upload, s.device_frames))
            .field("mean-download-ms", per(s.download, s.device_frames))
            .field("mean-latency-ms", per(s.wall, s.device_frames))
            .field("pinned-mb", mb(s.pinned_bytes))
            .field("device-buffers-mb", mb(s.device_bytes))
            .field("batch", s.batch)
            .field("cuda-graphs", graphs_summary(&s))
            .field("graph-replays", s.graphs.replays);
        // The driver's view of the whole GPU (every process), read now.
        let (used, total) = s
            .cuda_ordinal
            .and_then(transfer::device_memory)
            .unwrap_or((0, 0));
        builder
            .field("gpu-memory-used-mb", mb(used))
            .field("gpu-memory-total-mb", mb(total))
            .build()
    }

    /// The background frame for this stream, rebuilt only when its inputs change.
    fn prepare_background<'s>(
        &self,
        state: &'s mut State,
        settings: &Settings,
        (format, width, height, matrix): (PixelFormat, u32, u32, YuvMatrix),
    ) -> Result<Option<&'s Arc<OwnedFrame>>, gst::FlowError> {
        let mut kind = settings.background;
        if kind == Background::Blur {
            return Ok(None); // made from each frame
        }
        if kind == Background::Image {
            let wanted = settings.background_image.clone().unwrap_or_default();
            let loaded = state.picture.as_ref().map(|p| p.path.as_str());
            if loaded != Some(wanted.as_str()) && state.failed_picture.as_deref() != Some(&wanted) {
                // Changed while playing: load now; on failure keep going without it.
                match load_picture(&wanted) {
                    Ok(p) => {
                        gst::info!(
                            CAT,
                            imp = self,
                            "background image {wanted} ({}x{})",
                            p.image.width(),
                            p.image.height()
                        );
                        state.picture = Some(p);
                    }
                    Err(e) => {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::OpenRead,
                            ("{e}; keeping the previous background")
                        );
                        state.failed_picture = Some(wanted.clone());
                    }
                }
            }
            if state.picture.is_none() {
                kind = Background::Color;
            }
        }
        let key = (
            kind,
            settings.background_color,
            state
                .picture
                .as_ref()
                .filter(|_| kind == Background::Image)
                .map(|p| p.path.clone()),
            format,
            width,
            height,
        );
        if state.background.as_ref().map(|b| &b.key) != Some(&key) {
            let (w, h) = (width, height);
            let built = match (&state.picture, kind) {
                (Some(p), Background::Image) => {
                    let scaled = image::DynamicImage::ImageRgb8(p.image.clone())
                        .resize_to_fill(w, h, image::imageops::FilterType::Triangle)
                        .to_rgb8();
                    composite::from_rgb(format, w, h, matrix, scaled.as_raw())
                }
                _ => Ok(composite::solid(
                    format,
                    w,
                    h,
                    matrix,
                    argb_to_rgb(settings.background_color),
                )),
            };
            let built = built.map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("background: {e}"));
                gst::FlowError::Error
            })?;
            gst::debug!(
                CAT,
                imp = self,
                "background rebuilt: {kind:?} {w}x{h} {format:?}"
            );
            state.background = Some(PreparedBackground {
                key,
                frame: Arc::new(built),
            });
        }
        Ok(state.background.as_ref().map(|b| &b.frame))
    }

    /// Hands one input buffer to the worker (to be matted, or to reuse the last
    /// matte) and takes in whatever the worker has finished.
    fn accept(
        &self,
        state: &mut State,
        settings: &Settings,
        inbuf: gst::Buffer,
    ) -> Result<(), gst::FlowError> {
        let info = state.in_info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let size = (info.width(), info.height());
        let mut infer = state
            .submitted
            .is_multiple_of(u64::from(settings.mask_every.max(1)))
            || state.last_size != size;
        if infer
            && settings.drop_late
            && state.submitted > 0
            && state.last_size == size
            && self.is_late(state, &inbuf)
        {
            // Behind downstream's clock: reuse the last matte rather than fall further behind.
            infer = false;
            lock(&self.stats).late += 1;
        }
        state.submitted += 1;
        state.last_size = size;
        let submitted = if state.device_path.is_some() {
            state.batch.push((inbuf, infer));
            if state.batch.len() < state.batch_size {
                return Ok(());
            }
            return self.submit_batch(state, settings);
        } else if infer {
            state.scheduler.submit(move |engine: &Engine| {
                let result = (|| {
                    let format = to_pixel_format(info.format()).ok_or("unsupported format")?;
                    let vframe = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &info)
                        .map_err(|_| "input buffer does not match the caps")?;
                    let frame = input_frame(&vframe, format, yuv_matrix(&info))
                        .map_err(|_| "input buffer unreadable")?;
                    engine.matte(&frame).map_err(|e| e.to_string())
                })()
                .map_err(|e: String| e);
                Done::Matte(inbuf, result)
            })
        } else {
            state.scheduler.submit(move |_: &Engine| Done::Reuse(inbuf))
        };
        self.absorb(state, settings, submitted)
    }

    /// Takes in what the worker has finished (in order), or posts why the worker could
    /// not take a job.
    fn absorb(
        &self,
        state: &mut State,
        settings: &Settings,
        submitted: modnetmatte::Result<Vec<Done>>,
    ) -> Result<(), gst::FlowError> {
        let done = submitted.map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ("{e}"));
            gst::FlowError::Error
        })?;
        for d in done {
            self.complete(state, settings, d)?;
        }
        Ok(())
    }

    /// Hands the frames collected for the device path to the worker as one job (one
    /// forward pass) and takes in whatever the worker has finished.
    fn submit_batch(&self, state: &mut State, settings: &Settings) -> Result<(), gst::FlowError> {
        let (Some(path), false) = (state.device_path.clone(), state.batch.is_empty()) else {
            return Ok(());
        };
        let info = state.in_info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let spec = self.render_spec(state, settings, &info)?;
        let out_info = state
            .out_info
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let frames = std::mem::take(&mut state.batch);
        let pad_to = state.batch_size;
        let submitted = state.scheduler.submit_staged(move |engine: &Engine| {
            render_job(engine, &path, spec, frames, pad_to, info, out_info)
        });
        self.absorb(state, settings, submitted)
    }

    /// Posts a worker's failure on the bus; the flow error to return.
    fn matting_failed(&self, e: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::StreamError::Failed, ("matting failed: {e}"));
        gst::FlowError::Error
    }

    /// What the device path should make of the next frame, from the settings now.
    fn render_spec(
        &self,
        state: &mut State,
        settings: &Settings,
        info: &gst_video::VideoInfo,
    ) -> Result<RenderSpec, gst::FlowError> {
        let format = to_pixel_format(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let output = match state.output {
            Output::Composite => OutputKind::Composite,
            Output::Alpha => OutputKind::Alpha(
                state
                    .out_info
                    .as_ref()
                    .and_then(|o| to_pixel_format(o.format()))
                    .ok_or(gst::FlowError::NotNegotiated)?,
            ),
            Output::Matte => OutputKind::Matte,
        };
        let mut background = BackgroundSource::Blur(settings.blur_radius);
        if state.output == Output::Composite {
            let shape = (format, info.width(), info.height(), yuv_matrix(info));
            if let Some(bg) = self.prepare_background(state, settings, shape)? {
                background = BackgroundSource::Frame(bg.clone());
            }
        }
        Ok(RenderSpec {
            output,
            background,
            threshold: settings.threshold,
            smoothing: settings.temporal_smoothing as f32,
        })
    }

    /// A frame ready to go out as an output buffer (the CPU path renders it now).
    fn output(
        &self,
        state: &mut State,
        settings: &Settings,
        ready: Ready,
    ) -> Result<gst::Buffer, gst::FlowError> {
        match ready {
            Ready::Matte(inbuf, alpha) => self.render(state, settings, &inbuf, &alpha),
            Ready::Out(out) => Ok(out),
        }
    }

    /// Whether QoS says this buffer is already too late to be worth the network.
    fn is_late(&self, state: &State, inbuf: &gst::Buffer) -> bool {
        let (Some(earliest), Some(pts)) = (state.earliest, inbuf.pts()) else {
            return false;
        };
        let segment = self.obj().segment();
        let running = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|seg| seg.to_running_time(pts));
        running.is_some_and(|rt| rt < earliest)
    }

    /// A worker result, in order: through the temporal filters; what they finalise
    /// moves to `ready`.
    fn complete(
        &self,
        state: &mut State,
        settings: &Settings,
        done: Done,
    ) -> Result<(), gst::FlowError> {
        let (w, h) = state.last_size;
        let config = TemporalConfig {
            mask_every: settings.mask_every,
            smoothing: settings.temporal_smoothing as f32,
            ofd: state.ofd,
        };
        let (inbuf, finished) = match done {
            Done::Matte(inbuf, result) => {
                let (matte, timings) = result.map_err(|e| self.matting_failed(&e))?;
                let mut st = lock(&self.stats);
                st.inference += timings.inference;
                st.last_inference = timings.inference;
                st.preprocess += timings.preprocess;
                st.postprocess += timings.postprocess;
                st.total += timings.total();
                drop(st);
                gst::log!(
                    CAT,
                    imp = self,
                    "matte: preprocess {:.1} ms, inference {:.1} ms, postprocess {:.1} ms",
                    ms(timings.preprocess),
                    ms(timings.inference),
                    ms(timings.postprocess)
                );
                let (mw, mh) = (matte.width, matte.height);
                (inbuf, state.temporal.push(&config, mw, mh, matte.alpha))
            }
            Done::Reuse(inbuf) => {
                lock(&self.stats).reused += 1;
                (inbuf, state.temporal.push_reused(&config, w, h))
            }
            Done::Batch(frames) => {
                for d in frames {
                    self.complete(state, settings, d)?;
                }
                return Ok(());
            }
            Done::Rendered {
                result,
                reused,
                memory,
                graphs,
            } => {
                let (out, t) = result.map_err(|e| self.matting_failed(&e))?;
                let mut st = lock(&self.stats);
                if let (Some(why), false) = (&graphs.failure, st.graph_failure_logged) {
                    st.graph_failure_logged = true;
                    gst::warning!(
                        CAT,
                        imp = self,
                        "CUDA graph capture failed, running plain forwards: {why}"
                    );
                }
                st.graphs = graphs;
                st.frames += 1;
                st.device_frames += 1;
                if reused {
                    st.reused += 1;
                } else {
                    st.inference += t.inference;
                    st.last_inference = t.inference;
                    st.preprocess += t.preprocess;
                    st.postprocess += t.postprocess;
                }
                st.compositing += t.compositing;
                st.upload += t.upload;
                st.download += t.download;
                st.wall += t.wall;
                st.total += t.wall;
                (st.pinned_bytes, st.device_bytes) = memory;
                let frames = st.frames;
                drop(st);
                gst::log!(
                    CAT,
                    imp = self,
                    "frame {frames} out (device path): upload {:.2} ms, network {:.2} ms, compositing {:.2} ms, download and wait {:.2} ms, latency {:.2} ms",
                    ms(t.upload),
                    ms(t.inference),
                    ms(t.compositing),
                    ms(t.download),
                    ms(t.wall)
                );
                state.ready.push_back(Ready::Out(out));
                return Ok(());
            }
        };
        state.pending.push_back(inbuf);
        if let Some(alpha) = finished
            && let Some(buf) = state.pending.pop_front()
        {
            state.ready.push_back(Ready::Matte(buf, alpha));
        }
        Ok(())
    }

    /// The output buffer for an input buffer and its final matte.
    fn render(
        &self,
        state: &mut State,
        settings: &Settings,
        inbuf: &gst::Buffer,
        alpha: &[f32],
    ) -> Result<gst::Buffer, gst::FlowError> {
        let t0 = std::time::Instant::now();
        let in_info = state.in_info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let out_info = state
            .out_info
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let hard = settings.threshold > 0.0 && settings.threshold < 1.0;
        let alpha_u8: Vec<u8> = alpha
            .iter()
            .map(|&a| match hard {
                true if f64::from(a) >= settings.threshold => 255,
                true => 0,
                false => (a.clamp(0.0, 1.0) * 255.0).round() as u8,
            })
            .collect();
        let mut outbuf =
            gst::Buffer::with_size(out_info.size()).map_err(|_| gst::FlowError::Error)?;
        {
            let out = outbuf.get_mut().ok_or(gst::FlowError::Error)?;
            // Timestamps, duration and flags travel with the frame.
            inbuf
                .copy_into(
                    out,
                    gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
                    ..,
                )
                .map_err(|_| gst::FlowError::Error)?;
        }
        let matrix = yuv_matrix(&in_info);
        let format = to_pixel_format(in_info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let vin = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &in_info)
            .map_err(|_| gst::FlowError::Error)?;
        let frame = input_frame(&vin, format, matrix)?;
        {
            let outref = outbuf.get_mut().ok_or(gst::FlowError::Error)?;
            let mut vout = VideoFrameRef::from_buffer_ref_writable(outref, &out_info)
                .map_err(|_| gst::FlowError::Error)?;
            let mut out = output_frame(&mut vout, matrix)?;
            let result = match state.output {
                Output::Matte => composite::write_gray(&alpha_u8, &mut out),
                Output::Alpha => composite::with_alpha(&frame, &alpha_u8, &mut out),
                Output::Composite => {
                    let blurred;
                    let shape = (frame.format, frame.width, frame.height, frame.matrix);
                    let background = match self.prepare_background(state, settings, shape)? {
                        Some(bg) => bg.as_ref(),
                        None => {
                            blurred =
                                composite::blurred(&frame, settings.blur_radius).map_err(|e| {
                                    gst::element_imp_error!(
                                        self,
                                        gst::StreamError::Failed,
                                        ("blur: {e}")
                                    );
                                    gst::FlowError::Error
                                })?;
                            &blurred
                        }
                    };
                    composite::blend(&frame, &background.as_frame(), &alpha_u8, &mut out)
                }
            };
            result.map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("output: {e}"));
                gst::FlowError::Error
            })?;
        }
        let compositing = t0.elapsed();
        let mut st = lock(&self.stats);
        st.frames += 1;
        st.compositing += compositing;
        st.total += compositing;
        gst::log!(
            CAT,
            imp = self,
            "frame {} out, compositing {:.1} ms",
            st.frames,
            ms(compositing)
        );
        Ok(outbuf)
    }

    /// Renders every frame still held (EOS, new caps): nothing that came in is lost.
    fn drain(&self) {
        let settings = lock(&self.settings).clone();
        let mut outputs = Vec::new();
        {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else { return };
            // A short last batch goes through as it is.
            if let Err(e) = self.submit_batch(state, &settings) {
                gst::warning!(CAT, imp = self, "last batch at drain: {e:?}");
            }
            match state.scheduler.finish() {
                Ok(done) => {
                    for d in done {
                        if self.complete(state, &settings, d).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => gst::warning!(CAT, imp = self, "worker at drain: {e}"),
            }
            if let Some(alpha) = state.temporal.drain()
                && let Some(buf) = state.pending.pop_front()
            {
                state.ready.push_back(Ready::Matte(buf, alpha));
            }
            if !state.pending.is_empty() {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{} frames had no matte at drain",
                    state.pending.len()
                );
            }
            while let Some(ready) = state.ready.pop_front() {
                match self.output(state, &settings, ready) {
                    Ok(out) => outputs.push(out),
                    Err(e) => gst::warning!(CAT, imp = self, "dropping a frame at drain: {e:?}"),
                }
            }
            state.pending.clear();
            state.temporal.reset();
        }
        gst::debug!(CAT, imp = self, "draining {} frames", outputs.len());
        for out in outputs {
            if let Err(e) = self.obj().src_pad().push(out) {
                gst::debug!(CAT, imp = self, "push at drain: {e:?}");
                break;
            }
        }
    }

    /// Whether upstream says it is live (a camera): then frames are never held back
    /// to fill a batch. No answer counts as not live (a file, an appsrc).
    fn upstream_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        self.obj().sink_pad().peer_query(&mut q) && q.result().0
    }

    /// The delay frames in flight and OFD add, as a duration.
    fn added_latency(&self) -> gst::ClockTime {
        let guard = lock(&self.state);
        let Some(state) = guard.as_ref() else {
            return gst::ClockTime::ZERO;
        };
        // A frame leaves when the frames after it arrive: one for each further slot
        // in flight, one more for OFD.
        let frames = (state.scheduler.max_in_flight() as u64 - 1) + u64::from(state.ofd);
        let fps = state.in_info.as_ref().map(|i| i.fps());
        match fps {
            Some(f) if f.numer() > 0 && f.denom() > 0 => gst::ClockTime::SECOND
                .mul_div_floor(frames * f.denom() as u64, f.numer() as u64)
                .unwrap_or(gst::ClockTime::ZERO),
            _ => gst::ClockTime::ZERO,
        }
    }
}

/// The device path's job, on the worker: issue the frames (upload, one forward pass
/// over all of them, output frames, downloads); the second step, run once the next
/// job has been issued, waits for the results and fills the output buffers. The input
/// buffers live until then, so frames copied straight from their own page-locked
/// memory stay valid.
fn render_job(
    engine: &Engine,
    path: &DevicePath,
    spec: RenderSpec,
    frames: Vec<Queued>,
    pad_to: usize,
    info: gst_video::VideoInfo,
    out_info: gst_video::VideoInfo,
) -> Step<Done> {
    let mut guard = lock(path);
    let (transfer, state) = &mut *guard;
    let infer: Vec<bool> = frames.iter().map(|(_, i)| *i).collect();
    let issued = (|| -> Result<Vec<modnetmatte::InFlight>, String> {
        let format = to_pixel_format(info.format()).ok_or("unsupported format")?;
        let mapped = frames
            .iter()
            .map(|(buf, _)| VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "input buffer does not match the caps")?;
        let views = mapped
            .iter()
            .map(|v| input_frame(v, format, yuv_matrix(&info)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "input buffer unreadable")?;
        // A short last batch runs padded to the full one (same shape, same graphs).
        engine
            .render_batch_padded(transfer, state, &spec, &views, &infer, pad_to)
            .map_err(|e| e.to_string())
    })();
    let m = transfer.memory();
    let memory = (m.pinned_bytes, m.device_bytes + state.device_bytes());
    let graphs = state.graph_status();
    drop(guard);
    let rendered = move |result, reused| Done::Rendered {
        result,
        reused,
        memory,
        graphs: graphs.clone(),
    };
    match issued {
        Err(e) => Step::Done(rendered(Err(e), false)),
        Ok(in_flight) => Step::Later(Box::new(move || {
            let mut done: Vec<Done> = in_flight
                .into_iter()
                .zip(&frames)
                .map(|(f, (buf, infer))| rendered(finish_output(f, buf, &out_info), !infer))
                .collect();
            match done.len() {
                1 => done.remove(0),
                _ => Done::Batch(done),
            }
        })),
    }
}

/// Waits for a device-path frame and writes it into a new output buffer carrying
/// the input's timestamps, duration and flags.
fn finish_output(
    in_flight: modnetmatte::InFlight,
    inbuf: &gst::Buffer,
    out_info: &gst_video::VideoInfo,
) -> Result<(gst::Buffer, StageTimings), String> {
    let mut outbuf = gst::Buffer::with_size(out_info.size())
        .map_err(|_| format!("cannot allocate a {} byte output buffer", out_info.size()))?;
    let out = outbuf.get_mut().ok_or("output buffer not writable")?;
    inbuf
        .copy_into(
            out,
            gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
            ..,
        )
        .map_err(|_| "cannot copy the input's timestamps")?;
    let mut vout = VideoFrameRef::from_buffer_ref_writable(out, out_info)
        .map_err(|_| "output buffer does not match the caps")?;
    let mut frame =
        output_frame(&mut vout, yuv_matrix(out_info)).map_err(|_| "output buffer unwritable")?;
    let timings = in_flight.finish(&mut frame).map_err(|e| e.to_string())?;
    drop(vout);
    Ok((outbuf, timings))
}

fn input_frame<'a>(
    f: &'a VideoFrameRef<&gst::BufferRef>,
    format: PixelFormat,
    matrix: YuvMatrix,
) -> Result<Frame<'a>, gst::FlowError> {
    let planes = (0..f.n_planes())
        .map(|i| {
            let data = f.plane_data(i).map_err(|_| gst::FlowError::Error)?;
            let stride =
                usize::try_from(f.plane_stride()[i as usize]).map_err(|_| gst::FlowError::Error)?;
            Ok(Plane { data, stride })
        })
        .collect::<Result<Vec<_>, gst::FlowError>>()?;
    Ok(Frame {
        format,
        width: f.width(),
        height: f.height(),
        planes,
        matrix,
    })
}

fn output_frame<'a>(
    f: &'a mut VideoFrameRef<&mut gst::BufferRef>,
    matrix: YuvMatrix,
) -> Result<FrameMut<'a>, gst::FlowError> {
    let format = to_pixel_format(f.format()).ok_or(gst::FlowError::NotNegotiated)?;
    let (width, height) = (f.width(), f.height());
    let strides: Vec<usize> = f
        .plane_stride()
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| gst::FlowError::Error))
        .collect::<Result<_, _>>()?;
    let n = f.n_planes() as usize;
    let planes = f
        .planes_data_mut()
        .into_iter()
        .take(n)
        .zip(strides)
        .map(|(data, stride)| PlaneMut { data, stride })
        .collect();
    Ok(FrameMut {
        format,
        width,
        height,
        planes,
        matrix,
    })
}

// ------------------------------------------------------------------ GObject

#[glib::object_subclass]
impl ObjectSubclass for ModnetMatte {
    const NAME: &'static str = "GstModnetMatte";
    type Type = super::ModnetMatte;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for ModnetMatte {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let live = glib::ParamFlags::READWRITE
                | gst::PARAM_FLAG_MUTABLE_PLAYING
                | gst::PARAM_FLAG_CONTROLLABLE;
            let at_start = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_READY;
            vec![
                glib::ParamSpecEnum::builder_with_default("output", Output::default())
                    .nick("Output")
                    .blurb("composite: the frame with its background replaced (same format out); alpha: the frame with the matte as straight alpha, for compositor or OBS; matte: the GRAY8 matte. Set it in NULL or READY")
                    .flags(at_start)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("background", Background::default())
                    .nick("Background")
                    .blurb("What replaces the background in output=composite: blur (the frame blurred by blur-radius), color (background-color) or image (background-image). Takes effect on the next frame")
                    .flags(live)
                    .build(),
                glib::ParamSpecUInt::builder("background-color")
                    .nick("Background colour")
                    .blurb("Colour for background=color, as 0xAARRGGBB (alpha ignored), e.g. 0xff00b140 (green) or 0xffffffff (white). Takes effect on the next frame")
                    .default_value(DEFAULT_COLOR)
                    .flags(live)
                    .build(),
                glib::ParamSpecString::builder("background-image")
                    .nick("Background image")
                    .blurb("PNG or JPEG file for background=image, scaled to cover the frame keeping its aspect ratio (cropped, never stretched). Unreadable at start: an error; changed to an unreadable file while playing: a warning and the previous background stays")
                    .flags(live)
                    .build(),
                glib::ParamSpecUInt::builder("blur-radius")
                    .nick("Blur radius")
                    .blurb("Radius in pixels of the background blur for background=blur; larger hides more of the room. Takes effect on the next frame")
                    .minimum(1)
                    .maximum(256)
                    .default_value(DEFAULT_BLUR)
                    .flags(live)
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("Model file")
                    .blurb("TorchScript MODNet file (tools/modnet/export.py). Unset: $MODNETMATTE_MODEL, else modnetmatte/modnet_photographic.pt under $XDG_DATA_HOME (~/.local/share), then $XDG_DATA_DIRS (/usr/local/share, /usr/share). Set it in NULL or READY")
                    .flags(at_start)
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Where the network runs: auto (CUDA if libtorch sees a GPU, else CPU), cpu, cuda or cuda:N (an error if absent). Set it in NULL or READY")
                    .default_value(Some("auto"))
                    .flags(at_start)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("precision", Precision::default())
                    .nick("Precision")
                    .blurb("Numbers the network computes in: fp32, or fp16 on CUDA, which loads the half-precision variant <model>_fp16.pt next to the model file (made by setup: half precision but for the backbone's first blocks, which the matte is sensitive to; the photo within about 1/255 of fp32). On a CPU fp32 runs instead, said in the log. Set it in NULL or READY")
                    .flags(at_start)
                    .build(),
                glib::ParamSpecUInt::builder("ref-size")
                    .nick("Reference size")
                    .blurb("Short side in pixels of the picture the network sees (MODNet's reference rule; multiples of 32). 512 is what the model was trained at; 256 is about 4x faster with softer edges. Set it in NULL or READY")
                    .minimum(32)
                    .maximum(2048)
                    .default_value(DEFAULT_REF_SIZE)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb("0: soft matte (smooth hair edges). A value in (0, 1): hard matte, pixels with alpha >= threshold are person, the rest background. Takes effect on the next frame")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.0)
                    .flags(live)
                    .build(),
                glib::ParamSpecUInt::builder("num-threads")
                    .nick("Threads")
                    .blurb("CPU threads for the network (libtorch's pool, shared by the whole process); 0: one per core. Set it in NULL or READY")
                    .maximum(256)
                    .default_value(0)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecUInt::builder("mask-every")
                    .nick("Matte every N frames")
                    .blurb("Run the network on every Nth frame only and reuse the last matte in between: N times less CPU, at the cost of mattes that lag behind fast motion. 1: every frame. Takes effect on the next frame")
                    .minimum(1)
                    .maximum(60)
                    .default_value(1)
                    .flags(live)
                    .build(),
                glib::ParamSpecDouble::builder("temporal-smoothing")
                    .nick("Temporal smoothing")
                    .blurb("Blend each matte with the previous ones (exponential moving average weight of the past): steadier edges, slower to follow motion. 0: off; 0.5 is a good start. Takes effect on the next frame")
                    .minimum(0.0)
                    .maximum(0.99)
                    .default_value(0.0)
                    .flags(live)
                    .build(),
                glib::ParamSpecBoolean::builder("ofd")
                    .nick("One-frame delay")
                    .blurb("MODNet's one-frame-delay fix: a pixel whose alpha jumps for a single frame while the frames before and after agree takes their mean. Removes one-frame flicker; adds one frame of latency (reported in the latency query). Set it in NULL or READY")
                    .default_value(false)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Frames in flight")
                    .blurb("Frames being processed at once: the network works on one frame on its own thread while the next is prepared and the previous composited. 2 (double buffering) keeps every core busy; 1 is synchronous and has the lowest latency; each extra frame adds one frame of latency (reported in the latency query). Set it in NULL or READY")
                    .minimum(1)
                    .maximum(4)
                    .default_value(DEFAULT_IN_FLIGHT)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecBoolean::builder("drop-late")
                    .nick("Skip the network for late frames")
                    .blurb("When downstream reports (QoS) that frames arrive too late, reuse the last matte for late frames instead of running the network, to catch up rather than fall further behind. Takes effect on the next frame")
                    .default_value(false)
                    .flags(live)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("compositing", Compositing::default())
                    .nick("Compositing")
                    .blurb("Where the output frame is made: auto (on the GPU when the network runs on CUDA: the frame is uploaded once through page-locked memory and only the result comes back; else the CPU), cpu (the CPU always: the matte is copied back first), device (tensor ops on the network's device; on a CPU these are libtorch's kernels). ofd needs the mattes on the host, so with ofd=true it is the CPU. Set it in NULL or READY")
                    .flags(at_start)
                    .build(),
                glib::ParamSpecBoolean::builder("cuda-graphs")
                    .nick("CUDA graphs")
                    .blurb("On the CUDA device path, capture each stage's GPU work (network, output frame) once per frame size after a few warm-up frames and replay it for every later frame: much less CPU time per frame and lower latency. If a capture fails the element says so in the log and runs plain forwards. No effect on a CPU. Set it in NULL or READY")
                    .default_value(true)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecUInt::builder("batch")
                    .nick("Frames per forward pass")
                    .blurb("For files and other non-live sources on the device path: run the network on this many frames at once, so that the GPU is kept busy (throughput up, each frame waits for its batch). Order, timestamps and EOS are kept; a short last batch goes through as it is. 0 (auto): 8 on CUDA, 1 on a CPU. A live source (camera) always gets 1. Set it in NULL or READY")
                    .maximum(MAX_BATCH)
                    .default_value(0)
                    .flags(at_start)
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Frames processed (and how many reused the previous matte) and milliseconds per frame since start: mean and last inference, mean preprocess, postprocess, compositing and total; where compositing runs; on the device path mean upload, download and latency, the page-locked and device buffers held (MB), the GPU's used and total memory (MB, all processes; 0 without CUDA), frames per forward pass (batch), whether CUDA graphs are on (or why they failed) and how many replays ran")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        // GObject has checked each value's type and range against its ParamSpec.
        match pspec.name() {
            "output" => s.output = value.get().unwrap_or_default(),
            "background" => s.background = value.get().unwrap_or_default(),
            "background-color" => s.background_color = value.get().unwrap_or(DEFAULT_COLOR),
            "background-image" => s.background_image = value.get().unwrap_or(None),
            "blur-radius" => s.blur_radius = value.get().unwrap_or(DEFAULT_BLUR),
            "model" => s.model = value.get().unwrap_or(None),
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "auto".into())
            }
            "precision" => s.precision = value.get().unwrap_or_default(),
            "ref-size" => s.ref_size = value.get().unwrap_or(DEFAULT_REF_SIZE),
            "threshold" => s.threshold = value.get().unwrap_or(0.0),
            "num-threads" => s.num_threads = value.get().unwrap_or(0),
            "mask-every" => s.mask_every = value.get().unwrap_or(1),
            "temporal-smoothing" => s.temporal_smoothing = value.get().unwrap_or(0.0),
            "ofd" => s.ofd = value.get().unwrap_or(false),
            "max-in-flight" => s.max_in_flight = value.get().unwrap_or(DEFAULT_IN_FLIGHT),
            "drop-late" => s.drop_late = value.get().unwrap_or(false),
            "compositing" => s.compositing = value.get().unwrap_or_default(),
            "cuda-graphs" => s.cuda_graphs = value.get().unwrap_or(true),
            "batch" => s.batch = value.get().unwrap_or(0),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "output" => s.output.to_value(),
            "background" => s.background.to_value(),
            "background-color" => s.background_color.to_value(),
            "background-image" => s.background_image.to_value(),
            "blur-radius" => s.blur_radius.to_value(),
            "model" => s.model.to_value(),
            "device" => s.device.to_value(),
            "precision" => s.precision.to_value(),
            "ref-size" => s.ref_size.to_value(),
            "threshold" => s.threshold.to_value(),
            "num-threads" => s.num_threads.to_value(),
            "mask-every" => s.mask_every.to_value(),
            "temporal-smoothing" => s.temporal_smoothing.to_value(),
            "ofd" => s.ofd.to_value(),
            "max-in-flight" => s.max_in_flight.to_value(),
            "drop-late" => s.drop_late.to_value(),
            "compositing" => s.compositing.to_value(),
            "cuda-graphs" => s.cuda_graphs.to_value(),
            "batch" => s.batch.to_value(),
            "stats" => {
                drop(s);
                self.stats_structure().to_value()
            }
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for ModnetMatte {}

impl ElementImpl for ModnetMatte {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "MODNet background replacement",
                "Filter/Effect/Video",
                "Cuts the person out of video with the MODNet portrait-matting network and replaces the background (blur, colour or picture), or outputs the matte or straight alpha",
                "modnetmatte developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut src_formats = SINK_FORMATS.to_vec();
            src_formats.push(VideoFormat::Gray8);
            let sink = gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &caps_for(&SINK_FORMATS),
            );
            let src = gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps_for(&src_formats),
            );
            // Both templates are built from valid constant caps: they cannot fail.
            vec![sink.expect("sink template"), src.expect("src template")] // ok: constant caps
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for ModnetMatte {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn submit_input_buffer(
        &self,
        _is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        self.accept(state, &settings, inbuf)?;
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(
        &self,
    ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let Some(ready) = state.ready.pop_front() else {
            return Ok(gst_base::subclass::base_transform::GenerateOutputSuccess::NoOutput);
        };
        let out = self.output(state, &settings, ready)?;
        Ok(gst_base::subclass::base_transform::GenerateOutputSuccess::Buffer(out))
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            // Frames held back by OFD go out before the stream ends or changes.
            gst::EventView::Eos(_) | gst::EventView::Caps(_) => self.drain(),
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.scheduler.discard();
                    state.submitted = 0;
                    state.earliest = None;
                    state.pending.clear();
                    state.ready.clear();
                    state.batch.clear();
                    state.temporal.reset();
                    if let Some(path) = &state.device_path {
                        lock(path).1.reset();
                    }
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Qos(q) = event.view() {
            let (_kind, _proportion, diff, timestamp) = q.get();
            if let (Some(ts), Some(state)) = (timestamp, lock(&self.state).as_mut()) {
                // As GstBaseTransform: a late buffer pushes the deadline twice its lateness.
                let jitter = if diff > 0 { 2 * diff } else { diff };
                let earliest = if jitter >= 0 {
                    ts.checked_add(gst::ClockTime::from_nseconds(jitter as u64))
                } else {
                    ts.checked_sub(gst::ClockTime::from_nseconds(jitter.unsigned_abs()))
                };
                state.earliest = earliest.or(Some(ts));
                gst::debug!(
                    CAT,
                    imp = self,
                    "QoS: diff {diff} ns, earliest {:?}",
                    state.earliest
                );
            }
        }
        self.parent_src_event(event)
    }

    /// On the CUDA device path, offers upstream a pool of page-locked buffers: frames
    /// written there go to the GPU with no copy into staging memory.
    fn propose_allocation(
        &self,
        decide_query: Option<&gst::query::Allocation>,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        self.parent_propose_allocation(decide_query, query)?;
        let ordinal = lock(&self.state)
            .as_ref()
            .filter(|s| s.device_path.is_some())
            .and_then(|s| match s.engine.device() {
                tch::Device::Cuda(i) => Some(i),
                _ => None,
            });
        let (Some(ordinal), (Some(caps), _)) = (ordinal, query.get()) else {
            return Ok(());
        };
        let caps = caps.to_owned();
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|_| gst::loggable_error!(CAT, "allocation query with unusable caps"))?;
        let size = u32::try_from(info.size())
            .map_err(|_| gst::loggable_error!(CAT, "frame too large for a pool"))?;
        let pool = crate::pinnedpool::PinnedBufferPool::new(Some(ordinal));
        let mut config = pool.config();
        // Frames in flight hold their buffer until their result is back: a batch
        // being collected, one per job in flight, and two more.
        let batch = lock(&self.state).as_ref().map_or(1, |s| s.batch_size) as u32;
        let min = batch * (lock(&self.settings).max_in_flight + 1) + 2;
        config.set_params(Some(&caps), size, min, 0);
        pool.set_config(config)
            .map_err(|_| gst::loggable_error!(CAT, "the page-locked pool refused its config"))?;
        // First in the list, so upstream takes it over any pool proposed before.
        if query.allocation_pools().count() > 0 {
            query.set_nth_allocation_pool(0, Some(&pool), size, min, 0);
        } else {
            query.add_allocation_pool(Some(&pool), size, min, 0);
        }
        gst::debug!(
            CAT,
            imp = self,
            "offered a page-locked pool: {min}+ buffers of {size} bytes"
        );
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let handled = BaseTransformImplExt::parent_query(self, direction, query);
        if handled
            && direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let add = self.added_latency();
            let (live, min, max) = q.result();
            q.set(live, min + add, max.map(|m| m + add));
            gst::debug!(
                CAT,
                imp = self,
                "latency: adding {add} (frames in flight and OFD)"
            );
        }
        handled
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let model = find_model(settings.model.as_deref())
            .map_err(|e| gst::error_msg!(gst::ResourceError::NotFound, ("{e}")))?;
        let device: DeviceRequest = settings.device.parse().map_err(|e: modnetmatte::Error| {
            gst::error_msg!(gst::ResourceError::Settings, ("{e}"))
        })?;
        let picture = match (
            settings.background,
            settings.output,
            &settings.background_image,
        ) {
            (Background::Image, Output::Composite, None) => {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("background=image needs background-image (a PNG or JPEG file)")
                ));
            }
            (Background::Image, Output::Composite, Some(path)) => Some(
                load_picture(path)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")))?,
            ),
            _ => None,
        };
        let mut config = EngineConfig::new(&model);
        config.device = device;
        config.ref_size = settings.ref_size;
        config.precision = match settings.precision {
            Precision::Fp32 => modnetmatte::Precision::Fp32,
            Precision::Fp16 => modnetmatte::Precision::Fp16,
        };
        config.num_threads = settings.num_threads as usize;
        config.warmup_frame = None; // done in set_info, at the stream's real size
        config.cuda_graphs = settings.cuda_graphs;
        let engine = Engine::new(config).map_err(|e| {
            let kind = match e {
                modnetmatte::Error::ModelNotFound { .. } => gst::ResourceError::NotFound,
                modnetmatte::Error::Device { .. } | modnetmatte::Error::InvalidConfig(_) => {
                    gst::ResourceError::Settings
                }
                _ => gst::ResourceError::OpenRead,
            };
            gst::error_msg!(kind, ("{e}"))
        })?;
        gst::info!(
            CAT,
            imp = self,
            "model {} on {:?}: {}",
            model.display(),
            engine.device(),
            engine.device_note()
        );
        let on_device = match settings.compositing {
            Compositing::Auto => engine.device().is_cuda(),
            Compositing::Cpu => false,
            Compositing::Device => true,
        };
        let device_path = if on_device && settings.ofd {
            gst::info!(
                CAT,
                imp = self,
                "ofd holds mattes back on the host: compositing on the CPU"
            );
            None
        } else if on_device {
            let path = engine
                .render_state()
                .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
            Some(Arc::new(Mutex::new(path)))
        } else {
            None
        };
        let device_name = match engine.device() {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".to_string(),
        };
        gst::info!(
            CAT,
            imp = self,
            "compositing on {}",
            if device_path.is_some() {
                &device_name
            } else {
                "the CPU"
            }
        );
        *lock(&self.stats) = Stats {
            compositing_on: match device_path {
                Some(_) => format!("{device_name} (tensor ops)"),
                None => "cpu".into(),
            },
            cuda_ordinal: match engine.device() {
                tch::Device::Cuda(i) => Some(i),
                _ => None,
            },
            graphs_wanted: device_path.is_some()
                && matches!(engine.graph_mode(), modnetmatte::graphs::Mode::Cuda(_)),
            batch: 1,
            ..Stats::default()
        };
        let engine = Arc::new(engine);
        let scheduler = Scheduler::new(engine.clone(), settings.max_in_flight as usize)
            .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ("{e}")))?;
        *lock(&self.state) = Some(State {
            engine,
            scheduler,
            submitted: 0,
            last_size: (0, 0),
            earliest: None,
            output: settings.output,
            ofd: settings.ofd,
            in_info: None,
            out_info: None,
            temporal: Temporal::new(),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            picture,
            background: None,
            failed_picture: None,
            device_path,
            batch_size: 1,
            batch: Vec::new(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the state frees the model and every buffer it held.
        *lock(&self.state) = None;
        gst::info!(CAT, imp = self, "stopped: {}", self.stats_structure());
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let output = lock(&self.state)
            .as_ref()
            .map(|s| s.output)
            .unwrap_or_else(|| lock(&self.settings).output);
        let to_src = direction == gst::PadDirection::Sink;
        let mut out = gst::Caps::new_empty();
        {
            let out = out.get_mut()?;
            for (s, features) in caps.iter_with_features() {
                let formats: Vec<VideoFormat> = match s.value("format") {
                    Ok(v) => {
                        if let Ok(one) = v.get::<&str>() {
                            vec![VideoFormat::from_string(one)]
                        } else if let Ok(list) = v.get::<gst::List>() {
                            list.iter()
                                .filter_map(|v| v.get::<&str>().ok())
                                .map(VideoFormat::from_string)
                                .collect()
                        } else {
                            continue;
                        }
                    }
                    // No format field: anything the other side can take.
                    Err(_) => {
                        if to_src {
                            SINK_FORMATS.to_vec()
                        } else {
                            let mut all = SINK_FORMATS.to_vec();
                            all.push(VideoFormat::Gray8);
                            all
                        }
                    }
                };
                let mut mapped: Vec<VideoFormat> = Vec::new();
                for f in formats {
                    for m in map_format(output, f, to_src) {
                        if !mapped.contains(&m) {
                            mapped.push(m);
                        }
                    }
                }
                if mapped.is_empty() {
                    continue;
                }
                let mut s = s.to_owned();
                if mapped.len() == 1 {
                    s.set("format", mapped[0].to_str());
                } else {
                    s.set("format", gst::List::new(mapped.iter().map(|f| f.to_str())));
                }
                if output != Output::Composite {
                    // YUV colorimetry and chroma siting mean nothing for RGB or GRAY8.
                    s.remove_fields(["colorimetry", "chroma-site"]);
                }
                out.append_structure_full(s, Some(features.to_owned()));
            }
        }
        gst::debug!(
            CAT,
            imp = self,
            "transformed {caps} ({direction:?}) into {out}"
        );
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }
}

impl VideoFilterImpl for ModnetMatte {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        // Before taking the state lock: the query travels upstream.
        let live = self.upstream_is_live();
        let batch_setting = lock(&self.settings).batch;
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        state.batch_size = match (state.device_path.is_some(), live, batch_setting) {
            (false, _, n) => {
                if n > 1 {
                    gst::info!(
                        CAT,
                        imp = self,
                        "batch={n} applies to the device path only: 1"
                    );
                }
                1
            }
            (true, true, n) => {
                if n > 1 {
                    gst::info!(CAT, imp = self, "upstream is live: batch 1, not {n}");
                }
                1
            }
            (true, false, 0) if state.engine.device().is_cuda() => AUTO_BATCH_CUDA,
            (true, false, 0) => 1,
            (true, false, n) => n as usize,
        };
        lock(&self.stats).batch = state.batch_size as u32;
        gst::info!(
            CAT,
            imp = self,
            "{} frame(s) per forward pass",
            state.batch_size
        );
        if to_pixel_format(in_info.format()).is_none() {
            return Err(gst::loggable_error!(
                CAT,
                "unsupported input format {:?}",
                in_info.format()
            ));
        }
        let (w, h) = (in_info.width(), in_info.height());
        let (iw, ih) = state.engine.inference_size(w, h);
        gst::info!(
            CAT,
            imp = self,
            "{incaps} -> {outcaps}: network input {iw}x{ih}"
        );
        // Warm up at the stream's size (and batch) so that the first frame is not slow.
        state
            .engine
            .warm_up_batch(w, h, state.batch_size)
            .map_err(|e| gst::loggable_error!(CAT, "warm-up failed: {e}"))?;
        state.in_info = Some(in_info.clone());
        state.out_info = Some(out_info.clone());
        state.temporal.reset();
        Ok(())
    }
}
