//! The TorchScript MODNet: loading, the contract check, the forward pass.
//!
//! Contract (models/README.md): input float32 [1,3,H,W] in [-1,1], H and W multiples
//! of 32; output one float32 tensor [1,1,H,W] with values in [0,1].

use std::path::{Path, PathBuf};

use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{Error, Result};

/// Probe input size: small (cheap at load) but deep enough for the 1/32 stage.
const PROBE_SIDE: i64 = 64;
/// Values a sigmoid output may exceed [0,1] by through rounding.
const RANGE_SLACK: f64 = 1e-5;

/// The numbers the network computes in. fp16 runs on CUDA only (libtorch's CPU
/// convolutions have no half kernels); the input and output stay float32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" => Ok(Self::Fp32),
            "fp16" | "float16" | "half" => Ok(Self::Fp16),
            other => Err(Error::InvalidConfig(format!(
                "precision `{other}`: expected fp32 or fp16"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
        })
    }
}

pub struct Model {
    module: CModule,
    path: PathBuf,
    device: Device,
    precision: Precision,
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

    /// As `load`, with the weights cast to `precision` (fp16 needs a CUDA device). The
    /// probe then checks the contract at that precision.
    pub fn load_as(path: &Path, device: Device, precision: Precision) -> Result<Self> {
        if precision == Precision::Fp16 && !device.is_cuda() {
            return Err(Error::InvalidConfig(format!(
                "precision fp16 needs a CUDA device, not {device:?}"
            )));
        }
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
        let mut module = CModule::load_on_device(path, device).map_err(|e| Error::ModelLoad {
            path: path.to_path_buf(),
            reason: first_line(&e.to_string()),
        })?;
        module.set_eval();
        if precision == Precision::Fp16 {
            // InstanceNorm in half: cuDNN accumulates its statistics in float, so the
            // matte stays within a few levels of fp32 (gpu_check.sh measures it).
            module.to(device, Kind::Half, false);
        }
        let model = Self {
            module,
            path: path.to_path_buf(),
            device,
            precision,
        };
        model.probe()?;
        Ok(model)
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let (kind, fed) = match self.precision {
            Precision::Fp32 => (Kind::Float, input.shallow_clone()),
            Precision::Fp16 => (Kind::Half, input.f_to_kind(Kind::Half)?),
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
        let expected = [1, 1, size[2], size[3]];
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
        Ok(if kind == Kind::Float {
            out
        } else {
            out.f_to_kind(Kind::Float)?
        })
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

/// libtorch errors carry a C++ backtrace after the first line; users need the first.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}
