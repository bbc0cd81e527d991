//! The caching CPU allocator: once an engine runs on a CPU, large tensors freed by a
//! forward pass are held and handed to the next one, the mattes stay the same, and
//! trimming gives the memory back. (One test: the cache is process-wide.)

mod common;

use modnetmatte::{DeviceRequest, Engine, EngineConfig, Frame, PixelFormat, host::cpu_cache};

#[test]
fn an_engine_on_a_cpu_reuses_its_activations_and_the_matte_is_unchanged() {
    let mut config = EngineConfig::new(common::model());
    config.device = DeviceRequest::Cpu;
    config.ref_size = 256;
    config.warmup_frame = None;
    let engine = Engine::new(config).unwrap();
    let (w, h) = (384u32, 256u32);
    let rgb = common::photo_rgb(w, h);
    let frame = Frame::packed(&rgb, w, h, PixelFormat::Rgb);
    let (first, _) = engine.matte(&frame).unwrap();
    let held = cpu_cache::cached_bytes();
    // A 384x256 pass at ref 256 makes activations of 1 MiB and more (32 channels at
    // half resolution alone: 3 MB).
    assert!(held >= 8 << 20, "only {held} bytes held after a pass");
    for _ in 0..3 {
        let (again, _) = engine.matte(&frame).unwrap();
        assert_eq!(
            again.alpha_u8(),
            first.alpha_u8(),
            "reused memory changed the matte"
        );
    }
    // The same shapes again: served from what was held, nothing new kept.
    assert_eq!(cpu_cache::cached_bytes(), held);
    assert_eq!(cpu_cache::trim(), held);
    assert_eq!(cpu_cache::cached_bytes(), 0);
    let (after, _) = engine.matte(&frame).unwrap();
    assert_eq!(after.alpha_u8(), first.alpha_u8());
}
