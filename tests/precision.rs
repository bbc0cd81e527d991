//! `precision`: fp16 is for CUDA; on a CPU the engine says so and runs fp32, and the
//! model refuses fp16 on a CPU with the reason.

mod common;

use modnetmatte::model::Model;
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
    assert!(e32.device_note().ends_with("fp32"), "{}", e32.device_note());
    let (w, h) = (128u32, 96u32);
    let rgb = image::open(common::prepared("data/images/astronaut.png"))
        .unwrap()
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw();
    let frame = Frame::packed(&rgb, w, h, PixelFormat::Rgb);
    let (a, _) = e32.matte(&frame).unwrap();
    let (b, _) = e16.matte(&frame).unwrap();
    assert_eq!(a.alpha_u8, b.alpha_u8);
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
