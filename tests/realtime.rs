//! The realtime worker: a job posted while another waits replaces it (its frame is
//! freed at once), results carry their frame's id, `wait_for` returns once that
//! frame's job is done (or at its timeout), `discard` drops what was posted before it,
//! and dropping the worker joins it.

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use modnetmatte::worker::newest::Newest;
use modnetmatte::{Engine, EngineConfig};

fn engine() -> Arc<Engine> {
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    Arc::new(Engine::new(config).unwrap())
}

/// A job that says it started, blocks until `gate` sends, then returns `id`; and the
/// receiver of its start.
fn gated(
    id: u64,
    gate: mpsc::Receiver<()>,
) -> (
    impl FnOnce(&Engine) -> u64 + Send + 'static,
    mpsc::Receiver<()>,
) {
    let (started_tx, started) = mpsc::channel();
    let job = move |_: &Engine| {
        let _ = started_tx.send(());
        let _ = gate.recv_timeout(Duration::from_secs(10));
        id
    };
    (job, started)
}

/// Posts a gated job and returns once the worker runs it.
fn post_running(w: &Newest<u64>, id: u64, gate: mpsc::Receiver<()>) {
    let (job, started) = gated(id, gate);
    assert_eq!(w.post(id, job), None);
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the worker takes the job");
}

#[test]
fn a_waiting_job_is_replaced_by_the_newest() {
    let w = Newest::new(engine()).unwrap();
    let (open0, gate0) = mpsc::channel();
    post_running(&w, 0, gate0);
    // Job 0 is running: 1 waits, then 2 replaces it, then 3 replaces 2.
    let held = Arc::new(());
    let witness = held.clone();
    assert_eq!(
        w.post(1, move |_| {
            drop(witness);
            1
        }),
        None
    );
    assert_eq!(Arc::strong_count(&held), 2);
    assert_eq!(w.post(2, |_| 2), Some(1));
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "the replaced job is freed at once"
    );
    assert_eq!(w.post(3, |_| 3), Some(2));
    open0.send(()).unwrap();
    let mut got = w.wait_for(3, Duration::from_secs(10));
    got.extend(w.take());
    let ids: Vec<u64> = got.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![0, 3]);
    assert!(got.iter().all(|(id, r)| id == r));
    assert!(!w.busy());
}

#[test]
fn wait_for_gives_up_at_its_timeout() {
    let w = Newest::new(engine()).unwrap();
    let (open, gate) = mpsc::channel();
    post_running(&w, 7, gate);
    let t0 = Instant::now();
    assert!(w.wait_for(7, Duration::from_millis(30)).is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert!(w.busy());
    open.send(()).unwrap();
    assert_eq!(w.wait_for(7, Duration::from_secs(10)), vec![(7, 7)]);
}

#[test]
fn discarded_jobs_never_come_back() {
    let w = Newest::new(engine()).unwrap();
    let (open, gate) = mpsc::channel();
    post_running(&w, 0, gate);
    w.post(1, |_| 1);
    w.discard();
    open.send(()).unwrap();
    w.post(2, |_| 2);
    let got = w.wait_for(2, Duration::from_secs(10));
    assert_eq!(
        got,
        vec![(2, 2)],
        "0 was running and 1 waiting at the discard"
    );
}

#[test]
fn dropping_the_worker_joins_it_after_the_running_job() {
    let (open, gate) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    {
        let w = Newest::new(engine()).unwrap();
        let (job, started) = gated(0, gate);
        w.post(0, move |e| {
            let r = job(e);
            let _ = done_tx.send(());
            r
        });
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // The gate opens only after the drop has begun.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = open.send(());
        });
    }
    assert!(
        done_rx.try_recv().is_ok(),
        "the running job finished before drop returned"
    );
}

/// Realtime's worker takes all cores but one for its own OpenMP team, and leaves
/// libtorch's count for every other thread as it was (a second element in the
/// process, or the ordered worker after new caps, keeps its own).
#[test]
fn the_worker_sizes_only_its_own_team() {
    let on_fresh_thread = || std::thread::spawn(tch::get_num_threads).join().unwrap();
    let engine = engine();
    let before = on_fresh_thread();
    let want = modnetmatte::worker::newest::worker_threads(&engine).expect("CPU, num-threads 0");
    let w: Newest<i32> = Newest::new(engine).unwrap();
    w.post(0, |_: &Engine| tch::get_num_threads());
    let got = w.wait_for(0, Duration::from_secs(30));
    assert_eq!(got, vec![(0, want as i32)], "the worker's own team");
    assert_eq!(on_fresh_thread(), before, "another thread's count changed");
    drop(w);
    assert_eq!(on_fresh_thread(), before);
}
