//! The device path, one object per stream: frames go up once (`transfer`), the matte
//! and the output frame are made on the network's device (the two stages of
//! `graphs`, with the matte history between them), and only the output comes back.
//! On CUDA the work is issued without waiting: `InFlight::finish` waits for one
//! frame. On a CPU the same code runs on libtorch's CPU kernels (the tests use this).

use std::time::{Duration, Instant};

use tch::{Device, Tensor};

use crate::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use crate::composite::tensor::{self, BackgroundCache, MatteHistory};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut, FrameShape};
use crate::gpu::graphs::{self, BatchStages, Mode, OutputKey};
use crate::gpu::transfer::{Download, MemoryUse, Transfer};
use crate::net::engine::{Engine, StageTimings};
use crate::net::{postprocess, preprocess};

/// A frame on the device path whose output is still on its way (CUDA: being
/// computed and copied back while the next frame is uploaded).
pub struct InFlight {
    download: Download,
    timings: StageTimings,
    started: Instant,
}

impl InFlight {
    /// Waits for this frame's output and writes it into `out` (the output format and
    /// size the `OutputSpec` asked for).
    pub fn finish(self, out: &mut FrameMut<'_>) -> Result<StageTimings> {
        let t = Instant::now();
        self.download.wait_into(out)?;
        let mut timings = self.timings;
        timings.download += t.elapsed();
        timings.wall = self.started.elapsed();
        Ok(timings)
    }
}

/// What the device path keeps for one stream: the upload slots and download buffers,
/// the matte history (EMA, mask-every), the uploaded background, the stages.
pub struct DevicePath {
    transfer: Transfer,
    history: MatteHistory,
    background: BackgroundCache,
    stages: graphs::Cache,
}

impl std::fmt::Debug for DevicePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePath")
            .field("transfer", &self.transfer)
            .field("stages", &self.stages)
            .finish()
    }
}

/// One batch as it goes through the steps.
struct Batch<'e> {
    engine: &'e Engine,
    shape: FrameShape,
    /// Frames given, and frames run (the last one repeated up to the batch size).
    real: usize,
    n: usize,
    mode: Mode,
    device: Device,
    /// Wait for the device after each step (stage timing).
    sync: bool,
}

impl DevicePath {
    /// An empty device path on `engine`'s device.
    pub fn new(engine: &Engine) -> Result<Self> {
        Ok(Self {
            transfer: Transfer::new(engine.device())?,
            history: MatteHistory::default(),
            background: BackgroundCache::default(),
            stages: graphs::Cache::default(),
        })
    }

    /// Forgets the matte history (flush, new stream); the background and the captured
    /// stages stay.
    pub fn reset(&mut self) {
        self.history = MatteHistory::default();
    }

    /// Page-locked host memory and device memory held (transfers, mattes, background;
    /// not the graphs' private pools, which the GPU's memory figure includes).
    pub fn memory(&self) -> MemoryUse {
        let m = self.transfer.memory();
        MemoryUse {
            pinned_bytes: m.pinned_bytes,
            device_bytes: m.device_bytes + self.history.bytes() + self.background.bytes(),
        }
    }

    /// What the CUDA graphs have done for this stream.
    pub fn graph_status(&self) -> graphs::Status {
        self.stages.status()
    }

    /// With `true`, each step is waited for as it is issued (to time each alone).
    pub fn set_sync_stages(&mut self, sync: bool) {
        self.transfer.set_sync_stages(sync);
    }

    /// One frame: upload, network (or, with `infer` false, the last matte again:
    /// mask-every), EMA, threshold and the output frame, then the download.
    pub fn run(
        &mut self,
        engine: &Engine,
        spec: &OutputSpec,
        frame: &Frame<'_>,
        infer: bool,
    ) -> Result<InFlight> {
        self.run_batch(engine, spec, std::slice::from_ref(frame), &[infer], 1)?
            .pop()
            .ok_or_else(|| Error::InvalidFrame("no output for the frame".into()))
    }

    /// Frames of one shape at once: one forward pass over all of them (when any has
    /// `infer`; frames without it reuse the matte before them, in order), then each
    /// frame's output; results in order, one per frame. Fewer frames than `pad_to`
    /// run as a batch of `pad_to` (the last frame repeated, its extra results
    /// dropped): a stream's short last batch then replays the full batch's graphs and
    /// cuDNN choices instead of paying a new shape's warm-up (seconds on a GPU).
    pub fn run_batch(
        &mut self,
        engine: &Engine,
        spec: &OutputSpec,
        frames: &[Frame<'_>],
        infer: &[bool],
        pad_to: usize,
    ) -> Result<Vec<InFlight>> {
        let started = Instant::now();
        let shape = batch_shape(frames, infer)?;
        engine.enter_stream()?;
        let b = Batch {
            engine,
            shape,
            real: frames.len(),
            n: pad_to.max(frames.len()),
            mode: engine.graph_mode(),
            device: engine.device(),
            sync: self.transfer.sync_stages(),
        };
        let Self {
            transfer,
            history,
            background,
            stages,
        } = self;
        let mut entry = match b.mode {
            Mode::Plain => None,
            _ => Some(stages.batch(shape, b.n, b.device)?),
        };
        let mut t = StageTimings::default();
        let planes = upload(&b, transfer, entry.as_deref_mut(), frames)?;
        t.upload = started.elapsed();
        let mattes = mattes(&b, entry.as_deref_mut(), &planes, infer, &mut t)?;
        let t3 = Instant::now();
        let smoothed = smooth(&b, history, mattes, spec.smoothing)?;
        let outputs = outputs(&b, entry, background, spec, &planes, &smoothed)?;
        b.wait();
        let t4 = Instant::now();
        t.compositing = t4 - t3;
        let per_output = outputs.len() / b.n;
        let mut downloads = Vec::with_capacity(b.real);
        for planes in outputs.chunks(per_output.max(1)).take(b.real) {
            downloads.push(transfer.download(planes.iter().map(Tensor::shallow_clone).collect())?);
        }
        t.download = t4.elapsed();
        Ok(in_flight(downloads, infer, &t, started))
    }
}

impl Batch<'_> {
    /// In stage-timing mode, waits for the device so that the step is timed alone.
    fn wait(&self) {
        if self.sync
            && let Device::Cuda(i) = self.device
        {
            tch::Cuda::synchronize(i as i64);
        }
    }
}

/// The shape all `frames` share, or why they cannot be one batch.
fn batch_shape(frames: &[Frame<'_>], infer: &[bool]) -> Result<FrameShape> {
    let first = frames
        .first()
        .ok_or_else(|| Error::InvalidFrame("an empty batch".into()))?;
    if infer.len() != frames.len() {
        return Err(Error::InvalidConfig(format!(
            "{} frames with {} infer flags",
            frames.len(),
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
    Ok(shape)
}

/// Step 1: every frame's planes on the device, then the padding frames'. With graphs
/// they go into the stages' static planes; in a batch (more frames than upload
/// slots) each is copied out of its slot; a single plain frame is read in place.
fn upload(
    b: &Batch<'_>,
    transfer: &mut Transfer,
    mut entry: Option<&mut BatchStages>,
    frames: &[Frame<'_>],
) -> Result<Vec<Tensor>> {
    let mut planes: Vec<Tensor> = Vec::new();
    for frame in frames {
        let up = transfer.upload(frame)?;
        if let Some(entry) = entry.as_deref_mut() {
            let at = planes.len();
            for (j, p) in up.iter().enumerate() {
                let mut s = entry.planes[at + j].shallow_clone();
                s.f_copy_(p)?;
                planes.push(s);
            }
        } else if b.n > 1 {
            for p in &up {
                planes.push(graphs::duplicate(p)?);
            }
        } else {
            planes = up;
            continue; // its slot is released by the download
        }
        transfer.release()?;
    }
    let k = planes.len() / b.real;
    for p in b.real..b.n {
        for j in 0..k {
            let src = planes[(b.real - 1) * k + j].shallow_clone();
            match entry.as_deref_mut() {
                Some(entry) => {
                    let mut s = entry.planes[p * k + j].shallow_clone();
                    s.f_copy_(&src)?;
                    planes.push(s);
                }
                None => planes.push(src),
            }
        }
    }
    b.wait();
    Ok(planes)
}

/// Step 2: each frame's matte (float [h,w]) from colour conversion and resize, one
/// forward pass over the batch and the resize back; `None` for frames without
/// `infer` (and for padding frames).
fn mattes(
    b: &Batch<'_>,
    entry: Option<&mut BatchStages>,
    planes: &[Tensor],
    infer: &[bool],
    t: &mut StageTimings,
) -> Result<Vec<Option<Tensor>>> {
    let mut mattes: Vec<Option<Tensor>> = (0..b.n).map(|_| None).collect();
    if !infer.iter().any(|&i| i) {
        return Ok(mattes);
    }
    let t1 = Instant::now();
    let (mut pre, mut post) = (Duration::ZERO, Duration::ZERO);
    let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> {
        let t = Instant::now();
        let input = network_input(b, x)?;
        pre += t.elapsed();
        let out = b.engine.forward(&input)?;
        if b.mode == Mode::Plain {
            b.wait(); // stage timing: the network alone
        }
        let t = Instant::now();
        let mattes = (0..b.n as i64)
            .map(|i| {
                let one = out.f_narrow(0, i, 1)?;
                postprocess::frame_matte(&one, b.shape.width, b.shape.height)
            })
            .collect::<Result<Vec<_>>>();
        post += t.elapsed();
        mattes
    };
    let out = match entry {
        Some(entry) => entry.matte.run(b.mode, planes, planes.len(), &mut work)?,
        None => work(planes)?,
    };
    for ((slot, m), &inferred) in mattes.iter_mut().zip(out).zip(infer) {
        if inferred {
            // A stage's outputs are rewritten by its next run: the history keeps a copy.
            *slot = Some(match b.mode {
                Mode::Plain => m,
                _ => graphs::duplicate(&m)?,
            });
        }
    }
    b.wait();
    t.preprocess = pre;
    t.postprocess = post;
    t.inference = t1.elapsed().saturating_sub(pre + post);
    Ok(mattes)
}

/// The network's input for a batch's planes: [n,3,h,w].
fn network_input(b: &Batch<'_>, planes: &[Tensor]) -> Result<Tensor> {
    let per_frame = planes.len() / b.n;
    let ref_size = b.engine.ref_size();
    let layout = b.engine.input_layout();
    let inputs = planes
        .chunks(per_frame)
        .map(|p| preprocess::planes_to_input(p, &b.shape, ref_size, layout))
        .collect::<Result<Vec<_>>>()?;
    // In stage-timing mode, preprocessing alone (never inside a capture).
    if b.mode == Mode::Plain {
        b.wait();
    }
    Ok(match inputs.as_slice() {
        [one] => one.shallow_clone(),
        _ => Tensor::f_cat(&inputs, 0)?,
    })
}

/// Step 3: EMA / reuse, frame by frame in order (outside any graph: it carries state
/// from frame to frame). Padding frames get the last real frame's matte.
fn smooth(
    b: &Batch<'_>,
    history: &mut MatteHistory,
    mattes: Vec<Option<Tensor>>,
    smoothing: f32,
) -> Result<Vec<Tensor>> {
    let (w, h) = (b.shape.width, b.shape.height);
    let mut smoothed = mattes
        .into_iter()
        .take(b.real)
        .map(|m| history.smooth(m, w, h, smoothing, b.device))
        .collect::<Result<Vec<_>>>()?;
    while smoothed.len() < b.n {
        smoothed.push(smoothed[b.real - 1].shallow_clone());
    }
    Ok(smoothed)
}

/// Step 4: the output planes of every frame (the output stage).
fn outputs(
    b: &Batch<'_>,
    entry: Option<&mut BatchStages>,
    background: &mut BackgroundCache,
    spec: &OutputSpec,
    planes: &[Tensor],
    smoothed: &[Tensor],
) -> Result<Vec<Tensor>> {
    let per_frame = planes.len() / b.n;
    let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> {
        let (frame_planes, mattes) = x.split_at(b.n * per_frame);
        let mut out = Vec::new();
        for (p, m) in frame_planes.chunks(per_frame).zip(mattes) {
            out.extend(tensor::output_planes(background, spec, p, &b.shape, m)?);
        }
        Ok(out)
    };
    let inputs: Vec<Tensor> = planes
        .iter()
        .chain(smoothed)
        .map(Tensor::shallow_clone)
        .collect();
    let Some(entry) = entry else {
        return work(&inputs);
    };
    let out = entry.output(OutputKey::of(spec));
    let planes_out = out.stage.run(b.mode, &inputs, planes.len(), &mut work)?;
    // The graph reads the background planes at their addresses: hold them (and the
    // frame, so that its address is not reused) as long as the stage lives.
    if let (OutputKind::Composite, BackgroundSource::Frame(frame)) =
        (&spec.output, &spec.background)
        && !out.holds_background()
    {
        out.keep_background(frame.clone(), background.planes(frame, b.device)?);
    }
    Ok(planes_out)
}

/// The frames' results, each with its share of the batch's time (no network time for
/// frames that reused a matte).
fn in_flight(
    downloads: Vec<Download>,
    infer: &[bool],
    t: &StageTimings,
    started: Instant,
) -> Vec<InFlight> {
    let per = |d: Duration| d / infer.len().max(1) as u32;
    let share = StageTimings {
        upload: per(t.upload),
        preprocess: per(t.preprocess),
        inference: per(t.inference),
        postprocess: per(t.postprocess),
        compositing: per(t.compositing),
        download: per(t.download),
        wall: Duration::ZERO,
    };
    let reused = StageTimings {
        preprocess: Duration::ZERO,
        inference: Duration::ZERO,
        postprocess: Duration::ZERO,
        ..share
    };
    downloads
        .into_iter()
        .zip(infer)
        .map(|(download, &inferred)| InFlight {
            download,
            timings: if inferred { share } else { reused },
            started,
        })
        .collect()
}
