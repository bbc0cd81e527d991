//! The element's properties: the settings they hold, their defaults, the ParamSpec
//! table gst-inspect shows, and reading and writing them.

use std::path::PathBuf;

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
    MatteRules { threshold: f64, mask_every: u32, temporal_smoothing: f64, ofd: bool, drop_late: bool, follow_motion: bool, learn_room: bool }
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
            "follow-motion" => self.matte.follow_motion = value.get().unwrap_or(true),
            "learn-room" => self.matte.learn_room = value.get().unwrap_or(true),
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
            "follow-motion" => self.matte.follow_motion.to_value(),
            "learn-room" => self.matte.learn_room.to_value(),
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
            .blurb("composite: the frame with its background replaced, in its own format; alpha: the frame with the matte as straight alpha (for compositor or OBS); matte: the GRAY8 matte alone.")
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("background", Background::default())
            .nick("Background")
            .blurb("What replaces the background in output=composite: blur (by blur-radius), color (background-color) or image (background-image).")
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("background-color")
            .nick("Background colour")
            .blurb("The colour for background=color, as 0xAARRGGBB (alpha ignored), e.g. 0xff00b140 for green.")
            .default_value(DEFAULT_COLOR)
            .flags(live)
            .build(),
        glib::ParamSpecString::builder("background-image")
            .nick("Background image")
            .blurb("PNG or JPEG file for background=image, scaled to cover the frame (cropped, never stretched). Unreadable at start it is an error; changed to an unreadable file while playing, a warning, and the previous picture stays.")
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("blur-radius")
            .nick("Blur radius")
            .blurb("Radius in pixels of the blur for background=blur; larger hides more of the room.")
            .minimum(1)
            .maximum(256)
            .default_value(DEFAULT_BLUR)
            .flags(live)
            .build(),
        glib::ParamSpecString::builder("model")
            .nick("Model file")
            .blurb("TorchScript MODNet file. Unset: $MODNETMATTE_MODEL, else modnetmatte/modnet_photographic.pt in the XDG data directories ($XDG_DATA_HOME, then $XDG_DATA_DIRS).")
            .flags(at_start)
            .build(),
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb("Where the network runs: auto (CUDA if libtorch sees a GPU, else the CPU), cpu, cuda or cuda:N (an error if absent).")
            .default_value(Some("auto"))
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("precision", Precision::default())
            .nick("Precision")
            .blurb("auto: bf16 on a CPU with AMX or AVX512-BF16 (loads <model>_bf16.pt), fp32 elsewhere; fp16 on CUDA loads <model>_fp16.pt. What a device cannot run falls back to fp32; the log's device line says what runs and why.")
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("ref-size")
            .nick("Reference size")
            .blurb("Short side in pixels of the picture the network sees (multiples of 32). 512 is what the model was trained at; 256 is about 4x faster, with softer edges.")
            .minimum(32)
            .maximum(2048)
            .default_value(DEFAULT_REF_SIZE)
            .flags(at_start)
            .build(),
        glib::ParamSpecDouble::builder("threshold")
            .nick("Threshold")
            .blurb("0: a soft matte (smooth hair edges). A value in (0, 1): a hard matte, pixels with alpha at or above it are person.")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(0.0)
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("num-threads")
            .nick("Threads")
            .blurb("CPU threads for the network; 0: one per core (with pacing=realtime one fewer, so that compositing keeps a core). A value above 0 is libtorch's setting for the whole process.")
            .maximum(256)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("mask-every")
            .nick("Matte every N frames")
            .blurb("Run the network on every Nth frame only and reuse the last matte in between: N times less CPU, mattes that lag behind fast motion.")
            .minimum(1)
            .maximum(60)
            .default_value(1)
            .flags(live)
            .build(),
        glib::ParamSpecDouble::builder("temporal-smoothing")
            .nick("Temporal smoothing")
            .blurb("Blend each matte with the previous ones (the weight of the past): steadier edges, slower to follow motion. 0 is off; 0.5 is a good start.")
            .minimum(0.0)
            .maximum(0.99)
            .default_value(0.0)
            .flags(live)
            .build(),
        glib::ParamSpecBoolean::builder("ofd")
            .nick("One-frame delay")
            .blurb("MODNet's one-frame-delay fix: a pixel whose alpha jumps for one frame while its neighbours in time agree takes their mean. Removes one-frame flicker and adds one frame of latency.")
            .default_value(false)
            .flags(at_start)
            .build(),
        glib::ParamSpecEnum::builder_with_default("pacing", Pacing::default())
            .nick("Pacing")
            .blurb("realtime: every frame goes out at once with the newest matte, moved with you (follow-motion, learn-room); every-frame: each frame waits for its own matte. auto picks realtime for a live source, every-frame for a file.")
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("max-in-flight")
            .nick("Frames in flight")
            .blurb("pacing=every-frame: frames worked on at once, each beyond 1 adding a frame of latency. 0 (auto): 1 on a CPU, 2 on the CUDA device path.")
            .maximum(4)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecBoolean::builder("drop-late")
            .nick("Skip the network for late frames")
            .blurb("pacing=every-frame: reuse the last matte for frames that downstream's QoS reports late, to catch up instead of falling further behind.")
            .default_value(false)
            .flags(live)
            .build(),
        glib::ParamSpecBoolean::builder("follow-motion")
            .nick("Move the matte with the picture")
            .blurb("pacing=realtime: move the newest matte by how the person moved since its frame, so that a move does not show the room. Off: the matte stays where the network saw you.")
            .default_value(true)
            .flags(live)
            .build(),
        glib::ParamSpecBoolean::builder("learn-room")
            .nick("Learn the room")
            .blurb("pacing=realtime: remember what the room looks like and cover every pixel that matches it, whatever the matte says (it only ever hides more). Turn off for a moving camera.")
            .default_value(true)
            .flags(live)
            .build(),
        glib::ParamSpecEnum::builder_with_default("compositing", Compositing::default())
            .nick("Compositing")
            .blurb("Where the output frame is made: auto (on the GPU when the network runs on CUDA, else the CPU), cpu, or device (tensor ops on the network's device). ofd=true always uses the CPU.")
            .flags(at_start)
            .build(),
        glib::ParamSpecBoolean::builder("cuda-graphs")
            .nick("CUDA graphs")
            .blurb("On the CUDA device path, capture each stage's GPU work once per frame size and replay it: less CPU time and latency per frame. A failed capture is logged and plain forwards run.")
            .default_value(true)
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("batch")
            .nick("Frames per forward pass")
            .blurb("Frames per forward pass for non-live sources on the device path (throughput up, each frame waits for its batch). 0 (auto): 8 on CUDA, 1 on a CPU; a live source always gets 1.")
            .maximum(MAX_BATCH)
            .default_value(0)
            .flags(at_start)
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("What the element has done since start: frames, matte ages and reuse, network runs, milliseconds per stage, where compositing runs, and on the device path buffers, GPU memory, batch and CUDA graphs (README lists every field).")
            .read_only()
            .build(),
    ]
}

/// The model file to load: the `model` property, else $MODNETMATTE_MODEL, else
/// `modnetmatte/modnet_photographic.pt` in the XDG data directories as glib reads
/// them: $XDG_DATA_HOME (~/.local/share), then each of $XDG_DATA_DIRS
/// (/usr/local/share:/usr/share).
pub(super) fn find_model(property: Option<&str>) -> Result<PathBuf, String> {
    if let Some(p) = property.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let candidates: Vec<PathBuf> = std::iter::once(glib::user_data_dir())
        .chain(glib::system_data_dirs())
        .map(|d| d.join("modnetmatte").join(MODEL_FILE))
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "no model file: set the model property or {MODEL_ENV}, or install {MODEL_FILE} in one of: {}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gst-inspect shows every blurb: one or two sentences each, short enough to read.
    #[test]
    fn blurbs_are_one_or_two_sentences() {
        for p in properties() {
            let blurb = p.blurb().unwrap_or_default();
            let sentences = blurb.replace("e.g.", "eg").matches(". ").count() + 1;
            assert!(
                sentences <= 2 && blurb.len() <= 260 && blurb.ends_with('.'),
                "{}: {} sentences, {} characters: {blurb}",
                p.name(),
                sentences,
                blurb.len()
            );
        }
    }

    #[test]
    fn the_model_property_wins_and_the_data_dirs_are_named() {
        assert_eq!(find_model(Some("/x/m.pt")), Ok(PathBuf::from("/x/m.pt")));
        if std::env::var_os(MODEL_ENV).is_some() {
            eprintln!("skipped the data-dirs half: {MODEL_ENV} is set");
            return;
        }
        // Either found in a data dir, or the error names where it looked, user's first.
        let first = glib::user_data_dir().join("modnetmatte").join(MODEL_FILE);
        match find_model(None) {
            Ok(p) => assert!(p.ends_with(format!("modnetmatte/{MODEL_FILE}"))),
            Err(e) => {
                let listed = e.split("one of: ").nth(1).unwrap_or_default();
                assert!(listed.starts_with(&first.display().to_string()), "{e}");
                assert!(listed.contains("/usr/share/modnetmatte"), "{e}");
            }
        }
    }
}
