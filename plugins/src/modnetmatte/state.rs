//! What exists while the element runs (between start and stop): the engine, the
//! path frames take to the network (`path/`, chosen in `decide.rs`), how output
//! frames are made (`render.rs`), and the stream's counters. Its methods are glue:
//! each hands the call to the path. Errors come back typed (`StreamError`);
//! `imp.rs` turns them into element errors.

use std::path::PathBuf;
use std::sync::Arc;

use gst_base::prelude::*;
use modnetmatte::gpu::graphs::Mode;
use modnetmatte::{DevicePath, DeviceRequest, Engine, EngineConfig};

use super::background::Backgrounds;
use super::buffers::Infos;
use super::context::{CAT, Ctx, StreamError};
use super::decide::{self, Kind, Placement};
use super::path::device::Device;
use super::path::ordered::Ordered;
use super::path::realtime::Realtime;
use super::path::{Caps, Incoming, Path, frame_interval};
use super::render::Render;
use super::settings::{self, Settings};
use super::stats::{Stats, ms};

pub(super) struct State {
    engine: Arc<Engine>,
    path: Box<dyn Path>,
    render: Render,
    /// Jobs in flight on the every-frame paths (`max-in-flight`, 0 resolved).
    pub(super) in_flight: usize,
    /// Frames per forward pass on the device path (per caps).
    pub(super) batch_size: usize,
    /// Frames submitted since start or the last flush (mask-every counts them).
    submitted: u64,
    /// From downstream QoS: frames due before this running time are late.
    pub(super) earliest: Option<gst::ClockTime>,
    /// Fixed at start: it changes the latency the element reports.
    ofd: bool,
}

impl State {
    /// Loads the model, decides where compositing runs and starts the worker; the
    /// stats the element starts with.
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
        let cuda = engine.device().is_cuda();
        let placement = decide::placement(settings.run.compositing, cuda, settings.matte.ofd);
        let device = placement == Placement::Device;
        let in_flight = decide::in_flight(settings.run.max_in_flight, device, cuda);
        let stats = Stats::new(
            match (device, engine.cuda_ordinal()) {
                (false, _) => "cpu".into(),
                (true, Some(i)) => format!("cuda:{i} (tensor ops)"),
                (true, None) => "cpu (tensor ops)".into(),
            },
            device && matches!(engine.graph_mode(), Mode::Cuda(_)),
        );
        let engine = Arc::new(engine);
        let started = |e: modnetmatte::Error| gst::error_msg!(gst::CoreError::Failed, ("{e}"));
        let path: Box<dyn Path> = match placement {
            Placement::Device => {
                let dp = DevicePath::new(&engine)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
                gst::info!(
                    CAT,
                    obj = obj,
                    "compositing on {:?} (tensor ops)",
                    engine.device()
                );
                Box::new(Device::new(engine.clone(), dp, in_flight).map_err(started)?)
            }
            Placement::CpuForOfd | Placement::Cpu => {
                let why = match placement {
                    Placement::CpuForOfd => "ofd holds mattes back on the host: ",
                    _ => "",
                };
                gst::info!(CAT, obj = obj, "{why}compositing on the CPU");
                let ordered = Ordered::new(engine.clone(), in_flight, settings.matte.ofd);
                Box::new(ordered.map_err(started)?)
            }
        };
        let state = Self {
            engine,
            path,
            render: Render::new(settings.look.output, backgrounds),
            in_flight,
            batch_size: 1,
            submitted: 0,
            earliest: None,
            ofd: settings.matte.ofd,
        };
        Ok((state, stats))
    }

    /// What the element outputs (fixed at start: the caps depend on it).
    pub(super) fn output(&self) -> super::Output {
        self.render.output
    }

    /// New caps: the pacing and batch size for this stream (`live`: upstream says it
    /// is live), and a warm-up at its frame size and batch so that the first frame is
    /// not slow. Returns what was chosen, for the log.
    pub(super) fn set_caps(
        &mut self,
        infos: Infos,
        live: bool,
        run: &settings::Run,
    ) -> Result<String, String> {
        let device = self.path.kind() == Kind::Device;
        let cuda = self.engine.device().is_cuda();
        self.batch_size = decide::batch_size(run.batch, device, live, cuda);
        let (w, h) = (infos.input.width(), infos.input.height());
        let network = self
            .engine
            .warm_up_batch(w, h, self.batch_size)
            .map_err(|e| format!("warm-up failed: {e}"))?;
        let caps = Caps {
            info: &infos.input,
            network,
            batch: self.batch_size,
        };
        let realtime = decide::realtime(run.pacing, live);
        let kind = decide::kind(device, realtime);
        if kind == self.path.kind() {
            self.path.set_caps(&caps)?;
        } else {
            // Only the CPU paths switch: the device path is chosen at start.
            self.path = match kind {
                Kind::Realtime => Box::new(Realtime::new(self.engine.clone(), &caps)?),
                _ => {
                    let ordered = Ordered::new(self.engine.clone(), self.in_flight, self.ofd);
                    Box::new(ordered.map_err(|e| e.to_string())?)
                }
            };
        }
        self.render.set_caps(infos);
        let (iw, ih) = self.engine.inference_size(w, h);
        Ok(format!(
            "network input {iw}x{ih} ({:.1} ms warm), {} frame(s) per forward pass{}, pacing {}{}",
            ms(network),
            self.batch_size,
            decide::batch_note(run.batch, self.batch_size, live),
            kind.pacing(),
            decide::pacing_note(realtime, device, self.ofd),
        ))
    }

    /// How frames meet their mattes now ("realtime" or "every-frame").
    pub(super) fn pacing(&self) -> &'static str {
        self.path.kind().pacing()
    }

    /// Hands one input buffer to the path.
    pub(super) fn submit(&mut self, ctx: &Ctx<'_>, buffer: gst::Buffer) -> Result<(), StreamError> {
        let late = ctx.settings.matte.drop_late && self.is_late(ctx, &buffer);
        let frame = Incoming {
            buffer,
            index: self.submitted,
            late,
        };
        self.path.submit(ctx, &mut self.render, frame)?;
        self.submitted += 1;
        Ok(())
    }

    /// The next frame to push, if one is ready.
    pub(super) fn next_output(
        &mut self,
        ctx: &Ctx<'_>,
    ) -> Result<Option<gst::Buffer>, StreamError> {
        self.path.complete(ctx, &mut self.render)
    }

    /// Every frame still held (EOS, new caps), in order: nothing that came in is lost.
    pub(super) fn drain(&mut self, ctx: &Ctx<'_>) -> Vec<gst::Buffer> {
        self.path.drain(ctx, &mut self.render)
    }

    /// A flush: results of jobs already submitted are dropped when they arrive, and
    /// every frame held is forgotten.
    pub(super) fn flush(&mut self) {
        self.path.flush();
        self.submitted = 0;
        self.earliest = None;
    }

    /// The delay the element adds: every-frame, a frame leaves when the frames after
    /// it arrive (jobs in flight, OFD); realtime, only the wait for a frame's own
    /// matte (none when the network is slower than that).
    pub(super) fn added_latency(&self) -> gst::ClockTime {
        let interval = self.render.input_info().and_then(frame_interval);
        let added = self.path.latency(interval);
        gst::ClockTime::from_nseconds(added.as_nanos() as u64)
    }

    /// The CUDA device whose page-locked memory upstream should write into (the
    /// device path on CUDA), if any.
    pub(super) fn pinned_ordinal(&self) -> Option<usize> {
        self.engine
            .cuda_ordinal()
            .filter(|_| self.path.kind() == Kind::Device)
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

/// The engine for these settings; errors name the file or device and the reason.
fn open_engine(settings: &Settings) -> Result<(Engine, PathBuf), gst::ErrorMessage> {
    let model: PathBuf = settings::find_model(settings.network.model.as_deref())
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
