//! The element's properties: the settings they hold, their defaults, the ParamSpec
//! table gst-inspect shows, and reading and writing them.

use std::path::{Path, PathBuf};

use gst::glib;
use gst::prelude::*;

use super::{Background, Compositing, Output, Pacing, Precision};

pub(super) const DEFAULT_COLOR: u32 = 0xFF00_B140; // chroma-key green, easy to key out downstream
pub(super) const DEFAULT_BLUR: u32 = 16;
pub(super) const DEFAULT_REF_SIZE: u32 = 512;
/// Largest `batch`.
pub(super) const MAX_BATCH: u32 = 32;

/// Environment variable naming the model file (checked before the data directories).
pub(super) const MODEL_ENV: &str = "MODNETMATTE_MODEL";
/// File name looked for in `<data dir>/modnetmatte/`.
pub(super) const MODEL_FILE: &str = "modnet_photographic.pt";

/// The properties' values, by concern (see `properties` for what each means). The
/// defaults are the ParamSpecs' (`Settings::from_param_specs`).
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    pub(super) look: Look,
    pub(super) network: Network,
    pub(super) run: Run,
    pub(super) matte: MatteRules,
}

/// Structs of settings, each field a property's value (defaults: the ParamSpecs').
macro_rules! settings_groups {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? })*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Default)]
            pub(super) struct $name { $(pub(super) $field: $ty,)* }
        )*
    };
}

settings_groups! {
    /// What comes out of the element, and over what.
    Look { output: Output, background: Background, background_color: u32, background_image: Option<String>, blur_radius: u32 }
    /// The network: the file, where and how it runs.
    Network { model: Option<String>, device: String, precision: Precision, ref_size: u32, num_threads: u32 }
    /// How frames are scheduled and where output frames are made.
    Run { pacing: Pacing, max_in_flight: u32, batch: u32, compositing: Compositing, cuda_graphs: bool }
    /// The matte: threshold and temporal stability.
    MatteRules { threshold: f64, mask_every: u32, temporal_smoothing: f64, ofd: bool, drop_late: bool }
}

impl Settings {
    /// Every property at its ParamSpec's default: one source for gst-inspect and the
    /// element.
    pub(super) fn from_param_specs() -> Self {
        let mut s = Self::default();
        for p in properties() {
            if p.flags().contains(glib::ParamFlags::WRITABLE) {
                s.set(p.name(), p.default_value());
            }
        }
        s
    }

    /// Writes one property (GObject has checked the value's type and range against
    /// its ParamSpec); false for a name that is not a writable property.
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        match name {
            "output" => self.look.output = value.get().unwrap_or_default(),
            "background" => self.look.background = value.get().unwrap_or_default(),
            "background-color" => self.look.background_color = value.get().unwrap_or(DEFAULT_COLOR),
            "background-image" => self.look.background_image = value.get().unwrap_or(None),
            "blur-radius" => self.look.blur_radius = value.get().unwrap_or(DEFAULT_BLUR),
            "model" => self.network.model = value.get().unwrap_or(None),
            "device" => {
                self.network.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "auto".into())
            }
            "precision" => self.network.precision = value.get().unwrap_or_default(),
            "ref-size" => self.network.ref_size = value.get().unwrap_or(DEFAULT_REF_SIZE),
            "threshold" => self.matte.threshold = value.get().unwrap_or(0.0),
            "num-threads" => self.network.num_threads = value.get().unwrap_or(0),
            "mask-every" => self.matte.mask_every = value.get().unwrap_or(1),
            "temporal-smoothing" => self.matte.temporal_smoothing = value.get().unwrap_or(0.0),
            "ofd" => self.matte.ofd = value.get().unwrap_or(false),
            "pacing" => self.run.pacing = value.get().unwrap_or_default(),
            "max-in-flight" => self.run.max_in_flight = value.get().unwrap_or(0),
            "drop-late" => self.matte.drop_late = value.get().unwrap_or(false),
            "compositing" => self.run.compositing = value.get().unwrap_or_default(),
            "cuda-graphs" => self.run.cuda_graphs = value.get().unwrap_or(true),
            "batch" => self.run.batch = value.get().unwrap_or(0),
            _ => return false,
        }
        true
    }

    /// Reads one property (`stats` is the element's, not a setting: None).
    pub(super) fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "output" => self.look.output.to_value(),
            "background" => self.look.background.to_value(),
            "background-color" => self.look.background_color.to_value(),
            "background-image" => self.look.background_image.to_value(),
            "blur-radius" => self.look.blur_radius.to_value(),
            "model" => self.network.model.to_value(),
            "device" => self.network.device.to_value(),
            "precision" => self.network.precision.to_value(),
            "ref-size" => self.network.ref_size.to_value(),
            "threshold" => self.matte.threshold.to_value(),
            "num-threads" => self.network.num_threads.to_value(),
            "mask-every" => self.matte.mask_every.to_value(),
            "temporal-smoothing" => self.matte.temporal_smoothing.to_value(),
            "ofd" => self.matte.ofd.to_value(),
            "pacing" => self.run.pacing.to_value(),
            "max-in-flight" => self.run.max_in_flight.to_value(),
            "drop-late" => self.matte.drop_late.to_value(),
            "compositing" => self.run.compositing.to_value(),
            "cuda-graphs" => self.run.cuda_graphs.to_value(),
            "batch" => self.run.batch.to_value(),
            _ => return None,
        })
    }
}

/// Every property, with a blurb a user can act on (gst-inspect-1.0 shows them).
pub(super) fn properties() -> Vec<glib::ParamSpec> {
    let live = glib::ParamFlags::READWRITE
        | gst::PARAM_FLAG_MUTABLE_PLAYING
        | gst::PARAM_FLAG_CONTROLLABLE;
    let at_start = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_READY;
    vec![
        glib::ParamSpecEnum::builder_with_default("output", Output::default())
            .nick("Output")
            .blurb("composite: the frame with its background replaced (same format out); alpha: the frame with the matte as straight alpha, for compositor or OBS; matte: the GRAY8 matte. Set it in NULL or READY")
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("background", Background::default())
            .nick("Background")
            .blurb("What replaces the background in output=composite: blur (the frame blurred by blur-radius), color (background-color) or image (background-image). Takes effect on the next frame")
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("background-color")
            .nick("Background colour")
            .blurb("Colour for background=color, as 0xAARRGGBB (alpha ignored), e.g. 0xff00b140 (green) or 0xffffffff (white). Takes effect on the next frame")
            .default_value(DEFAULT_COLOR)
            .flags(live)
            .build(),
        glib::ParamSpecString::builder("background-image")
            .nick("Background image")
            .blurb("PNG or JPEG file for background=image, scaled to cover the frame keeping its aspect ratio (cropped, never stretched). Unreadable at start: an error; changed to an unreadable file while playing: a warning and the previous background stays")
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("blur-radius")
            .nick("Blur radius")
            .blurb("Radius in pixels of the background blur for background=blur; larger hides more of the room. Takes effect on the next frame")
            .minimum(1)
            .maximum(256)
            .default_value(DEFAULT_BLUR)
            .flags(live)
            .build(),
        glib::ParamSpecString::builder("model")
            .nick("Model file")
            .blurb("TorchScript MODNet file (tools/modnet/export.py). Unset: $MODNETMATTE_MODEL, else modnetmatte/modnet_photographic.pt under $XDG_DATA_HOME (~/.local/share), then $XDG_DATA_DIRS (/usr/local/share, /usr/share). Set it in NULL or READY")
            .flags(at_start)
            .build(),
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb("Where the network runs: auto (CUDA if libtorch sees a GPU, else CPU), cpu, cuda or cuda:N (an error if absent). Set it in NULL or READY")
            .default_value(Some("auto"))
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("precision", Precision::default())
            .nick("Precision")
            .blurb("Numbers the network computes in: fp32, or fp16 on CUDA, which loads the half-precision variant <model>_fp16.pt next to the model file (made by setup: half precision but for the backbone's first blocks, which the matte is sensitive to; the photo within about 1/255 of fp32). On a CPU fp32 runs instead, said in the log. Set it in NULL or READY")
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("ref-size")
            .nick("Reference size")
            .blurb("Short side in pixels of the picture the network sees (MODNet's reference rule; multiples of 32). 512 is what the model was trained at; 256 is about 4x faster with softer edges. Set it in NULL or READY")
            .minimum(32)
            .maximum(2048)
            .default_value(DEFAULT_REF_SIZE)
            .flags(at_start)
            .build(),
        glib::ParamSpecDouble::builder("threshold")
            .nick("Threshold")
            .blurb("0: soft matte (smooth hair edges). A value in (0, 1): hard matte, pixels with alpha >= threshold are person, the rest background. Takes effect on the next frame")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(0.0)
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("num-threads")
            .nick("Threads")
            .blurb("CPU threads for the network (libtorch's pool, shared by the whole process); 0: one per core, or with pacing=realtime one fewer, so that compositing keeps a core to itself. Set it in NULL or READY")
            .maximum(256)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("mask-every")
            .nick("Matte every N frames")
            .blurb("Run the network on every Nth frame only and reuse the last matte in between: N times less CPU, at the cost of mattes that lag behind fast motion. 1: every frame. Takes effect on the next frame")
            .minimum(1)
            .maximum(60)
            .default_value(1)
            .flags(live)
            .build(),
        glib::ParamSpecDouble::builder("temporal-smoothing")
            .nick("Temporal smoothing")
            .blurb("Blend each matte with the previous ones (exponential moving average weight of the past): steadier edges, slower to follow motion. 0: off; 0.5 is a good start. Takes effect on the next frame")
            .minimum(0.0)
            .maximum(0.99)
            .default_value(0.0)
            .flags(live)
            .build(),
        glib::ParamSpecBoolean::builder("ofd")
            .nick("One-frame delay")
            .blurb("MODNet's one-frame-delay fix: a pixel whose alpha jumps for a single frame while the frames before and after agree takes their mean. Removes one-frame flicker; adds one frame of latency (reported in the latency query). Set it in NULL or READY")
            .default_value(false)
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("pacing", Pacing::default())
            .nick("Pacing")
            .blurb("realtime: every frame goes out at once, at the camera's frame rate, with the newest matte there is; the network always works on the newest frame and skips the ones it has no time for. On a slow machine the matte then lags behind motion by its age (stats: matte-age-*; one to two network runs, e.g. 0.5-2 s on a 2-core CPU at ref-size 256-512): when you move fast, a strip of the real room can show for that moment where you just were, and the new background can cover part of where you now are; sitting still nothing shows. The video never stutters. Use a smaller ref-size or a GPU for fresher mattes. Until the first matte exists (at start, after a flush or a new size) the background is replaced entirely: the room is never shown. every-frame: each frame waits for its own matte (files, offline jobs; a live source slows to the network's pace). auto: realtime for a live source (a camera), every-frame otherwise. The CUDA device path keeps every frame's own matte in both (the GPU keeps up). Set it in NULL or READY")
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("max-in-flight")
            .nick("Frames in flight")
            .blurb("pacing=every-frame: frames being processed at once; the network works on one frame on its own thread while the next is prepared and the previous composited. 0 (auto): 1 on a CPU (measured faster there: the cores are the network's), 2 on the CUDA device path (upload, network and download of neighbouring frames overlap). Each extra frame adds one frame of latency (reported in the latency query). Set it in NULL or READY")
            .maximum(4)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecBoolean::builder("drop-late")
            .nick("Skip the network for late frames")
            .blurb("pacing=every-frame only: when downstream reports (QoS) that frames arrive too late, reuse the last matte for late frames instead of running the network, to catch up rather than fall further behind. Redundant with pacing=realtime, which never holds frames back. Takes effect on the next frame")
            .default_value(false)
            .flags(live)
            .build(),
        glib::ParamSpecEnum::builder_with_default("compositing", Compositing::default())
            .nick("Compositing")
            .blurb("Where the output frame is made: auto (on the GPU when the network runs on CUDA: the frame is uploaded once through page-locked memory and only the result comes back; else the CPU), cpu (the CPU always: the matte is copied back first), device (tensor ops on the network's device; on a CPU these are libtorch's kernels). ofd needs the mattes on the host, so with ofd=true it is the CPU. Set it in NULL or READY")
            .flags(at_start)
            .build(),
        glib::ParamSpecBoolean::builder("cuda-graphs")
            .nick("CUDA graphs")
            .blurb("On the CUDA device path, capture each stage's GPU work (network, output frame) once per frame size after a few warm-up frames and replay it for every later frame: much less CPU time per frame and lower latency. If a capture fails the element says so in the log and runs plain forwards. No effect on a CPU. Set it in NULL or READY")
            .default_value(true)
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("batch")
            .nick("Frames per forward pass")
            .blurb("For files and other non-live sources on the device path: run the network on this many frames at once, so that the GPU is kept busy (throughput up, each frame waits for its batch). Order, timestamps and EOS are kept; a short last batch goes through as it is. 0 (auto): 8 on CUDA, 1 on a CPU. A live source (camera) always gets 1. Set it in NULL or READY")
            .maximum(MAX_BATCH)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("Frames processed (and how many reused the previous matte) and milliseconds per frame since start: mean and last inference, mean preprocess, postprocess, compositing and total; where compositing runs; on the device path mean upload, download and latency, the page-locked and device buffers held (MB), the GPU's used and total memory (MB, all processes; 0 without CUDA), frames per forward pass (batch), whether CUDA graphs are on (or why they failed) and how many replays ran")
            .read_only()
            .build(),
    ]
}

/// The model file to load: the `model` property, else $MODNETMATTE_MODEL, else
/// `modnetmatte/modnet_photographic.pt` under $XDG_DATA_HOME (~/.local/share), then
/// each of $XDG_DATA_DIRS (/usr/local/share:/usr/share).
pub(super) fn find_model(property: Option<&str>) -> Result<PathBuf, String> {
    if let Some(p) = property.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(d) => dirs.push(PathBuf::from(d)),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                dirs.push(Path::new(&home).join(".local/share"));
            }
        }
    }
    let system = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(
        system
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    let candidates: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("modnetmatte").join(MODEL_FILE))
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "no model file: set the model property or {MODEL_ENV}, or install {MODEL_FILE} in one of: {}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}
