//! `precision`: fp16 is for CUDA; on a CPU the engine says so and runs fp32, and the
//! model refuses fp16 on a CPU with the reason. bf16 is the CPU variant: `auto` takes
//! it where the CPU has AMX or AVX512-BF16 and a current `_bf16.pt` exists; its matte
//! stays within the bounds against fp32 on every photo; a stale one is ignored.

mod common;

use modnetmatte::net::model::Model;
use modnetmatte::{DeviceRequest, Engine, EngineConfig, Error, Frame, PixelFormat, Precision};

fn engine(precision: Precision) -> Engine {
    let mut config = EngineConfig::new(common::model());
    config.device = DeviceRequest::Cpu;
    config.precision = precision;
    config.ref_size = 128;
    config.warmup_frame = None;
    Engine::new(config).expect("engine loads")
}

#[test]
fn fp16_on_a_cpu_falls_back_to_fp32_and_says_so() {
    let (e32, e16) = (engine(Precision::Fp32), engine(Precision::Fp16));
    assert_eq!(e16.precision(), Precision::Fp32);
    assert!(
        e16.device_note().contains("fp16 needs CUDA"),
        "{}",
        e16.device_note()
    );
    assert!(
        e32.device_note().contains(", fp32"),
        "{}",
        e32.device_note()
    );
    let (w, h) = (128u32, 96u32);
    let rgb = common::photo_rgb(w, h);
    let frame = Frame::packed(&rgb, w, h, PixelFormat::Rgb);
    let (a, _) = e32.matte(&frame).unwrap();
    let (b, _) = e16.matte(&frame).unwrap();
    assert_eq!(a.alpha_u8(), b.alpha_u8());
}

#[test]
fn the_model_refuses_fp16_on_a_cpu() {
    let err = Model::load_as(&common::model(), tch::Device::Cpu, Precision::Fp16).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("fp16") && msg.contains("CUDA"), "{msg}");
}

#[test]
fn precision_parses() {
    assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::Fp16);
    assert_eq!("FP32".parse::<Precision>().unwrap(), Precision::Fp32);
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert_eq!("auto".parse::<Precision>().unwrap(), Precision::Auto);
    let e = "int8".parse::<Precision>().unwrap_err().to_string();
    assert!(e.contains("int8") && e.contains("bf16"), "{e}");
}

#[test]
fn the_fp16_variant_stays_within_4_of_255_of_the_reference() {
    // The half-precision file precision=fp16 loads on CUDA, run here on libtorch's CPU
    // half kernels: same contract (float32 in and out), the real photo within 4/255
    // of onnxruntime at ref 512 (scripts/gpu_check.sh measures it on a GPU).
    let variant = modnetmatte::net::model::fp16_variant(&common::model());
    assert!(
        variant.ends_with("modnet_photographic_fp16.pt"),
        "{}",
        variant.display()
    );
    let model = Model::load(&variant, tch::Device::Cpu).expect("the fp16 variant loads");
    let input = image::open(common::fixture("reference/astronaut_ref512_input.png"))
        .unwrap()
        .to_rgb8();
    let reference = image::open(common::fixture("reference/astronaut_ref512_matte.png"))
        .unwrap()
        .to_luma16();
    let (w, h) = input.dimensions();
    let frame = Frame::packed(input.as_raw(), w, h, PixelFormat::Rgb);
    let x = modnetmatte::net::preprocess::to_input(
        &frame,
        512,
        tch::Device::Cpu,
        modnetmatte::net::preprocess::Layout::Nchw,
    )
    .unwrap();
    let out = model.forward(&x).unwrap();
    assert_eq!(out.kind(), tch::Kind::Float);
    let matte = modnetmatte::net::postprocess::to_matte(&out, w, h).unwrap();
    let max = matte
        .alpha
        .iter()
        .zip(reference.as_raw())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b) / 65535.0).abs())
        .fold(0f64, f64::max);
    println!("fp16 variant: max |diff| {:.3}/255", max * 255.0);
    assert!(max <= 4.0 / 255.0, "max |diff| {:.2}/255", max * 255.0);
    assert!(
        max > 0.0,
        "identical to fp32 to the last bit: not the half variant?"
    );
}

#[test]
fn the_fp16_variant_is_found_beside_the_model_or_its_link_target() {
    use modnetmatte::net::model::fp16_variant;
    let dir = tempfile::tempdir().unwrap();
    let (real, linked) = (dir.path().join("real"), dir.path().join("linked"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::write(real.join("m.pt"), b"x").unwrap();
    // Not there yet: the answer is the sibling path, so the error can name it.
    assert_eq!(fp16_variant(&real.join("m.pt")), real.join("m_fp16.pt"));
    std::fs::write(real.join("m_fp16.pt"), b"x").unwrap();
    assert_eq!(fp16_variant(&real.join("m.pt")), real.join("m_fp16.pt"));
    // A link in another folder (the data directory) leads to the real file's folder.
    std::os::unix::fs::symlink(real.join("m.pt"), linked.join("m.pt")).unwrap();
    assert_eq!(fp16_variant(&linked.join("m.pt")), real.join("m_fp16.pt"));
    // A variant is its own variant.
    assert_eq!(
        fp16_variant(&real.join("m_fp16.pt")),
        real.join("m_fp16.pt")
    );
}

#[test]
fn auto_picks_bf16_by_the_cpus_flags_and_the_variant() {
    use modnetmatte::host::cpu::CpuFlags;
    use modnetmatte::net::model::choose;
    let spr = CpuFlags::parse("flags : avx512f avx512_bf16 amx_bf16 amx_tile\n").bf16();
    let zen = CpuFlags::parse("flags : avx2 fma\n").bf16();
    let (p, why) = choose(Precision::Auto, false, spr, true);
    assert_eq!(p, Precision::Bf16);
    assert!(why.contains("AMX-BF16"), "{why}");
    let (p, why) = choose(Precision::Auto, false, zen, true);
    assert_eq!(p, Precision::Fp32);
    assert!(why.contains("neither AMX nor AVX512-BF16"), "{why}");
    let (p, why) = choose(Precision::Auto, false, spr, false);
    assert_eq!(p, Precision::Fp32);
    assert!(why.contains("_bf16.pt"), "{why}");
    // Forced bf16 runs without the instructions, and says it is slow.
    let (p, why) = choose(Precision::Bf16, false, zen, true);
    assert_eq!(p, Precision::Bf16);
    assert!(why.contains("slower"), "{why}");
    // CUDA: auto and bf16 are fp32, fp16 stays.
    assert_eq!(choose(Precision::Auto, true, spr, true).0, Precision::Fp32);
    assert_eq!(choose(Precision::Bf16, true, spr, true).0, Precision::Fp32);
    assert_eq!(
        choose(Precision::Fp16, true, None, false).0,
        Precision::Fp16
    );
    assert_eq!(choose(Precision::Fp16, false, spr, true).0, Precision::Fp32);
}

/// The mean, p99 and max |difference| (in 1/255) and the share past 16/255.
fn compare(a: &[f32], b: &[f32]) -> (f64, f64, f64, f64) {
    let mut d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()) * 255.0)
        .collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let far = d.iter().filter(|&&v| v > 16.0).count() as f64 / d.len() as f64;
    d.sort_by(f64::total_cmp);
    (mean, d[d.len() * 99 / 100], d[d.len() - 1], far)
}

#[test]
fn the_bf16_variant_stays_within_its_bounds_on_every_photo() {
    let variant = modnetmatte::net::model::bf16_variant(&common::model());
    assert!(
        variant.exists(),
        "{} is missing: run scripts/setup.sh",
        variant.display()
    );
    let fp32 = Model::load(&common::model(), tch::Device::Cpu).unwrap();
    let bf16 = Model::load_as(&common::model(), tch::Device::Cpu, Precision::Bf16)
        .expect("the bf16 variant loads");
    assert!(bf16.path().ends_with("modnet_photographic_bf16.pt") && bf16.channels_last());
    let photos = common::root().join("data/images");
    for name in ["astronaut.png", "coffee.png", "grass.png", "rocket.jpg"] {
        let rgb = image::open(photos.join(name)).unwrap().to_rgb8();
        let (w, h) = rgb.dimensions();
        let frame = Frame::packed(rgb.as_raw(), w, h, PixelFormat::Rgb);
        let matte = |m: &Model, layout| {
            let x = modnetmatte::net::preprocess::to_input(&frame, 512, tch::Device::Cpu, layout)
                .unwrap();
            modnetmatte::net::postprocess::to_matte(&m.forward(&x).unwrap(), w, h)
                .unwrap()
                .alpha
        };
        use modnetmatte::net::preprocess::Layout;
        let (a, b) = (
            matte(&fp32, Layout::Nchw),
            matte(&bf16, Layout::ChannelsLast),
        );
        let (mean, p99, max, far) = compare(&a, &b);
        println!(
            "{name}: mean {mean:.3}/255, p99 {p99:.2}/255, max {max:.1}/255, {:.4}% past 16/255",
            far * 100.0
        );
        assert!(
            mean <= 0.5 && p99 <= 4.0 && far <= 0.001,
            "{name}: mean {mean:.3} p99 {p99:.2} far {far}"
        );
    }
}

#[test]
fn a_stale_bf16_variant_is_ignored_and_forced_bf16_then_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.pt");
    let variant = tmp.path().join("m_bf16.pt");
    std::fs::copy(common::model(), &model).unwrap();
    std::fs::copy(
        modnetmatte::net::model::bf16_variant(&common::model()),
        &variant,
    )
    .unwrap();
    assert_eq!(
        modnetmatte::net::model::current_bf16_variant(&model),
        Some(variant.clone())
    );
    // The variant predates the model: left from replaced weights.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&variant)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(modnetmatte::net::model::current_bf16_variant(&model), None);
    let err = Model::load_as(&model, tch::Device::Cpu, Precision::Bf16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m_bf16.pt") && err.contains("--bf16"), "{err}");
    let mut config = EngineConfig::new(&model);
    config.device = DeviceRequest::Cpu;
    config.precision = Precision::Auto;
    config.ref_size = 128;
    config.warmup_frame = None;
    let e = Engine::new(config).unwrap();
    assert_eq!(e.precision(), Precision::Fp32, "{}", e.device_note());
    assert!(
        e.device_note().contains("auto: fp32"),
        "{}",
        e.device_note()
    );
}
