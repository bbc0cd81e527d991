//! modnetmatte's core engine: MODNet portrait matting on frames, with no GStreamer in
//! it. One folder per question, each importing only from the ones listed before it:
//!
//! - `frame`: frames, their planes, owned frames, frame sizes;
//! - `host`: the machine: device choice, OpenMP teams, libtorch's CPU allocator;
//! - `composite`: what the element makes of a frame (`OutputSpec`), on the CPU and as
//!   tensor ops, backgrounds and blur;
//! - `gpu`: the CUDA shim (streams, graphs), pinned buffers, driver calls, transfers;
//! - `net`: preprocess, the model and its variants, postprocess, the `Engine` that ties
//!   them to a device, and the device path (`DevicePath`: a frame kept on the GPU from
//!   upload to download);
//! - `temporal`: matte filters over time (mask-every, EMA, OFD);
//! - `worker`: the threads that run the engine (ordered, newest-frame).
//!
//! See ARCHITECTURE.md.

pub mod composite;
pub mod error;
pub mod frame;
pub mod gpu;
pub mod host;
pub mod net;
pub mod temporal;
pub mod worker;

pub use composite::spec::{BackgroundSource, OutputKind, OutputSpec};
pub use error::{Error, Result};
pub use frame::{Frame, FrameMut, FrameShape, OwnedFrame, PixelFormat, YuvMatrix};
pub use host::device::DeviceRequest;
pub use net::device_path::{DevicePath, InFlight};
pub use net::engine::{Engine, EngineConfig, StageTimings};
pub use net::model::Precision;
pub use net::postprocess::Matte;
pub use net::preprocess::inference_size;
