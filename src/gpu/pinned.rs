//! Page-locked host memory: buffers the driver can copy from and to without staging,
//! and a registry that recognises frames already lying in one.

use std::sync::Mutex;

use crate::error::Result;
use crate::gpu::driver::{cuda_context, cuda_err};

/// A page-locked host buffer (cuMemHostAlloc), registered so that frames already in
/// one (a buffer pool's, say) can be recognised and copied without staging.
pub struct PinnedBuffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain host memory owned by this value alone.
unsafe impl Send for PinnedBuffer {}
// SAFETY: shared access is read-only through &self.
unsafe impl Sync for PinnedBuffer {}

static PINNED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

impl PinnedBuffer {
    /// `len` bytes of page-locked memory, zeroed. Needs a CUDA driver and context
    /// (see `cuda_context`); the error says why not.
    pub fn new(ordinal: usize, len: usize) -> Result<Self> {
        let ctx = cuda_context(ordinal)?;
        ctx.bind_to_thread()
            .map_err(cuda_err(ordinal, "bind the context"))?;
        // SAFETY: a fresh allocation of `len` bytes (at least 1), freed in Drop.
        let ptr = unsafe {
            cudarc::driver::result::malloc_host(
                len.max(1),
                cudarc::driver::sys::CU_MEMHOSTALLOC_PORTABLE,
            )
        }
        .map_err(cuda_err(ordinal, "allocate page-locked memory"))?
        .cast::<u8>();
        // SAFETY: `ptr` points to `len` writable bytes.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        if let Ok(mut reg) = PINNED.lock() {
            reg.push((ptr as usize, len));
        }
        Ok(Self { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for PinnedBuffer {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl AsMut<[u8]> for PinnedBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        if let Ok(mut reg) = PINNED.lock() {
            reg.retain(|&(p, _)| p != self.ptr as usize);
        }
        // SAFETY: allocated by malloc_host and freed once. A failure leaks it.
        let _ = unsafe { cudarc::driver::result::free_host(self.ptr.cast()) };
    }
}

/// Whether `data` lies inside one page-locked buffer of ours.
pub fn is_pinned(data: &[u8]) -> bool {
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
    PINNED
        .lock()
        .map(|reg| reg.iter().any(|&(p, l)| start >= p && end <= p + l))
        .unwrap_or(false)
}
