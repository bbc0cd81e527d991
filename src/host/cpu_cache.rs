//! The caching CPU allocator (csrc/cpu_cache.cpp): libtorch's CPU tensors of 1 MiB
//! or more are kept after free and reused by size, so a forward pass on a CPU stops
//! page-faulting its activations in fresh from the kernel every time.

unsafe extern "C" {
    fn modnetmatte_cpu_cache_install() -> i32;
    fn modnetmatte_cpu_cache_bytes() -> usize;
    fn modnetmatte_cpu_cache_trim() -> usize;
}

/// Makes it libtorch's CPU allocator (once per process; later calls are free).
/// The error says why not; libtorch's default allocator then stays.
pub fn install() -> Result<(), String> {
    // SAFETY: plain C functions of our own C++ (csrc/cpu_cache.cpp), which catch
    // every exception before returning.
    match unsafe { modnetmatte_cpu_cache_install() } {
        0 => Ok(()),
        1 => Err("another CPU allocator of higher priority is installed".into()),
        _ => Err("libtorch refused the allocator".into()),
    }
}

/// Bytes held for reuse now.
pub fn cached_bytes() -> usize {
    // SAFETY: as in `install`.
    unsafe { modnetmatte_cpu_cache_bytes() }
}

/// Frees every held block (the next pass allocates anew); returns how many bytes.
pub fn trim() -> usize {
    // SAFETY: as in `install`.
    unsafe { modnetmatte_cpu_cache_trim() }
}
