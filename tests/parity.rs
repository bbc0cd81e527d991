//! The engine's matte of real photos against onnxruntime on the original ONNX file,
//! computed with the reference preprocessing by tools/modnet/fixtures.py.

mod common;

use modnetmatte::{Engine, EngineConfig, Frame, PixelFormat};

struct Diff {
    max: f64,
    mean: f64,
}

fn diff(ours: &[f32], reference: &[u16]) -> Diff {
    assert_eq!(ours.len(), reference.len());
    let mut max = 0f64;
    let mut sum = 0f64;
    for (&a, &b) in ours.iter().zip(reference) {
        let d = (a as f64 - b as f64 / 65535.0).abs();
        max = max.max(d);
        sum += d;
    }
    Diff {
        max,
        mean: sum / ours.len() as f64,
    }
}

fn check(name: &str, ref_size: u32) {
    let input = image::open(common::fixture(&format!("reference/{name}_input.png")))
        .expect("reference input decodes")
        .to_rgb8();
    let reference = image::open(common::fixture(&format!("reference/{name}_matte.png")))
        .expect("reference matte decodes")
        .to_luma16();
    let (w, h) = input.dimensions();
    assert_eq!(reference.dimensions(), (w, h));

    let mut config = EngineConfig::new(common::model());
    config.ref_size = ref_size;
    config.warmup_frame = None;
    let engine = Engine::new(config).expect("engine loads the exported model");
    let (matte, _) = engine
        .matte(&Frame::packed(input.as_raw(), w, h, PixelFormat::Rgb))
        .expect("matte");
    assert_eq!((matte.width, matte.height), (w, h));

    let d = diff(&matte.alpha, reference.as_raw());
    println!(
        "{name}: max |diff| {:.5} ({:.3}/255), mean {:.2e} ({:.4}/255)",
        d.max,
        d.max * 255.0,
        d.mean,
        d.mean * 255.0
    );
    assert!(d.max <= 2.0 / 255.0, "{name}: max |diff| {} > 2/255", d.max);
    assert!(
        d.mean <= 0.2 / 255.0,
        "{name}: mean |diff| {} > 0.2/255",
        d.mean
    );

    // The 8-bit alpha is the float alpha rounded, so it inherits the bound (+ rounding).
    let d8 = matte
        .alpha_u8()
        .iter()
        .zip(reference.as_raw())
        .map(|(&a, &b)| (a as f64 / 255.0 - b as f64 / 65535.0).abs())
        .fold(0f64, f64::max);
    assert!(d8 <= 2.5 / 255.0, "{name}: 8-bit alpha max |diff| {d8}");

    // A real portrait: a clear foreground and a clear background, not a flat matte.
    let fg = matte.alpha.iter().filter(|&&a| a > 0.9).count() as f64 / matte.alpha.len() as f64;
    let bg = matte.alpha.iter().filter(|&&a| a < 0.1).count() as f64 / matte.alpha.len() as f64;
    assert!(
        fg > 0.2 && bg > 0.2,
        "{name}: foreground {fg:.2}, background {bg:.2}"
    );
}

#[test]
fn astronaut_at_ref_512_no_resize() {
    check("astronaut_ref512", 512);
}

#[test]
fn astronaut_at_ref_256_area_downscale() {
    check("astronaut_ref256", 256);
}

#[test]
fn cropped_astronaut_bilinear_upscale() {
    check("astronaut_crop_ref512", 512);
}
