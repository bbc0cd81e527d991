//! NULL -> PLAYING -> NULL cycles leak neither threads nor memory. A test binary of its
//! own: RSS and thread counts are per process, so no other test may run beside it.

mod common;

use common::*;
use gst::prelude::*;

fn threads_and_rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("Threads:"), field("VmRSS:"))
}

#[test]
fn null_playing_null_cycles_do_not_leak() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=I420,width=96,height=64 ! modnetmatte model={} ref-size=64 max-in-flight=2 ! fakesink",
        model()
    ))
    .unwrap();
    let cycle = || {
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("EOS");
        assert_eq!(msg.type_(), gst::MessageType::Eos);
        pipeline.set_state(gst::State::Null).unwrap();
    };
    for _ in 0..5 {
        cycle();
    }
    let (threads0, rss0) = threads_and_rss();
    for i in 0..50 {
        cycle();
        if i % 10 == 9 {
            println!("cycle {}: {:?}", i + 6, threads_and_rss());
        }
    }
    let (threads1, rss1) = threads_and_rss();
    println!(
        "after 5 cycles: {threads0} threads, {rss0} kB; after 55: {threads1} threads, {rss1} kB"
    );
    assert!(
        threads1 <= threads0 + 2,
        "threads grew from {threads0} to {threads1}"
    );
    assert!(
        rss1 < rss0 + 30_000,
        "RSS grew from {rss0} kB to {rss1} kB over 50 cycles"
    );
}
