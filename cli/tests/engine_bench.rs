//! `engine-bench` (the tool scripts/gpu_check.sh runs on a GPU) on this CPU: its
//! rows come out whole, every stage is timed, and bad arguments are refused.

mod common;

use std::process::Command;

fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_engine-bench"))
        .args(args)
        .args(["--model", &common::model().display().to_string()])
        .args([
            "--photo",
            &common::prepared("data/images/astronaut.png")
                .display()
                .to_string(),
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The number just before `unit` in `row`.
fn number_before(row: &str, unit: &str) -> f64 {
    let at = row
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {row}"));
    row[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {unit:?} in {row}"))
}

#[test]
fn prints_a_row_per_depth_and_the_stages_alone() {
    let (ok, out, err) = bench(&[
        "--device",
        "cpu",
        "--size",
        "96x64",
        "--ref-size",
        "64",
        "--frames",
        "4",
        "--warmup",
        "1",
        "--in-flight",
        "1,2",
        "--stages",
        "--format",
        "nv12",
        "--background",
        "blur",
    ]);
    assert!(ok, "{out}{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3, "{out}");
    for (row, mode) in rows
        .iter()
        .zip(["in flight 1", "in flight 2", "stages alone"])
    {
        assert!(
            row.starts_with("| engine | 96x64 nv12 | fp32 | cpu | blur |"),
            "{row}"
        );
        assert!(row.contains(mode), "{row}");
    }
    assert!(number_before(rows[0], "frames/s") > 0.0);
    assert!(number_before(rows[1], "ms, p95") > 0.0);
    // The stages add up to the total they print.
    let stages = rows[2];
    let parts: f64 = [
        "+ preprocess",
        "+ network",
        "+ postprocess",
        "+ compositing",
        "+ download",
        "= ",
    ]
    .iter()
    .map(|u| number_before(stages, u))
    .sum();
    let total = number_before(stages, "ms |");
    assert!((parts - total).abs() < 0.05, "{stages}");
    assert!(
        number_before(stages, "+ postprocess") > 0.0,
        "the network was timed: {stages}"
    );
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let (ok, _, err) = bench(&["--device", "cpu", "--format", "p010"]);
    assert!(!ok && err.contains("format p010"), "{err}");
    let (ok, _, err) = bench(&["--device", "cpu", "--size", "12"]);
    assert!(!ok && err.contains("expected WIDTHxHEIGHT"), "{err}");
    let (ok, _, err) = bench(&["--device", "cuda:7", "--frames", "1"]);
    assert!(!ok && err.contains("device cuda:7"), "{err}");
}
