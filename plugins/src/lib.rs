//! The GStreamer plugin `modnet` (element `modnetmatte`) will live here; the element
//! arrives with the element issue. Until then this crate only re-exports the engine,
//! so that the workspace resolves and links libtorch the way the plugin will.

pub use modnetmatte::Engine;
