//! The engine: one loaded model plus the settings that turn frames into mattes.
//! `matte` runs preprocess -> model -> postprocess on the caller's thread and hands
//! the matte to the host; `render` / `render_batch` are the device path (upload ->
//! network -> output frame on the device -> download), issued without waiting on CUDA,
//! on a stream of the engine's own, with its two stages replayed from CUDA graphs
//! (`graphs`) once warmed up.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tch::Tensor;

use crate::cuda;
use crate::device::{self, DeviceRequest};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut};
use crate::graphs::{self, Mode, OutputKey};
use crate::model::{Model, Precision};
use crate::postprocess::{self, Matte};
use crate::preprocess::{self, MIN_SIDE};
use crate::render::{self, BackgroundCache, BackgroundSource, OutputKind, RenderSpec, RenderState};
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
    /// On CUDA, the stream from libtorch's pool that the device path runs on (the
    /// legacy default stream serialises with every blocking stream and cannot be
    /// captured); `None` on a CPU or where the stream API is unavailable.
    stream: Option<cuda::Stream>,
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
        let stream = match resolved.device {
            tch::Device::Cuda(i) => {
                // Algorithm choice per convolution shape, made in the warm-up runs
                // (before any capture).
                tch::Cuda::cudnn_set_benchmark(true);
                match cuda::Stream::from_pool(i) {
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

    /// The precision the network actually runs in (fp16 only on CUDA).
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// Two forward passes at the input size a `width` x `height` frame gets: the
    /// first pays oneDNN's and the graph executor's one-off work, the second the
    /// profiling executor's optimised plan.
    pub fn warm_up(&self, width: u32, height: u32) -> Result<()> {
        self.warm_up_batch(width, height, 1)
    }

    /// As `warm_up`, for `batch` frames per forward pass (on CUDA, cuDNN's algorithm
    /// search per batch size takes seconds: better at negotiation than on frames).
    pub fn warm_up_batch(&self, width: u32, height: u32, batch: usize) -> Result<()> {
        let (w, h) = preprocess::inference_size(width, height, self.config.ref_size);
        let input = tch::Tensor::f_zeros(
            [batch.max(1) as i64, 3, h as i64, w as i64],
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

    /// Per-stream state of the device path (transfers, matte history, background,
    /// captured stages) on this engine's device.
    pub fn render_state(&self) -> Result<(Transfer, RenderState)> {
        Ok((Transfer::new(self.device())?, RenderState::new()))
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

    /// The device path for one frame: upload, network (or, with `infer` false, the
    /// last matte again: mask-every), EMA, threshold and the output frame, all on the
    /// engine's device; only the raw frame goes up and only the output comes down. On
    /// CUDA the work is issued and this returns at once: `InFlight::finish` waits.
    pub fn render(
        &self,
        transfer: &mut Transfer,
        state: &mut RenderState,
        spec: &RenderSpec,
        frame: &Frame<'_>,
        infer: bool,
    ) -> Result<InFlight> {
        self.render_batch(transfer, state, spec, std::slice::from_ref(frame), &[infer])?
            .pop()
            .ok_or_else(|| Error::InvalidFrame("no output for the frame".into()))
    }

    /// The device path for frames of one shape at once: one forward pass over all of
    /// them (when any has `infer`; frames without it reuse the matte before them, in
    /// order), then each frame's output. Results in order, one per frame.
    pub fn render_batch(
        &self,
        transfer: &mut Transfer,
        state: &mut RenderState,
        spec: &RenderSpec,
        frames: &[Frame<'_>],
        infer: &[bool],
    ) -> Result<Vec<InFlight>> {
        self.render_batch_padded(transfer, state, spec, frames, infer, frames.len())
    }

    /// As `render_batch`, run as a batch of `pad_to` frames (the last frame repeated,
    /// its extra results dropped) when fewer frames are given: a stream's short last
    /// batch then reuses the full batch's captured graphs and cuDNN choices instead
    /// of paying a new shape's warm-up (seconds on a GPU, measured).
    pub fn render_batch_padded(
        &self,
        transfer: &mut Transfer,
        state: &mut RenderState,
        spec: &RenderSpec,
        frames: &[Frame<'_>],
        infer: &[bool],
        pad_to: usize,
    ) -> Result<Vec<InFlight>> {
        let started = Instant::now();
        let Some(first) = frames.first() else {
            return Ok(Vec::new());
        };
        let real = frames.len();
        let n = pad_to.max(real);
        if infer.len() != real {
            return Err(Error::InvalidConfig(format!(
                "{real} frames with {} infer flags",
                infer.len()
            )));
        }
        let shape = first.shape();
        if let Some(other) = frames.iter().find(|f| f.shape() != shape) {
            return Err(Error::InvalidFrame(format!(
                "a batch mixes {}x{} {:?} with {}x{} {:?}",
                shape.width, shape.height, shape.format, other.width, other.height, other.format
            )));
        }
        self.enter_stream()?;
        let mode = self.graph_mode();
        let device = self.device();
        let sync = transfer.sync_stages();
        let RenderState {
            history,
            background,
            stages,
        } = state;
        let mut timings = StageTimings::default();

        // 1. Upload. With graphs the planes go into the stages' static inputs; in a
        // batch (more frames than upload slots) each is copied out of its slot.
        let mut planes: Vec<Tensor> = Vec::new();
        let mut batch = None;
        for (i, frame) in frames.iter().enumerate() {
            let up = transfer.upload(frame)?;
            if mode != Mode::Plain {
                let entry = match batch.take() {
                    Some(e) => e,
                    None => stages.batch(shape, n, &up)?,
                };
                let at = planes.len();
                for (j, p) in up.iter().enumerate() {
                    let mut s = entry.planes[at + j].shallow_clone();
                    s.f_copy_(p)?;
                    planes.push(s);
                }
                transfer.release()?;
                batch = Some(entry);
            } else if n > 1 {
                for p in &up {
                    planes.push(graphs::duplicate(p)?);
                }
                transfer.release()?;
            } else {
                planes = up;
            }
            if i + 1 == real {
                // Padding frames: the last real frame's planes again (into the static
                // planes with graphs; shared tensors when plain).
                let k = planes.len() / real;
                for p in real..n {
                    for j in 0..k {
                        let src = planes[(real - 1) * k + j].shallow_clone();
                        match batch.as_ref() {
                            Some(entry) => {
                                let mut s = entry.planes[p * k + j].shallow_clone();
                                s.f_copy_(&src)?;
                                planes.push(s);
                            }
                            None => planes.push(src),
                        }
                    }
                }
            }
        }
        let per_frame = planes.len() / n;
        self.sync_if(sync);
        let t1 = Instant::now();
        timings.upload = t1 - started;

        // 2. Mattes: preprocess, the network over the batch, resize back.
        let mut mattes: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
        if infer.iter().any(|&i| i) {
            let (model, ref_size) = (&self.model, self.config.ref_size);
            let (mut pre, mut post) = (Duration::ZERO, Duration::ZERO);
            let plain_sync = sync && mode == Mode::Plain;
            let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> {
                let t = Instant::now();
                let inputs = x
                    .chunks(per_frame)
                    .map(|p| preprocess::planes_to_input(p, &shape, ref_size))
                    .collect::<Result<Vec<_>>>()?;
                let input = match inputs.as_slice() {
                    [one] => one.shallow_clone(),
                    _ => Tensor::f_cat(&inputs, 0)?,
                };
                self.sync_if(plain_sync);
                pre += t.elapsed();
                let out = model.forward(&input)?;
                self.sync_if(plain_sync);
                let t = Instant::now();
                let mattes = (0..n as i64)
                    .map(|i| {
                        postprocess::frame_matte(&out.f_narrow(0, i, 1)?, shape.width, shape.height)
                    })
                    .collect::<Result<Vec<_>>>();
                post += t.elapsed();
                mattes
            };
            let out = match batch.as_mut() {
                Some(entry) => entry.matte.run(mode, &planes, planes.len(), &mut work)?,
                None => work(&planes)?,
            };
            // Padding frames' mattes (past the real frames) are dropped here.
            for ((slot, m), &inferred) in mattes.iter_mut().zip(out).zip(infer) {
                if inferred {
                    // A stage's outputs are rewritten by its next run: the history
                    // keeps a copy.
                    *slot = Some(if mode == Mode::Plain {
                        m
                    } else {
                        graphs::duplicate(&m)?
                    });
                }
            }
            self.sync_if(sync);
            let t2 = Instant::now();
            timings.preprocess = pre;
            timings.postprocess = post;
            timings.inference = (t2 - t1).saturating_sub(pre + post);
        }

        // 3. EMA / reuse, frame by frame in order (outside any graph: it carries
        // state from frame to frame).
        let t3 = Instant::now();
        let mut smoothed = mattes
            .into_iter()
            .take(real)
            .map(|m| history.smooth(m, shape.width, shape.height, spec.smoothing, device))
            .collect::<Result<Vec<_>>>()?;
        // Padding frames: the last real frame's matte (their outputs are dropped).
        while smoothed.len() < n {
            smoothed.push(smoothed[real - 1].shallow_clone());
        }

        // 4. The output frames.
        let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> {
            let (frame_planes, mattes) = x.split_at(n * per_frame);
            let mut out = Vec::new();
            for (p, m) in frame_planes.chunks(per_frame).zip(mattes) {
                out.extend(render::output_planes(background, spec, p, &shape, m)?);
            }
            Ok(out)
        };
        let inputs: Vec<Tensor> = planes
            .iter()
            .chain(&smoothed)
            .map(Tensor::shallow_clone)
            .collect();
        let outputs = match batch.as_mut() {
            Some(entry) => {
                let out = entry.output(OutputKey::of(spec));
                let planes_out = out.stage.run(mode, &inputs, planes.len(), &mut work)?;
                keep_background(out, spec, background, device)?;
                planes_out
            }
            None => work(&inputs)?,
        };
        self.sync_if(sync);
        let t4 = Instant::now();
        timings.compositing = t4 - t3;

        // 5. Downloads, frame by frame (each a copy: stage outputs are rewritten).
        let per_output = outputs.len() / n;
        let mut downloads = Vec::with_capacity(real);
        for planes in outputs.chunks(per_output.max(1)).take(real) {
            downloads.push(transfer.download(planes.iter().map(Tensor::shallow_clone).collect())?);
        }
        timings.download = t4.elapsed();
        let per = |d: Duration| d / real as u32;
        let share = StageTimings {
            upload: per(timings.upload),
            preprocess: per(timings.preprocess),
            inference: per(timings.inference),
            postprocess: per(timings.postprocess),
            compositing: per(timings.compositing),
            download: per(timings.download),
            wall: Duration::ZERO,
        };
        Ok(downloads
            .into_iter()
            .zip(infer)
            .map(|(download, &inferred)| InFlight {
                download,
                timings: if inferred {
                    share
                } else {
                    StageTimings {
                        preprocess: Duration::ZERO,
                        inference: Duration::ZERO,
                        postprocess: Duration::ZERO,
                        ..share
                    }
                },
                started,
            })
            .collect())
    }

    /// In stage-timing mode, waits for the device so that the stage is timed alone.
    fn sync_if(&self, sync: bool) {
        if sync && let tch::Device::Cuda(i) = self.device() {
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

/// An output stage's graph reads the background planes at their addresses: hold them
/// (and the frame, so that its address is not reused) as long as the stage lives.
fn keep_background(
    out: &mut graphs::OutputStage,
    spec: &RenderSpec,
    background: &mut BackgroundCache,
    device: tch::Device,
) -> Result<()> {
    if let (OutputKind::Composite, BackgroundSource::Frame(frame)) =
        (&spec.output, &spec.background)
        && !out.holds_background()
    {
        let planes = background.planes(frame, device)?;
        out.keep_background(frame.clone(), planes);
    }
    Ok(())
}
