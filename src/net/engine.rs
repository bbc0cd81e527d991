//! The engine: one loaded model plus the settings that turn frames into mattes.
//! `matte` runs preprocess -> model -> postprocess on the caller's thread and hands
//! the matte to the host. The device path (`device_path::DevicePath`, upload ->
//! network -> output frame on the device -> download) runs on a CUDA stream of the
//! engine's own, its stages replayed from CUDA graphs (`graphs`) once warmed up.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::gpu::graphs::Mode;
use crate::gpu::shim;
use crate::host::cpu::CpuFlags;
use crate::host::cpu_cache;
use crate::host::device::{self, DeviceRequest};
use crate::host::openmp;
use crate::net::model::{self, Model, Precision};
use crate::net::postprocess::{self, Matte};
use crate::net::preprocess::{self, MIN_SIDE};

/// Largest accepted `ref_size`: beyond it MODNet's receptive field no longer covers a
/// portrait and the cost explodes (ARCHITECTURE.md, "Measurements behind the code").
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
    /// fp16 halves the network's memory traffic on CUDA; bf16 (a CPU with AMX or
    /// AVX512-BF16) runs the high-resolution branches in bfloat16 (README, "Speed");
    /// `auto`
    /// picks bf16 on such a CPU, fp32 elsewhere. A precision the device cannot run
    /// falls back to fp32 (said in `device_note`).
    pub precision: Precision,
    /// Frame size to warm up at when loading (`warm_up_batch`: one pass on a CPU, two
    /// on CUDA), so that the first real frame does not pay libtorch's one-off costs;
    /// `None` skips it.
    pub warmup_frame: Option<(u32, u32)>,
    /// On CUDA, capture the device path's stages into CUDA graphs after their warm-up
    /// runs and replay them (falls back to plain runs, said in `graph_status`, if a
    /// capture fails). No effect on a CPU.
    pub cuda_graphs: bool,
    /// Tests only: run the stages as if captured (static inputs and outputs) on any
    /// device, so that the graph data flow is checked where no GPU is.
    #[doc(hidden)]
    pub emulate_graphs: bool,
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
            cuda_graphs: true,
            emulate_graphs: false,
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

#[derive(Debug)]
pub struct Engine {
    model: Model,
    config: EngineConfig,
    device_note: String,
    /// On CUDA, the stream from libtorch's pool that the device path runs on (the
    /// legacy default stream serialises with every blocking stream and cannot be
    /// captured); `None` on a CPU or where the stream API is unavailable.
    stream: Option<shim::Stream>,
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
        let cuda = resolved.device.is_cuda();
        let (precision, why) = model::choose(
            config.precision,
            cuda,
            CpuFlags::here().bf16(),
            model::current_bf16_variant(&config.model_path).is_some(),
        );
        if !cuda {
            // Activations reused between passes instead of page-faulted in anew
            // (src/host/cpu_cache.rs); without it the default allocator stays, slower.
            if let Err(e) = cpu_cache::install() {
                device_note += &format!("; no caching allocator ({e})");
            }
        }
        let model = Model::load_as(&config.model_path, resolved.device, precision)?;
        device_note += &format!(", {why}");
        if model.channels_last() {
            let name = model.path().file_name().unwrap_or_default();
            device_note += &format!(", CPU variant {} (channels-last)", name.to_string_lossy());
        }
        let stream = match resolved.device {
            tch::Device::Cuda(i) => {
                // Algorithm choice per convolution shape, made in the warm-up runs
                // (before any capture).
                tch::Cuda::cudnn_set_benchmark(true);
                match shim::Stream::from_pool(i) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        device_note += &format!(
                            "; no stream of its own ({e}): the default stream, no CUDA graphs"
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        // The load's probe pass made an OpenMP team on this thread; the network
        // runs elsewhere (the element's worker), and spare teams cost every pass
        // (src/host/openmp.rs).
        if let Err(e) = openmp::release_team() {
            device_note += &format!("; OpenMP teams kept ({e})");
        }
        let engine = Self {
            model,
            config,
            device_note,
            stream,
        };
        if let Some((w, h)) = engine.config.warmup_frame {
            engine.warm_up(w, h)?;
        }
        Ok(engine)
    }

    /// Which device runs the model and why it was chosen (for a log line).
    pub fn device_note(&self) -> &str {
        &self.device_note
    }

    pub fn device(&self) -> tch::Device {
        self.model.device()
    }

    /// The CUDA device the network runs on, if it does.
    pub fn cuda_ordinal(&self) -> Option<usize> {
        match self.device() {
            tch::Device::Cuda(i) => Some(i),
            _ => None,
        }
    }

    /// `num-threads` as configured (0: libtorch's default, one per core).
    pub fn configured_threads(&self) -> usize {
        self.config.num_threads
    }

    /// The precision the network actually runs in (fp16 only on CUDA).
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// Forward passes at the input size a `width` x `height` frame gets. On CUDA two:
    /// the first pays cuDNN's and the graph executor's one-off work, the second the
    /// profiling executor's optimised plan. On a CPU one: the model runs on the simple
    /// executor there (no second plan), and oneDNN's kernels for these shapes are made
    /// in the first; a second pass would only delay the first frame by one more
    /// network run.
    pub fn warm_up(&self, width: u32, height: u32) -> Result<()> {
        self.warm_up_batch(width, height, 1).map(|_| ())
    }

    /// As `warm_up`, for `batch` frames per forward pass (on CUDA, cuDNN's algorithm
    /// search per batch size takes seconds: better at negotiation than on frames).
    /// Returns how long the last forward pass took (the network's time; on a CPU the
    /// first pass's, a little above a warm one).
    pub fn warm_up_batch(&self, width: u32, height: u32, batch: usize) -> Result<Duration> {
        let (w, h) = preprocess::inference_size(width, height, self.config.ref_size);
        let input = tch::Tensor::f_zeros(
            [batch.max(1) as i64, 3, h as i64, w as i64],
            (tch::Kind::Float, self.device()),
        )?;
        let mut last = Duration::ZERO;
        // CUDA's first pass includes cuDNN's algorithm search; the second is warm.
        let passes = if self.device().is_cuda() { 2 } else { 1 };
        for _ in 0..passes {
            let t0 = Instant::now();
            let matte = self.model.forward(&input)?;
            // The time of the work, not of its issue (CUDA is asynchronous).
            let _ = matte.f_sum(tch::Kind::Float)?.f_double_value(&[])?;
            last = t0.elapsed();
        }
        // As after the load: the warm-up's thread (the streaming thread) does not
        // run the network; failure was told in the device note.
        let _ = openmp::release_team();
        Ok(last)
    }

    /// The bare network on a prepared input (benchmarks, checks).
    pub fn forward(&self, input: &tch::Tensor) -> Result<tch::Tensor> {
        self.model.forward(input)
    }

    /// The (width, height) the network sees for a frame of this size.
    pub fn inference_size(&self, width: u32, height: u32) -> (u32, u32) {
        preprocess::inference_size(width, height, self.config.ref_size)
    }

    /// Short side of the network input (MODNet's reference rule).
    pub fn ref_size(&self) -> u32 {
        self.config.ref_size
    }

    /// Makes the engine's CUDA stream the calling thread's current one (libtorch's
    /// current stream is per thread): the worker calls it once; the device path on
    /// every call, so that any thread may run it. Nothing to do on a CPU.
    pub fn enter_stream(&self) -> Result<()> {
        match &self.stream {
            Some(s) => s.make_current(),
            None => Ok(()),
        }
    }

    /// How the device path's stages run on this engine.
    pub fn graph_mode(&self) -> Mode {
        match (self.device(), &self.stream) {
            (tch::Device::Cuda(i), Some(_)) if self.config.cuda_graphs => Mode::Cuda(i),
            _ if self.config.emulate_graphs => Mode::Emulated,
            _ => Mode::Plain,
        }
    }

    /// The memory layout the network takes its input in (channels-last for the CPU
    /// variant), which preprocessing writes directly.
    pub fn input_layout(&self) -> preprocess::Layout {
        if self.model.channels_last() {
            preprocess::Layout::ChannelsLast
        } else {
            preprocess::Layout::Nchw
        }
    }

    /// The matte of one frame, at the frame's size, with the time each stage took.
    pub fn matte(&self, frame: &Frame<'_>) -> Result<(Matte, StageTimings)> {
        let t0 = Instant::now();
        let input = preprocess::to_input(
            frame,
            self.config.ref_size,
            self.device(),
            self.input_layout(),
        )?;
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
