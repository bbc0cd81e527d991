//! The CPU variant (`export.py --cpu`: IBNorm's BatchNorm folded, channels-last end to
//! end): a float32 model on a CPU loads it from beside the model file when it is
//! current, feeds it channels-last input, and gets the plain model's matte.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use modnetmatte::net::model::{Model, cpu_variant, to_channels_last};
use modnetmatte::{DeviceRequest, Engine, EngineConfig, Frame, PixelFormat, Precision};
use tch::{Device, Kind, Tensor};

/// A folder of its own (removed when the first value is dropped) with copies of the
/// plain model and (optionally) its CPU variant.
fn folder(name: &str, with_variant: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("cpu-variant-{name}-"))
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let plain = dir.join("m.pt");
    std::fs::copy(common::model(), &plain).unwrap();
    if with_variant {
        std::fs::copy(cpu_variant(&common::model()), dir.join("m_cpu.pt")).unwrap();
    }
    (tmp, plain)
}

fn photo_input(side: i64) -> Tensor {
    let (w, h) = (side as u32 * 3 / 2, side as u32);
    let rgb = common::photo_rgb(w, h);
    Tensor::from_slice(&rgb)
        .view([h as i64, w as i64, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 127.5
        - 1.0
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn setup_writes_a_current_cpu_variant_and_a_cpu_loads_it() {
    let model = Model::load(&common::model(), Device::Cpu).unwrap();
    assert_eq!(model.path(), cpu_variant(&common::model()));
    assert!(model.channels_last());
}

#[test]
fn the_cpu_variant_gives_the_plain_models_matte() {
    let (_tmp, plain) = folder("same", false);
    let plain = Model::load(&plain, Device::Cpu).unwrap();
    assert!(
        !plain.channels_last(),
        "no variant beside it: the plain file"
    );
    let cpu = Model::load(&common::model(), Device::Cpu).unwrap();
    let x = photo_input(256);
    let (a, b) = (plain.forward(&x).unwrap(), cpu.forward(&x).unwrap());
    let d = max_diff(&a, &b);
    // Each file is within 1e-4 of onnxruntime (the exporter's limit), so within 2e-4
    // of each other; the photo's matte is not flat.
    assert!(d <= 2e-4, "max |diff| {d}");
    assert!(a.std(false).double_value(&[]) > 0.1);
    // Any layout in, the same matte out (an NCHW input is converted once).
    let nchw = cpu.forward(&x.contiguous()).unwrap();
    assert_eq!(max_diff(&nchw, &b), 0.0);
}

#[test]
fn a_cpu_variant_older_than_the_model_is_ignored() {
    let (tmp, plain) = folder("stale", true);
    let dir = tmp.path();
    let set_age = |p: &Path, age_s: u64| {
        let t = SystemTime::now() - Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    set_age(&plain, 10);
    set_age(&dir.join("m_cpu.pt"), 20);
    let m = Model::load(&plain, Device::Cpu).unwrap();
    assert_eq!(
        m.path(),
        plain,
        "weights replaced after the variant was made"
    );
    assert!(!m.channels_last());
    set_age(&dir.join("m_cpu.pt"), 5);
    let m = Model::load(&plain, Device::Cpu).unwrap();
    assert_eq!(m.path(), dir.join("m_cpu.pt"));
    assert!(m.channels_last());
    // Named directly, the variant is its own.
    assert_eq!(cpu_variant(&dir.join("m_cpu.pt")), dir.join("m_cpu.pt"));
}

#[test]
fn the_engine_names_the_cpu_variant_and_its_matte_matches_the_plain_one() {
    let (_tmp, plain) = folder("engine", false);
    let engine = |path: &Path| {
        let mut config = EngineConfig::new(path);
        config.device = DeviceRequest::Cpu;
        config.precision = Precision::Fp32;
        config.ref_size = 128;
        config.warmup_frame = None;
        Engine::new(config).unwrap()
    };
    let (e_plain, e_cpu) = (engine(&plain), engine(&common::model()));
    assert!(
        e_cpu.device_note().contains("CPU variant") && e_cpu.device_note().contains("_cpu.pt"),
        "{}",
        e_cpu.device_note()
    );
    assert!(!e_plain.device_note().contains("CPU variant"));
    let (w, h) = (192u32, 128u32);
    let rgb = common::photo_rgb(w, h);
    let frame = Frame::packed(&rgb, w, h, PixelFormat::Rgb);
    let (a, _) = e_plain.matte(&frame).unwrap();
    let (b, _) = e_cpu.matte(&frame).unwrap();
    let worst = a
        .alpha_u8()
        .iter()
        .zip(b.alpha_u8().iter())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap();
    assert!(worst <= 1, "8-bit mattes differ by {worst}");
}

#[test]
fn channels_last_keeps_values_and_sets_nhwc_strides() {
    let x = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
    let y = to_channels_last(&x).unwrap();
    assert_eq!(y.size(), [2, 3, 4, 5]);
    assert_eq!(y.stride(), [60, 1, 15, 3]);
    assert_eq!(max_diff(&x, &y), 0.0);
    // Already channels-last: the same storage, no copy.
    let z = to_channels_last(&y).unwrap();
    assert_eq!(z.data_ptr(), y.data_ptr());
}
