//! What the element makes of each frame (output kind, background, threshold,
//! smoothing): one description both compositing paths (`composite` on the CPU,
//! `composite_tensor` on the network's device) follow.

use crate::frame::{OwnedFrame, PixelFormat};

/// What comes out of the element for each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// The frame over a background, in the input's format.
    Composite,
    /// The frame's colours with the matte as alpha, in this RGBA-family format.
    Alpha(PixelFormat),
    /// The matte as GRAY8.
    Matte,
}

/// The background under the person.
#[derive(Debug, Clone)]
pub enum BackgroundSource {
    /// The frame itself, box-blurred (3 passes) with this radius.
    Blur(u32),
    /// A prepared frame in the stream's format and size (colour or picture); uploaded
    /// once and reused while the same `Arc` is given.
    Frame(std::sync::Arc<OwnedFrame>),
}

/// Everything about the output that may change between frames.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub output: OutputKind,
    pub background: BackgroundSource,
    /// Hard matte at this alpha when in (0, 1); else soft.
    pub threshold: f64,
    /// EMA factor in [0, 1) (`temporal::Temporal`'s `smoothing`).
    pub smoothing: f32,
}
