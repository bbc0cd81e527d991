//! The GPU's own machinery, below the network: the C++ shim into libtorch's CUDA API
//! (`shim`: streams, events, graphs), stages replayed from CUDA graphs (`graphs`),
//! page-locked host memory (`pinned`), cudarc's driver calls (`driver`) and the
//! double-buffered copies between them (`transfer`). The device path that uses all of
//! them is `net::device_path`. CPU-only machines run the same code with plain copies.

pub mod driver;
pub mod graphs;
pub mod pinned;
pub mod shim;
pub mod transfer;
