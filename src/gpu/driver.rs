//! Entering CUDA's driver API through cudarc: the primary context, memory figures,
//! and driver errors worded with the device they came from. cudarc panics without a
//! driver library, so every entry checks for it first.

use std::sync::Arc;

use crate::error::{Error, Result};

/// Whether the NVIDIA driver library can be loaded (cudarc panics without it).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// For the tests of the driverless case: true, and says so, where a driver is
/// present (a GPU machine runs scripts/gpu_check.sh instead), so that a skip is never
/// mistaken for a pass.
#[doc(hidden)]
pub fn skips_with_a_driver() -> bool {
    let present = driver_present();
    if present {
        eprintln!("skipped: a CUDA driver is present (this test checks the driverless case)");
    }
    present
}

/// The CUDA primary context of device `ordinal` (the one libtorch uses), or why not.
/// cudarc panics without a driver, so the library is checked first.
pub fn cuda_context(ordinal: usize) -> Result<Arc<cudarc::driver::CudaContext>> {
    if !driver_present() {
        return Err(Error::Device {
            device: format!("cuda:{ordinal}"),
            reason: "no NVIDIA driver (libcuda not found)".into(),
        });
    }
    cudarc::driver::CudaContext::new(ordinal).map_err(|e| Error::Device {
        device: format!("cuda:{ordinal}"),
        reason: format!("cannot open its context: {e}"),
    })
}

/// Device memory use of `ordinal` as the driver sees it (used, total), all processes.
pub fn device_memory(ordinal: usize) -> Option<(usize, usize)> {
    let ctx = cuda_context(ordinal).ok()?;
    ctx.bind_to_thread().ok()?;
    let (free, total) = cudarc::driver::result::mem_get_info().ok()?;
    Some((total.saturating_sub(free), total))
}

pub(crate) fn cuda_err(
    ordinal: usize,
    what: &'static str,
) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| Error::Device {
        device: format!("cuda:{ordinal}"),
        reason: format!("cannot {what}: {e}"),
    }
}
