//! The `matte-image` program end to end: outputs written, the reference check, and
//! clear errors for bad arguments.

mod common;

use std::process::Command;

fn matte_image<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matte-image"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn writes_the_three_pictures_and_checks_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let photo = common::prepared("data/images/astronaut.png");
    let bg = common::prepared("data/images/rocket.jpg");
    let reference = common::fixture("reference/astronaut_ref512_matte.png");
    let model = common::model();
    let s = |p: &std::path::Path| p.display().to_string();
    let mut args: Vec<String> = vec![
        s(&photo),
        "--background".into(),
        s(&bg),
        "--model".into(),
        s(&model),
        "--out-dir".into(),
        s(dir),
        "--device".into(),
        "cpu".into(),
        "--reference".into(),
        s(&reference),
    ];
    let (ok, text) = matte_image(&args);
    assert!(ok, "{text}");
    assert!(
        text.contains("against") && text.contains("max |diff|"),
        "{text}"
    );
    for name in ["matte", "cutout", "composite"] {
        let img = image::open(dir.join(format!("astronaut_{name}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (512, 512));
    }
    // A reference of another photo's size is refused, naming it.
    let last = args.len() - 1;
    args[last] = common::fixture("reference/astronaut_crop_ref512_matte.png")
        .display()
        .to_string();
    let (ok, text) = matte_image(&args);
    assert!(
        !ok && text.contains("astronaut_crop_ref512_matte.png is (500, 360)"),
        "{text}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let photo = common::prepared("data/images/astronaut.png");
    let p = photo.to_str().unwrap();
    let (ok, text) = matte_image(&[p, "--background", p, "--size", "12x"]);
    assert!(
        !ok && text.contains("each side must be a number from 1 to 8192"),
        "{text}"
    );
    let (ok, text) = matte_image(&["/nonexistent.png", "--background", p]);
    assert!(
        !ok && text.contains("input /nonexistent.png: cannot be read as an image"),
        "{text}"
    );
    let (ok, text) = matte_image(&[p, "--background", p, "--device", "tpu"]);
    assert!(!ok && text.contains("unknown device"), "{text}");
}
