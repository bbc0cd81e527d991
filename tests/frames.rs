//! The size rule on a shared table, and frames of awkward sizes and layouts end to end.

mod common;

use modnetmatte::{Engine, EngineConfig, Frame, PixelFormat, inference_size};

#[test]
fn size_rule_matches_the_shared_table() {
    // The same table is checked against tools/modnet/reference.py by pytest.
    let table = std::fs::read_to_string(common::prepared("tests/data/size_rule.tsv")).unwrap();
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let v: Vec<u32> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let got = inference_size(v[0], v[1], v[2]);
        assert_eq!(got, (v[3], v[4]), "{}x{} at ref {}", v[0], v[1], v[2]);
        assert!(got.0.is_multiple_of(32) && got.1.is_multiple_of(32) && got.0 >= 32 && got.1 >= 32);
        rows += 1;
    }
    assert!(rows >= 20, "only {rows} rows");
}

#[test]
fn size_rule_holds_for_every_size() {
    // Invariants over a sweep: multiples of 32, at least 32, never above 4 x ref.
    for ref_size in [32, 256, 512, 1024] {
        for w in (1..5000).step_by(37) {
            for h in (1..5000).step_by(41) {
                let (rw, rh) = inference_size(w, h, ref_size);
                assert!(
                    rw.is_multiple_of(32) && rh.is_multiple_of(32),
                    "{w}x{h}@{ref_size}"
                );
                assert!(rw >= 32 && rh >= 32, "{w}x{h}@{ref_size}");
                assert!(
                    rw.max(rh) <= 4 * ref_size,
                    "{w}x{h}@{ref_size} -> {rw}x{rh}"
                );
            }
        }
    }
}

#[test]
fn awkward_frames_give_a_matte_of_their_own_size() {
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    config.ref_size = 256;
    let engine = Engine::new(config).unwrap();
    let photo = image::open(common::prepared("data/images/astronaut.png")).unwrap();
    for (w, h) in [(1, 1), (2, 1), (33, 17), (17, 33), (641, 361), (1000, 10)] {
        let rgba = photo
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_rgba8();
        let (matte, t) = engine
            .matte(&Frame::packed(rgba.as_raw(), w, h, PixelFormat::Rgba))
            .unwrap();
        assert_eq!((matte.width, matte.height), (w, h));
        assert_eq!(matte.alpha.len(), (w * h) as usize);
        assert_eq!(matte.alpha_u8().len(), (w * h) as usize);
        assert!(matte.alpha.iter().all(|a| (0.0..=1.0).contains(a)));
        assert!(t.inference > std::time::Duration::ZERO);
    }
}

#[test]
fn padded_rows_and_bgr_give_the_same_matte() {
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    config.ref_size = 256;
    let engine = Engine::new(config).unwrap();
    let photo = image::open(common::prepared("data/images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let (w, h) = photo.dimensions();
    let (reference, _) = engine
        .matte(&Frame::packed(photo.as_raw(), w, h, PixelFormat::Rgb))
        .unwrap();

    // BGRx with 64 bytes of padding after every row, as a GStreamer buffer may have.
    let stride = w as usize * 4 + 64;
    let mut bgrx = vec![0xAAu8; stride * h as usize];
    for (y, row) in photo.rows().enumerate() {
        for (x, p) in row.enumerate() {
            let o = y * stride + x * 4;
            bgrx[o..o + 3].copy_from_slice(&[p[2], p[1], p[0]]);
        }
    }
    let mut frame = Frame::packed(&bgrx, w, h, PixelFormat::Bgrx);
    frame.planes[0].stride = stride;
    let (matte, _) = engine.matte(&frame).unwrap();
    assert_eq!(matte.alpha_u8(), reference.alpha_u8());
}

#[test]
fn a_frame_too_short_for_its_size_is_an_error() {
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    let engine = Engine::new(config).unwrap();
    let data = vec![0u8; 100];
    let e = engine
        .matte(&Frame::packed(&data, 10, 10, PixelFormat::Rgb))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "frame: plane 0 of 10x10 Rgb: 100 bytes with stride 30 (needs 300)"
    );
}
