//! The element in-process (gstreamer-check Harness, plugin registered statically).

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

fn element(props: &[(&str, glib::Value)]) -> gst::Element {
    init();
    let e = gst::ElementFactory::make("modnetmatte")
        .property("model", model())
        .property("ref-size", 64u32)
        // Synchronous: each push gives its output at once (depths: own test below).
        .property("max-in-flight", 1u32)
        // The harness answers the latency query as live: auto would be realtime.
        .property_from_str("pacing", "every-frame")
        .build()
        .expect("modnetmatte exists");
    for (name, value) in props {
        e.set_property_from_value(name, value);
    }
    e
}

use gst::glib;

fn harness(e: gst::Element) -> Harness {
    Harness::with_element(&e, Some("sink"), Some("src"))
}

fn info(format: VideoFormat, w: u32, h: u32) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
}

/// Pushes `n` photo frames with timestamps and returns the output buffers and caps.
fn run(
    h: &mut Harness,
    info: &gst_video::VideoInfo,
    n: u64,
) -> (Vec<gst::Buffer>, gst_video::VideoInfo) {
    h.set_src_caps(info.to_caps().unwrap());
    let rgb = photo_rgb(info.width(), info.height());
    let mut out = Vec::new();
    for i in 0..n {
        let mut b = buffer_from_rgb(info, &rgb);
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(33 * i + 1000));
            b.set_duration(gst::ClockTime::from_mseconds(33));
        }
        assert_eq!(h.push(b), Ok(gst::FlowSuccess::Ok));
        out.push(h.pull().expect("an output buffer for every input"));
    }
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    (out, gst_video::VideoInfo::from_caps(&caps).unwrap())
}

fn expected_output(output: &str, f: VideoFormat) -> VideoFormat {
    match output {
        "composite" => f,
        "matte" => VideoFormat::Gray8,
        // Spelled out here, not taken from the element: this is the oracle.
        _ => match f {
            VideoFormat::Bgr | VideoFormat::Bgrx | VideoFormat::Bgra => VideoFormat::Bgra,
            VideoFormat::Xrgb | VideoFormat::Argb => VideoFormat::Argb,
            VideoFormat::Xbgr | VideoFormat::Abgr => VideoFormat::Abgr,
            _ => VideoFormat::Rgba,
        },
    }
}

#[test]
fn every_sink_format_and_output_mode_keeps_count_size_and_timestamps() {
    for output in ["composite", "alpha", "matte"] {
        for format in SINK_FORMATS {
            let e = element(&[]);
            e.set_property_from_str("output", output);
            let mut h = harness(e);
            let i = info(format, 64, 48);
            let (bufs, out_info) = run(&mut h, &i, 3);
            assert_eq!(
                out_info.format(),
                expected_output(output, format),
                "{output} {format:?}"
            );
            assert_eq!((out_info.width(), out_info.height()), (64, 48));
            for (n, b) in bufs.iter().enumerate() {
                assert_eq!(
                    b.pts(),
                    Some(gst::ClockTime::from_mseconds(33 * n as u64 + 1000))
                );
                assert_eq!(b.duration(), Some(gst::ClockTime::from_mseconds(33)));
                assert_eq!(b.size(), out_info.size());
            }
        }
    }
}

#[test]
fn awkward_and_large_sizes() {
    for (w, h_) in [(1, 1), (33, 17), (641, 361), (1920, 1080)] {
        for format in [VideoFormat::I420, VideoFormat::Yuy2, VideoFormat::Bgrx] {
            let mut h = harness(element(&[]));
            let (bufs, out_info) = run(&mut h, &info(format, w, h_), 1);
            assert_eq!(
                (out_info.width(), out_info.height(), out_info.format()),
                (w, h_, format)
            );
            assert_eq!(bufs.len(), 1);
        }
    }
}

#[test]
fn the_person_stays_and_the_background_is_replaced_in_every_format() {
    let blue = [0.0, 0.0, 255.0];
    for format in SINK_FORMATS {
        let e = element(&[
            ("ref-size", 512u32.to_value()),
            ("background-color", 0xff00_00ffu32.to_value()),
        ]);
        e.set_property_from_str("background", "color");
        let mut h = harness(e);
        let i = info(format, 512, 512);
        let (bufs, out_info) = run(&mut h, &i, 1);
        let (rgb, _) = decode(&out_info, &bufs[0]);
        let original = photo_rgb(512, 512);
        // ref-size 512: what the model was trained at (at 256 its matte of this photo
        // has holes, whatever the input format).
        let tol = if i.is_yuv() { 10.0 } else { 4.0 };
        for (fx, fy) in PERSON {
            let d = distance(
                mean_at(&rgb, 512, 512, fx, fy),
                mean_at(&original, 512, 512, fx, fy),
            );
            assert!(d <= tol, "{format:?}: person at ({fx},{fy}) changed by {d}");
        }
        for (fx, fy) in BACKGROUND {
            let d = distance(mean_at(&rgb, 512, 512, fx, fy), blue);
            assert!(
                d <= tol,
                "{format:?}: background at ({fx},{fy}) is {d} from blue"
            );
        }
    }
}

#[test]
fn blur_and_image_backgrounds_replace_the_background() {
    let original = photo_rgb(512, 512);
    let coffee = image::open(prepared("data/images/coffee.png"))
        .unwrap()
        .resize_to_fill(512, 512, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw();
    for background in ["blur", "image"] {
        let e = element(&[
            ("ref-size", 512u32.to_value()),
            ("blur-radius", 24u32.to_value()),
            (
                "background-image",
                prepared("data/images/coffee.png")
                    .display()
                    .to_string()
                    .to_value(),
            ),
        ]);
        e.set_property_from_str("background", background);
        let mut h = harness(e);
        let (bufs, out_info) = run(&mut h, &info(VideoFormat::Rgb, 512, 512), 1);
        let (rgb, _) = decode(&out_info, &bufs[0]);
        for (fx, fy) in PERSON {
            let d = distance(
                mean_at(&rgb, 512, 512, fx, fy),
                mean_at(&original, 512, 512, fx, fy),
            );
            assert!(d <= 4.0, "{background}: person changed by {d}");
        }
        if background == "image" {
            for (fx, fy) in BACKGROUND {
                let d = distance(
                    mean_at(&rgb, 512, 512, fx, fy),
                    mean_at(&coffee, 512, 512, fx, fy),
                );
                assert!(
                    d <= 4.0,
                    "image: background at ({fx},{fy}) is {d} from the picture"
                );
            }
        } else {
            // Blurred: the background differs from the sharp photo, but not by much in
            // colour (it is the same room); the frame as a whole changed.
            assert_ne!(rgb, original);
        }
    }
}

/// The element's matte of the astronaut at ref-size 512 in `precision`, against
/// onnxruntime's float32 one: the mean, p99 and max |diff| in 1/255.
fn parity(precision: &str) -> (f64, f64, f64) {
    let e = element(&[("ref-size", 512u32.to_value())]);
    e.set_property_from_str("output", "matte");
    e.set_property_from_str("precision", precision);
    let mut h = harness(e);
    let i = info(VideoFormat::Rgb, 512, 512);
    h.set_src_caps(i.to_caps().unwrap());
    let input = image::open(prepared("data/images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let b = buffer_from_rgb(&i, input.as_raw());
    h.push(b).unwrap();
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let out_info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let (_, gray) = decode(&out_info, &out);
    let gray = gray.unwrap();
    let reference = image::open(prepared(
        "data/fixtures/reference/astronaut_ref512_matte.png",
    ))
    .unwrap()
    .to_luma16();
    let mut d: Vec<f64> = gray
        .iter()
        .zip(reference.as_raw())
        .map(|(&a, &b)| (a as f64 - b as f64 / 257.0).abs())
        .collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    d.sort_by(f64::total_cmp);
    let (p99, max) = (d[d.len() * 99 / 100], d[d.len() - 1]);
    println!(
        "element {precision} matte vs onnxruntime: mean {mean:.3}/255, p99 {p99:.2}/255, max {max:.2}/255"
    );
    (mean, p99, max)
}

#[test]
fn matte_output_matches_onnxruntime() {
    let (_, _, max) = parity("fp32");
    assert!(max <= 2.0, "max |diff| {max}/255");
}

#[test]
fn bf16_matte_output_stays_within_its_bounds_of_onnxruntime() {
    // The variant's bounds against float32 (mean 0.5/255, p99 4/255), plus half a
    // step of the GRAY8 output's rounding; runs emulated on a CPU without bf16.
    let (mean, p99, _) = parity("bf16");
    assert!(mean <= 1.0 && p99 <= 4.5, "mean {mean}/255, p99 {p99}/255");
}

#[test]
fn alpha_output_carries_the_matte_and_the_input_colours() {
    let e = element(&[("ref-size", 256u32.to_value())]);
    e.set_property_from_str("output", "alpha");
    let mut h = harness(e);
    let (bufs, out_info) = run(&mut h, &info(VideoFormat::Bgrx, 256, 256), 1);
    assert_eq!(out_info.format(), VideoFormat::Bgra);
    let (rgb, alpha) = decode(&out_info, &bufs[0]);
    assert_eq!(rgb, photo_rgb(256, 256));
    let alpha = alpha.unwrap();
    let at = |fx: f64, fy: f64| alpha[(fy * 256.0) as usize * 256 + (fx * 256.0) as usize];
    assert!(PERSON.iter().all(|&(x, y)| at(x, y) > 240));
    assert!(BACKGROUND.iter().all(|&(x, y)| at(x, y) < 15));
}

#[test]
fn threshold_makes_a_hard_matte_and_applies_live() {
    let e = element(&[("ref-size", 256u32.to_value())]);
    e.set_property_from_str("output", "matte");
    let mut h = harness(e.clone());
    let i = info(VideoFormat::Rgb, 256, 256);
    let (soft, out_info) = run(&mut h, &i, 1);
    let (_, soft) = decode(&out_info, &soft[0]);
    assert!(
        soft.unwrap().iter().any(|&a| a > 0 && a < 255),
        "a soft matte has edges"
    );
    e.set_property("threshold", 0.5f64);
    let (hard, _) = run(&mut h, &i, 1);
    let (_, hard) = decode(&out_info, &hard[0]);
    assert!(hard.unwrap().iter().all(|&a| a == 0 || a == 255));
}

#[test]
fn background_colour_changes_take_effect_on_the_next_frame() {
    let e = element(&[("background-color", 0xff00_00ffu32.to_value())]);
    e.set_property_from_str("background", "color");
    let mut h = harness(e.clone());
    let i = info(VideoFormat::Rgb, 64, 64);
    let (a, out_info) = run(&mut h, &i, 1);
    e.set_property("background-color", 0xffff_0000u32);
    let (b, _) = run(&mut h, &i, 1);
    let corner = |buf: &gst::Buffer| mean_at(&decode(&out_info, buf).0, 64, 64, 0.04, 0.04);
    assert!(distance(corner(&a[0]), [0.0, 0.0, 255.0]) < 20.0);
    assert!(distance(corner(&b[0]), [255.0, 0.0, 0.0]) < 20.0);
}

#[test]
fn caps_renegotiation_mid_stream() {
    let mut h = harness(element(&[]));
    let (_, a) = run(&mut h, &info(VideoFormat::Rgb, 64, 48), 2);
    assert_eq!((a.width(), a.format()), (64, VideoFormat::Rgb));
    let (_, b) = run(&mut h, &info(VideoFormat::I420, 81, 35), 2);
    assert_eq!(
        (b.width(), b.height(), b.format()),
        (81, 35, VideoFormat::I420)
    );
    let (_, c) = run(&mut h, &info(VideoFormat::Nv12, 32, 32), 1);
    assert_eq!(c.format(), VideoFormat::Nv12);
}

#[test]
fn flush_and_eos() {
    let e = element(&[]);
    let mut h = harness(e.clone());
    let i = info(VideoFormat::Rgb, 64, 48);
    run(&mut h, &i, 2);
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let (bufs, _) = run(&mut h, &i, 2);
    assert_eq!(bufs.len(), 2);
    assert!(h.push_event(gst::event::Eos::new()));
    let mut saw_eos = false;
    while let Some(ev) = h.try_pull_event() {
        saw_eos |= ev.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos, "EOS goes downstream");
    let stats = e.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames").unwrap(), 4);
    assert!(stats.get::<f64>("mean-inference-ms").unwrap() > 0.0);
    assert!(
        stats.get::<f64>("mean-total-ms").unwrap()
            >= stats.get::<f64>("mean-inference-ms").unwrap()
    );
}

/// Sets up `appsrc ! modnetmatte ! fakesink`, goes to PAUSED and returns the error
/// posted on the bus.
fn start_error(configure: impl FnOnce(&gst::Element)) -> String {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("appsrc").build().unwrap();
    let e = gst::ElementFactory::make("modnetmatte").build().unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &e, &sink]).unwrap();
    gst::Element::link_many([&src, &e, &sink]).unwrap();
    configure(&e);
    assert!(
        pipeline.set_state(gst::State::Paused).is_err(),
        "the state change must fail"
    );
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error on the bus");
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(err) => format!("{} | {:?}", err.error(), err.debug()),
        _ => unreachable!(),
    }
}

type Configure = Box<dyn FnOnce(&gst::Element)>;

#[test]
fn each_bad_setting_is_an_error_on_the_bus_naming_the_cause() {
    let m = model();
    let cases: Vec<(Configure, Vec<String>)> = vec![
        (
            Box::new(|e| e.set_property("model", "/nonexistent/modnet.pt")),
            vec!["/nonexistent/modnet.pt".into(), "not found".into()],
        ),
        (
            Box::new(|e| {
                e.set_property(
                    "model",
                    prepared("models/source/modnet_photographic.onnx")
                        .display()
                        .to_string(),
                )
            }),
            vec![
                "modnet_photographic.onnx".into(),
                "cannot be loaded as TorchScript".into(),
            ],
        ),
        (
            Box::new(|e| {
                e.set_property(
                    "model",
                    prepared("data/fixtures/bad_models/wrong_shape.pt")
                        .display()
                        .to_string(),
                )
            }),
            vec!["wrong_shape.pt".into(), "breaks the MODNet contract".into()],
        ),
        (
            Box::new(move |e| {
                e.set_property("model", &m);
                e.set_property_from_str("background", "image");
                e.set_property("background-image", "/nonexistent/beach.jpg");
            }),
            vec!["/nonexistent/beach.jpg".into()],
        ),
        (
            Box::new({
                let m = model();
                move |e| {
                    e.set_property("model", &m);
                    e.set_property_from_str("background", "image");
                }
            }),
            vec!["background=image needs background-image".into()],
        ),
        (
            Box::new({
                let m = model();
                move |e| {
                    e.set_property("model", &m);
                    e.set_property("device", "gpu0");
                }
            }),
            vec![
                "device gpu0".into(),
                "expected auto, cpu, cuda or cuda:N".into(),
            ],
        ),
    ];
    for (configure, fragments) in cases {
        let msg = start_error(configure);
        for f in fragments {
            assert!(msg.contains(&f), "expected {f:?} in {msg}");
        }
    }
    if !tch::Cuda::is_available() {
        let m = model();
        let msg = start_error(move |e| {
            e.set_property("model", &m);
            e.set_property("device", "cuda");
        });
        assert!(
            msg.contains("device cuda:0: ") && msg.contains("use device=cpu or auto"),
            "{msg}"
        );
    }
}

#[test]
fn order_count_and_timestamps_kept_at_every_depth_with_eos_drain() {
    for depth in 1..=4u32 {
        let e = element(&[("max-in-flight", depth.to_value())]);
        let mut h = harness(e);
        let i = info(VideoFormat::I420, 64, 48);
        h.set_src_caps(i.to_caps().unwrap());
        let rgb = photo_rgb(64, 48);
        let mut pts = Vec::new();
        for n in 0..9u64 {
            let mut b = buffer_from_rgb(&i, &rgb);
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * n));
            h.push(b).unwrap();
            // A frame leaves once depth - 1 frames are behind it.
            while let Some(out) = h.try_pull() {
                pts.push(out.pts().unwrap().mseconds());
            }
            assert!(
                pts.len() as u64 + u64::from(depth) > n,
                "depth {depth}: only {} out after {} in",
                pts.len(),
                n + 1
            );
        }
        assert!(h.push_event(gst::event::Eos::new()));
        while let Some(out) = h.try_pull() {
            pts.push(out.pts().unwrap().mseconds());
        }
        assert_eq!(
            pts,
            (0..9).map(|n| 40 * n).collect::<Vec<_>>(),
            "depth {depth}"
        );
    }
}

#[test]
fn latency_query_reports_the_frames_in_flight() {
    for (depth, ofd, frames) in [
        (1u32, false, 0u64),
        (2, false, 1),
        (3, false, 2),
        (2, true, 2),
    ] {
        let e = element(&[("max-in-flight", depth.to_value()), ("ofd", ofd.to_value())]);
        let mut h = harness(e);
        let i = info(VideoFormat::Rgb, 64, 48); // 30 frames/s
        h.set_src_caps(i.to_caps().unwrap());
        h.set_upstream_latency(gst::ClockTime::from_mseconds(5));
        h.push(buffer_from_rgb(&i, &photo_rgb(64, 48))).unwrap();
        let latency = h.query_latency().expect("a latency answer");
        let expected = gst::ClockTime::from_mseconds(5)
            + gst::ClockTime::SECOND.mul_div_floor(frames, 30).unwrap();
        assert_eq!(latency, expected, "depth {depth} ofd {ofd}");
    }
}

#[test]
fn flush_discards_frames_in_flight() {
    let e = element(&[("max-in-flight", 3u32.to_value())]);
    let mut h = harness(e);
    let i = info(VideoFormat::Rgb, 64, 48);
    h.set_src_caps(i.to_caps().unwrap());
    let rgb = photo_rgb(64, 48);
    for n in 0..3 {
        push_at(&mut h, &i, &rgb, 100 * n);
    }
    let mut before = Vec::new();
    while let Some(b) = h.try_pull() {
        before.push(b.pts().unwrap().mseconds());
    }
    assert!(
        before.len() < 3,
        "some frames are still in flight: {before:?}"
    );
    let after = flush_then(&mut h, &i, &rgb, 10..12);
    assert_eq!(
        after,
        vec![1000, 1100],
        "nothing from before the flush comes out after it"
    );
}

#[test]
fn precision_fp16_on_a_cpu_runs_fp32_and_gives_the_same_frames() {
    let fp32 = element(&[]);
    let default = fp32.property_value("precision");
    let default = glib::EnumValue::from_value(&default).map(|(_, v)| v.nick().to_string());
    assert_eq!(default.as_deref(), Some("auto"));
    fp32.set_property_from_str("precision", "fp32");
    let (a, _) = run(&mut harness(fp32), &info(VideoFormat::I420, 96, 64), 2);
    let fp16 = element(&[]);
    fp16.set_property_from_str("precision", "fp16");
    let (b, _) = run(&mut harness(fp16), &info(VideoFormat::I420, 96, 64), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x.map_readable().unwrap().as_slice(),
            y.map_readable().unwrap().as_slice()
        );
    }
}
