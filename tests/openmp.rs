//! The engine leaves no spare OpenMP team behind on the threads that load the model
//! and warm it up (src/host/openmp.rs): spare teams make libgomp's threads sleep and wake
//! between every parallel region of the network's worker (585 context switches per
//! 720p frame in the element, 7-32 without).

mod common;

use modnetmatte::{DeviceRequest, Engine, EngineConfig};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// One test (the thread counts are the process's): a parallel libtorch operation on
/// a new thread leaves a team that `release_team` ends; an engine built and warmed
/// up on a thread leaves none there.
#[test]
fn no_team_is_left_on_the_loading_thread() {
    tch::set_num_threads(2);
    let (before, after) = std::thread::spawn(|| {
        let x = tch::Tensor::ones([4_000_000], (tch::Kind::Float, tch::Device::Cpu));
        let _ = (&x + 1.0).sum(tch::Kind::Float).double_value(&[]);
        let before = threads();
        modnetmatte::host::openmp::release_team().expect("libgomp is libtorch's OpenMP");
        (before, threads())
    })
    .join()
    .unwrap();
    assert!(after < before, "threads {before} -> {after}");

    let (start, loaded) = std::thread::spawn(|| {
        let start = threads();
        let mut config = EngineConfig::new(common::model());
        config.device = DeviceRequest::Cpu;
        config.num_threads = 2;
        config.warmup_frame = Some((128, 64));
        let engine = Engine::new(config).expect("model loads (run scripts/setup.sh)");
        assert!(
            !engine.device_note().contains("OpenMP"),
            "{}",
            engine.device_note()
        );
        (start, threads())
    })
    .join()
    .unwrap();
    assert_eq!(loaded, start, "threads left by loading and warming up");
}
