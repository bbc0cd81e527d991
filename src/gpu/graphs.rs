//! The device path's two stages (frames -> mattes, frames + mattes -> output planes),
//! run as plain tensor operations or, on CUDA, captured once into a CUDA graph and
//! replayed for every later batch of the same shape.
//!
//! Why: the TorchScript interpreter issues MODNet's kernels one by one, and the
//! compositing is dozens more small kernels; on a fast GPU the host's issue rate, not
//! the GPU, bounds a frame. A replay issues all of a stage's kernels in one call.
//!
//! How: a stage runs on fixed ("static") input tensors. Its first `warm_up` runs are
//! plain (they give the frame's real result, and let the profiling executor and cuDNN
//! settle, on the capture stream itself); then the work is captured once; from then on
//! new inputs are copied into the static ones and the graph replays, rewriting the same
//! output tensors. So a stage's outputs are only valid until its next run: callers copy
//! what must live longer (the device path downloads from a copy). A capture that fails
//! leaves the stage plain for good, with the reason kept for the log.

use std::sync::Arc;

use tch::Tensor;

use crate::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use crate::error::{Error, Result};
use crate::frame::{FrameShape, OwnedFrame};
use crate::gpu::shim;

/// Plain runs before a capture. MODNet's forward needs at least 5: TorchScript's
/// profiling executor specialises over its first runs.
pub const MATTE_WARM_UP: u32 = 5;
/// The output stage is plain tensor ops: two runs settle its allocations.
pub const OUTPUT_WARM_UP: u32 = 2;
/// Batch shapes kept (a full batch and the short last one of a stream).
const SHAPES_KEPT: usize = 2;
/// Output variants kept per shape (the output settings may change while playing).
const OUTPUTS_KEPT: usize = 4;

/// How stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each run issues its operations (CPU, or CUDA graphs off or unavailable).
    Plain,
    /// Captured into CUDA graphs on this device after the warm-up runs.
    Cuda(usize),
    /// A CPU stand-in for tests: static inputs and outputs exactly as with graphs
    /// (a "replay" runs the work again and writes the static outputs), so that data
    /// flow mistakes show on a machine with no GPU.
    Emulated,
}

enum Captured {
    Cuda(shim::Graph),
    Emulated,
}

/// One stage's static tensors and graph.
pub struct Stage {
    warm_up: u32,
    runs: u32,
    /// Inputs the caller already holds at fixed addresses (`adopted` of them, first)
    /// are used in place; the rest are copies made here.
    inputs: Vec<Tensor>,
    adopted: usize,
    outputs: Vec<Tensor>,
    captured: Option<Captured>,
    failed: Option<String>,
    replays: u64,
}

type Work<'a> = dyn FnMut(&[Tensor]) -> Result<Vec<Tensor>> + 'a;

impl Stage {
    pub fn new(warm_up: u32) -> Self {
        Self {
            warm_up,
            runs: 0,
            inputs: Vec::new(),
            adopted: 0,
            outputs: Vec::new(),
            captured: None,
            failed: None,
            replays: 0,
        }
    }

    /// Runs `work` on `inputs` (the first `adopted` of which stay at the same
    /// addresses from run to run). Returns the outputs, valid until the next run.
    pub fn run(
        &mut self,
        mode: Mode,
        inputs: &[Tensor],
        adopted: usize,
        work: &mut Work<'_>,
    ) -> Result<Vec<Tensor>> {
        if mode == Mode::Plain || self.failed.is_some() {
            return work(inputs);
        }
        self.load(inputs, adopted)?;
        if let Some(captured) = &self.captured {
            match captured {
                Captured::Cuda(graph) => graph.replay()?,
                Captured::Emulated => {
                    let fresh = work(&self.inputs)?;
                    if fresh.len() != self.outputs.len() {
                        return Err(Error::InvalidConfig(
                            "a stage's outputs changed in number between runs".into(),
                        ));
                    }
                    for (o, f) in self.outputs.iter_mut().zip(&fresh) {
                        o.f_copy_(f)?;
                    }
                }
            }
            self.replays += 1;
            return Ok(self.outputs.iter().map(Tensor::shallow_clone).collect());
        }
        // Warm-up: a plain run on the static inputs gives this run's result.
        let result = work(&self.inputs)?;
        self.runs += 1;
        if self.runs >= self.warm_up {
            let statics = &self.inputs;
            let captured = match mode {
                Mode::Cuda(ordinal) => shim::Graph::capture(ordinal, || work(statics))
                    .map(|(g, outs)| (Captured::Cuda(g), outs)),
                _ => work(statics).map(|outs| (Captured::Emulated, outs)),
            };
            match captured {
                Ok((c, outs)) => {
                    self.captured = Some(c);
                    self.outputs = outs;
                }
                Err(e) => self.failed = Some(e.to_string()),
            }
        }
        Ok(result)
    }

    /// Copies `inputs` into the static inputs (made on the first run).
    fn load(&mut self, inputs: &[Tensor], adopted: usize) -> Result<()> {
        if self.inputs.is_empty() {
            self.adopted = adopted.min(inputs.len());
            self.inputs = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i < self.adopted {
                        Ok(t.shallow_clone())
                    } else {
                        duplicate(t)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(());
        }
        if inputs.len() != self.inputs.len() {
            return Err(Error::InvalidConfig(format!(
                "a stage got {} inputs, captured with {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        for (i, (s, t)) in self.inputs.iter_mut().zip(inputs).enumerate() {
            if s.size() != t.size() || s.kind() != t.kind() {
                return Err(Error::InvalidConfig(format!(
                    "stage input {i} is {:?} {:?}, captured as {:?} {:?}",
                    t.size(),
                    t.kind(),
                    s.size(),
                    s.kind()
                )));
            }
            if s.data_ptr() == t.data_ptr() {
                continue;
            }
            if i < self.adopted {
                return Err(Error::InvalidConfig(format!(
                    "stage input {i} was to stay in place and moved"
                )));
            }
            s.f_copy_(t)?;
        }
        Ok(())
    }

    pub fn is_captured(&self) -> bool {
        self.captured.is_some()
    }

    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

/// A copy of `t` in new memory (one copy kernel on the device).
pub fn duplicate(t: &Tensor) -> Result<Tensor> {
    let mut s = t.f_empty_like()?;
    s.f_copy_(t)?;
    Ok(s)
}

/// What an output stage depends on besides the frame shape (the smoothing is applied
/// between the stages, outside any graph).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputKey {
    output: OutputKind,
    /// Blur radius, or the identity of the background frame (held alive below, so
    /// that its address cannot be reused by another).
    blur: Option<u32>,
    background: Option<usize>,
    threshold_bits: u64,
}

impl OutputKey {
    pub fn of(spec: &OutputSpec) -> Self {
        let (blur, background) = match (&spec.output, &spec.background) {
            (OutputKind::Composite, BackgroundSource::Blur(r)) => (Some(*r), None),
            (OutputKind::Composite, BackgroundSource::Frame(f)) => {
                (None, Some(Arc::as_ptr(f) as usize))
            }
            _ => (None, None),
        };
        Self {
            output: spec.output,
            blur,
            background,
            threshold_bits: spec.threshold.to_bits(),
        }
    }
}

/// An output stage and what its graph reads besides its inputs.
pub struct OutputStage {
    key: OutputKey,
    pub stage: Stage,
    /// The background frame and its planes on the device, read by the graph.
    keep: Option<(Arc<OwnedFrame>, Vec<Tensor>)>,
}

impl OutputStage {
    pub fn keep_background(&mut self, frame: Arc<OwnedFrame>, planes: Vec<Tensor>) {
        self.keep = Some((frame, planes));
    }

    pub fn holds_background(&self) -> bool {
        self.keep.is_some()
    }
}

/// Everything kept for one batch shape: the static frame planes both stages read,
/// the matte stage, and the output stages.
pub struct BatchStages {
    shape: FrameShape,
    frames: usize,
    /// Static frame planes (graph modes): `frames` x planes per frame, in order.
    pub planes: Vec<Tensor>,
    pub matte: Stage,
    outputs: Vec<OutputStage>,
}

impl BatchStages {
    /// The output stage for `key`, made if new (the least recently used one beyond
    /// `OUTPUTS_KEPT` is dropped, with its graph).
    pub fn output(&mut self, key: OutputKey) -> &mut OutputStage {
        let found = self.outputs.iter().position(|o| o.key == key);
        let entry = match found {
            Some(i) => self.outputs.remove(i),
            None => OutputStage {
                key,
                stage: Stage::new(OUTPUT_WARM_UP),
                keep: None,
            },
        };
        most_recent(&mut self.outputs, entry, OUTPUTS_KEPT)
    }

    pub fn captured_graphs(&self) -> usize {
        usize::from(self.matte.is_captured())
            + self
                .outputs
                .iter()
                .filter(|o| o.stage.is_captured())
                .count()
    }

    fn replays(&self) -> u64 {
        self.matte.replays + self.outputs.iter().map(|o| o.stage.replays).sum::<u64>()
    }

    fn failure(&self) -> Option<&str> {
        self.matte
            .failure()
            .or_else(|| self.outputs.iter().find_map(|o| o.stage.failure()))
    }
}

/// Puts `entry` last in `list` (most recently used), dropping the oldest beyond
/// `kept` (with its graphs), and returns it.
fn most_recent<T>(list: &mut Vec<T>, entry: T, kept: usize) -> &mut T {
    if list.len() >= kept {
        list.remove(0);
    }
    list.push(entry);
    let last = list.len() - 1;
    &mut list[last]
}

/// The stages of the shapes seen recently, per stream.
#[derive(Default)]
pub struct Cache {
    entries: Vec<BatchStages>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("graphs::Cache")
            .field("shapes", &self.entries.len())
            .field("status", &self.status())
            .finish()
    }
}

/// What the graphs have done so far, for stats and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub captured: usize,
    pub replays: u64,
    /// The first capture failure, if any (those stages run plain).
    pub failure: Option<String>,
}

impl Cache {
    /// The stages for `frames` frames of `shape` on `device`, made if new (with the
    /// static planes both stages read: uint8 [rows, row bytes] per plane per frame).
    pub fn batch(
        &mut self,
        shape: FrameShape,
        frames: usize,
        device: tch::Device,
    ) -> Result<&mut BatchStages> {
        let found = self
            .entries
            .iter()
            .position(|e| e.shape == shape && e.frames == frames);
        let entry = match found {
            Some(i) => self.entries.remove(i),
            None => {
                let sizes = shape
                    .format
                    .plane_sizes(shape.width as usize, shape.height as usize);
                let mut planes = Vec::with_capacity(frames * sizes.len());
                for _ in 0..frames {
                    for (row, rows) in &sizes {
                        let size = [*rows as i64, *row as i64];
                        planes.push(Tensor::f_empty(size, (tch::Kind::Uint8, device))?);
                    }
                }
                BatchStages {
                    shape,
                    frames,
                    planes,
                    matte: Stage::new(MATTE_WARM_UP),
                    outputs: Vec::new(),
                }
            }
        };
        Ok(most_recent(&mut self.entries, entry, SHAPES_KEPT))
    }

    pub fn status(&self) -> Status {
        Status {
            captured: self.entries.iter().map(BatchStages::captured_graphs).sum(),
            replays: self.entries.iter().map(BatchStages::replays).sum(),
            failure: self
                .entries
                .iter()
                .find_map(|e| e.failure().map(str::to_string)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn emulated_stage_warms_up_captures_and_replays_on_new_inputs() {
        let mut stage = Stage::new(2);
        let mut calls = 0;
        let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> {
            calls += 1;
            Ok(vec![x[0].f_mul_scalar(2.0)?])
        };
        let run = |stage: &mut Stage, work: &mut Work<'_>, v: f32| {
            let out = stage.run(Mode::Emulated, &[t(&[v, v])], 0, work).unwrap();
            Vec::<f32>::try_from(&out[0]).unwrap()
        };
        assert_eq!(run(&mut stage, &mut work, 1.0), [2.0, 2.0]);
        assert!(!stage.is_captured());
        // Second run: warm-up ends, the work is "captured" (run once more).
        assert_eq!(run(&mut stage, &mut work, 3.0), [6.0, 6.0]);
        assert!(stage.is_captured());
        // Replays see each new input through the static copy.
        let first = stage
            .run(Mode::Emulated, &[t(&[5.0, 5.0])], 0, &mut work)
            .unwrap();
        assert_eq!(Vec::<f32>::try_from(&first[0]).unwrap(), [10.0, 10.0]);
        let second = stage
            .run(Mode::Emulated, &[t(&[7.0, 7.0])], 0, &mut work)
            .unwrap();
        // Outputs are the static tensors: the older result is overwritten, as a
        // graph replay would do (callers must copy what they keep).
        assert_eq!(Vec::<f32>::try_from(&first[0]).unwrap(), [14.0, 14.0]);
        assert_eq!(first[0].data_ptr(), second[0].data_ptr());
        assert_eq!(stage.replays, 2);
    }

    #[test]
    fn a_stage_refuses_inputs_of_another_shape_and_moved_adopted_inputs() {
        let mut stage = Stage::new(1);
        let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![x[0].f_add_scalar(1.0)?]) };
        let mut fixed = t(&[1.0, 2.0]);
        stage
            .run(Mode::Emulated, &[fixed.shallow_clone()], 1, &mut work)
            .unwrap();
        let err = stage
            .run(Mode::Emulated, &[t(&[1.0, 2.0, 3.0])], 1, &mut work)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("captured as"), "{err}");
        let err = stage
            .run(Mode::Emulated, &[t(&[1.0, 2.0])], 1, &mut work)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("moved"), "{err}");
        // The adopted tensor itself is read in place.
        let _ = fixed.f_fill_(10.0).unwrap();
        let out = stage.run(Mode::Emulated, &[fixed], 1, &mut work).unwrap();
        assert_eq!(Vec::<f32>::try_from(&out[0]).unwrap(), [11.0, 11.0]);
    }

    #[test]
    fn on_a_cpu_a_cuda_capture_fails_once_and_the_stage_stays_plain() {
        if crate::gpu::driver::skips_with_a_driver() {
            return;
        }
        let mut stage = Stage::new(1);
        let mut work = |x: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![x[0].f_neg()?]) };
        let x = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let out = stage
            .run(Mode::Cuda(0), &[x.shallow_clone()], 0, &mut work)
            .unwrap();
        assert_eq!(Vec::<f32>::try_from(&out[0]).unwrap(), [-1.0, -1.0]);
        let why = stage.failure().unwrap().to_string();
        assert!(why.contains("cuda:0"), "{why}");
        // Later runs are plain and right.
        let out = stage
            .run(Mode::Cuda(0), &[x.f_mul_scalar(3.0).unwrap()], 0, &mut work)
            .unwrap();
        assert_eq!(Vec::<f32>::try_from(&out[0]).unwrap(), [-3.0, -3.0]);
        assert!(!stage.is_captured());
    }

    #[test]
    fn output_keys_follow_what_the_graph_depends_on() {
        let spec = |bg: BackgroundSource, threshold: f64, smoothing: f32| OutputSpec {
            output: OutputKind::Composite,
            background: bg,
            threshold,
            smoothing,
        };
        let a = OutputKey::of(&spec(BackgroundSource::Blur(8), 0.0, 0.0));
        assert_eq!(a, OutputKey::of(&spec(BackgroundSource::Blur(8), 0.0, 0.7)));
        assert_ne!(a, OutputKey::of(&spec(BackgroundSource::Blur(9), 0.0, 0.0)));
        assert_ne!(a, OutputKey::of(&spec(BackgroundSource::Blur(8), 0.5, 0.0)));
        let matte = |bg| OutputSpec {
            output: OutputKind::Matte,
            ..spec(bg, 0.0, 0.0)
        };
        assert_eq!(
            OutputKey::of(&matte(BackgroundSource::Blur(8))),
            OutputKey::of(&matte(BackgroundSource::Blur(3)))
        );
    }
}
