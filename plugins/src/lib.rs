//! GStreamer plugin `modnet`: the `modnetmatte` element (MODNet portrait matting and
//! background replacement), a thin layer over the `modnetmatte` engine crate, and the
//! page-locked buffer pool it offers upstream on CUDA.

use gst::glib;

pub mod formats;
mod modnetmatte;
// The property enums, for programs that set the element's properties (the CLI).
pub use modnetmatte::{Background, Compositing, Output, Pacing, Precision};
pub mod pinnedpool;
pub mod stats_fields;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    modnetmatte::register(plugin)
}

gst::plugin_define!(
    modnet,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // Cargo.toml's MIT, in the spelling GStreamer's list of licences knows (it
    // refuses to load a plugin whose licence is not on the list).
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://github.com/modnetmatte/modnetmatte",
    env!("BUILD_REL_DATE")
);
