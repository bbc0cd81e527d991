//! The scheduler: order and count kept at every depth, blocking at the bound,
//! discarded jobs dropped, the worker joined on drop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use modnetmatte::worker::ordered::Scheduler;
use modnetmatte::{Engine, EngineConfig};

fn engine() -> Arc<Engine> {
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    Arc::new(Engine::new(config).unwrap())
}

#[test]
fn order_and_count_are_kept_at_every_depth() {
    let engine = engine();
    for depth in 1..=4 {
        let mut s = Scheduler::new(engine.clone(), depth).unwrap();
        let mut out = Vec::new();
        for i in 0..20u32 {
            // Uneven job times, so a reordering bug would show.
            out.extend(
                s.submit(move |_| {
                    std::thread::sleep(Duration::from_millis(u64::from(i % 3)));
                    i
                })
                .unwrap(),
            );
            assert!(s.outstanding() < depth);
        }
        out.extend(s.finish().unwrap());
        assert_eq!(out, (0..20).collect::<Vec<_>>(), "depth {depth}");
    }
}

#[test]
fn depth_one_is_synchronous_and_depth_two_overlaps() {
    let engine = engine();
    let mut s = Scheduler::new(engine.clone(), 1).unwrap();
    assert_eq!(s.submit(|_| 7).unwrap(), vec![7]);
    let mut s = Scheduler::new(engine, 2).unwrap();
    // The first job is still running when submit returns.
    assert!(
        s.submit(|_| std::thread::sleep(Duration::from_millis(50)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.outstanding(), 1);
    assert_eq!(s.finish().unwrap().len(), 1);
}

#[test]
fn discarded_jobs_never_come_back() {
    let mut s = Scheduler::new(engine(), 3).unwrap();
    for i in 0..3 {
        s.submit(move |_| {
            std::thread::sleep(Duration::from_millis(20));
            i
        })
        .unwrap();
    }
    s.discard();
    let after = s.submit(|_| 100).unwrap();
    let mut rest = s.finish().unwrap();
    rest.splice(0..0, after);
    assert_eq!(rest, vec![100]);
}

#[test]
fn jobs_run_on_the_engine_and_the_worker_is_joined_on_drop() {
    let engine = engine();
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let mut s = Scheduler::new(engine.clone(), 2).unwrap();
        for _ in 0..4 {
            let ran = ran.clone();
            s.submit(move |e: &Engine| {
                assert_eq!(e.inference_size(1280, 720), (896, 512));
                std::thread::sleep(Duration::from_millis(10));
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        // Dropped with jobs outstanding: they finish, then the worker is joined.
    }
    assert_eq!(ran.load(Ordering::SeqCst), 4);
    // The worker held a clone of the engine; after the join only ours is left.
    assert_eq!(Arc::strong_count(&engine), 1);
}

#[test]
fn staged_jobs_issue_the_next_before_finishing_and_keep_order() {
    use modnetmatte::worker::ordered::Step;
    use std::sync::Mutex;
    let engine = engine();
    for depth in 1..=3usize {
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut s = Scheduler::new(engine.clone(), depth).unwrap();
        let mut out = Vec::new();
        for i in 0..12u32 {
            let log = log.clone();
            out.extend(
                s.submit_staged(move |_| {
                    // Slow to issue, so the next job is queued by the time this one is.
                    std::thread::sleep(Duration::from_millis(10));
                    log.lock().unwrap().push(format!("issue {i}"));
                    if i % 4 == 3 {
                        return Step::Done(i); // a plain job among staged ones
                    }
                    Step::Later(Box::new(move || {
                        log.lock().unwrap().push(format!("finish {i}"));
                        i
                    }))
                })
                .unwrap(),
            );
            assert!(s.outstanding() < depth);
        }
        out.extend(s.finish().unwrap());
        assert_eq!(out, (0..12).collect::<Vec<_>>(), "depth {depth}");
        let log = log.lock().unwrap().clone();
        let at = |e: &str| log.iter().position(|l| l == e).unwrap();
        if depth == 1 {
            // Synchronous: each job is finished before the next is issued.
            assert!(at("finish 0") < at("issue 1"), "{log:?}");
        } else {
            // Frame 1 is issued while frame 0 waits: the overlap the GPU path needs.
            assert!(at("issue 1") < at("finish 0"), "{log:?}");
            assert!(at("issue 5") < at("finish 4"), "{log:?}");
        }
    }
}
