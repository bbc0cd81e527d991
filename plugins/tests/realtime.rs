//! `pacing=realtime`: a live source keeps its frame count, order and timestamps however
//! slow the network is; no frame shows the real background before a matte exists (at
//! start, after a flush, after new caps); flush, EOS and renegotiation with the network
//! busy; `auto` picks realtime for a live source and every-frame for a file; the
//! latency query adds nothing when the network cannot keep up.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

/// What a pipeline run gave: the pts (ns, from the first) of every buffer that left
/// modnetmatte, and its stats at the end.
struct Run {
    pts: Vec<u64>,
    stats: gst::Structure,
}

/// Runs `videotestsrc ! caps ! modnetmatte <props> ! fakesink sync=true` to EOS.
fn run_pipeline(src: &str, caps: &str, props: &str) -> Run {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc {src} ! {caps} ! modnetmatte name=m model={} {props} ! fakesink sync=true",
        model()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let m = pipeline.by_name("m").unwrap();
    let pts = Arc::new(Mutex::new(Vec::new()));
    let seen = pts.clone();
    m.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                seen.lock()
                    .unwrap()
                    .push(b.pts().map_or(u64::MAX, |t| t.nseconds()));
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(300),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 5 minutes");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    let stats = m.property::<gst::Structure>("stats");
    // A live videotestsrc starts its timestamps at the running time it started at.
    let pts = pts.lock().unwrap().clone();
    let first = pts.first().copied().unwrap_or(0);
    let pts = pts.iter().map(|p| p - first).collect();
    Run { pts, stats }
}

/// videotestsrc's timestamps from its first: frame n at n / 30 s.
fn source_pts(n: u64) -> Vec<u64> {
    (0..n).map(|i| i * 1_000_000_000 / 30).collect()
}

fn count(s: &gst::Structure, field: &str) -> u64 {
    s.get::<u64>(field).unwrap()
}

#[test]
fn a_live_source_keeps_every_frame_however_slow_the_network() {
    // 720p at ref-size 512: on a CPU the network takes far longer than the 33 ms a
    // frame lasts.
    let caps = "video/x-raw,format=YUY2,width=1280,height=720,framerate=30/1";
    let r = run_pipeline("is-live=true num-buffers=45", caps, "ref-size=512");
    assert_eq!(
        r.pts,
        source_pts(45),
        "every frame, in order, with its timestamps"
    );
    let s = &r.stats;
    println!("realtime: {s}");
    assert_eq!(s.get::<&str>("pacing").unwrap(), "realtime");
    assert_eq!(count(s, "frames"), 45);
    let runs = 45 - count(s, "frames-skipped-by-network");
    let elsewhere = count(s, "frames-earlier-matte") + count(s, "frames-without-matte");
    // Each frame either had its own matte (a network run on it) or went out with
    // another's (or none yet).
    assert!(elsewhere >= 45 - runs, "{s}");
    assert!(
        count(s, "frames-without-matte") >= 1,
        "the first frame has no matte yet"
    );
    assert!(
        s.get::<f64>("matte-age-max-ms").unwrap() >= s.get::<f64>("matte-age-mean-ms").unwrap()
    );
}

#[test]
fn every_frame_gives_each_frame_its_own_matte() {
    let caps = "video/x-raw,format=I420,width=160,height=96,framerate=30/1";
    let r = run_pipeline(
        "is-live=true num-buffers=8",
        caps,
        "ref-size=64 pacing=every-frame",
    );
    assert_eq!(r.pts, source_pts(8));
    let s = &r.stats;
    assert_eq!(s.get::<&str>("pacing").unwrap(), "every-frame");
    assert_eq!(count(s, "frames-earlier-matte"), 0, "{s}");
    assert_eq!(count(s, "frames-without-matte"), 0, "{s}");
    assert_eq!(s.get::<f64>("matte-age-max-ms").unwrap(), 0.0);
}

#[test]
fn auto_is_realtime_for_a_live_source_and_every_frame_for_a_file() {
    let caps = "video/x-raw,format=I420,width=96,height=64,framerate=30/1";
    for (live, want) in [(true, "realtime"), (false, "every-frame")] {
        let r = run_pipeline(
            &format!("is-live={live} num-buffers=3"),
            caps,
            "ref-size=64",
        );
        assert_eq!(
            r.stats.get::<&str>("pacing").unwrap(),
            want,
            "is-live={live}"
        );
        assert_eq!(r.pts, source_pts(3));
    }
}

/// A realtime harness (the harness answers the latency query as live) making the
/// frame over a blue background, for a flat red input: red in the output would be the
/// room showing.
fn red_room(ref_size: u32) -> Harness {
    init();
    let e = gst::ElementFactory::make("modnetmatte")
        .property("model", model())
        .property("ref-size", ref_size)
        .property("background-color", 0xff00_00ffu32)
        // Hard matte: a flat wall is background; what the network guesses in it at
        // the soft edge is not what this test is about.
        .property("threshold", 0.5f64)
        .build()
        .unwrap();
    e.set_property_from_str("background", "color");
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_live(true);
    h
}

fn red_info(w: u32, h: u32) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(VideoFormat::Rgb, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
}

/// Pushes `n` red frames from `ms0` and returns how many came out and how many red
/// pixels they showed.
fn push_red(h: &mut Harness, info: &gst_video::VideoInfo, ms0: u64, n: u64) -> (usize, usize) {
    let red: Vec<u8> = [255u8, 0, 0].repeat((info.width() * info.height()) as usize);
    for i in 0..n {
        push_at(h, info, &red, ms0 + 33 * i);
    }
    pull_red(h, info)
}

fn pull_red(h: &mut Harness, info: &gst_video::VideoInfo) -> (usize, usize) {
    let (mut frames, mut red) = (0, 0);
    while let Some(b) = h.try_pull() {
        assert_eq!(b.size(), info.size(), "every frame of the caps' size");
        let (rgb, _) = decode(info, &b);
        red += rgb.chunks_exact(3).filter(|p| p[0] > 64).count();
        frames += 1;
    }
    (frames, red)
}

#[test]
fn no_frame_shows_the_room_at_start_after_a_flush_or_after_new_caps() {
    // ref-size 512 on 320x192: the network is busy for many frames on a CPU.
    let mut h = red_room(512);
    let a = red_info(320, 192);
    h.set_src_caps(a.to_caps().unwrap());
    assert_eq!(push_red(&mut h, &a, 0, 20), (20, 0), "at start");
    // A flush with the network busy, then more frames.
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    assert_eq!(push_red(&mut h, &a, 0, 10), (10, 0), "after a flush");
    // New caps (another size) with the network busy on a frame of the old size.
    let b = red_info(256, 144);
    h.set_src_caps(b.to_caps().unwrap());
    assert_eq!(push_red(&mut h, &b, 1000, 10), (10, 0), "after new caps");
    // Long enough for mattes to exist: still no red, and EOS drains nothing stuck.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(push_red(&mut h, &b, 2000, 3), (3, 0), "with mattes");
    assert!(h.push_event(gst::event::Eos::new()));
    assert_eq!(pull_red(&mut h, &b), (0, 0), "nothing held back at EOS");
    let e = h.element().unwrap();
    let s = e.property::<gst::Structure>("stats");
    assert_eq!(count(&s, "frames"), 43, "{s}");
    assert!(count(&s, "frames-without-matte") >= 3, "{s}");
}

#[test]
fn flush_eos_and_new_caps_with_the_network_busy_lose_nothing() {
    let mut h = red_room(512);
    let a = red_info(320, 192);
    h.set_src_caps(a.to_caps().unwrap());
    let mut pts = Vec::new();
    let mut pull = |h: &mut Harness| {
        while let Some(b) = h.try_pull() {
            pts.push(b.pts().unwrap().mseconds());
        }
    };
    let red = vec![200u8; (320 * 192 * 3) as usize];
    for i in 0..5 {
        push_at(&mut h, &a, &red, 10 * i);
    }
    pull(&mut h);
    let b = red_info(160, 96);
    h.set_src_caps(b.to_caps().unwrap());
    let red_b = vec![200u8; (160 * 96 * 3) as usize];
    for i in 5..8 {
        push_at(&mut h, &b, &red_b, 10 * i);
    }
    assert!(h.push_event(gst::event::Eos::new()));
    pull(&mut h);
    assert_eq!(pts, (0..8).map(|i| 10 * i).collect::<Vec<_>>());
}

#[test]
fn realtime_adds_no_latency_when_the_network_cannot_keep_up() {
    let mut h = red_room(512);
    let a = red_info(640, 384);
    h.set_src_caps(a.to_caps().unwrap());
    push_red(&mut h, &a, 0, 1);
    let e = h.element().unwrap();
    let mut q = gst::query::Latency::new();
    assert!(e.static_pad("src").unwrap().query(&mut q));
    let mut upstream = gst::query::Latency::new();
    assert!(e.static_pad("sink").unwrap().peer_query(&mut upstream));
    assert_eq!(
        q.result().1,
        upstream.result().1,
        "nothing added to the minimum"
    );
    let s = e.property::<gst::Structure>("stats");
    assert_eq!(s.get::<&str>("pacing").unwrap(), "realtime");
}

/// A picture of random 4x4 px cells: `seed` picks which.
fn texture(info: &gst_video::VideoInfo, seed: u32) -> Vec<u8> {
    let (w, h) = (info.width(), info.height());
    (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w / 4, i / w / 4);
            let mut v = (x.wrapping_mul(374_761_393)
                ^ y.wrapping_mul(668_265_263)
                ^ seed.wrapping_mul(2_654_435_761)) as u64;
            v = (v ^ (v >> 13)).wrapping_mul(1_274_126_177);
            let v = (v >> 24) as u8;
            [v, v / 2 + 60, 255 - v]
        })
        .collect()
}

#[test]
fn a_cut_to_another_picture_forgets_the_matte_until_its_own() {
    let mut h = red_room(512);
    let info = red_info(320, 192);
    h.set_src_caps(info.to_caps().unwrap());
    let e = h.element().unwrap();
    let stats = || e.property::<gst::Structure>("stats");
    let (a, b) = (texture(&info, 0), texture(&info, 1));
    // Scene A until a matte exists.
    let mut ms = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        push_at(&mut h, &info, &a, ms);
        ms += 33;
        while h.try_pull().is_some() {}
        let s = stats();
        if count(&s, "network-runs") >= 1 && count(&s, "frames") > count(&s, "frames-without-matte")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no matte in 60 s: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    let without = count(&stats(), "frames-without-matte");
    assert_eq!(
        count(&stats(), "scene-cuts"),
        0,
        "scene A's frames are no cut"
    );
    // Cut to scene B: the next frame goes out without scene A's matte.
    push_at(&mut h, &info, &b, ms);
    assert!(
        h.try_pull().is_some(),
        "the frame after the cut went out at once"
    );
    let s = stats();
    assert_eq!(count(&s, "scene-cuts"), 1, "{s}");
    assert_eq!(count(&s, "frames-without-matte"), without + 1, "{s}");
    // Turned off, the cut is not looked for (and the old matte would be used).
    e.set_property("follow-motion", false);
    e.set_property("learn-room", false);
    push_at(&mut h, &info, &a, ms + 33);
    while h.try_pull().is_some() {}
    assert_eq!(count(&stats(), "scene-cuts"), 1);
}
