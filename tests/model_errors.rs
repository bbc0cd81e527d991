//! Every way a model file can be wrong gives an error naming the file and the reason,
//! never a panic.

mod common;

use std::path::{Path, PathBuf};

use modnetmatte::{DeviceRequest, Engine, EngineConfig, Error};

fn load(path: &Path) -> Error {
    let mut config = EngineConfig::new(path);
    config.warmup_frame = None;
    match Engine::new(config) {
        Ok(_) => panic!(
            "{} loaded, but it is not a valid MODNet model",
            path.display()
        ),
        Err(e) => e,
    }
}

fn scratch(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn assert_names(err: &Error, path: &Path, fragments: &[&str]) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "does not name the file: {msg}"
    );
    for f in fragments {
        assert!(msg.contains(f), "expected {f:?} in: {msg}");
    }
    assert!(!msg.contains('\n'), "one line, no C++ backtrace: {msg}");
}

#[test]
fn missing_file() {
    let p = PathBuf::from("/nonexistent/modnet.pt");
    let e = load(&p);
    assert!(matches!(e, Error::ModelNotFound { .. }), "{e:?}");
    assert_names(&e, &p, &["not found"]);
}

#[test]
fn a_directory() {
    let p = std::env::temp_dir();
    let e = load(&p);
    assert!(matches!(e, Error::ModelLoad { .. }), "{e:?}");
    assert_names(&e, &p, &["not a regular file"]);
}

#[test]
fn files_that_are_not_torchscript() {
    let onnx = common::prepared("models/source/modnet_photographic.onnx");
    let png = common::prepared("data/images/astronaut.png");
    let real = std::fs::read(common::model()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let truncated = scratch(tmp.path(), "truncated.pt", &real[..real.len() / 2]);
    let empty = scratch(tmp.path(), "empty.pt", b"");
    let text = scratch(tmp.path(), "text.pt", b"this is not a model\n");
    for p in [onnx, png, truncated, empty, text] {
        let e = load(&p);
        assert!(
            matches!(e, Error::ModelLoad { .. }),
            "{}: {e:?}",
            p.display()
        );
        assert_names(&e, &p, &["cannot be loaded as TorchScript"]);
    }
}

#[test]
fn torchscript_that_breaks_the_contract() {
    let cases = [
        ("wrong_shape", "returned shape [1, 3, 64, 64]"),
        ("half_size", "returned shape [1, 1, 32, 32]"),
        ("wrong_dtype", "returned dtype Double"),
        ("out_of_range", "output values span"),
        ("returns_tuple", "returned a tuple instead of one tensor"),
        ("needs_two_inputs", "forward pass failed"),
    ];
    for (name, why) in cases {
        let p = common::fixture(&format!("bad_models/{name}.pt"));
        let e = load(&p);
        assert!(matches!(e, Error::ModelContract { .. }), "{name}: {e:?}");
        assert_names(&e, &p, &["breaks the MODNet contract", why]);
    }
}

#[test]
fn bad_settings() {
    let mut config = EngineConfig::new(common::model());
    config.ref_size = 16;
    let e = Engine::new(config).unwrap_err().to_string();
    assert!(e.contains("ref-size 16 is outside 32..=2048"), "{e}");
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error_and_auto_falls_back() {
    if tch::Cuda::is_available() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let mut config = EngineConfig::new(common::model());
    config.warmup_frame = None;
    config.device = DeviceRequest::Cuda(0);
    let e = Engine::new(config.clone()).unwrap_err();
    assert!(matches!(e, Error::Device { .. }), "{e:?}");
    let msg = e.to_string();
    // "no NVIDIA driver ..." here; "libtorch sees no usable CUDA device" where a
    // driver but no GPU is present.
    assert!(
        msg.starts_with("device cuda:0: ") && msg.ends_with("use device=cpu or auto"),
        "{msg}"
    );

    config.device = DeviceRequest::Auto;
    let engine = Engine::new(config).expect("auto falls back to the CPU");
    assert_eq!(engine.device(), tch::Device::Cpu);
    assert!(
        engine.device_note().contains("using the CPU"),
        "{}",
        engine.device_note()
    );
}
