//! libtorch's CUDA streams and CUDA graphs, which tch does not wrap, through our C++
//! shim (`csrc/cuda_shim.cpp`).
//!
//! build.rs compiles the shim into a shared library with no CUDA library linked; its
//! bytes are embedded here and loaded (from a memfd) only once libtorch_cuda.so is in
//! the process with RTLD_GLOBAL, against which its symbols resolve. A CPU-only machine
//! never loads it. Every shim entry catches C++ exceptions and returns an error code.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::error::{Error, Result};

/// The shim as build.rs left it: empty when its headers were missing at build time.
static SHIM_BYTES: &[u8] = include_bytes!(env!("MODNETMATTE_CUDA_SHIM"));
const WHY_NOT_BUILT: &str = env!("MODNETMATTE_CUDA_SHIM_WHY_NOT");
/// `mm_abi_version` of the shim this code speaks to.
const ABI_VERSION: c_int = 1;

/// A CUDA stream handle (`cudaStream_t` / `CUstream`).
pub type RawStream = cudarc::driver::sys::CUstream;

type Status = c_int;

struct Shim {
    _lib: Library,
    last_error: unsafe extern "C" fn() -> *const c_char,
    stream_from_pool: unsafe extern "C" fn(c_int, c_int, *mut i64, *mut *mut c_void) -> Status,
    stream_set_current: unsafe extern "C" fn(c_int, i64) -> Status,
    stream_current: unsafe extern "C" fn(c_int, *mut i64, *mut *mut c_void) -> Status,
    graph_new: unsafe extern "C" fn(*mut *mut c_void) -> Status,
    graph_capture_begin: unsafe extern "C" fn(*mut c_void, c_int) -> Status,
    graph_capture_end: unsafe extern "C" fn(*mut c_void) -> Status,
    graph_replay: unsafe extern "C" fn(*mut c_void) -> Status,
    graph_free: unsafe extern "C" fn(*mut c_void),
}

impl Shim {
    /// The result of a shim call: Ok, or the message it left on this thread.
    fn check(&self, status: Status, what: &str) -> std::result::Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated
        // message, valid until this thread's next shim call.
        let msg = unsafe { CStr::from_ptr((self.last_error)()) };
        let msg = msg.to_string_lossy();
        let first = msg.lines().next().unwrap_or("unknown error").trim();
        Err(format!("{what}: {first}"))
    }
}

/// Whether build.rs built the shim into this binary.
pub fn shim_built() -> bool {
    !SHIM_BYTES.is_empty()
}

/// The loaded shim, or why it cannot be had (no driver, no libtorch_cuda, not built).
fn shim() -> std::result::Result<&'static Shim, String> {
    static SHIM: OnceLock<std::result::Result<Shim, String>> = OnceLock::new();
    SHIM.get_or_init(|| {
        crate::host::device::load_cuda_runtime()?;
        load()
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Whether the shim is usable in this process (loads it on first call; needs CUDA).
pub fn available() -> std::result::Result<(), String> {
    shim().map(|_| ())
}

/// dlopens the embedded shim; libtorch_cuda.so must already be loaded RTLD_GLOBAL.
fn load() -> std::result::Result<Shim, String> {
    if !shim_built() {
        return Err(format!(
            "this build has no CUDA shim ({WHY_NOT_BUILT}); rebuild after scripts/setup.sh"
        ));
    }
    let file = ShimFile::write(SHIM_BYTES)?;
    // SAFETY: our own library; its only initialisers are the C++ runtime's.
    let lib = unsafe { Library::open(Some(file.path()), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| format!("the CUDA shim does not load against this libtorch: {e}"))?;
    drop(file); // the mapping stays valid once loaded
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the type matches the shim's extern "C" declaration, checked
            // through mm_abi_version below.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("the CUDA shim lacks {}: {e}", $name))?
        };
    }
    let version: unsafe extern "C" fn() -> c_int = sym!("mm_abi_version");
    // SAFETY: a plain function returning an int.
    let found = unsafe { version() };
    if found != ABI_VERSION {
        return Err(format!(
            "the CUDA shim speaks version {found}, this code {ABI_VERSION}"
        ));
    }
    Ok(Shim {
        last_error: sym!("mm_last_error"),
        stream_from_pool: sym!("mm_stream_from_pool"),
        stream_set_current: sym!("mm_stream_set_current"),
        stream_current: sym!("mm_stream_current"),
        graph_new: sym!("mm_graph_new"),
        graph_capture_begin: sym!("mm_graph_capture_begin"),
        graph_capture_end: sym!("mm_graph_capture_end"),
        graph_replay: sym!("mm_graph_replay"),
        graph_free: sym!("mm_graph_free"),
        _lib: lib,
    })
}

/// The shim's bytes in a file dlopen can read: an anonymous memfd (nothing left on
/// disk), else a private temporary file removed once loaded.
struct ShimFile {
    path: std::path::PathBuf,
    _file: std::fs::File,
    remove: bool,
}

impl ShimFile {
    fn write(bytes: &[u8]) -> std::result::Result<Self, String> {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: a NUL-terminated name; the returned descriptor is owned by the File.
        let fd =
            unsafe { libc::memfd_create(c"modnetmatte-cuda-shim".as_ptr(), libc::MFD_CLOEXEC) };
        let proc_path = std::path::PathBuf::from(format!("/proc/self/fd/{fd}"));
        let (mut file, path, remove) = if fd >= 0 && proc_path.parent().is_some_and(|p| p.exists())
        {
            // SAFETY: fd is a fresh descriptor nobody else owns.
            (unsafe { std::fs::File::from_raw_fd(fd) }, proc_path, false)
        } else {
            if fd >= 0 {
                // SAFETY: closing the descriptor we just opened.
                unsafe { libc::close(fd) };
            }
            let path = std::env::temp_dir()
                .join(format!("modnetmatte-cuda-shim-{}.so", std::process::id()));
            let file = std::fs::File::create(&path)
                .map_err(|e| format!("cannot write the CUDA shim to {}: {e}", path.display()))?;
            (file, path, true)
        };
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| format!("cannot write the CUDA shim: {e}"))?;
        Ok(Self {
            path,
            _file: file,
            remove,
        })
    }

    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ShimFile {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn device_err(ordinal: usize) -> impl Fn(String) -> Error {
    move |reason| Error::Device {
        device: format!("cuda:{ordinal}"),
        reason,
    }
}

/// A stream from libtorch's pool (non-blocking: it never waits on the legacy default
/// stream, and CUDA graphs can be captured on it).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    ordinal: usize,
    id: i64,
    native: RawStream,
}

// SAFETY: a stream handle may be used from any thread; libtorch's pool owns it.
unsafe impl Send for Stream {}
// SAFETY: as above; nothing here mutates through &self.
unsafe impl Sync for Stream {}

impl Stream {
    /// A stream from libtorch's pool on device `ordinal`.
    pub fn from_pool(ordinal: usize) -> Result<Self> {
        let shim = shim().map_err(device_err(ordinal))?;
        let (mut id, mut native) = (0i64, std::ptr::null_mut());
        // SAFETY: out-pointers to locals; the shim catches every exception.
        let status = unsafe { (shim.stream_from_pool)(ordinal as c_int, 0, &mut id, &mut native) };
        shim.check(status, "no stream from libtorch's pool")
            .map_err(device_err(ordinal))?;
        Ok(Self {
            ordinal,
            id,
            native: native.cast(),
        })
    }

    /// Makes this the current stream of the calling thread: libtorch issues every
    /// operation of this thread on the device there from now on.
    pub fn make_current(&self) -> Result<()> {
        let shim = shim().map_err(device_err(self.ordinal))?;
        // SAFETY: an id libtorch gave us for this device.
        let status = unsafe { (shim.stream_set_current)(self.ordinal as c_int, self.id) };
        shim.check(status, "cannot make the stream current")
            .map_err(device_err(self.ordinal))
    }

    pub fn native(&self) -> RawStream {
        self.native
    }
}

/// The calling thread's current libtorch stream on `ordinal` (where its tensor
/// operations go); the legacy default stream (null) when the shim is unavailable,
/// which is then also libtorch's.
pub fn current_stream(ordinal: usize) -> RawStream {
    let Ok(shim) = shim() else {
        return std::ptr::null_mut();
    };
    let (mut id, mut native) = (0i64, std::ptr::null_mut());
    // SAFETY: out-pointers to locals; the shim catches every exception.
    let status = unsafe { (shim.stream_current)(ordinal as c_int, &mut id, &mut native) };
    if status == 0 {
        native.cast()
    } else {
        std::ptr::null_mut()
    }
}

/// A captured CUDA graph (libtorch's `at::cuda::CUDAGraph`, with its private memory
/// pool): the kernels issued during capture, replayed on the current stream.
pub struct Graph {
    ptr: NonNull<c_void>,
    ordinal: usize,
}

// SAFETY: the graph object is used from one thread at a time (its owner's).
unsafe impl Send for Graph {}

impl Graph {
    /// Runs `f` under capture on the calling thread's current stream (which must be a
    /// pool stream, not the default one): the kernels it issues are recorded, not run.
    /// The tensors `f` returns are the graph's outputs, rewritten by every replay.
    /// Any failure (in `f` or in the capture) ends the capture and is returned.
    pub fn capture<T>(ordinal: usize, f: impl FnOnce() -> Result<T>) -> Result<(Self, T)> {
        let err = device_err(ordinal);
        let shim = shim().map_err(&err)?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: an out-pointer to a local; the shim catches every exception.
        let status = unsafe { (shim.graph_new)(&mut ptr) };
        shim.check(status, "cannot create a CUDA graph")
            .map_err(&err)?;
        let ptr = NonNull::new(ptr).ok_or_else(|| err("the CUDA graph is null".into()))?;
        let graph = Self { ptr, ordinal };
        // SAFETY: a live graph object of ours.
        let status = unsafe { (shim.graph_capture_begin)(graph.ptr.as_ptr(), 1) };
        shim.check(status, "cannot begin the capture")
            .map_err(&err)?;
        // Whatever happens inside, the capture must end (or the stream stays in
        // capture mode): catch a panic too, end, then report.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // SAFETY: as above; ends the capture begun on this thread.
        let status = unsafe { (shim.graph_capture_end)(graph.ptr.as_ptr()) };
        let ended = shim.check(status, "capture failed");
        let value = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(err(format!("capture failed inside: {e}"))),
            Err(_) => return Err(err("capture failed: a panic inside".into())),
        };
        ended.map_err(&err)?;
        Ok((graph, value))
    }

    /// Launches the captured work on the calling thread's current stream.
    pub fn replay(&self) -> Result<()> {
        let shim = shim().map_err(device_err(self.ordinal))?;
        // SAFETY: a live, captured graph of ours.
        let status = unsafe { (shim.graph_replay)(self.ptr.as_ptr()) };
        shim.check(status, "replay failed")
            .map_err(device_err(self.ordinal))
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        if let Ok(shim) = shim() {
            // SAFETY: created by graph_new, freed once; frees its memory pool too.
            unsafe { (shim.graph_free)(self.ptr.as_ptr()) };
        }
    }
}

/// For tests on machines without a GPU: loads libtorch_cuda.so and the shim without
/// asking for a driver, calls each entry, and returns what each said (Ok for none:
/// there, every one must fail with a message, never crash). Not for the product.
#[doc(hidden)]
pub fn entries_without_gpu() -> std::result::Result<Vec<std::result::Result<(), String>>, String> {
    use libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: as `device::load_cuda_runtime`: registers CUDA with our libtorch.
    let torch_cuda = unsafe { Library::open(Some("libtorch_cuda.so"), RTLD_NOW | RTLD_GLOBAL) }
        .map_err(|e| format!("libtorch_cuda.so: {e}"))?;
    std::mem::forget(torch_cuda);
    let shim = load()?;
    let (mut id, mut native, mut graph) = (0i64, std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: out-pointers to locals; null graphs are refused by the shim itself.
    let said = unsafe {
        vec![
            shim.check((shim.stream_from_pool)(0, 0, &mut id, &mut native), "pool"),
            shim.check((shim.stream_current)(0, &mut id, &mut native), "current"),
            shim.check((shim.stream_set_current)(0, 0), "set current"),
            shim.check((shim.graph_new)(&mut graph), "new graph"),
            shim.check((shim.graph_capture_begin)(std::ptr::null_mut(), 1), "begin"),
            shim.check((shim.graph_capture_end)(std::ptr::null_mut()), "end"),
            shim.check((shim.graph_replay)(std::ptr::null_mut()), "replay"),
        ]
    };
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_is_built_and_a_shared_object() {
        assert!(shim_built(), "no CUDA shim in this build: {WHY_NOT_BUILT}");
        assert_eq!(&SHIM_BYTES[..4], b"\x7fELF");
    }

    #[test]
    fn without_a_driver_everything_is_an_error_not_a_crash() {
        if crate::gpu::driver::skips_with_a_driver() {
            return;
        }
        let e = Stream::from_pool(0).unwrap_err().to_string();
        assert!(e.contains("cuda:0") && e.contains("driver"), "{e}");
        let e = Graph::capture(0, || Ok(())).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("cuda:0")));
        assert!(current_stream(0).is_null());
        assert!(available().is_err());
    }
}
