//! MODNet's fused CPU operators (csrc/modnet_ops.cpp: `modnet::ibnorm_relu`,
//! `modnet::cat_resized`), which the CPU variants (`_cpu.pt`, `_bf16.pt`) call in place
//! of chains of ATen element-wise passes. They must be registered with libtorch before
//! such a file loads; `Model::load_as` does it.

use std::sync::OnceLock;

unsafe extern "C" {
    fn modnetmatte_ops_register() -> i32;
}

/// Registers the operators once per process (or finds them registered by another
/// copy of the engine in the same process). The error says why not; a CPU variant
/// then fails to load, naming the operator, and the plain file still loads.
pub fn register() -> Result<(), String> {
    static DONE: OnceLock<i32> = OnceLock::new();
    // SAFETY: a plain C function of our own C++, which catches every exception.
    match *DONE.get_or_init(|| unsafe { modnetmatte_ops_register() }) {
        1 | 2 => Ok(()),
        _ => Err("registering the modnet:: operators with libtorch failed (see stderr)".into()),
    }
}
