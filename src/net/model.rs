//! The TorchScript MODNet: loading, the contract check, the forward pass.
//!
//! Contract (models/README.md): input float32 [N,3,H,W] in [-1,1], H and W multiples
//! of 32; output one float32 tensor [N,1,H,W] with values in [0,1] (N frames at once:
//! MODNet's norms are per frame in eval mode, so a batch gives each frame's own matte).

use std::path::{Path, PathBuf};

use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{Error, Result};

/// Probe input size: small (cheap at load) but deep enough for the 1/32 stage.
const PROBE_SIDE: i64 = 64;
/// Values a sigmoid output may exceed [0,1] by through rounding.
const RANGE_SLACK: f64 = 1e-5;

/// The numbers the network computes in. fp16 is a model file of its own (the
/// exporter's `--fp16` variant, `<name>_fp16.pt` next to the float32 one: half
/// precision inside but for the backbone's first blocks, float32 in and out) and runs
/// on CUDA only (on a CPU it is slower than fp32). bf16 is the CPU variant's
/// (`--bf16`, `<name>_bf16.pt`: bfloat16 for the high-resolution and fusion
/// branches), fast on CPUs with AMX or AVX512-BF16. `Auto` is a request only: the
/// engine resolves it (`choose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Bf16,
    Auto,
}

/// What `auto` and the fallbacks make of a requested precision: on CUDA fp16 or
/// fp32; on a CPU bf16 where the CPU has bfloat16 instructions (`bf16_isa`) and a
/// current bf16 variant exists, else fp32. With the reason, for the device line.
pub fn choose(
    requested: Precision,
    cuda: bool,
    bf16_isa: Option<&str>,
    bf16_variant: bool,
) -> (Precision, String) {
    use Precision::*;
    match (requested, cuda) {
        (Fp16, true) => (Fp16, "fp16".into()),
        (Fp16, false) => (Fp32, "fp16 needs CUDA: running fp32".into()),
        (Bf16, true) => (Fp32, "bf16 is the CPU variant: running fp32 on CUDA".into()),
        (Auto, true) => (Fp32, "auto: fp32 on CUDA".into()),
        (Fp32, _) => (Fp32, "fp32".into()),
        (Bf16, false) => match bf16_isa {
            Some(isa) => (Bf16, format!("bf16 ({isa})")),
            None => (
                Bf16,
                "bf16 without AMX or AVX512-BF16 on this CPU: emulated, slower than fp32".into(),
            ),
        },
        (Auto, false) => match (bf16_isa, bf16_variant) {
            (Some(isa), true) => (Bf16, format!("auto: bf16, the CPU has {isa}")),
            (Some(isa), false) => (
                Fp32,
                format!("auto: fp32 (the CPU has {isa}, but no current _bf16.pt beside the model)"),
            ),
            (None, _) => (
                Fp32,
                "auto: fp32, the CPU has neither AMX nor AVX512-BF16".into(),
            ),
        },
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" => Ok(Self::Fp32),
            "fp16" | "float16" | "half" => Ok(Self::Fp16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "auto" => Ok(Self::Auto),
            other => Err(Error::InvalidConfig(format!(
                "precision `{other}`: expected auto, fp32, fp16 or bf16"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Bf16 => "bf16",
            Self::Auto => "auto",
        })
    }
}

/// The half-precision variant of a model file: `<stem>_fp16.pt` in the same folder
/// (a symbolic link, as in the data directory, is followed to the real file's folder
/// when the variant is not beside the link itself). A path already naming a
/// `_fp16.pt` file is its own variant.
pub fn fp16_variant(path: &Path) -> PathBuf {
    variant(path, "_fp16")
}

/// The CPU variant of a model file (`tools/modnet/export.py --cpu`:
/// `<stem>_cpu.pt`, found as `fp16_variant` finds its file): the same network with
/// IBNorm's BatchNorm folded and channels-last memory throughout, which oneDNN runs
/// without layout copies. A float32 model on a CPU loads it when it is there and
/// not older than the model (a variant left from replaced weights is ignored).
pub fn cpu_variant(path: &Path) -> PathBuf {
    variant(path, "_cpu")
}

fn variant(path: &Path, suffix: &str) -> PathBuf {
    let beside = |p: &Path| -> PathBuf {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        if stem.ends_with(suffix) {
            return p.to_path_buf();
        }
        p.with_file_name(format!("{stem}{suffix}.pt"))
    };
    let direct = beside(path);
    if direct.exists() {
        return direct;
    }
    match std::fs::canonicalize(path) {
        Ok(real) if real != path => {
            let resolved = beside(&real);
            if resolved.exists() { resolved } else { direct }
        }
        _ => direct,
    }
}

/// The bfloat16 CPU variant of a model file (`tools/modnet/export.py --bf16`:
/// `<stem>_bf16.pt`), found and taken by the same freshness rule as `cpu_variant`.
pub fn bf16_variant(path: &Path) -> PathBuf {
    variant(path, "_bf16")
}

/// The CPU variant to load instead of `path`, if there is a current one.
fn current_cpu_variant(path: &Path) -> Option<PathBuf> {
    current(path, cpu_variant(path))
}

/// The bf16 variant of `path`, if there is one not older than it.
pub fn current_bf16_variant(path: &Path) -> Option<PathBuf> {
    current(path, bf16_variant(path))
}

fn current(path: &Path, variant: PathBuf) -> Option<PathBuf> {
    if variant == path {
        return None;
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&variant), modified(path)) {
        (Some(v), Some(m)) if v >= m => Some(variant),
        _ => None,
    }
}

/// The file to load for `precision` on `device`: the model, or its CPU, bf16 or fp16
/// variant (an error names a missing one and how to make it).
fn file_for(path: &Path, device: Device, precision: Precision) -> Result<PathBuf> {
    Ok(match precision {
        Precision::Fp32 if device.is_cuda() => path.to_path_buf(),
        Precision::Fp32 | Precision::Auto => {
            current_cpu_variant(path).unwrap_or_else(|| path.to_path_buf())
        }
        Precision::Bf16 => current_bf16_variant(path).ok_or_else(|| Error::ModelLoad {
            path: bf16_variant(path),
            reason: "precision bf16 needs this bfloat16 variant of the model, not older than \
                     the model (scripts/setup.sh makes it; or tools/modnet/export.py --bf16)"
                .into(),
        })?,
        Precision::Fp16 => {
            let variant = fp16_variant(path);
            if !variant.exists() {
                return Err(Error::ModelLoad {
                    path: variant,
                    reason: "precision fp16 needs this half-precision variant of the model \
                             (scripts/setup.sh makes it; or tools/modnet/export.py --fp16)"
                        .into(),
                });
            }
            variant
        }
    })
}

pub struct Model {
    module: CModule,
    path: PathBuf,
    device: Device,
    precision: Precision,
    /// The file asks for channels-last input (its `input_channels_last()`).
    channels_last: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("precision", &self.precision)
            .finish()
    }
}

impl Model {
    /// Loads `path` on `device` in fp32 and checks the contract with one probe forward
    /// pass.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::load_as(path, device, Precision::Fp32)
    }

    /// As `load`, at `precision`: fp16 loads the half-precision variant next to
    /// `path` (see `fp16_variant`) and needs a CUDA device. The probe checks the
    /// contract either way.
    pub fn load_as(path: &Path, device: Device, precision: Precision) -> Result<Self> {
        if precision == Precision::Fp16 && !device.is_cuda() {
            return Err(Error::InvalidConfig(format!(
                "precision fp16 needs a CUDA device, not {device:?}"
            )));
        }
        if precision == Precision::Bf16 && device.is_cuda() {
            return Err(Error::InvalidConfig(format!(
                "precision bf16 is the CPU variant, not for {device:?}"
            )));
        }
        if precision == Precision::Auto {
            return Err(Error::InvalidConfig(
                "precision auto is resolved by the engine (net::model::choose) before loading"
                    .into(),
            ));
        }
        let chosen = file_for(path, device, precision)?;
        let path = chosen.as_path();
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ModelNotFound {
                path: path.to_path_buf(),
            },
            _ => Error::ModelLoad {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        if !meta.is_file() {
            return Err(Error::ModelLoad {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        // Only the CPU variants need the fused operators: a failure to register them
        // matters only if the load fails, and is then part of its reason.
        let ops = super::ops::register();
        let mut module = CModule::load_on_device(path, device).map_err(|e| Error::ModelLoad {
            path: path.to_path_buf(),
            reason: match &ops {
                Ok(()) => first_line(&e.to_string()),
                Err(why) => format!("{} ({why})", first_line(&e.to_string())),
            },
        })?;
        module.set_eval();
        // Only a file that says so gets channels-last input; any other answer (no
        // such method, as in the plain export) means NCHW.
        let no_args: &[IValue] = &[];
        let channels_last = matches!(
            module.method_is("input_channels_last", no_args),
            Ok(IValue::Bool(true))
        );
        let model = Self {
            module,
            path: path.to_path_buf(),
            device,
            precision,
            channels_last,
        };
        model.probe()?;
        Ok(model)
    }

    /// The file actually loaded (the CPU or fp16 variant where one was taken).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the network takes its input in channels-last memory (the CPU variant).
    pub fn channels_last(&self) -> bool {
        self.channels_last
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The matte for a prepared input; the output is checked for shape and dtype on
    /// every call (cheap), so a model that changes its mind cannot corrupt a frame.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        if !self.device.is_cuda() {
            // The graph executor's optimisation passes cost MODNet 5-28% a frame on a
            // CPU in matte-image (720p, 5 alternating pairs; the element's worker
            // showed no difference either way). CUDA keeps them (fusion). The switch
            // is per thread in libtorch, hence here, on the calling thread.
            tch::jit::f_set_graph_executor_optimize(false)?;
        }
        // Both variants take and return float32 (the fp16 one casts inside).
        let kind = Kind::Float;
        let fed = if self.channels_last {
            to_channels_last(input)?
        } else {
            input.shallow_clone()
        };
        let out = self
            .module
            .forward_is(&[IValue::Tensor(fed)])
            .map_err(|e| {
                self.contract(format!(
                    "forward pass failed: {}",
                    first_line(&e.to_string())
                ))
            })?;
        let out = match out {
            IValue::Tensor(t) => t,
            other => {
                return Err(self.contract(format!(
                    "returned {} instead of one tensor",
                    ivalue_kind(&other)
                )));
            }
        };
        let size = input.size();
        // One matte per frame of the batch.
        let expected = [size[0], 1, size[2], size[3]];
        if out.size() != expected {
            return Err(self.contract(format!(
                "returned shape {:?} for input {:?} (expected {:?})",
                out.size(),
                size,
                expected
            )));
        }
        if out.kind() != kind {
            return Err(self.contract(format!(
                "returned dtype {:?} (expected {kind:?})",
                out.kind()
            )));
        }
        Ok(out)
    }

    fn probe(&self) -> Result<()> {
        // A smooth ramp in [-1,1]: deterministic, and not constant (InstanceNorm).
        let ramp = Tensor::f_linspace(
            -1.0,
            1.0,
            3 * PROBE_SIDE * PROBE_SIDE,
            (Kind::Float, self.device),
        )?;
        let input = ramp.f_view([1, 3, PROBE_SIDE, PROBE_SIDE])?;
        let out = self.forward(&input)?;
        let (lo, hi) = (
            out.f_min()?.double_value(&[]),
            out.f_max()?.double_value(&[]),
        );
        if !(lo >= -RANGE_SLACK && hi <= 1.0 + RANGE_SLACK) {
            return Err(self.contract(format!("output values span [{lo}, {hi}] (expected [0, 1])")));
        }
        Ok(())
    }

    fn contract(&self, reason: String) -> Error {
        Error::ModelContract {
            path: self.path.clone(),
            reason,
        }
    }
}

fn ivalue_kind(v: &IValue) -> &'static str {
    match v {
        IValue::None => "None",
        IValue::Tensor(_) => "a tensor",
        IValue::Double(_) => "a float",
        IValue::Int(_) => "an int",
        IValue::Bool(_) => "a bool",
        IValue::Tuple(_) => "a tuple",
        IValue::String(_) => "a string",
        IValue::GenericList(_)
        | IValue::TensorList(_)
        | IValue::DoubleList(_)
        | IValue::IntList(_)
        | IValue::BoolList(_)
        | IValue::StringList(_) => "a list",
        IValue::GenericDict(_) => "a dict",
        IValue::Object(_) => "an object",
        _ => "a value of another type",
    }
}

/// The same [N,C,H,W] tensor with channels-last strides (NHWC in memory), which is
/// what PyTorch's memory-format checks recognise; no copy if it already is.
pub fn to_channels_last(x: &Tensor) -> Result<Tensor> {
    let size = x.size();
    if size.len() != 4 {
        return Ok(x.shallow_clone());
    }
    let (c, h, w) = (size[1], size[2], size[3]);
    if x.stride() == [h * w * c, 1, w * c, c] {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])?)
}

/// libtorch errors carry a C++ backtrace after the first line; users need the first.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}
