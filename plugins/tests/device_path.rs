//! The device path (`compositing=device`: upload, network, output frame and download
//! as one job on the worker) run on this machine's CPU through the same code the CUDA
//! path takes, against the CPU loops (`compositing=cpu`); and what `auto` picks here.

mod common;

use common::*;
use gst::glib;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;
use gst_video::prelude::*;

fn element(compositing: &str, props: &[(&str, glib::Value)]) -> gst::Element {
    init();
    let e = gst::ElementFactory::make("modnetmatte")
        .property("model", model())
        .property("ref-size", 64u32)
        .property("device", "cpu")
        .build()
        .expect("modnetmatte exists");
    e.set_property_from_str("compositing", compositing);
    // Frame for frame against the CPU path: each frame its own matte there too (the
    // harness answers the latency query as live, and auto would be realtime).
    e.set_property_from_str("pacing", "every-frame");
    for (name, value) in props {
        e.set_property_from_value(name, value);
    }
    e
}

fn info(format: VideoFormat, w: u32, h: u32) -> gst_video::VideoInfo {
    init();
    gst_video::VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
}

/// Pushes `n` photo frames (the photo shifted a little each frame, so the mattes
/// differ), then EOS; returns every output as tight rows per plane, with the pts.
fn run(e: gst::Element, info: &gst_video::VideoInfo, n: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
    run_live(e, info, n, true)
}

/// As `run`, with the harness answering the latency query as live or not (a file).
fn run_live(
    e: gst::Element,
    info: &gst_video::VideoInfo,
    n: u64,
    live: bool,
) -> Vec<(u64, Vec<Vec<u8>>)> {
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_live(live);
    h.set_src_caps(info.to_caps().unwrap());
    let (w, hh) = (info.width(), info.height());
    let photo = photo_rgb(w + 8, hh);
    for i in 0..n {
        let shift = (i as usize % 4) * 2 * 3;
        let rgb: Vec<u8> = photo
            .chunks_exact(((w + 8) * 3) as usize)
            .flat_map(|row| row[shift..shift + (w * 3) as usize].to_vec())
            .collect();
        let mut b = buffer_from_rgb(info, &rgb);
        b.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i));
        assert_eq!(h.push(b), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let out_info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        let f = gst_video::VideoFrameRef::from_buffer_ref_readable(b.as_ref(), &out_info).unwrap();
        let sizes = pixel_format(out_info.format()).plane_sizes(w as usize, hh as usize);
        let planes = sizes
            .iter()
            .enumerate()
            .map(|(p, (row, rows))| {
                let stride = f.plane_stride()[p] as usize;
                let data = f.plane_data(p as u32).unwrap();
                (0..*rows)
                    .flat_map(|y| data[y * stride..y * stride + row].to_vec())
                    .collect()
            })
            .collect();
        out.push((b.pts().unwrap().mseconds(), planes));
    }
    out
}

fn stats(e: &gst::Element) -> gst::Structure {
    e.property::<gst::Structure>("stats")
}

fn max_diff(a: &[(u64, Vec<Vec<u8>>)], b: &[(u64, Vec<Vec<u8>>)]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|((pa, x), (pb, y))| {
            assert_eq!(pa, pb);
            x.iter()
                .zip(y)
                .flat_map(|(p, q)| p.iter().zip(q).map(|(u, v)| u.abs_diff(*v)))
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn device_compositing_gives_the_cpu_frames_in_every_format_and_output() {
    let picture = prepared("data/images/rocket.jpg").display().to_string();
    let settings: Vec<(&str, Vec<(&str, glib::Value)>)> = vec![
        ("composite", vec![("blur-radius", 5u32.to_value())]),
        // 16 takes the reduced-resolution blur, 5 the full-resolution one.
        ("composite", vec![("blur-radius", 16u32.to_value())]),
        ("composite", vec![("temporal-smoothing", 0.5f64.to_value())]),
        ("alpha", vec![("mask-every", 2u32.to_value())]),
        ("matte", vec![("threshold", 0.5f64.to_value())]),
    ];
    for format in SINK_FORMATS {
        for (output, props) in &settings {
            let configure = |e: &gst::Element| {
                e.set_property_from_str("output", output);
                // fp32: bf16 would turn the inputs' last-bit differences (above) into
                // matte differences of several codes.
                e.set_property_from_str("precision", "fp32");
                for (k, v) in props {
                    e.set_property_from_value(k, v);
                }
            };
            let (cpu_e, dev_e) = (element("cpu", &[]), element("device", &[]));
            configure(&cpu_e);
            configure(&dev_e);
            let i = info(format, 49, 31);
            let cpu = run(cpu_e, &i, 4);
            let dev = run(dev_e.clone(), &i, 4);
            assert_eq!(dev.len(), 4, "{format:?} {output}");
            // From YUV a code may round the other way: alpha goes through float YUV ->
            // RGB, and the CPU path's network input comes straight from the planes
            // (net::yuv_input) while the device path's goes through ATen (equal within
            // 1e-4 of the input).
            let yuv = ["I420", "NV12", "YUY2"].contains(&format.to_str().as_str());
            let tolerance = u8::from(yuv || (*output == "alpha" && format.to_str().contains("Y")));
            let d = max_diff(&cpu, &dev);
            assert!(
                d <= tolerance,
                "{format:?} {output} {props:?}: differs by {d}"
            );
            let s = stats(&dev_e);
            assert_eq!(
                s.get::<String>("compositing-on").unwrap(),
                "cpu (tensor ops)"
            );
            assert_eq!(s.get::<u64>("frames").unwrap(), 4);
            let reused = if *output == "alpha" { 2 } else { 0 };
            assert_eq!(
                s.get::<u64>("frames-matte-reused").unwrap(),
                reused,
                "{output}"
            );
        }
    }
    // Colour and picture backgrounds, one format each family.
    for format in [VideoFormat::Nv12, VideoFormat::Bgrx, VideoFormat::Yuy2] {
        for (bg, extra) in [
            ("color", ("background-color", 0xff20_40f0u32.to_value())),
            ("image", ("background-image", picture.to_value())),
        ] {
            let (cpu_e, dev_e) = (
                element("cpu", std::slice::from_ref(&extra)),
                element("device", &[extra]),
            );
            cpu_e.set_property_from_str("background", bg);
            dev_e.set_property_from_str("background", bg);
            let i = info(format, 64, 36);
            let d = max_diff(&run(cpu_e, &i, 2), &run(dev_e, &i, 2));
            assert_eq!(d, 0, "{format:?} {bg}");
        }
    }
}

#[test]
fn order_timestamps_and_count_at_every_depth_and_the_flush_discards() {
    let i = info(VideoFormat::I420, 64, 48);
    for depth in 1..=3u32 {
        let e = element("device", &[("max-in-flight", depth.to_value())]);
        let out = run(e, &i, 7);
        let pts: Vec<u64> = out.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            pts,
            (0..7).map(|n| 40 * n).collect::<Vec<_>>(),
            "depth {depth}"
        );
    }
    // A flush with frames in flight: only what comes after it is output.
    let e = element("device", &[("max-in-flight", 3u32.to_value())]);
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps(i.to_caps().unwrap());
    let rgb = photo_rgb(64, 48);
    for n in 0..3 {
        push_at(&mut h, &i, &rgb, 100 * n);
    }
    while h.try_pull().is_some() {}
    let after = flush_then(&mut h, &i, &rgb, 10..12);
    assert_eq!(after, vec![1000, 1100]);
}

#[test]
fn batches_keep_frames_order_and_timestamps_and_eos_drains_the_short_last_one() {
    let i = info(VideoFormat::I420, 64, 48);
    let one = run_live(
        element("device", &[("batch", 1u32.to_value())]),
        &i,
        7,
        false,
    );
    for depth in [1u32, 2] {
        let e = element(
            "device",
            &[
                ("batch", 3u32.to_value()),
                ("max-in-flight", depth.to_value()),
            ],
        );
        // 7 frames: two batches of 3 and, at EOS, one of 1.
        let batched = run_live(e.clone(), &i, 7, false);
        let pts: Vec<u64> = batched.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            pts,
            (0..7).map(|n| 40 * n).collect::<Vec<_>>(),
            "depth {depth}"
        );
        // Each frame its own matte (one forward pass over three frames).
        assert!(max_diff(&one, &batched) <= 1, "depth {depth}");
        assert_eq!(stats(&e).get::<u32>("batch").unwrap(), 3);
        assert_eq!(stats(&e).get::<u64>("frames").unwrap(), 7);
    }
    // A live source (a camera) never waits for a batch to fill.
    let e = element("device", &[("batch", 3u32.to_value())]);
    assert_eq!(run_live(e.clone(), &i, 4, true).len(), 4);
    assert_eq!(stats(&e).get::<u32>("batch").unwrap(), 1);
    // auto (0) on a CPU: 1.
    let e = element("device", &[]);
    run_live(e.clone(), &i, 2, false);
    assert_eq!(stats(&e).get::<u32>("batch").unwrap(), 1);
    // On a CPU there are no CUDA graphs to use.
    assert_eq!(stats(&e).get::<String>("cuda-graphs").unwrap(), "off");
}

#[test]
fn a_flush_drops_the_frames_collected_for_a_batch() {
    let i = info(VideoFormat::Rgb, 64, 48);
    let e = element("device", &[("batch", 4u32.to_value())]);
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_live(false);
    h.set_src_caps(i.to_caps().unwrap());
    let rgb = photo_rgb(64, 48);
    for n in 0..6 {
        push_at(&mut h, &i, &rgb, 100 * n);
    }
    // One batch of 4 is through or in flight; 2 frames wait for the next.
    while h.try_pull().is_some() {}
    let after = flush_then(&mut h, &i, &rgb, 10..13);
    assert_eq!(after, vec![1000, 1100, 1200]);
}

#[test]
fn auto_on_a_cpu_machine_composites_with_the_cpu_loops() {
    let i = info(VideoFormat::Rgb, 64, 48);
    let e = element("auto", &[]);
    e.set_property("device", "auto");
    run(e.clone(), &i, 2);
    let s = stats(&e);
    let on = s.get::<String>("compositing-on").unwrap();
    // On a GPU machine auto picks the device path; these tests run on CPU ones.
    if !tch::Cuda::is_available() {
        assert_eq!(on, "cpu");
        assert_eq!(s.get::<f64>("gpu-memory-total-mb").unwrap(), 0.0);
        assert_eq!(s.get::<f64>("pinned-mb").unwrap(), 0.0);
    }
    // ofd holds mattes on the host: it keeps the CPU loops even when asked otherwise.
    let e = element("device", &[("ofd", true.to_value())]);
    run(e.clone(), &i, 2);
    assert_eq!(stats(&e).get::<String>("compositing-on").unwrap(), "cpu");
    // The device path's own figures.
    let e = element("device", &[]);
    run(e.clone(), &i, 3);
    let s = stats(&e);
    assert!(s.get::<f64>("mean-latency-ms").unwrap() > 0.0);
    assert!(s.get::<f64>("mean-inference-ms").unwrap() > 0.0);
    assert_eq!(s.get::<f64>("pinned-mb").unwrap(), 0.0); // no CUDA: no page-locked memory
}

#[test]
fn the_pool_hands_out_and_recycles_buffers_of_the_configured_size() {
    init();
    let caps = info(VideoFormat::I420, 64, 48).to_caps().unwrap();
    // Plain memory, and a CUDA ordinal: page-locked on a GPU machine, plain here
    // (no driver: it says so in the log and still serves).
    for ordinal in [None, Some(0)] {
        let pool = gstmodnet::pinnedpool::PinnedBufferPool::new(ordinal);
        let mut config = pool.config();
        config.set_params(Some(&caps), 4608, 2, 3);
        pool.set_config(config).unwrap();
        pool.set_active(true).unwrap();
        let a = pool.acquire_buffer(None).unwrap();
        let b = pool.acquire_buffer(None).unwrap();
        assert_eq!((a.size(), b.size()), (4608, 4608));
        let ptr = a.map_readable().unwrap().as_ptr();
        drop(a);
        // The released buffer comes back: its memory is allocated once, not per frame.
        let c = pool.acquire_buffer(None).unwrap();
        let d = pool.acquire_buffer(None).unwrap();
        let ptrs = [
            c.map_readable().unwrap().as_ptr(),
            d.map_readable().unwrap().as_ptr(),
        ];
        assert!(ptrs.contains(&ptr), "{ordinal:?}");
        drop((b, c, d));
        pool.set_active(false).unwrap();
    }
}

#[test]
fn no_page_locked_pool_is_offered_without_cuda() {
    let e = element("device", &[]);
    e.set_property("device", "auto");
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    let i = info(VideoFormat::Nv12, 64, 48);
    h.set_src_caps(i.to_caps().unwrap());
    h.push(buffer_from_rgb(&i, &photo_rgb(64, 48))).unwrap();
    let mut q2 = gst::query::Allocation::new(Some(&i.to_caps().unwrap()), true);
    assert!(e.static_pad("sink").unwrap().query(&mut q2));
    let ours = q2
        .allocation_pools()
        .filter_map(|(pool, _, _, _)| pool)
        .filter(|p| p.type_().name() == "GstModnetPinnedBufferPool")
        .count();
    // On a GPU machine the CUDA device path offers exactly one; on a CPU none (the
    // element has loaded libtorch's CUDA library by now if there is one).
    assert_eq!(ours, usize::from(tch::Cuda::is_available()));
}

#[test]
fn renegotiation_mid_stream_on_the_device_path() {
    // Frames of each caps keep their own size and format; the matte history and the
    // background are rebuilt for the new size (smoothing on, a colour background).
    let e = element(
        "device",
        &[
            ("max-in-flight", 2u32.to_value()),
            ("temporal-smoothing", 0.5f64.to_value()),
        ],
    );
    e.set_property_from_str("background", "color");
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    let mut n = 0u64;
    for (format, w, hh) in [
        (VideoFormat::Rgb, 64, 48),
        (VideoFormat::I420, 81, 35),
        (VideoFormat::Nv12, 32, 32),
    ] {
        let i = info(format, w, hh);
        h.set_src_caps(i.to_caps().unwrap());
        for _ in 0..3 {
            let mut b = buffer_from_rgb(&i, &photo_rgb(w, hh));
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * n));
            n += 1;
            h.push(b).unwrap();
        }
        // The caps event for the next size drains these three first.
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut sizes = Vec::new();
    while let Some(b) = h.try_pull() {
        sizes.push(b.size());
    }
    let expected: Vec<usize> = [
        info(VideoFormat::Rgb, 64, 48).size(),
        info(VideoFormat::I420, 81, 35).size(),
        info(VideoFormat::Nv12, 32, 32).size(),
    ]
    .iter()
    .flat_map(|&s| [s; 3])
    .collect();
    assert_eq!(sizes, expected);
}
