//! Command-line options shared by the commands, and their parsing.

use std::path::PathBuf;
use std::str::FromStr;

use std::marker::PhantomData;

use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use gst::glib;
use gst::prelude::*;
use gstmodnet::Precision;

/// What replaces the background.
#[derive(Debug, Clone, PartialEq)]
pub enum Backdrop {
    Blur,
    /// 0xAARRGGBB, as the element's `background-color`.
    Color(u32),
    Image(PathBuf),
    /// Any video file GStreamer can decode, looped.
    Video(PathBuf),
}

const NAMED_COLORS: &[(&str, u32)] = &[
    ("green", 0xff00b140), // the keyable chroma green, the element's default
    ("blue", 0xff0047bb),
    ("black", 0xff000000),
    ("white", 0xffffffff),
    ("gray", 0xff808080),
    ("grey", 0xff808080),
];

fn parse_color(s: &str) -> Option<u32> {
    if let Some(&(_, c)) = NAMED_COLORS.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(c);
    }
    let hex = s.strip_prefix('#').or_else(|| s.strip_prefix("0x"))?;
    let v = u32::from_str_radix(hex, 16).ok()?;
    match hex.len() {
        6 => Some(0xff00_0000 | v),
        8 => Some(v),
        _ => None,
    }
}

impl FromStr for Backdrop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("blur") {
            return Ok(Backdrop::Blur);
        }
        if let Some(c) = parse_color(s) {
            return Ok(Backdrop::Color(c));
        }
        let path = PathBuf::from(s);
        if !path.is_file() {
            return Err(format!(
                "`{s}` is not `blur`, a colour (green, blue, black, white, gray, #RRGGBB, \
                 0xAARRGGBB) or an existing image or video file"
            ));
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "png" | "jpg" | "jpeg" => Backdrop::Image(path),
            _ => Backdrop::Video(path),
        })
    }
}

/// `WIDTHxHEIGHT` (the engine's `parse_size`), both even and from 16x16 to 7680x4320
/// (what encoders and v4l2loopback take).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = modnetmatte::frame::parse_size(s)?;
    if w < 16 || h < 16 || w > 7680 || h > 4320 || w % 2 == 1 || h % 2 == 1 {
        return Err(format!(
            "{s:?}: width and height must be even, from 16x16 to 7680x4320"
        ));
    }
    Ok((w, h))
}

/// Parses an option into one of the element's property enums by its nicks (what
/// gst-inspect lists), so the CLI has no second copy of them; `--help` lists them.
#[derive(Clone)]
pub struct ElementEnum<E>(PhantomData<E>);

impl<E> ElementEnum<E> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E: StaticType> ElementEnum<E> {
    fn nicks(&self) -> Vec<String> {
        glib::EnumClass::with_type(E::static_type())
            .map(|c| c.values().iter().map(|v| v.nick().to_string()).collect())
            .unwrap_or_default()
    }
}

impl<E> TypedValueParser for ElementEnum<E>
where
    E: StaticType + for<'a> glib::value::FromValue<'a> + Clone + Send + Sync + 'static,
{
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<E, clap::Error> {
        let nick = PossibleValuesParser::new(self.nicks()).parse_ref(cmd, arg, value)?;
        glib::EnumClass::with_type(E::static_type())
            .and_then(|c| c.to_value_by_nick(&nick))
            .and_then(|v| v.get::<E>().ok())
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.nicks().into_iter().map(PossibleValue::new)))
    }
}

/// The nick of one of the element's enum values, as a pipeline description sets it.
pub fn nick<E: ToValue>(value: E) -> String {
    glib::EnumValue::from_value(&value.to_value())
        .map(|(_, v)| v.nick().to_string())
        .unwrap_or_default()
}

/// How the person is cut out and what goes behind them: the element's properties.
#[derive(Debug, Clone, Args)]
pub struct MatteArgs {
    /// What replaces the background: `blur`, a colour (green, blue, black, white,
    /// gray, #RRGGBB, 0xAARRGGBB), a picture (PNG/JPEG, scaled to cover the frame) or
    /// a video file (looped).
    #[arg(short, long, default_value = "blur", value_name = "BACKGROUND")]
    pub background: Backdrop,
    /// Blur strength in pixels for `--background blur`.
    #[arg(long, default_value_t = 16, value_name = "PIXELS")]
    pub blur_radius: u32,
    /// Where the network runs: auto (CUDA when available, else CPU), cpu, cuda, cuda:N.
    #[arg(long, env = "MODNETMATTE_DEVICE", default_value = "auto")]
    pub device: String,
    /// auto (bf16 on a CPU with AMX or AVX512-BF16, else fp32), fp32, fp16 (CUDA) or
    /// bf16 (the CPU variant); the log's device line says what runs.
    #[arg(long, default_value = "auto", value_parser = ElementEnum::<Precision>::new())]
    pub precision: Precision,
    /// The TorchScript MODNet (default: $MODNETMATTE_MODEL, else
    /// modnetmatte/modnet_photographic.pt under ~/.local/share or /usr/share).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Network input size (short side); 256 is about 3x faster on a CPU, with softer
    /// edges.
    #[arg(long, default_value_t = 512, value_name = "PIXELS")]
    pub ref_size: u32,
    /// CPU threads for the network (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: u32,
    /// Temporal smoothing of the matte, 0 (off) to 0.95: less flicker, slower to follow
    /// fast movement.
    #[arg(long, default_value_t = 0.0, value_name = "WEIGHT")]
    pub smoothing: f64,
    /// MODNet's one-frame-delay fix for flicker (one more frame of latency).
    #[arg(long)]
    pub ofd: bool,
    /// Run the network on every Nth frame only, reusing its matte in between (N times
    /// less CPU, the matte lags on movement).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub mask_every: u32,
    /// Frames in the network at once (1: lowest latency; 2: overlap the network with
    /// the rest, best on a GPU).
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<u32>,
}

/// Output picture shaping.
#[derive(Debug, Clone, Args)]
pub struct GeometryArgs {
    /// Mirror the picture left to right (as a selfie view).
    #[arg(long)]
    pub mirror: bool,
    /// Output size, WIDTHxHEIGHT (default: the input's).
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    pub size: Option<(u32, u32)>,
    /// Output frame rate (default: the input's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=240), value_name = "FPS")]
    pub fps: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backdrops_parse() {
        assert_eq!("blur".parse::<Backdrop>(), Ok(Backdrop::Blur));
        assert_eq!("Green".parse::<Backdrop>(), Ok(Backdrop::Color(0xff00b140)));
        assert_eq!(
            "#102030".parse::<Backdrop>(),
            Ok(Backdrop::Color(0xff102030))
        );
        assert_eq!(
            "0x80102030".parse::<Backdrop>(),
            Ok(Backdrop::Color(0x80102030))
        );
        let err = "/no/such/beach.jpg".parse::<Backdrop>().unwrap_err();
        assert!(
            err.contains("/no/such/beach.jpg") && err.contains("colour"),
            "{err}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (img, vid) = (dir.join("a.JPG"), dir.join("b.mp4"));
        std::fs::write(&img, b"x").unwrap();
        std::fs::write(&vid, b"x").unwrap();
        assert_eq!(
            img.to_str().unwrap().parse::<Backdrop>(),
            Ok(Backdrop::Image(img.clone()))
        );
        assert_eq!(
            vid.to_str().unwrap().parse::<Backdrop>(),
            Ok(Backdrop::Video(vid.clone()))
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("640X480"), Ok((640, 480)));
        for bad in [
            "1280",
            "12x720",
            "1281x720",
            "axb",
            "100000x100",
            "8000x4000",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        m: MatteArgs,
    }

    #[test]
    fn precision_takes_the_elements_own_values() {
        use clap::Parser;
        let parse = |a: &[&str]| P::try_parse_from(std::iter::once("t").chain(a.iter().copied()));
        let p = parse(&["--precision", "fp16"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.m.precision, Precision::Fp16);
        assert_eq!(
            parse(&[]).map(|p| p.m.precision).ok(),
            Some(Precision::Auto)
        );
        let e = parse(&["--precision", "fp8"])
            .err()
            .expect("fp8 refused")
            .to_string();
        assert!(
            e.contains("fp8") && e.contains("fp32") && e.contains("fp16"),
            "{e}"
        );
        assert_eq!(nick(Precision::Fp16), "fp16");
        assert_eq!(nick(gstmodnet::Pacing::EveryFrame), "every-frame");
    }
}
