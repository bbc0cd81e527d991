//! The engine: one loaded model plus the settings that turn frames into mattes.
//! `matte` runs preprocess -> model -> postprocess on the caller's thread and hands
//! the matte to the host; `render` is the device path (upload -> network -> output
//! frame on the device -> download), issued without waiting on CUDA.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::device::{self, DeviceRequest};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut};
use crate::model::{Model, Precision};
use crate::postprocess::{self, Matte};
use crate::preprocess::{self, MIN_SIDE};
use crate::render::{self, RenderSpec, RenderState};
use crate::transfer::{Download, Transfer};

/// Largest accepted `ref_size`: beyond it MODNet's receptive field no longer covers a
/// portrait and the cost explodes (246 GFLOP a frame at 1088).
pub const MAX_REF_SIZE: u32 = 2048;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub model_path: PathBuf,
    pub device: DeviceRequest,
    /// Short side of the network input for most frames (MODNet's reference rule).
    pub ref_size: u32,
    /// libtorch intra-op threads; 0 keeps libtorch's default (one per core).
    /// libtorch's thread pool is process-wide: the last engine created sets it.
    pub num_threads: usize,
    /// fp16 halves the network's memory traffic on CUDA; on a CPU it falls back to
    /// fp32 (said in `device_note`).
    pub precision: Precision,
    /// Frame size to run two warm-up passes at when loading, so that the first real
    /// frame does not pay libtorch's one-off costs; `None` skips it.
    pub warmup_frame: Option<(u32, u32)>,
}

impl EngineConfig {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            device: DeviceRequest::Auto,
            ref_size: 512,
            num_threads: 0,
            precision: Precision::Fp32,
            warmup_frame: Some((1280, 720)),
        }
    }

    fn validate(&self) -> Result<()> {
        if !(MIN_SIDE..=MAX_REF_SIZE).contains(&self.ref_size) {
            return Err(Error::InvalidConfig(format!(
                "ref-size {} is outside {MIN_SIDE}..={MAX_REF_SIZE}",
                self.ref_size
            )));
        }
        Ok(())
    }
}

/// Time spent in each stage for one frame. On CUDA with overlapped transfers the
/// stages are only issued, not waited for: there the host's time per stage is what
/// issuing cost, and `wall` (start to result on the host) is the frame's latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    /// Host -> device (the device path; zero in `matte`).
    pub upload: Duration,
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
    /// EMA, threshold and compositing on the device (the device path).
    pub compositing: Duration,
    /// Device -> host into the output frame (the device path).
    pub download: Duration,
    /// From the start of the frame to its result on the host.
    pub wall: Duration,
}

impl StageTimings {
    pub fn total(&self) -> Duration {
        self.upload
            + self.preprocess
            + self.inference
            + self.postprocess
            + self.compositing
            + self.download
    }
}

/// A frame on the device path whose output is still on its way (CUDA: being
/// computed and copied back while the next frame is uploaded).
pub struct InFlight {
    download: Download,
    timings: StageTimings,
    started: Instant,
}

impl InFlight {
    /// Waits for this frame's output and writes it into `out` (the output format and
    /// size the `RenderSpec` asked for).
    pub fn finish(self, out: &mut FrameMut<'_>) -> Result<StageTimings> {
        let t = Instant::now();
        self.download.wait_into(out)?;
        let mut timings = self.timings;
        timings.download += t.elapsed();
        timings.wall = self.started.elapsed();
        Ok(timings)
    }
}

#[derive(Debug)]
pub struct Engine {
    model: Model,
    config: EngineConfig,
    device_note: String,
}

impl Engine {
    /// Resolves the device, loads and checks the model, warms up.
    pub fn new(config: EngineConfig) -> Result<Self> {
        config.validate()?;
        if config.num_threads > 0 {
            let n = i32::try_from(config.num_threads).map_err(|_| {
                Error::InvalidConfig(format!("num-threads {} is too large", config.num_threads))
            })?;
            tch::set_num_threads(n);
        }
        let resolved = device::resolve(config.device)?;
        let mut device_note = resolved.why;
        let precision = match config.precision {
            Precision::Fp16 if !resolved.device.is_cuda() => {
                device_note += "; fp16 needs CUDA: running fp32";
                Precision::Fp32
            }
            p => p,
        };
        let model = Model::load_as(&config.model_path, resolved.device, precision)?;
        device_note += &format!(", {precision}");
        let engine = Self {
            model,
            config,
            device_note,
        };
        if let Some((w, h)) = engine.config.warmup_frame {
            engine.warm_up(w, h)?;
        }
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Which device runs the model and why it was chosen (for a log line).
    pub fn device_note(&self) -> &str {
        &self.device_note
    }

    pub fn device(&self) -> tch::Device {
        self.model.device()
    }

    /// The precision the network actually runs in (fp16 only on CUDA).
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// Two forward passes at the input size a `width` x `height` frame gets: the
    /// first pays oneDNN's and the graph executor's one-off work, the second the
    /// profiling executor's optimised plan.
    pub fn warm_up(&self, width: u32, height: u32) -> Result<()> {
        let (w, h) = preprocess::inference_size(width, height, self.config.ref_size);
        let input = tch::Tensor::f_zeros(
            [1, 3, h as i64, w as i64],
            (tch::Kind::Float, self.device()),
        )?;
        for _ in 0..2 {
            let _matte = self.model.forward(&input)?;
        }
        Ok(())
    }

    /// The bare network on a prepared input (benchmarks, checks).
    pub fn forward(&self, input: &tch::Tensor) -> Result<tch::Tensor> {
        self.model.forward(input)
    }

    /// The (width, height) the network sees for a frame of this size.
    pub fn inference_size(&self, width: u32, height: u32) -> (u32, u32) {
        preprocess::inference_size(width, height, self.config.ref_size)
    }

    /// Per-stream state of the device path (transfers, matte history, background)
    /// on this engine's device.
    pub fn render_state(&self) -> Result<(Transfer, RenderState)> {
        Ok((Transfer::new(self.device())?, RenderState::new()))
    }

    /// The device path: upload, network (or, with `infer` false, the last matte
    /// again: mask-every), EMA, threshold and the output frame, all on the engine's
    /// device; only the raw frame goes up and only the output comes down. On CUDA the
    /// work is issued and this returns at once: `InFlight::finish` waits.
    pub fn render(
        &self,
        transfer: &mut Transfer,
        state: &mut RenderState,
        spec: &RenderSpec,
        frame: &Frame<'_>,
        infer: bool,
    ) -> Result<InFlight> {
        let started = Instant::now();
        let mut timings = StageTimings::default();
        let planes = transfer.upload(frame)?;
        let t1 = Instant::now();
        timings.upload = t1 - started;
        let matte = if infer {
            let input = preprocess::planes_to_input(&planes, frame, self.config.ref_size)?;
            self.sync_if(transfer);
            let t2 = Instant::now();
            let out = self.model.forward(&input)?;
            self.sync_if(transfer);
            let t3 = Instant::now();
            let matte = postprocess::frame_matte(&out, frame.width, frame.height)?;
            let t4 = Instant::now();
            timings.preprocess = t2 - t1;
            timings.inference = t3 - t2;
            timings.postprocess = t4 - t3;
            Some(matte)
        } else {
            None
        };
        let t5 = Instant::now();
        let smoothed = state.smooth(
            matte,
            frame.width,
            frame.height,
            spec.smoothing,
            self.device(),
        )?;
        let output = render::render(
            state,
            spec,
            &planes,
            frame.format,
            frame.width,
            frame.height,
            frame.matrix,
            &smoothed,
        )?;
        self.sync_if(transfer);
        let t6 = Instant::now();
        timings.compositing = t6 - t5;
        let download = transfer.download(output)?;
        timings.download = t6.elapsed();
        Ok(InFlight {
            download,
            timings,
            started,
        })
    }

    /// In stage-timing mode, waits for the device so that the stage is timed alone.
    fn sync_if(&self, transfer: &Transfer) {
        if transfer.sync_stages()
            && let tch::Device::Cuda(i) = self.device()
        {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// The matte of one frame, at the frame's size, with the time each stage took.
    pub fn matte(&self, frame: &Frame<'_>) -> Result<(Matte, StageTimings)> {
        let t0 = Instant::now();
        let input = preprocess::to_input(frame, self.config.ref_size, self.device())?;
        let t1 = Instant::now();
        let out = self.model.forward(&input)?;
        if let tch::Device::Cuda(i) = self.device() {
            // CUDA work is asynchronous: wait, so that each stage is timed on its own.
            tch::Cuda::synchronize(i as i64);
        }
        let t2 = Instant::now();
        let matte = postprocess::to_matte(&out, frame.width, frame.height)?;
        let t3 = Instant::now();
        Ok((
            matte,
            StageTimings {
                preprocess: t1 - t0,
                inference: t2 - t1,
                postprocess: t3 - t2,
                wall: t3 - t0,
                ..StageTimings::default()
            },
        ))
    }
}
