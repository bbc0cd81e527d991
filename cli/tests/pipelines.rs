//! Every published pipeline in pipelines/, read from its file and run as published
//! but for its ends: the live camera (v4l2src) becomes the real-photo clip, and a
//! window or virtual-camera sink becomes PNG files whose frames are checked. Files
//! the pipeline reads or writes are given through its own variables.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use gst::prelude::*;

const FRAMES: u32 = 3;
const SOURCE_SWAP: &str = "multifilesrc location={clip} index=0 stop-index={last} \
                           caps=image/jpeg,width=1280,height=720,framerate=30/1";
const SINK_SWAP: &str = "videoconvert ! pngenc ! multifilesink location={dir}/frame_%03d.png";

/// A published pipeline: its opening comment and its gst-launch description with the
/// variables expanded (defaults, or `overrides`).
struct Published {
    about: String,
    description: String,
}

fn read(name: &str, overrides: &[(&str, String)]) -> Published {
    let path = root().join("pipelines").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text.replace("\\\n", " ");
    let about: String = text
        .lines()
        .filter(|l| !l.starts_with("#!"))
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut command = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // NAME=${NAME:-default}
        if let Some((name, rest)) = line.split_once('=')
            && let Some(default) = rest
                .strip_prefix(&format!("${{{name}:-"))
                .and_then(|r| r.strip_suffix('}'))
        {
            vars.insert(name.to_string(), default.to_string());
            continue;
        }
        let line = line
            .strip_prefix("exec gst-launch-1.0")
            .map(|l| {
                l.split_whitespace()
                    .skip_while(|t| t.starts_with('-'))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| line.to_string());
        assert!(command.is_none(), "{name}: more than one command");
        command = Some(line);
    }
    for (k, v) in overrides {
        assert!(vars.contains_key(*k), "{name} has no variable {k}");
        vars.insert(k.to_string(), v.clone());
    }
    let mut description = command.unwrap_or_else(|| panic!("{name}: no pipeline"));
    // Longest names first: $CAMERA must not eat the start of $CAMERA_CAPS.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in names {
        let v = &vars[k];
        description = description
            .replace(&format!("\"${k}\""), v)
            .replace(&format!("${k}"), v);
    }
    assert!(
        !description.contains('$'),
        "{name}: unexpanded: {description}"
    );
    Published { about, description }
}

/// Replaces the live ends, element and properties: v4l2src by the clip; v4l2sink,
/// autovideosink and obs-gstreamer's `video.` by PNG files in `out_dir`.
fn swap_ends(description: &str, out_dir: &Path) -> String {
    let source = SOURCE_SWAP
        .replace("{clip}", &clip_pattern())
        .replace("{last}", &(FRAMES - 1).to_string());
    let sink = SINK_SWAP.replace("{dir}", &out_dir.display().to_string());
    let tokens: Vec<&str> = description.split_whitespace().collect();
    let (mut out, mut i, mut sinks) = (Vec::new(), 0, 0);
    while i < tokens.len() {
        let replacement = match tokens[i] {
            "v4l2src" => Some(source.as_str()),
            "v4l2sink" | "autovideosink" | "video." => {
                sinks += 1;
                Some(sink.as_str())
            }
            _ => None,
        };
        i += 1;
        match replacement {
            Some(r) => {
                out.push(r.to_string());
                while i < tokens.len() && tokens[i] != "!" && tokens[i].contains('=') {
                    i += 1;
                }
            }
            None => out.push(tokens[i - 1].to_string()),
        }
    }
    assert!(sinks <= 1, "more than one sink to swap in {description}");
    out.join(" ")
}

/// Plays a published pipeline with its ends swapped (the model set on its
/// modnetmatte) to EOS; the RGBA frames it wrote as PNG files, and their size.
fn run(name: &str, description: &str) -> (Vec<Vec<u8>>, (u32, u32)) {
    init();
    let tmp = temp_dir(&format!("pipe-out-{}", name.replace('.', "-")));
    let dir = tmp.path();
    let description = swap_ends(description, dir);
    let p = gst::parse::launch(&description)
        .unwrap_or_else(|e| panic!("{e}: {description}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let mut mattes = 0;
    for e in p.iterate_recurse().into_iter().flatten() {
        if e.factory().is_some_and(|f| f.name() == "modnetmatte") {
            e.set_property("model", model().display().to_string());
            mattes += 1;
        }
    }
    assert_eq!(mattes, 1, "one modnetmatte in {description}");
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(300),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap_or_else(|| panic!("no EOS in 300 s: {description}"));
    let _ = p.set_state(gst::State::Null);
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{description}: {} ({:?})", e.error(), e.debug());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let (mut frames, mut size) = (Vec::new(), (0, 0));
    for f in files {
        let img = image::open(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .to_rgba8();
        size = img.dimensions();
        frames.push(img.into_raw());
    }
    (frames, size)
}

fn mirrored(rgba: &[u8], w: u32) -> Vec<u8> {
    rgba.chunks_exact(w as usize * 4)
        .flat_map(|row| {
            row.chunks_exact(4)
                .rev()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A camera pipeline: FRAMES frames of 1280x720 out, the background replaced (a share
/// of the pixels changed, not all of them).
fn camera_pipeline(name: &str, overrides: &[(&str, String)]) -> Vec<Vec<u8>> {
    let published = read(name, overrides);
    assert!(
        published.about.len() > 40,
        "{name} does not say what it does in its first lines"
    );
    let (frames, size) = run(name, &published.description);
    assert_eq!(frames.len(), FRAMES as usize, "{name}: frames out");
    assert_eq!(size, (1280, 720), "{name}: output size");
    frames
}

/// Blur keeps the background's layout (a moderate share of pixels changes, and a
/// wrongly mirrored frame would change most); a new picture changes most of them.
const BLURRED: std::ops::Range<f64> = 0.08..0.45;
const REPLACED: std::ops::Range<f64> = 0.40..0.92;

fn changed_share(name: &str, out: &[Vec<u8>], mirror: bool, expect: std::ops::Range<f64>) {
    for (i, f) in out.iter().enumerate() {
        let mut input = clip_frame(i as u32, 1280, 720);
        if mirror {
            input = mirrored(&input, 1280);
        }
        let changed = fraction_changed(f, &input, 12);
        eprintln!("{name} frame {i}: {:.1}% changed", changed * 100.0);
        assert!(
            expect.contains(&changed),
            "{name} frame {i}: {:.1}% of pixels changed, expected {:.0}-{:.0}%",
            changed * 100.0,
            expect.start * 100.0,
            expect.end * 100.0
        );
    }
}

#[test]
fn webcam_to_virtual_camera() {
    let out = camera_pipeline("webcam-to-virtual-camera.sh", &[]);
    changed_share("webcam-to-virtual-camera", &out, false, BLURRED);
}

#[test]
fn webcam_to_window() {
    let out = camera_pipeline("webcam-to-window.sh", &[]);
    changed_share("webcam-to-window", &out, true, BLURRED);
}

#[test]
fn obs_virtual_camera_gives_a_keyable_green() {
    let out = camera_pipeline("obs-virtual-camera.sh", &[]);
    for (i, f) in out.iter().enumerate() {
        let green = fraction_near(f, [0, 255, 0], 40);
        eprintln!("obs-virtual-camera frame {i}: {:.1}% green", green * 100.0);
        assert!(
            (0.10..0.95).contains(&green),
            "frame {i}: {:.1}% green",
            green * 100.0
        );
    }
}

#[test]
fn alpha_over_a_background_video() {
    let tmp = temp_dir("pipe-alpha");
    let dir = tmp.path();
    let bg = dir.join("rocket.mp4");
    make_still_mp4(&bg, &prepared("data/images/rocket.jpg"), FRAMES, 1280, 720);
    let out = camera_pipeline(
        "alpha-over-video.sh",
        &[("BACKGROUND_VIDEO", bg.display().to_string())],
    );
    changed_share("alpha-over-video", &out, false, REPLACED);
}

#[test]
fn obs_gstreamer_source_is_transparent() {
    let published = read("obs-gstreamer-source.txt", &[]);
    assert!(published.about.contains("obs-gstreamer"));
    let (frames, size) = run("obs-gstreamer-source.txt", &published.description);
    assert_eq!(frames.len(), FRAMES as usize);
    assert_eq!(size, (1280, 720));
    for (i, f) in frames.iter().enumerate() {
        let clear = fraction_transparent(f, 16);
        let opaque = 1.0 - fraction_transparent(f, 239);
        eprintln!(
            "obs-gstreamer-source frame {i}: {:.1}% transparent, {:.1}% opaque",
            clear * 100.0,
            opaque * 100.0
        );
        assert!(
            (0.10..0.95).contains(&clear) && opaque > 0.05,
            "frame {i}: {:.1}% transparent, {:.1}% opaque",
            clear * 100.0,
            opaque * 100.0
        );
    }
}

#[test]
fn file_to_file() {
    let tmp = temp_dir("pipe-file");
    let dir = tmp.path();
    let (input, output) = (dir.join("in.mp4"), dir.join("out.mp4"));
    make_clip_mp4(&input, FRAMES, 640, 360, true);
    let published = read(
        "file-to-file.sh",
        &[
            ("INPUT", input.display().to_string()),
            ("OUTPUT", output.display().to_string()),
            (
                "BACKGROUND_IMAGE",
                prepared("data/images/rocket.jpg").display().to_string(),
            ),
        ],
    );
    assert!(published.about.len() > 40);
    let (none, _) = run("file-to-file.sh", &published.description);
    assert!(none.is_empty());
    let d = decode(&output);
    assert_eq!(d.frames.len(), FRAMES as usize);
    assert_eq!((d.width, d.height), (640, 360));
    for (i, f) in d.frames.iter().enumerate() {
        let changed = fraction_changed(f, &clip_frame(i as u32, 640, 360), 12);
        eprintln!("file-to-file frame {i}: {:.1}% changed", changed * 100.0);
        assert!(REPLACED.contains(&changed), "frame {i}: {changed}");
    }
}

#[test]
fn every_published_pipeline_is_tested() {
    let tested = [
        "alpha-over-video.sh",
        "file-to-file.sh",
        "obs-gstreamer-source.txt",
        "obs-virtual-camera.sh",
        "webcam-to-virtual-camera.sh",
        "webcam-to-window.sh",
    ];
    let mut found: Vec<String> = std::fs::read_dir(root().join("pipelines"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "README.md")
        .collect();
    found.sort();
    assert_eq!(
        found, tested,
        "a pipeline without a test (or a test without its file)"
    );
    // The shell ones run as they are.
    for name in tested.iter().filter(|n| n.ends_with(".sh")) {
        let meta = std::fs::metadata(root().join("pipelines").join(name)).unwrap();
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
            "{name} is not executable"
        );
    }
}
