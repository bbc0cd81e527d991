//! `precision`: fp16 is for CUDA; on a CPU the engine says so and runs fp32, and the
//! model refuses fp16 on a CPU with the reason.

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
    let e = "bf16".parse::<Precision>().unwrap_err().to_string();
    assert!(e.contains("bf16") && e.contains("fp16"), "{e}");
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
