//! `modnetmatte`: cuts the person out of video frames with MODNet and replaces the
//! background, or outputs the matte itself.

use gst::glib;
use gst::prelude::*;

mod background;
mod buffers;
mod caps;
mod context;
mod decide;
mod imp;
mod jobs;
mod path;
mod render;
mod settings;
mod state;
mod stats;

glib::wrapper! {
    pub struct ModnetMatte(ObjectSubclass<imp::ModnetMatte>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// A GObject enum for a property: each variant with the description and nick
/// gst-inspect shows; the first is the default.
macro_rules! property_enum {
    ($(#[$doc:meta])* $name:ident in $gtype:literal:
     $first:ident: $fnick:literal, $fdesc:literal;
     $($variant:ident: $nick:literal, $desc:literal;)*) => {
        $(#[$doc])*
        #[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
        #[repr(u32)]
        #[enum_type(name = $gtype)]
        pub enum $name {
            #[default]
            #[enum_value(name = $fdesc, nick = $fnick)]
            $first,
            $(#[enum_value(name = $desc, nick = $nick)] $variant,)*
        }
    };
}

property_enum! {
    /// What the element outputs.
    Output in "GstModnetMatteOutput":
    Composite: "composite", "Composite: the frame with its background replaced, same format and size";
    Alpha: "alpha", "Alpha: the frame's colours with the matte as straight alpha (RGBA, BGRA, ARGB or ABGR)";
    Matte: "matte", "Matte: the matte alone, GRAY8 (255 = person)";
}

property_enum! {
    /// What replaces the background in `output=composite`.
    Background in "GstModnetMatteBackground":
    Blur: "blur", "Blur: the frame itself, blurred by blur-radius";
    Color: "color", "Color: a solid colour, background-color";
    Image: "image", "Image: a picture, background-image, scaled to cover the frame";
}

property_enum! {
    /// The numbers the network computes in.
    Precision in "GstModnetMattePrecision":
    Auto: "auto", "Auto: bf16 on a CPU with AMX or AVX512-BF16, fp32 elsewhere (the log's device line says which and why)";
    Fp32: "fp32", "fp32: single precision, the reference";
    Fp16: "fp16", "fp16: half precision on CUDA (faster; a CPU runs fp32 instead)";
    Bf16: "bf16", "bf16: bfloat16 for the high-resolution branches on a CPU (fast with AMX or AVX512-BF16, slow without; CUDA runs fp32 instead)";
}

property_enum! {
    /// Where the output frame is made.
    Compositing in "GstModnetMatteCompositing":
    Auto: "auto", "Auto: on the GPU when the network runs on CUDA (the frame stays there; only the result comes back), else on the CPU";
    Cpu: "cpu", "CPU: integer loops on the streaming thread, the matte copied back first";
    Device: "device", "Device: tensor ops on the network's device, on the network's thread (on a CPU: libtorch's kernels)";
}

property_enum! {
    /// How frames wait for their mattes.
    Pacing in "GstModnetMattePacing":
    Auto: "auto", "Auto: realtime when upstream is live (a camera), every-frame otherwise (a file)";
    EveryFrame: "every-frame", "Every frame: each frame waits for its own matte (files, offline jobs: the output runs at the network's pace)";
    Realtime: "realtime", "Realtime: frames go out at the camera's rate with the newest matte; the network always works on the newest frame";
}

impl From<Precision> for modnetmatte::Precision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Auto => Self::Auto,
            Precision::Fp32 => Self::Fp32,
            Precision::Fp16 => Self::Fp16,
            Precision::Bf16 => Self::Bf16,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Documents the enums' values in gst-inspect and the plugin docs.
    Output::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Background::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Compositing::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Pacing::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "modnetmatte",
        gst::Rank::NONE,
        ModnetMatte::static_type(),
    )
}
