//! The built plugin file through gst-launch-1.0 and gst-inspect-1.0, as a user runs
//! it: a private GST_PLUGIN_PATH folder holding only our .so, a private registry, and
//! the model found through $MODNETMATTE_MODEL (no `model` property).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A fresh folder with a copy of the cdylib cargo built next to this test binary,
/// removed (158 MB of plugin with it) when the returned value is dropped.
fn plugin_dir(name: &str) -> tempfile::TempDir {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let so = profile_dir.join("libgstmodnet.so");
    assert!(
        so.exists(),
        "{} missing (cargo builds it with the tests)",
        so.display()
    );
    let dir = tempfile::Builder::new()
        .prefix(&format!("modnetmatte-{name}-"))
        .tempdir()
        .expect("a scratch folder in the temporary directory");
    std::fs::create_dir_all(dir.path().join("plugin")).unwrap();
    std::fs::copy(&so, dir.path().join("plugin/libgstmodnet.so")).unwrap();
    dir
}

fn system_plugins() -> String {
    let out = Command::new("pkg-config")
        .args(["--variable=pluginsdir", "gstreamer-1.0"])
        .output()
        .expect("pkg-config runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn gst(tool: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(tool)
        .args(args)
        .env("GST_PLUGIN_PATH", dir.join("plugin"))
        .env("GST_REGISTRY", dir.join("registry.bin"))
        // Only the system's plugins besides ours: not a copy installed in the user's
        // plugin folder by scripts/install.sh.
        .env("GST_PLUGIN_SYSTEM_PATH", system_plugins())
        .env("MODNETMATTE_MODEL", model())
        .env_remove("GST_DEBUG")
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

#[test]
fn gst_inspect_documents_every_property() {
    let tmp = plugin_dir("inspect");
    let dir = tmp.path();
    let out = gst("gst-inspect-1.0", dir, &["modnetmatte"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Filter/Effect/Video",
        "libgstmodnet.so",
        "output",
        "background-color",
        "background-image",
        "blur-radius",
        "model",
        "device",
        "ref-size",
        "threshold",
        "num-threads",
        "stats",
        "(2): matte",
        "changeable only in NULL or READY state",
        "YUY2",
        "NV12",
        "I420",
        "GRAY8",
    ] {
        assert!(
            text.contains(needle),
            "gst-inspect lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn a_photo_clip_through_gst_launch_keeps_the_person_and_replaces_the_background() {
    let tmp = plugin_dir("launch");
    let dir = tmp.path();
    let photo = prepared("data/images/astronaut.png").display().to_string();
    let pattern = dir.join("frame_%02d.png").display().to_string();
    let pipeline = format!(
        "filesrc location={photo} ! pngdec ! imagefreeze num-buffers=4 ! videoconvert ! \
         video/x-raw,format=NV12,framerate=10/1 ! modnetmatte background=color background-color=0xff0000ff ! \
         videoconvert ! pngenc ! multifilesink location={pattern}"
    );
    let args: Vec<&str> = std::iter::once("-q")
        .chain(pipeline.split_whitespace())
        .collect();
    let out = gst("gst-launch-1.0", dir, &args);
    assert!(
        out.status.success(),
        "gst-launch failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let original = photo_rgb(512, 512);
    for i in 0..4 {
        let frame = image::open(dir.join(format!("frame_{i:02}.png")))
            .unwrap_or_else(|e| panic!("frame {i}: {e}"))
            .to_rgb8();
        assert_eq!(frame.dimensions(), (512, 512));
        let rgb = frame.as_raw();
        for (fx, fy) in PERSON {
            let d = distance(
                mean_at(rgb, 512, 512, fx, fy),
                mean_at(&original, 512, 512, fx, fy),
            );
            assert!(
                d <= 12.0,
                "frame {i}: the person at ({fx},{fy}) changed by {d}"
            );
        }
        for (fx, fy) in BACKGROUND {
            let d = distance(mean_at(rgb, 512, 512, fx, fy), [0.0, 0.0, 255.0]);
            assert!(
                d <= 12.0,
                "frame {i}: background at ({fx},{fy}) is {d} from blue"
            );
        }
    }
    assert!(
        !dir.join("frame_04.png").exists(),
        "one output frame per input frame"
    );
}

#[test]
fn a_bad_model_stops_gst_launch_with_a_clear_error() {
    let tmp = plugin_dir("badmodel");
    let dir = tmp.path();
    let out = gst(
        "gst-launch-1.0",
        dir,
        &[
            "videotestsrc",
            "num-buffers=2",
            "!",
            "modnetmatte",
            "model=/nonexistent/m.pt",
            "!",
            "fakesink",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        text.contains("model file /nonexistent/m.pt: not found"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

/// The plugin file reports the commit it was built from and that commit's date
/// (gst-plugin-version-helper), not a date typed into the source.
#[test]
fn gst_inspect_names_the_plugins_commit_and_date() {
    let tmp = plugin_dir("version");
    let out = gst("gst-inspect-1.0", tmp.path(), &["modnet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("gst-inspect lacks {name}:\n{text}"))
    };
    let version = field("Version");
    let (crate_version, commit) = version.split_once('-').expect("version-commit");
    assert_eq!(crate_version, env!("CARGO_PKG_VERSION"));
    let released = field("Source release date");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if git(&["rev-parse", "HEAD"]).is_none() {
        assert_eq!(commit, "RELEASE", "built without git");
        return;
    }
    // A commit of this repository (`+`: built with local changes), and its date.
    let hash = commit.trim_end_matches('+');
    assert!(
        hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    let date = git(&["log", "-1", "--format=%cs", hash]).expect("the commit exists here");
    assert_eq!(released, date);
}
