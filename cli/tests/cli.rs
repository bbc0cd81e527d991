//! The `modnetmatte` program as a user runs it: its help, `file` end to end, `cam`
//! with a file standing in for the camera, `preview`, Ctrl-C, and the errors.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modnetmatte"));
    c.env("MODNETMATTE_MODEL", model())
        .env("MODNETMATTE_DEVICE", "cpu")
        .env_remove("GST_PLUGIN_PATH");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("modnetmatte runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let t = text(&o);
    assert!(!o.status.success(), "{args:?} should fail:\n{t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: `{n}` not in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_reads_like_a_tool() {
    let o = run(&["--help"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for n in [
        "Usage: modnetmatte",
        "cam",
        "file",
        "preview",
        "Examples:",
        "exclusive_caps=1",
    ] {
        assert!(t.contains(n), "`{n}` not in --help:\n{t}");
    }
    for cmd in ["cam", "file", "preview"] {
        let t = text(&run(&[cmd, "--help"]));
        for n in [
            "--background",
            "--ref-size",
            "--precision",
            "--mirror",
            "--size",
            "--fps",
        ] {
            assert!(t.contains(n), "`{n}` not in {cmd} --help:\n{t}");
        }
    }
    assert!(text(&run(&["--version"])).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn file_keeps_frames_duration_and_audio() {
    let tmp = temp_dir("cli-file");
    let dir = tmp.path();
    let (input, output) = (dir.join("in.mp4"), dir.join("out.mp4"));
    make_clip_mp4(&input, 12, 320, 180, true);
    let o = run(&[
        "file",
        s(&input),
        s(&output),
        "-b",
        "green",
        "--ref-size",
        "256",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("12 frames"), "{t}");
    let (i, d) = (decode(&input), decode(&output));
    assert_eq!(d.frames.len(), i.frames.len(), "frame count");
    assert_eq!((d.width, d.height), (320, 180));
    let frame = gst::ClockTime::from_mseconds(34);
    assert!(
        d.duration.max(i.duration) - d.duration.min(i.duration) <= frame,
        "duration {} vs input {}",
        d.duration,
        i.duration
    );
    assert!(i.audio && d.audio, "audio kept");
    for (n, f) in d.frames.iter().enumerate() {
        let green = fraction_near(f, [0, 177, 64], 40);
        assert!(
            (0.15..0.95).contains(&green),
            "frame {n}: {:.1}% green",
            green * 100.0
        );
    }
    // A second run needs -y.
    let o = run(&["file", s(&input), s(&output)]);
    assert!(
        !o.status.success() && text(&o).contains("-y"),
        "{}",
        text(&o)
    );
}

#[test]
fn file_alpha_mov_and_mkv_are_transparent() {
    let tmp = temp_dir("cli-alpha");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    make_clip_mp4(&input, 4, 320, 180, false);
    for name in ["out.mov", "out.mkv"] {
        let output = dir.join(name);
        let o = run(&[
            "file",
            s(&input),
            s(&output),
            "--alpha",
            "--ref-size",
            "256",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let d = decode(&output);
        assert_eq!(d.frames.len(), 4, "{name}");
        for f in &d.frames {
            let clear = fraction_transparent(f, 16);
            assert!((0.15..0.95).contains(&clear), "{name}: {clear}");
        }
    }
}

#[test]
fn file_over_a_looped_video_keeps_the_frame_count() {
    let tmp = temp_dir("cli-bgvideo");
    let dir = tmp.path();
    let (input, bg, output) = (
        dir.join("in.mp4"),
        dir.join("rocket.mp4"),
        dir.join("out.webm"),
    );
    make_clip_mp4(&input, 10, 320, 180, false);
    // 3 frames of background for 10 of input: it must loop.
    make_still_mp4(&bg, &prepared("data/images/rocket.jpg"), 3, 160, 120);
    let o = run(&[
        "file",
        s(&input),
        s(&output),
        "-b",
        s(&bg),
        "--ref-size",
        "256",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let d = decode(&output);
    assert_eq!(d.frames.len(), 10);
    let blacks: Vec<String> = d
        .frames
        .iter()
        .map(|f| format!("{:.2}", fraction_near(f, [0, 0, 0], 10)))
        .collect();
    eprintln!("black share per frame: {blacks:?}");
    let last = d.frames.last().unwrap();
    let input_last = clip_frame(9, 320, 180);
    let changed = fraction_changed(last, &input_last, 12);
    assert!((0.3..0.98).contains(&changed), "last frame: {changed}");
    // Still over the rocket photo, not the compositor's black (a loop that stopped).
    let black = fraction_near(last, [0, 0, 0], 10);
    eprintln!(
        "last frame: {:.1}% changed, {:.1}% black",
        changed * 100.0,
        black * 100.0
    );
    assert!(
        black < 0.2,
        "{:.1}% black: the background stopped looping",
        black * 100.0
    );
}

#[test]
fn file_errors_name_the_file_and_the_reason() {
    let tmp = temp_dir("cli-errors");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    make_clip_mp4(&input, 2, 160, 96, false);
    let out = dir.join("o.mp4");
    fails_with(
        &["file", "/no/such/in.mp4", s(&out)],
        &["input /no/such/in.mp4", "No such file"],
    );
    let readme = root().join("README.md");
    fails_with(
        &["file", s(&readme), s(&out)],
        &["README.md", "not a video"],
    );
    fails_with(
        &["file", s(&input), "/no/such/dir/o.mp4"],
        &["output /no/such/dir/o.mp4", "cannot be written"],
    );
    fails_with(
        &["file", s(&input), s(&dir.join("o.webm")), "--alpha"],
        &["o.webm", ".mov"],
    );
    fails_with(&["file", s(&input), s(&dir.join("o.avi"))], &["`.avi`"]);
    fails_with(
        &["file", s(&input), s(&out), "-b", "/no/such/beach.jpg"],
        &["/no/such/beach.jpg", "colour"],
    );
    fails_with(
        &["file", s(&input), s(&out), "--model", "/no/such/model.pt"],
        &["/no/such/model.pt"],
    );
    assert!(!out.exists(), "no half-written output after a failure");
}

#[test]
fn cam_errors_on_a_missing_camera_or_virtual_camera() {
    fails_with(
        &[
            "cam",
            "--camera",
            "/dev/modnetmatte-no-camera",
            "-o",
            "null",
        ],
        &["camera /dev/modnetmatte-no-camera", "no such device"],
    );
    let tmp = temp_dir("cli-cam-err");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    make_clip_mp4(&input, 2, 160, 96, false);
    fails_with(
        &[
            "cam",
            "--camera",
            s(&input),
            "-o",
            "/dev/modnetmatte-no-loopback",
        ],
        &[
            "virtual camera /dev/modnetmatte-no-loopback",
            "modprobe v4l2loopback",
            "exclusive_caps=1",
        ],
    );
}

#[test]
fn cam_with_a_file_for_the_camera_runs_n_frames() {
    let tmp = temp_dir("cli-cam");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    make_clip_mp4(&input, 12, 320, 180, true);
    let o = run(&[
        "cam",
        "--camera",
        s(&input),
        "-o",
        "null",
        "--frames",
        "5",
        "--ref-size",
        "128",
        "--mirror",
        "--size",
        "256x144",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("camera: 5 frames"), "{t}");
    assert!(t.contains("256x144"), "{t}");
    // --print-pipeline shows what runs.
    let o = run(&[
        "cam",
        "--camera",
        s(&input),
        "-o",
        "null",
        "--mirror",
        "--print-pipeline",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("videoflip") && t.contains("modnetmatte name=matte"),
        "{t}"
    );
}

#[test]
fn preview_shows_both_side_by_side() {
    let tmp = temp_dir("cli-preview");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    make_clip_mp4(&input, 6, 320, 180, false);
    let o = run(&[
        "preview",
        s(&input),
        "--sink",
        "fakesink",
        "--frames",
        "3",
        "--ref-size",
        "128",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("preview: 3 frames"), "{t}");
    let o = run(&["preview", s(&input), "--print-pipeline"]);
    assert!(text(&o).contains("sink_1::xpos=320"), "{}", text(&o));
}

#[test]
fn ctrl_c_stops_the_camera_cleanly() {
    let tmp = temp_dir("cli-sigint");
    let dir = tmp.path();
    let input = dir.join("in.mp4");
    // 10 s: with realtime pacing the file plays at its own rate (clocksync), so the
    // Ctrl-C 2 s in lands mid-stream however fast the network is.
    make_clip_mp4(&input, 300, 640, 360, false);
    let mut child = bin()
        .args(["cam", "--camera", s(&input), "-o", "null"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // Playing once it says so; then give it a moment inside the network.
    while !seen.contains("Ctrl-C stops") {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "ended early: {seen}");
        seen += &line;
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let all = seen + &rest;
    assert!(status.success(), "{all}");
    assert!(all.contains("stopped by Ctrl-C"), "{all}");
    // Stopped mid-stream through EOS: some frames, not all.
    let frames: u32 = all
        .split("camera: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary: {all}"));
    assert!((1..300).contains(&frames), "{frames} frames: {all}");
}
