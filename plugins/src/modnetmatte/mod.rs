//! `modnetmatte`: cuts the person out of video frames with MODNet and replaces the
//! background, or outputs the matte itself.

use gst::glib;
use gst::prelude::*;

mod background;
mod caps;
mod imp;
mod jobs;
mod settings;
mod state;
mod stats;

glib::wrapper! {
    pub struct ModnetMatte(ObjectSubclass<imp::ModnetMatte>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// What the element outputs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstModnetMatteOutput")]
pub enum Output {
    #[default]
    #[enum_value(
        name = "Composite: the frame with its background replaced, same format and size",
        nick = "composite"
    )]
    Composite = 0,
    #[enum_value(
        name = "Alpha: the frame's colours with the matte as straight alpha (RGBA, BGRA, ARGB or ABGR)",
        nick = "alpha"
    )]
    Alpha = 1,
    #[enum_value(name = "Matte: the matte alone, GRAY8 (255 = person)", nick = "matte")]
    Matte = 2,
}

/// What replaces the background in `output=composite`.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstModnetMatteBackground")]
pub enum Background {
    #[default]
    #[enum_value(name = "Blur: the frame itself, blurred by blur-radius", nick = "blur")]
    Blur = 0,
    #[enum_value(name = "Color: a solid colour, background-color", nick = "color")]
    Color = 1,
    #[enum_value(
        name = "Image: a picture, background-image, scaled to cover the frame",
        nick = "image"
    )]
    Image = 2,
}

/// The numbers the network computes in.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstModnetMattePrecision")]
pub enum Precision {
    #[default]
    #[enum_value(name = "fp32: single precision, the reference", nick = "fp32")]
    Fp32 = 0,
    #[enum_value(
        name = "fp16: half precision on CUDA (faster; a CPU runs fp32 instead)",
        nick = "fp16"
    )]
    Fp16 = 1,
}

/// Where the output frame is made.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstModnetMatteCompositing")]
pub enum Compositing {
    #[default]
    #[enum_value(
        name = "Auto: on the GPU when the network runs on CUDA (the frame stays there; only the result comes back), else on the CPU",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "CPU: integer loops on the streaming thread, the matte copied back first",
        nick = "cpu"
    )]
    Cpu = 1,
    #[enum_value(
        name = "Device: tensor ops on the network's device, on the network's thread (on a CPU: libtorch's kernels)",
        nick = "device"
    )]
    Device = 2,
}

impl From<Precision> for modnetmatte::Precision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Fp32 => Self::Fp32,
            Precision::Fp16 => Self::Fp16,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Documents the enums' values in gst-inspect and the plugin docs.
    Output::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Background::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Compositing::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "modnetmatte",
        gst::Rank::NONE,
        ModnetMatte::static_type(),
    )
}
