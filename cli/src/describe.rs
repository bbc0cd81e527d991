//! The commands' pipelines, written as gst-launch-1.0 descriptions: what runs is what
//! `--print-pipeline` shows, and a user can paste it into gst-launch-1.0.

use std::path::Path;

pub use gstmodnet::Pacing;
use gstmodnet::Precision;

use crate::options::{Backdrop, GeometryArgs, MatteArgs, nick};

/// Quotes a property value for gst-launch syntax.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// Raw video's size and rate where the matting starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub fps: (i32, i32),
}

impl Geometry {
    /// What the output will be once `--size`, `--fps` apply.
    pub fn shaped(self, g: &GeometryArgs) -> Geometry {
        let (width, height) = g.size.unwrap_or((self.width, self.height));
        let fps = g.fps.map(|f| (f as i32, 1)).unwrap_or(self.fps);
        Geometry { width, height, fps }
    }
}

/// Mirror, scale and rate conversion, after the source and before the network (the
/// network runs on the frames that are shown, at the size they are shown).
pub fn shaping(g: &GeometryArgs) -> String {
    let mut s = String::from("videoconvert");
    if g.mirror {
        // video-direction, not the deprecated `method`, which 1.22 ignores here.
        s += " ! videoflip video-direction=horiz";
    }
    if let Some((w, h)) = g.size {
        s += &format!(" ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1");
    }
    if let Some(f) = g.fps {
        s += &format!(" ! videorate ! video/x-raw,framerate={f}/1");
    }
    s
}

/// The element and its properties; `alpha`: the person over transparency.
pub fn element(m: &MatteArgs, alpha: bool, pacing: Pacing) -> String {
    // A camera's frames go out at its rate with the newest matte; a file's each wait
    // for their own.
    let mut s = format!("modnetmatte name=matte pacing={}", nick(pacing));
    match &m.background {
        _ if alpha => s += " output=alpha",
        Backdrop::Blur => s += &format!(" background=blur blur-radius={}", m.blur_radius),
        Backdrop::Color(c) => s += &format!(" background=color background-color=0x{c:08x}"),
        Backdrop::Image(p) => s += &format!(" background=image background-image={}", quote_path(p)),
        // Composited over the looped video by `compositor` (see `matted`).
        Backdrop::Video(_) => s += " output=alpha",
    }
    s += &format!(" device={} ref-size={}", quote(&m.device), m.ref_size);
    // The element's own default is auto: only another choice is spelled out.
    if m.precision != Precision::Auto {
        s += &format!(" precision={}", nick(m.precision));
    }
    if let Some(model) = &m.model {
        s += &format!(" model={}", quote_path(model));
    }
    if m.threads > 0 {
        s += &format!(" num-threads={}", m.threads);
    }
    if m.smoothing > 0.0 {
        s += &format!(" temporal-smoothing={}", m.smoothing);
    }
    if m.ofd {
        s += " ofd=true";
    }
    if m.mask_every > 1 {
        s += &format!(" mask-every={}", m.mask_every);
    }
    if let Some(n) = m.max_in_flight {
        s += &format!(" max-in-flight={n}");
    }
    s
}

/// `head ! modnetmatte ! tail`; with a video background, the element's transparent
/// output goes over the looped video (fed by the program through the appsrc `bgsrc`,
/// already at the output size) in a compositor before `tail`.
pub fn matted(head: &str, m: &MatteArgs, tail: &str, pacing: Pacing) -> String {
    let el = element(m, false, pacing);
    match m.background {
        Backdrop::Video(_) => format!(
            "{head} ! {el} ! queue ! bgmix.sink_1  \
             appsrc name=bgsrc format=time ! queue ! bgmix.sink_0  \
             compositor name=bgmix background=black ! {tail}"
        ),
        _ => format!("{head} ! {el} ! {tail}"),
    }
}

/// The start of a chain of decoded video from a file. A converter comes right after
/// `dec.`, so that only the video pad links here (a queue would take any pad) and an
/// audio pad, if any, stays for `dec. ! audioconvert`.
pub fn file_source(path: &Path) -> String {
    format!(
        "filesrc location={} ! decodebin name=dec  dec. ! videoconvert ! queue",
        quote_path(path)
    )
}

/// Ends after `frames` frames, when asked. identity's eos-after=N passes N-1 buffers
/// and ends the stream instead of the Nth.
pub fn limit(frames: Option<u64>) -> String {
    frames
        .map(|n| format!(" ! identity eos-after={}", n + 1))
        .unwrap_or_default()
}

/// The `cam` command: camera -> matte -> virtual camera (or nothing, `null`).
pub fn cam(
    source: &str,
    frames: Option<u64>,
    geometry: &GeometryArgs,
    m: &MatteArgs,
    output: Option<&Path>,
    pacing: Pacing,
) -> String {
    let head = format!("{source} ! {}{}", shaping(geometry), limit(frames));
    // YUY2 is the format browsers and meeting apps read most reliably from
    // v4l2loopback; sync=false: show each frame as soon as it is ready.
    let tail = match output {
        Some(dev) => format!(
            "videoconvert ! video/x-raw,format=YUY2 ! v4l2sink device={} sync=false",
            quote_path(dev)
        ),
        None => "fakesink sync=false".to_string(),
    };
    matted(&head, m, &tail, pacing)
}

/// The `preview` command: the original on the left, the result on the right.
pub fn preview(
    source: &str,
    frames: Option<u64>,
    geometry: &GeometryArgs,
    out: Geometry,
    m: &MatteArgs,
    sink: &str,
    pacing: Pacing,
) -> String {
    let head = format!(
        "{source} ! {}{} ! tee name=t  t. ! queue ! side.sink_0  t. ! queue",
        shaping(geometry),
        limit(frames)
    );
    let matted = matted(&head, m, "videoconvert ! queue ! side.sink_1", pacing);
    format!(
        "{matted}  compositor name=side sink_1::xpos={} ! videoconvert ! {sink}",
        out.width
    )
}

/// Containers and codecs of the `file` command, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Container {
    Mp4,
    Mkv,
    Webm,
    Mov,
}

impl Container {
    pub fn from_path(p: &Path, alpha: bool) -> Result<Container, String> {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let c = match ext.as_str() {
            "mp4" | "m4v" => Container::Mp4,
            "mkv" => Container::Mkv,
            "webm" => Container::Webm,
            "mov" => Container::Mov,
            _ => {
                return Err(format!(
                    "output {}: unknown container `.{ext}`; use .mp4 (H.264), .webm (VP8), \
                     .mkv (H.264) or .mov (H.264), and with --alpha .mov (ProRes 4444) or \
                     .mkv (FFV1)",
                    p.display()
                ));
            }
        };
        if alpha && matches!(c, Container::Mp4 | Container::Webm) {
            return Err(format!(
                "output {}: --alpha needs a codec that stores transparency: use .mov \
                 (ProRes 4444, for editors and OBS) or .mkv (FFV1, lossless). MP4/H.264 \
                 has no alpha, and GStreamer 1.22's VP8/VP9 encoders cannot write WebM alpha",
                p.display()
            ));
        }
        Ok(c)
    }

    /// Video encoder chain (raw video in, encoded out).
    pub fn video_encoder(self, alpha: bool) -> &'static str {
        match (self, alpha) {
            (Container::Mov, true) => {
                "videoconvert ! video/x-raw,format=A444_10LE ! avenc_prores_ks profile=4444"
            }
            (_, true) => "videoconvert ! video/x-raw,format=A420 ! avenc_ffv1",
            (Container::Webm, false) => {
                "videoconvert ! video/x-raw,format=I420 ! vp8enc deadline=1 cpu-used=4 \
                 target-bitrate=4000000 keyframe-max-dist=120"
            }
            _ => {
                "videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=faster \
                 bitrate=6000"
            }
        }
    }

    /// Audio encoder chain; AAC where the container expects it, Opus otherwise.
    pub fn audio_encoder(self, aac: bool) -> &'static str {
        match self {
            Container::Mp4 | Container::Mov if aac => {
                "audioconvert ! audioresample ! avenc_aac ! aacparse"
            }
            _ => "audioconvert ! audioresample ! opusenc",
        }
    }

    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux faststart=true",
            Container::Mkv => "matroskamux",
            Container::Webm => "webmmux",
            Container::Mov => "qtmux",
        }
    }
}

/// What the `file` command needs to know about its output.
pub struct FileOut<'a> {
    pub path: &'a Path,
    pub container: Container,
    pub alpha: bool,
    pub audio: bool,
    pub aac: bool,
}

/// The `file` command: decode -> matte -> encode, audio re-encoded alongside.
pub fn file(input: &Path, geometry: &GeometryArgs, m: &MatteArgs, out: &FileOut) -> String {
    let head = format!("{} ! {}", file_source(input), shaping(geometry));
    let tail = format!("{} ! queue ! mux.", out.container.video_encoder(out.alpha));
    let mut s = if out.alpha {
        format!("{head} ! {} ! {tail}", element(m, true, Pacing::EveryFrame))
    } else {
        matted(&head, m, &tail, Pacing::EveryFrame)
    };
    if out.audio {
        s += &format!(
            "  dec. ! {} ! queue ! mux.",
            out.container.audio_encoder(out.aac)
        );
    }
    s += &format!(
        "  {} name=mux ! filesink location={}",
        out.container.muxer(),
        quote_path(out.path)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        m: MatteArgs,
        #[command(flatten)]
        g: GeometryArgs,
    }

    fn args(a: &[&str]) -> T {
        T::parse_from(std::iter::once("t").chain(a.iter().copied()))
    }

    #[test]
    fn element_properties_follow_the_options() {
        let t = args(&[
            "-b",
            "#00ff00",
            "--ref-size",
            "256",
            "--smoothing",
            "0.5",
            "--ofd",
            "--mask-every",
            "2",
            "--model",
            "/m/a b.pt",
        ]);
        let e = element(&t.m, false, Pacing::EveryFrame);
        for want in [
            "background=color background-color=0xff00ff00",
            "ref-size=256",
            "temporal-smoothing=0.5",
            "ofd=true",
            "mask-every=2",
            "model=\"/m/a b.pt\"",
            "pacing=every-frame",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        assert!(!e.contains("num-threads"), "{e}");
    }

    #[test]
    fn shaping_orders_mirror_scale_rate() {
        let t = args(&["--mirror", "--size", "640x360", "--fps", "15"]);
        assert_eq!(
            shaping(&t.g),
            "videoconvert ! videoflip video-direction=horiz ! videoscale ! \
             video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1 ! videorate ! \
             video/x-raw,framerate=15/1"
        );
        assert_eq!(shaping(&args(&[]).g), "videoconvert");
    }

    #[test]
    fn containers_refuse_alpha_they_cannot_store() {
        let p = Path::new("o.webm");
        let e = Container::from_path(p, true).unwrap_err();
        assert!(e.contains("o.webm") && e.contains(".mov"), "{e}");
        assert!(Container::from_path(Path::new("o.mp4"), true).is_err());
        assert_eq!(
            Container::from_path(Path::new("o.MOV"), true),
            Ok(Container::Mov)
        );
        let e = Container::from_path(Path::new("o.avi"), false).unwrap_err();
        assert!(e.contains("`.avi`"), "{e}");
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote(r#"a "b"\c"#), r#""a \"b\"\\c""#);
    }
}
