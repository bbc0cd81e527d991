//! One error type for the engine: every variant names the thing at fault and why.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model file {path}: not found")]
    ModelNotFound { path: PathBuf },

    #[error("model file {path}: cannot be loaded as TorchScript: {reason}")]
    ModelLoad { path: PathBuf, reason: String },

    /// The file loaded but does not behave like MODNet (probe forward pass).
    #[error("model file {path}: breaks the MODNet contract: {reason}")]
    ModelContract { path: PathBuf, reason: String },

    #[error("frame: {0}")]
    InvalidFrame(String),

    #[error("configuration: {0}")]
    InvalidConfig(String),

    /// The network's worker thread could not start, or stopped.
    #[error("worker thread: {0}")]
    Thread(String),

    #[error("device {device}: {reason}")]
    Device { device: String, reason: String },

    /// A libtorch operation failed while processing a frame.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;
