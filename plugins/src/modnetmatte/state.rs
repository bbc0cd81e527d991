//! What exists while the element runs (between start and stop), and the stream's
//! logic on it: submit a buffer (or a batch of them) to the worker, take its results
//! in order through the temporal filters, make the output frames, drain at EOS and new
//! caps, forget at a flush. Errors come back typed (`StreamError`); `imp.rs` turns
//! them into element errors.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gst_base::prelude::*;
use gst_video::VideoFrameRef;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::gpu::graphs::Mode;
use modnetmatte::temporal::{self, Temporal, TemporalConfig};
use modnetmatte::worker::ordered::Scheduler;
use modnetmatte::{DevicePath, DeviceRequest, Engine, EngineConfig, FrameShape, composite};

use super::background::{Backgrounds, Notes};
use super::imp::CAT;
use super::jobs::{self, Done, Queued, SharedPath};
use super::realtime::{Realtime, frame_interval};
use super::settings::Settings;
use super::stats::{Stats, ms};
use super::{Compositing, Output, Pacing};
use crate::formats::{to_pixel_format, yuv_matrix};

/// Frames per forward pass with batch=0 (auto) on the CUDA device path when upstream
/// is not live (file jobs): on an H200 at 1080p fp16, 270-285 frames/s at 8 against
/// 158-220 at 1 (scripts/gpu_check.sh).
const AUTO_BATCH_CUDA: usize = 8;

/// Why a frame could not be handled; `imp.rs` posts it on the bus.
#[derive(Debug)]
pub(super) enum StreamError {
    NotNegotiated,
    /// The worker could not take a job.
    Worker(String),
    /// The network or the device path failed on a frame.
    Matting(String),
    /// The background frame could not be built.
    Background(String),
    /// The output frame could not be made.
    Output(String),
}

/// The element's object, settings and stats, for the stream's methods.
pub(super) struct Ctx<'a> {
    pub(super) obj: &'a super::ModnetMatte,
    pub(super) settings: &'a Settings,
    pub(super) stats: &'a Mutex<Stats>,
}

impl Ctx<'_> {
    pub(super) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A frame ready to go out: an input buffer with its final matte (composited on the
/// streaming thread), or an output buffer the device path has finished.
enum Ready {
    Matte(gst::Buffer, Arc<Vec<f32>>),
    Out(gst::Buffer),
}

/// How frames meet the network (per caps, `pacing`).
enum Net {
    /// Every frame waits for its own matte: jobs in order, up to max-in-flight.
    Ordered(Scheduler<Done>),
    /// Frames go out at once with the newest matte (the CPU compositing path).
    Realtime(Box<Realtime>),
}

pub(super) struct State {
    pub(super) engine: Arc<Engine>,
    /// Runs the network on its own thread: in order, or on the newest frame.
    net: Net,
    /// Jobs in flight for `Net::Ordered` (`max-in-flight`, 0 resolved per device).
    pub(super) in_flight: usize,
    /// Timestamp of the last frame the network ran on (every-frame: matte ages).
    network_pts: Option<gst::ClockTime>,
    /// Frames submitted since start or the last flush (mask-every counts them).
    submitted: u64,
    last_size: (u32, u32),
    /// From downstream QoS: frames due before this running time are late.
    pub(super) earliest: Option<gst::ClockTime>,
    pub(super) output: Output,
    /// Fixed at start: it changes the latency the element reports.
    ofd: bool,
    in_info: Option<gst_video::VideoInfo>,
    out_info: Option<gst_video::VideoInfo>,
    temporal: Temporal,
    /// Input buffers whose matte is not final yet (OFD holds one back).
    pending: VecDeque<gst::Buffer>,
    /// Frames waiting to be composited (CPU path) and pushed.
    ready: VecDeque<Ready>,
    /// Set when output frames are made on the network's device (`compositing`).
    device_path: Option<SharedPath>,
    backgrounds: Backgrounds,
    /// Frames per forward pass on the device path (per caps: `batch`, 1 when
    /// upstream is live), and the frames collected for the next one.
    pub(super) batch_size: usize,
    batch: Vec<Queued>,
}

impl State {
    /// Loads the model, starts the worker, decides where compositing runs; the stats
    /// the element starts with.
    pub(super) fn start(
        settings: &Settings,
        obj: &super::ModnetMatte,
    ) -> Result<(Self, Stats), gst::ErrorMessage> {
        let backgrounds = Backgrounds::at_start(settings)?;
        let (engine, model) = open_engine(settings)?;
        gst::info!(
            CAT,
            obj = obj,
            "model {} on {:?}: {}",
            model.display(),
            engine.device(),
            engine.device_note()
        );
        let device_path = device_path(&engine, settings, obj)?;
        let stats = Stats::new(
            match (&device_path, engine.cuda_ordinal()) {
                (None, _) => "cpu".into(),
                (Some(_), Some(i)) => format!("cuda:{i} (tensor ops)"),
                (Some(_), None) => "cpu (tensor ops)".into(),
            },
            engine.cuda_ordinal(),
            device_path.is_some() && matches!(engine.graph_mode(), Mode::Cuda(_)),
        );
        let engine = Arc::new(engine);
        // 0 (auto): measured per device, see the max-in-flight blurb.
        let in_flight = match (settings.run.max_in_flight, &device_path) {
            (0, Some(_)) if engine.device().is_cuda() => 2,
            (0, _) => 1,
            (n, _) => n as usize,
        };
        let scheduler = Scheduler::new(engine.clone(), in_flight)
            .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ("{e}")))?;
        let state = Self {
            engine,
            net: Net::Ordered(scheduler),
            in_flight,
            network_pts: None,
            submitted: 0,
            last_size: (0, 0),
            earliest: None,
            output: settings.look.output,
            ofd: settings.matte.ofd,
            in_info: None,
            out_info: None,
            temporal: Temporal::new(),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            device_path,
            backgrounds,
            batch_size: 1,
            batch: Vec::new(),
        };
        Ok((state, stats))
    }

    /// New caps: the pacing and batch size for this stream (`live`: upstream says it
    /// is live), and a warm-up at its frame size and batch so that the first frame is
    /// not slow. Returns what was chosen, for the log.
    pub(super) fn set_caps(
        &mut self,
        in_info: &gst_video::VideoInfo,
        out_info: &gst_video::VideoInfo,
        live: bool,
        run: &super::settings::Run,
    ) -> Result<String, String> {
        self.batch_size = match (self.device_path.is_some(), live, run.batch) {
            (false, _, _) | (true, true, _) => 1,
            (true, false, 0) if self.engine.device().is_cuda() => AUTO_BATCH_CUDA,
            (true, false, 0) => 1,
            (true, false, n) => n as usize,
        };
        let (w, h) = (in_info.width(), in_info.height());
        let network = self
            .engine
            .warm_up_batch(w, h, self.batch_size)
            .map_err(|e| format!("warm-up failed: {e}"))?;
        self.in_info = Some(in_info.clone());
        self.out_info = Some(out_info.clone());
        self.temporal.reset();
        let realtime = match run.pacing {
            Pacing::Auto => live,
            Pacing::Realtime => true,
            Pacing::EveryFrame => false,
        };
        // The device path gives every frame its own matte: the GPU keeps up.
        let pacing = self.set_net(realtime && self.device_path.is_none(), in_info, network)?;
        let (iw, ih) = self.engine.inference_size(w, h);
        let why = match (run.batch, self.batch_size) {
            (n, 1) if n > 1 && live => " (upstream is live)",
            (n, 1) if n > 1 => " (batches are for the device path)",
            _ => "",
        };
        Ok(format!(
            "network input {iw}x{ih} ({:.1} ms warm), {} frame(s) per forward pass{why}, pacing {pacing}{}",
            ms(network),
            self.batch_size,
            match (realtime, self.device_path.is_some(), self.ofd) {
                (true, true, _) => " (the device path: every frame its own matte)",
                (true, false, true) =>
                    " (ofd does not apply: it would hold every matte back by a network run)",
                _ => "",
            }
        ))
    }

    /// Runs the network in order or on the newest frame from now on; the pacing's
    /// name.
    fn set_net(
        &mut self,
        realtime: bool,
        info: &gst_video::VideoInfo,
        network: Duration,
    ) -> Result<&'static str, String> {
        match (realtime, &mut self.net) {
            // The same worker: dropping it would wait for the network's current run.
            (true, Net::Realtime(rt)) => rt.set_caps(info, network),
            (true, Net::Ordered(_)) => {
                let rt = Realtime::new(self.engine.clone(), info, network)?;
                self.net = Net::Realtime(Box::new(rt));
            }
            (false, Net::Realtime(_)) => {
                let s = Scheduler::new(self.engine.clone(), self.in_flight);
                self.net = Net::Ordered(s.map_err(|e| e.to_string())?);
            }
            (false, Net::Ordered(_)) => {}
        }
        Ok(self.pacing())
    }

    /// Whether frames go out with the newest matte (realtime pacing).
    pub(super) fn pacing(&self) -> &'static str {
        match self.net {
            Net::Realtime(_) => "realtime",
            Net::Ordered(_) => "every-frame",
        }
    }

    /// Hands one input buffer to the worker (to be matted, or to reuse the last
    /// matte; on the device path, once a batch is full) and takes in whatever the
    /// worker has finished.
    pub(super) fn submit(&mut self, ctx: &Ctx<'_>, inbuf: gst::Buffer) -> Result<(), StreamError> {
        let info = self.in_info.clone().ok_or(StreamError::NotNegotiated)?;
        if let Net::Realtime(rt) = &mut self.net {
            let alpha = rt.frame(ctx, &inbuf, self.submitted)?;
            self.submitted += 1;
            self.ready.push_back(Ready::Matte(inbuf, alpha));
            return Ok(());
        }
        let size = (info.width(), info.height());
        let same_size = self.last_size == size;
        let mut infer =
            temporal::is_network_frame(self.submitted, ctx.settings.matte.mask_every) || !same_size;
        if infer
            && ctx.settings.matte.drop_late
            && self.submitted > 0
            && same_size
            && self.is_late(ctx, &inbuf)
        {
            // Behind downstream's clock: reuse the last matte rather than fall further behind.
            infer = false;
            ctx.stats().late += 1;
        }
        self.submitted += 1;
        self.last_size = size;
        if self.device_path.is_some() {
            self.batch.push((inbuf, infer));
            if self.batch.len() < self.batch_size {
                return Ok(());
            }
            return self.submit_batch(ctx);
        }
        let Net::Ordered(scheduler) = &mut self.net else {
            return Err(StreamError::NotNegotiated);
        };
        let submitted = if infer {
            scheduler.submit(move |engine: &Engine| jobs::matte_job(engine, inbuf, &info))
        } else {
            scheduler.submit(move |_: &Engine| Done::Reuse(inbuf))
        };
        self.absorb(ctx, submitted)
    }

    /// Hands the frames collected for the device path to the worker as one job (one
    /// forward pass; a short batch runs padded to the full one).
    fn submit_batch(&mut self, ctx: &Ctx<'_>) -> Result<(), StreamError> {
        let (Some(path), false) = (self.device_path.clone(), self.batch.is_empty()) else {
            return Ok(());
        };
        let info = self.in_info.clone().ok_or(StreamError::NotNegotiated)?;
        let out_info = self.out_info.clone().ok_or(StreamError::NotNegotiated)?;
        let spec = self.output_spec(ctx, &info)?;
        let Net::Ordered(scheduler) = &mut self.net else {
            return Err(StreamError::NotNegotiated);
        };
        let frames = std::mem::take(&mut self.batch);
        let pad_to = self.batch_size;
        let submitted = scheduler.submit_staged(move |engine: &Engine| {
            jobs::device_job(engine, &path, spec, frames, pad_to, info, out_info)
        });
        self.absorb(ctx, submitted)
    }

    /// Takes in what the worker has finished, in order.
    fn absorb(
        &mut self,
        ctx: &Ctx<'_>,
        submitted: modnetmatte::Result<Vec<Done>>,
    ) -> Result<(), StreamError> {
        for d in submitted.map_err(|e| StreamError::Worker(e.to_string()))? {
            self.complete(ctx, d)?;
        }
        Ok(())
    }

    /// What the output should be made of the next frame, from the settings now.
    fn output_spec(
        &mut self,
        ctx: &Ctx<'_>,
        info: &gst_video::VideoInfo,
    ) -> Result<OutputSpec, StreamError> {
        let format = to_pixel_format(info.format()).ok_or(StreamError::NotNegotiated)?;
        let output = match self.output {
            Output::Composite => OutputKind::Composite,
            Output::Alpha => OutputKind::Alpha(
                self.out_info
                    .as_ref()
                    .and_then(|o| to_pixel_format(o.format()))
                    .ok_or(StreamError::NotNegotiated)?,
            ),
            Output::Matte => OutputKind::Matte,
        };
        let mut background = BackgroundSource::Blur(ctx.settings.look.blur_radius);
        if self.output == Output::Composite {
            let shape = FrameShape {
                format,
                width: info.width(),
                height: info.height(),
                matrix: yuv_matrix(info),
            };
            let mut notes = Notes::default();
            let frame = self.backgrounds.frame(ctx.settings, shape, &mut notes);
            report(ctx, notes);
            if let Some(frame) = frame.map_err(StreamError::Background)? {
                background = BackgroundSource::Frame(frame);
            }
        }
        Ok(OutputSpec {
            output,
            background,
            threshold: ctx.settings.matte.threshold,
            smoothing: ctx.settings.matte.temporal_smoothing as f32,
        })
    }

    /// A worker result, in order: through the temporal filters (CPU path); what they
    /// finalise, and the device path's finished frames, move to `ready`.
    fn complete(&mut self, ctx: &Ctx<'_>, done: Done) -> Result<(), StreamError> {
        let (w, h) = self.last_size;
        let config = TemporalConfig {
            mask_every: ctx.settings.matte.mask_every,
            smoothing: ctx.settings.matte.temporal_smoothing as f32,
            ofd: self.ofd,
        };
        let (inbuf, finished) = match done {
            Done::Matte(inbuf, result) => {
                let (matte, t) = result.map_err(StreamError::Matting)?;
                ctx.stats().add_matte(&t);
                gst::log!(
                    CAT,
                    obj = ctx.obj,
                    "matte: preprocess {:.1} ms, inference {:.1} ms, postprocess {:.1} ms",
                    ms(t.preprocess),
                    ms(t.inference),
                    ms(t.postprocess)
                );
                let (mw, mh) = (matte.width, matte.height);
                self.count_matte_use(ctx, &inbuf, false);
                (inbuf, self.temporal.push(&config, mw, mh, matte.alpha))
            }
            Done::Reuse(inbuf) => {
                ctx.stats().reused += 1;
                self.count_matte_use(ctx, &inbuf, true);
                (inbuf, self.temporal.push_reused(&config, w, h))
            }
            Done::Batch(frames) => {
                for d in frames {
                    self.complete(ctx, d)?;
                }
                return Ok(());
            }
            Done::Rendered {
                result,
                reused,
                memory,
                graphs,
            } => {
                let (out, t) = result.map_err(StreamError::Matting)?;
                self.count_matte_use(ctx, &out, reused);
                let failure = ctx.stats().add_device_frame(&t, reused, memory, graphs);
                if let Some(why) = failure {
                    gst::warning!(
                        CAT,
                        obj = ctx.obj,
                        "CUDA graph capture failed, running plain forwards: {why}"
                    );
                }
                gst::log!(
                    CAT,
                    obj = ctx.obj,
                    "frame out (device path): upload {:.2} ms, network {:.2} ms, compositing {:.2} ms, download and wait {:.2} ms, latency {:.2} ms",
                    ms(t.upload),
                    ms(t.inference),
                    ms(t.compositing),
                    ms(t.download),
                    ms(t.wall)
                );
                self.ready.push_back(Ready::Out(out));
                return Ok(());
            }
        };
        self.pending.push_back(inbuf);
        if let Some(alpha) = finished
            && let Some(buf) = self.pending.pop_front()
        {
            self.ready.push_back(Ready::Matte(buf, alpha));
        }
        Ok(())
    }

    /// Every-frame pacing: a frame goes out with its own matte, or (`reused`:
    /// mask-every, drop-late) with the last network frame's; for the matte-age stats.
    fn count_matte_use(&mut self, ctx: &Ctx<'_>, buf: &gst::Buffer, reused: bool) {
        if !reused {
            self.network_pts = buf.pts();
        }
        let age = super::stats::age(buf.pts(), self.network_pts);
        ctx.stats().add_matte_use(reused, age);
    }

    /// The next frame to push, if one is ready (the CPU path composites it now).
    pub(super) fn next_output(
        &mut self,
        ctx: &Ctx<'_>,
    ) -> Result<Option<gst::Buffer>, StreamError> {
        match self.ready.pop_front() {
            None => Ok(None),
            Some(Ready::Out(out)) => Ok(Some(out)),
            Some(Ready::Matte(inbuf, alpha)) => self.composite_cpu(ctx, &inbuf, &alpha).map(Some),
        }
    }

    /// The CPU path's output buffer for an input buffer and its final matte.
    fn composite_cpu(
        &mut self,
        ctx: &Ctx<'_>,
        inbuf: &gst::Buffer,
        alpha: &[f32],
    ) -> Result<gst::Buffer, StreamError> {
        let t0 = std::time::Instant::now();
        let in_info = self.in_info.clone().ok_or(StreamError::NotNegotiated)?;
        let out_info = self.out_info.clone().ok_or(StreamError::NotNegotiated)?;
        let spec = self.output_spec(ctx, &in_info)?;
        let vin = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &in_info)
            .map_err(|_| StreamError::Output("input buffer does not match the caps".into()))?;
        let frame = jobs::input_frame(&vin, &in_info).map_err(StreamError::Output)?;
        let (outbuf, ()) = jobs::new_output(inbuf, &out_info, |out| {
            composite::output_frame(&frame, alpha, &spec, out).map_err(|e| e.to_string())
        })
        .map_err(StreamError::Output)?;
        let compositing = t0.elapsed();
        let mut st = ctx.stats();
        st.add_composited(compositing);
        gst::log!(
            CAT,
            obj = ctx.obj,
            "frame {} out, compositing {:.1} ms",
            st.frames,
            ms(compositing)
        );
        Ok(outbuf)
    }

    /// Every frame still held (EOS, new caps), in order: nothing that came in is lost.
    pub(super) fn drain(&mut self, ctx: &Ctx<'_>) -> Vec<gst::Buffer> {
        // A short last batch goes through as it is.
        if let Err(e) = self.submit_batch(ctx) {
            gst::warning!(CAT, obj = ctx.obj, "last batch at drain: {e:?}");
        }
        let finished = match &mut self.net {
            Net::Ordered(scheduler) => scheduler.finish(),
            // Every frame went out already; the network's pending work is of no use.
            Net::Realtime(rt) => {
                rt.forget();
                Ok(Vec::new())
            }
        };
        match finished {
            Ok(done) => {
                // A failed result is reported and dropped; the ones after it still go out.
                for d in done {
                    if let Err(e) = self.complete(ctx, d) {
                        gst::warning!(CAT, obj = ctx.obj, "dropping a result at drain: {e:?}");
                    }
                }
            }
            Err(e) => gst::warning!(CAT, obj = ctx.obj, "worker at drain: {e}"),
        }
        if let Some(alpha) = self.temporal.drain()
            && let Some(buf) = self.pending.pop_front()
        {
            self.ready.push_back(Ready::Matte(buf, alpha));
        }
        if !self.pending.is_empty() {
            let n = self.pending.len();
            gst::warning!(CAT, obj = ctx.obj, "{n} frames had no matte at drain");
        }
        let mut outputs = Vec::new();
        while !self.ready.is_empty() {
            match self.next_output(ctx) {
                Ok(Some(out)) => outputs.push(out),
                Ok(None) => break,
                Err(e) => gst::warning!(CAT, obj = ctx.obj, "dropping a frame at drain: {e:?}"),
            }
        }
        self.pending.clear();
        self.temporal.reset();
        outputs
    }

    /// A flush: results of jobs already submitted are dropped when they arrive, and
    /// every frame held is forgotten.
    pub(super) fn flush(&mut self) {
        match &mut self.net {
            Net::Ordered(scheduler) => scheduler.discard(),
            Net::Realtime(rt) => rt.forget(),
        }
        self.submitted = 0;
        self.earliest = None;
        self.pending.clear();
        self.ready.clear();
        self.batch.clear();
        self.temporal.reset();
        if let Some(path) = &self.device_path {
            path.lock().unwrap_or_else(|e| e.into_inner()).reset();
        }
    }

    /// The delay the element adds, as a duration. Every-frame: a frame leaves when
    /// the frames after it arrive, one for each further job in flight, one more for
    /// OFD. Realtime: only the wait for a frame's own matte (none when the network
    /// is slower than that).
    pub(super) fn added_latency(&self) -> gst::ClockTime {
        let interval = self.in_info.as_ref().and_then(frame_interval);
        let added = match &self.net {
            Net::Realtime(rt) => Some(rt.wait()),
            Net::Ordered(s) => {
                let frames = (s.max_in_flight() - 1) as u32 + u32::from(self.ofd);
                interval.map(|i| i * frames)
            }
        };
        added.map_or(gst::ClockTime::ZERO, |d| {
            gst::ClockTime::from_nseconds(d.as_nanos() as u64)
        })
    }

    /// The CUDA device whose page-locked memory upstream should write into (the
    /// device path on CUDA), if any.
    pub(super) fn pinned_ordinal(&self) -> Option<usize> {
        self.engine
            .cuda_ordinal()
            .filter(|_| self.device_path.is_some())
    }

    /// Whether QoS says this buffer is already too late to be worth the network.
    fn is_late(&self, ctx: &Ctx<'_>, inbuf: &gst::Buffer) -> bool {
        let (Some(earliest), Some(pts)) = (self.earliest, inbuf.pts()) else {
            return false;
        };
        let segment = ctx.obj.segment();
        let running = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|seg| seg.to_running_time(pts));
        running.is_some_and(|rt| rt < earliest)
    }
}

/// Posts what building the background had to say.
fn report(ctx: &Ctx<'_>, notes: Notes) {
    if let Some(warning) = notes.warning {
        gst::element_warning!(ctx.obj, gst::ResourceError::OpenRead, ("{warning}"));
    }
    if let Some(what) = notes.rebuilt {
        gst::debug!(CAT, obj = ctx.obj, "background rebuilt: {what}");
    }
}

/// The engine for these settings; errors name the file or device and the reason.
fn open_engine(settings: &Settings) -> Result<(Engine, PathBuf), gst::ErrorMessage> {
    let model: PathBuf = super::settings::find_model(settings.network.model.as_deref())
        .map_err(|e| gst::error_msg!(gst::ResourceError::NotFound, ("{e}")))?;
    let device: DeviceRequest = settings
        .network
        .device
        .parse()
        .map_err(|e: modnetmatte::Error| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
    let mut config = EngineConfig::new(&model);
    config.device = device;
    config.ref_size = settings.network.ref_size;
    config.precision = settings.network.precision.into();
    config.num_threads = settings.network.num_threads as usize;
    config.warmup_frame = None; // done at the caps, at the stream's real size
    config.cuda_graphs = settings.run.cuda_graphs;
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
    Ok((engine, model))
}

/// The device path if output frames are made on the network's device
/// (`compositing`; OFD keeps the CPU: it holds mattes on the host).
fn device_path(
    engine: &Engine,
    settings: &Settings,
    obj: &super::ModnetMatte,
) -> Result<Option<SharedPath>, gst::ErrorMessage> {
    let on_device = match settings.run.compositing {
        Compositing::Auto => engine.device().is_cuda(),
        Compositing::Cpu => false,
        Compositing::Device => true,
    };
    if on_device && settings.matte.ofd {
        gst::info!(
            CAT,
            obj = obj,
            "ofd holds mattes back on the host: compositing on the CPU"
        );
        return Ok(None);
    }
    if !on_device {
        gst::info!(CAT, obj = obj, "compositing on the CPU");
        return Ok(None);
    }
    let path = DevicePath::new(engine)
        .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
    gst::info!(
        CAT,
        obj = obj,
        "compositing on {:?} (tensor ops)",
        engine.device()
    );
    Ok(Some(Arc::new(Mutex::new(path))))
}
