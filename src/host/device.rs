//! Where inference runs: `auto`, `cpu`, `cuda` or `cuda:N`.
//!
//! rustc links with `--as-needed`, which drops libtorch_cuda.so (nothing references
//! its symbols directly: it registers CUDA with libtorch from static initialisers).
//! So one binary serves CPU and GPU machines: for `auto` and `cuda` we dlopen it at
//! run time, and CUDA is used only if that works and libtorch then sees a device.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// CUDA where it works, else CPU.
    #[default]
    Auto,
    Cpu,
    /// A CUDA device by ordinal.
    Cuda(usize),
}

impl FromStr for DeviceRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Device {
            device: s.to_string(),
            reason: format!("{why} (expected auto, cpu, cuda or cuda:N)"),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map(Self::Cuda)
                    .map_err(|_| bad("the CUDA ordinal is not a number")),
                None => Err(bad("unknown device")),
            },
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The device chosen for a request, and why (for a log line).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub device: tch::Device,
    pub why: String,
}

/// Turns a request into a device, or an error naming what is missing.
pub fn resolve(request: DeviceRequest) -> Result<Resolved> {
    // device=cpu never loads the (large) CUDA libraries.
    let cuda_count = if request == DeviceRequest::Cpu {
        0
    } else {
        cuda_device_count()
    };
    if cuda_count > 0 {
        disable_tf32_convolutions();
    }
    let missing = || match load_cuda_runtime() {
        Err(e) => e,
        Ok(()) => "libtorch sees no usable CUDA device (no NVIDIA driver or GPU)".into(),
    };
    match request {
        DeviceRequest::Cpu => Ok(Resolved {
            device: tch::Device::Cpu,
            why: "cpu requested".into(),
        }),
        DeviceRequest::Auto if cuda_count > 0 => Ok(Resolved {
            device: tch::Device::Cuda(0),
            why: format!("auto: libtorch sees {cuda_count} CUDA device(s)"),
        }),
        DeviceRequest::Auto => Ok(Resolved {
            device: tch::Device::Cpu,
            why: format!("auto: using the CPU: {}", missing()),
        }),
        DeviceRequest::Cuda(n) if n < cuda_count => Ok(Resolved {
            device: tch::Device::Cuda(n),
            why: format!("cuda:{n} requested"),
        }),
        DeviceRequest::Cuda(n) => Err(Error::Device {
            device: request.to_string(),
            reason: if cuda_count == 0 {
                format!("{}; use device=cpu or auto", missing())
            } else {
                format!("there are {cuda_count} CUDA device(s), numbered from 0: no cuda:{n}")
            },
        }),
    }
}

/// Loads libtorch_cuda.so once per process (kept loaded); the error says why not.
pub(crate) fn load_cuda_runtime() -> std::result::Result<(), String> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LAZY, RTLD_NOW};
            // The driver first: it is small, and without it libtorch_cuda (hundreds of
            // MB mapped) would be loaded for nothing on a machine with no GPU.
            // SAFETY: libcuda has no initialisers with effects beyond itself.
            let driver = unsafe { Library::open(Some("libcuda.so.1"), RTLD_LAZY) };
            if driver.is_err() {
                return Err("no NVIDIA driver (libcuda.so.1 not found)".to_string());
            }
            // SAFETY: loading libtorch_cuda runs its static initialisers, which only
            // register the CUDA backend with the libtorch already in this process.
            let lib = unsafe { Library::open(Some("libtorch_cuda.so"), RTLD_NOW | RTLD_GLOBAL) };
            lib.map(std::mem::forget)
                .map_err(|e| format!("libtorch's CUDA library could not be loaded ({e})"))
        })
        .clone()
}

// libtorch's global switches that tch does not wrap (C++ symbols of the libtorch 2.11.0
// that tch 0.24 links, which this crate pins exactly).
unsafe extern "C" {
    #[link_name = "_ZN2at13globalContextEv"]
    fn at_global_context() -> *mut std::ffi::c_void;
    #[link_name = "_ZN2at7Context17setAllowTF32CuDNNEb"]
    fn at_context_set_allow_tf32_cudnn(context: *mut std::ffi::c_void, allow: bool);
}

/// cuDNN convolutions default to TF32 on Ampere and later, which moved our fp32 matte
/// by up to 7.4/255 from the reference on an H200: keep them in full fp32.
fn disable_tf32_convolutions() {
    // SAFETY: both are plain exported libtorch functions: the first returns the
    // process-wide at::Context, the second (a member function, `this` first) flips
    // one of its flags.
    unsafe { at_context_set_allow_tf32_cudnn(at_global_context(), false) }
}

fn cuda_device_count() -> usize {
    if load_cuda_runtime().is_err() {
        return 0;
    }
    // Both calls are safe without a driver: they return 0/false, never panic.
    if tch::Cuda::is_available() {
        usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!(
            "auto".parse::<DeviceRequest>().ok(),
            Some(DeviceRequest::Auto)
        );
        assert_eq!(
            " CPU ".parse::<DeviceRequest>().ok(),
            Some(DeviceRequest::Cpu)
        );
        assert_eq!(
            "cuda".parse::<DeviceRequest>().ok(),
            Some(DeviceRequest::Cuda(0))
        );
        assert_eq!(
            "cuda:3".parse::<DeviceRequest>().ok(),
            Some(DeviceRequest::Cuda(3))
        );
        for bad in ["", "gpu", "cuda:", "cuda:x", "cuda:-1"] {
            let err = bad.parse::<DeviceRequest>().unwrap_err().to_string();
            assert!(
                err.contains("expected auto, cpu, cuda or cuda:N"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(
            resolve(DeviceRequest::Cpu).unwrap().device,
            tch::Device::Cpu
        );
    }
}
