//! modnetmatte's core engine: MODNet portrait matting on frames, with no GStreamer in
//! it. A frame goes `preprocess` (size rule, colour order, normalisation, resize) ->
//! `model` (the TorchScript forward pass) -> `postprocess` (resize back, quantise,
//! composite); `engine` ties them together on a `device`. See ARCHITECTURE.md.

pub mod device;
pub mod engine;
pub mod error;
pub mod model;
pub mod postprocess;
pub mod preprocess;

pub use device::DeviceRequest;
pub use engine::{Engine, EngineConfig, StageTimings};
pub use error::{Error, Result};
pub use postprocess::Matte;
pub use preprocess::{Frame, PixelLayout, inference_size};
