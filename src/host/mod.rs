//! The machine the engine runs on: what its CPU can do (`cpu`), which device runs the model (`device`), OpenMP's
//! thread teams (`openmp`), libtorch's CPU allocator (`cpu_cache`). Process-wide
//! settings live here and nowhere else.

pub mod cpu;
pub mod cpu_cache;
pub mod device;
pub mod openmp;
