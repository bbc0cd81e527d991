//! The network: a frame becomes the model's input (`preprocess`; YUV frames
//! straight from their planes in `yuv_input`, both on `area`'s sums), runs through the
//! TorchScript model and its precision variants (`model`), and comes back as a matte
//! at the frame's size (`postprocess`); the CPU variants' fused operators are
//! registered by `ops`. `engine` ties them to a device and a stream;
//! `device_path` keeps a batch of frames on the GPU from upload to download.

pub mod area;
pub mod device_path;
pub mod engine;
pub mod model;
pub mod ops;
pub mod postprocess;
pub mod preprocess;
pub mod yuv_input;
