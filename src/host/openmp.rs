//! One OpenMP team at a time: libtorch runs its CPU operators in an OpenMP team of
//! the thread that calls them, and libgomp keeps each calling thread's team (its
//! pool of helper threads) for as long as that thread lives. Once the process holds
//! more team threads than there are cores, libgomp stops spin-waiting between
//! parallel regions ("throttled" to ~100 spins) and its threads sleep and wake on
//! futexes hundreds of times per forward pass. The element loads the model on the
//! application's thread and warms up on the streaming thread, then runs the network
//! on its worker: three teams on a 2-core machine, which made a forward pass slower
//! (figures in ARCHITECTURE.md, "Measurements behind the code").
//!
//! `release_team` frees the calling thread's team (libgomp's
//! `omp_pause_resource_all`, OpenMP 5.0; it is made again if the thread uses
//! libtorch later). The engine calls it after loading and after a warm-up.
//!
//! `set_thread_team` sizes the calling thread's team alone. libtorch's
//! `set_num_threads` also stores a process-wide count that every thread adopts on
//! its first operator, so a second element in the process would inherit it.

use std::sync::OnceLock;

type PauseAll = unsafe extern "C" fn(kind: libc::c_int) -> libc::c_int;
type SetNumThreads = unsafe extern "C" fn(n: libc::c_int);
/// `omp_pause_soft`: threads freed, state kept.
const OMP_PAUSE_SOFT: libc::c_int = 1;

/// libgomp as libtorch loaded it (never loaded here).
fn gomp() -> Option<&'static libloading::os::unix::Library> {
    static GOMP: OnceLock<Option<libloading::os::unix::Library>> = OnceLock::new();
    GOMP.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only finds a library already loaded (by libtorch), so no
        // initialiser runs.
        unsafe {
            libloading::os::unix::Library::open(
                Some("libgomp.so.1"),
                libc::RTLD_NOLOAD | libc::RTLD_LAZY,
            )
            .ok()
        }
    })
    .as_ref()
}

/// libgomp's pause function (OpenMP 5.0).
fn pause_all() -> Option<PauseAll> {
    // SAFETY: the symbol has the OpenMP 5.0 signature.
    unsafe {
        gomp()?
            .get::<PauseAll>(b"omp_pause_resource_all\0")
            .ok()
            .map(|f| *f)
    }
}

/// Sizes the calling thread's OpenMP team for libtorch's operators, leaving the
/// process-wide count and every other thread alone. An error says why not.
pub fn set_thread_team(threads: usize) -> Result<(), String> {
    let n = libc::c_int::try_from(threads.max(1)).map_err(|_| format!("{threads} threads"))?;
    // SAFETY: the symbol has the OpenMP signature `void omp_set_num_threads(int)`.
    let set = unsafe {
        gomp()
            .ok_or("no libgomp loaded")?
            .get::<SetNumThreads>(b"omp_set_num_threads\0")
            .map_err(|e| e.to_string())?
    };
    // libtorch sets this thread's count from its process-wide one on the thread's
    // first query; that happens now, so the count set next stays.
    let _ = tch::get_num_threads();
    // SAFETY: sets an OpenMP variable of the calling thread.
    unsafe { set(n) };
    Ok(())
}

/// Frees the calling thread's OpenMP team. An error says why not (another OpenMP
/// runtime, or a libgomp older than GCC 9): harmless, only slower on few cores.
pub fn release_team() -> Result<(), String> {
    let pause = pause_all().ok_or("no libgomp with omp_pause_resource_all loaded")?;
    // SAFETY: called outside any parallel region (libgomp refuses it inside one).
    match unsafe { pause(OMP_PAUSE_SOFT) } {
        0 => Ok(()),
        r => Err(format!("omp_pause_resource_all returned {r}")),
    }
}
