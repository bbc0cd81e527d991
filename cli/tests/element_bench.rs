//! `element-bench` (scripts/gpu_check.sh's element rows) on this CPU: the element
//! fed through pads of its own, every frame out, one row per depth.

mod common;

use std::process::Command;

fn bench(args: &[&str]) -> (bool, String, String) {
    let tmp = common::temp_dir("element-bench");
    let out = Command::new(env!("CARGO_BIN_EXE_element-bench"))
        .args(args)
        .args(["--model", &common::model().display().to_string()])
        .args([
            "--photo",
            &common::prepared("data/images/astronaut.png")
                .display()
                .to_string(),
        ])
        .env("RUST_BACKTRACE", "0")
        .env("GST_REGISTRY", tmp.path().join("registry.bin"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_row_per_depth_for_both_compositing_paths() {
    for compositing in ["cpu", "device"] {
        let (ok, out, err) = bench(&[
            "--device",
            "cpu",
            "--size",
            "96x64",
            "--ref-size",
            "64",
            "--frames",
            "5",
            "--warmup",
            "2",
            "--in-flight",
            "1,2",
            "--format",
            "YUY2",
            "--compositing",
            compositing,
        ]);
        assert!(ok, "{out}{err}");
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 2, "{out}");
        for (row, depth) in rows.iter().zip(["in flight 1", "in flight 2"]) {
            assert!(
                row.starts_with("| element | 96x64 YUY2 | fp32 | cpu | color |"),
                "{row}"
            );
            assert!(row.contains(depth), "{row}");
            let on = if compositing == "cpu" {
                "cpu,"
            } else {
                "cpu (tensor ops),"
            };
            assert!(row.contains(&format!("compositing on {on}")), "{row}");
            assert!(
                row.contains("frames/s") && row.contains("latency median"),
                "{row}"
            );
        }
    }
}

#[test]
fn a_missing_cuda_device_is_an_error_naming_it() {
    let (ok, out, err) = bench(&["--device", "cuda:3", "--frames", "1", "--size", "64x64"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("did not start") && err.contains("device cuda:3"),
        "{err}"
    );
}
