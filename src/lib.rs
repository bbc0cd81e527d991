//! modnetmatte's core engine: MODNet portrait matting on frames, with no GStreamer in
//! it. A frame goes `preprocess` (size rule, colour order, normalisation, resize) ->
//! `model` (the TorchScript forward pass) -> `postprocess` (resize back, quantise), then
//! `composite` (backgrounds, blending, alpha output); `engine` ties them together on a
//! `device`. The device path (`device_path`: `transfer` for pinned CUDA copies,
//! `composite_tensor` for the output frame as tensor ops) keeps the frame on the GPU
//! from upload to download, on a stream of its own, with its stages replayed from CUDA
//! graphs (`graphs`, through the C++ shim in `cuda`). `output` says what the element
//! makes of a frame, for both compositing paths.
//! See ARCHITECTURE.md.

pub mod composite;
pub mod composite_tensor;
pub mod cpu_cache;
pub mod cuda;
pub mod device;
pub mod device_path;
pub mod engine;
pub mod error;
pub mod frame;
pub mod graphs;
pub mod model;
pub mod openmp;
pub mod output;
pub mod planes;
pub mod postprocess;
pub mod preprocess;
pub mod realtime;
pub mod schedule;
pub mod temporal;
pub mod transfer;

pub use device::DeviceRequest;
pub use device_path::{DevicePath, InFlight};
pub use engine::{Engine, EngineConfig, StageTimings};
pub use error::{Error, Result};
pub use frame::{Frame, FrameMut, FrameShape, PixelFormat, YuvMatrix};
pub use model::Precision;
pub use postprocess::Matte;
pub use preprocess::inference_size;
