//! Caps: the formats each pad takes, and how caps map across the element for each
//! output mode (composite keeps the format; alpha gives the RGBA-family format of the
//! same channel order; matte gives GRAY8).

use gst_video::VideoFormat;

use super::Output;
use crate::formats::{SINK_FORMATS, alpha_format};

/// Frames up to this size on either side.
const MAX_SIDE: i32 = 4096;

/// Output formats for an input format (`to_src`), or input formats for an output one.
fn map_format(output: Output, f: VideoFormat, to_src: bool) -> Vec<VideoFormat> {
    match (output, to_src) {
        (Output::Composite, _) => SINK_FORMATS.iter().copied().filter(|&s| s == f).collect(),
        (Output::Alpha, true) if SINK_FORMATS.contains(&f) => vec![alpha_format(f)],
        (Output::Matte, true) if SINK_FORMATS.contains(&f) => vec![VideoFormat::Gray8],
        (Output::Alpha, false) => SINK_FORMATS
            .iter()
            .copied()
            .filter(|&s| alpha_format(s) == f)
            .collect(),
        (Output::Matte, false) if f == VideoFormat::Gray8 => SINK_FORMATS.to_vec(),
        _ => vec![],
    }
}

/// Raw video caps in these formats, any size the element takes.
pub(super) fn caps_for(formats: &[VideoFormat]) -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(formats.iter().copied())
        .width_range(1..=MAX_SIDE)
        .height_range(1..=MAX_SIDE)
        .build()
}

/// The sink and src pad templates.
pub(super) fn pad_templates() -> Vec<gst::PadTemplate> {
    let mut src_formats = SINK_FORMATS.to_vec();
    src_formats.push(VideoFormat::Gray8);
    let sink = gst::PadTemplate::new(
        "sink",
        gst::PadDirection::Sink,
        gst::PadPresence::Always,
        &caps_for(&SINK_FORMATS),
    );
    let src = gst::PadTemplate::new(
        "src",
        gst::PadDirection::Src,
        gst::PadPresence::Always,
        &caps_for(&src_formats),
    );
    // Both templates are built from valid constant caps: they cannot fail.
    vec![sink.expect("sink template"), src.expect("src template")] // ok: constant caps
}

/// The formats a caps structure lists (all the other side can take when it has none).
fn formats_of(s: &gst::StructureRef, to_src: bool) -> Option<Vec<VideoFormat>> {
    match s.value("format") {
        Ok(v) => {
            if let Ok(one) = v.get::<&str>() {
                Some(vec![VideoFormat::from_string(one)])
            } else if let Ok(list) = v.get::<gst::List>() {
                Some(
                    list.iter()
                        .filter_map(|v| v.get::<&str>().ok())
                        .map(VideoFormat::from_string)
                        .collect(),
                )
            } else {
                None
            }
        }
        Err(_) if to_src => Some(SINK_FORMATS.to_vec()),
        Err(_) => {
            let mut all = SINK_FORMATS.to_vec();
            all.push(VideoFormat::Gray8);
            Some(all)
        }
    }
}

/// BaseTransform's transform_caps for `output`: `caps` on one side (`to_src`: the
/// sink side) to what the other side can have; sizes and rates unchanged.
pub(super) fn transform(
    output: Output,
    to_src: bool,
    caps: &gst::Caps,
    filter: Option<&gst::Caps>,
) -> Option<gst::Caps> {
    let mut out = gst::Caps::new_empty();
    {
        let out = out.get_mut()?;
        for (s, features) in caps.iter_with_features() {
            let Some(formats) = formats_of(s, to_src) else {
                continue;
            };
            let mut mapped: Vec<VideoFormat> = Vec::new();
            for f in formats {
                for m in map_format(output, f, to_src) {
                    if !mapped.contains(&m) {
                        mapped.push(m);
                    }
                }
            }
            if mapped.is_empty() {
                continue;
            }
            let mut s = s.to_owned();
            if mapped.len() == 1 {
                s.set("format", mapped[0].to_str());
            } else {
                s.set("format", gst::List::new(mapped.iter().map(|f| f.to_str())));
            }
            if output != Output::Composite {
                // YUV colorimetry and chroma siting mean nothing for RGB or GRAY8.
                s.remove_fields(["colorimetry", "chroma-site"]);
            }
            out.append_structure_full(s, Some(features.to_owned()));
        }
    }
    Some(match filter {
        Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
        None => out,
    })
}
