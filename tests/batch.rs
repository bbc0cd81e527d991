//! `DevicePath::run_batch`: frames through one forward pass give each frame's own
//! output, in order, with mask-every reuse and smoothing as frame by frame; and the
//! same with the stages run as if captured into CUDA graphs (static inputs and
//! outputs, emulated on the CPU), past the warm-up and over many batches of changing
//! content, so that a graph data-flow mistake (an output kept past the next replay, a
//! stale static input) shows here, without a GPU.

mod common;

use std::sync::Arc;

use modnetmatte::OwnedFrame;
use modnetmatte::composite;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::gpu::graphs::{MATTE_WARM_UP, Mode};
use modnetmatte::{DevicePath, Engine, EngineConfig, FrameMut, PixelFormat, YuvMatrix};

const W: u32 = 96;
const H: u32 = 64;

fn engine(emulate: bool) -> Engine {
    let mut config = EngineConfig::new(common::model());
    config.device = modnetmatte::DeviceRequest::Cpu;
    config.ref_size = 64;
    config.warmup_frame = None;
    config.emulate_graphs = emulate;
    Engine::new(config).unwrap()
}

/// Frame `i` of a clip: the photo shifted sideways by `i` pixels (so each frame's
/// matte and output differ), in `format`.
fn clip(format: PixelFormat, n: usize) -> Vec<OwnedFrame> {
    let img = image::open(common::prepared("data/images/astronaut.png"))
        .unwrap()
        .resize_exact(W + n as u32 * 3, H, image::imageops::FilterType::Triangle)
        .to_rgb8();
    (0..n)
        .map(|i| {
            let shifted = image::imageops::crop_imm(&img, i as u32 * 3, 0, W, H).to_image();
            composite::from_rgb(format, W, H, YuvMatrix::BT709, shifted.as_raw()).unwrap()
        })
        .collect()
}

fn spec(format: PixelFormat, background: &str) -> OutputSpec {
    OutputSpec {
        output: OutputKind::Composite,
        background: match background {
            "blur" => BackgroundSource::Blur(5),
            _ => BackgroundSource::Frame(Arc::new(composite::solid(
                format,
                W,
                H,
                YuvMatrix::BT709,
                [0, 200, 30],
            ))),
        },
        threshold: 0.0,
        smoothing: 0.5,
    }
}

/// Waits for each frame's output; its planes, tight.
fn finish_all(in_flight: Vec<modnetmatte::InFlight>, format: PixelFormat) -> Vec<Vec<Vec<u8>>> {
    let sizes = format.plane_sizes(W as usize, H as usize);
    in_flight
        .into_iter()
        .map(|f| {
            let mut bufs: Vec<Vec<u8>> = sizes
                .iter()
                .map(|(row, rows)| vec![0; row * rows])
                .collect();
            let mut out = FrameMut::over(format, W, H, &mut bufs, 0);
            f.finish(&mut out).unwrap();
            bufs
        })
        .collect()
}

/// Every frame through the engine, `batch` at a time; the output planes of each.
fn outputs(
    engine: &Engine,
    spec: &OutputSpec,
    frames: &[OwnedFrame],
    batch: usize,
    mask_every: usize,
) -> Vec<Vec<Vec<u8>>> {
    let mut path = DevicePath::new(engine).unwrap();
    let mut all = Vec::new();
    for (c, chunk) in frames.chunks(batch).enumerate() {
        let views: Vec<_> = chunk.iter().map(OwnedFrame::as_frame).collect();
        let infer: Vec<bool> = (0..chunk.len())
            .map(|i| (c * batch + i).is_multiple_of(mask_every))
            .collect();
        let in_flight = path
            .run_batch(engine, spec, &views, &infer, views.len())
            .unwrap();
        assert_eq!(in_flight.len(), chunk.len());
        all.extend(finish_all(in_flight, chunk[0].format));
    }
    let status = path.graph_status();
    if engine.graph_mode() == Mode::Emulated
        && mask_every == 1
        && frames.len() / batch > MATTE_WARM_UP as usize
    {
        assert!(status.captured >= 2, "{status:?}");
        assert!(status.replays > 0, "{status:?}");
    }
    assert_eq!(status.failure, None);
    all
}

fn max_diff(a: &[Vec<Vec<u8>>], b: &[Vec<Vec<u8>>]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0u8, 0usize);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        for (p, q) in x.iter().zip(y) {
            let d = p
                .iter()
                .zip(q)
                .map(|(u, v)| u.abs_diff(*v))
                .max()
                .unwrap_or(0);
            if d > worst.0 {
                worst = (d, i);
            }
        }
    }
    worst
}

#[test]
fn a_batch_gives_each_frame_its_own_output_in_order() {
    let plain = engine(false);
    assert_eq!(plain.graph_mode(), Mode::Plain);
    let frames = clip(PixelFormat::I420, 7);
    let s = spec(PixelFormat::I420, "blur");
    let one = outputs(&plain, &s, &frames, 1, 1);
    // Neighbouring frames differ: a mix-up of frames would show.
    assert!(max_diff(&one[..1], &one[1..2]).0 > 20);
    for batch in [3, 4] {
        let batched = outputs(&plain, &s, &frames, batch, 1);
        // The same network on [n,3,h,w]: per-frame norms, so the same mattes up to
        // float summation order.
        let (d, at) = max_diff(&one, &batched);
        assert!(d <= 1, "batch {batch}: frame {at} differs by {d}");
    }
}

#[test]
fn mask_every_and_smoothing_in_batches_follow_the_frame_order() {
    let plain = engine(false);
    let frames = clip(PixelFormat::Rgb, 6);
    let s = spec(PixelFormat::Rgb, "color");
    let one = outputs(&plain, &s, &frames, 1, 2);
    let batched = outputs(&plain, &s, &frames, 4, 2);
    let (d, at) = max_diff(&one, &batched);
    assert!(d <= 1, "frame {at} differs by {d}");
}

#[test]
fn emulated_graphs_replay_the_same_frames_as_plain_runs() {
    let plain = engine(false);
    let emulated = engine(true);
    assert_eq!(emulated.graph_mode(), Mode::Emulated);
    // Past the warm-up runs and the capture, then several replays, with every frame
    // different: stale static inputs or overwritten outputs would show.
    for (format, background, batch) in [
        (PixelFormat::I420, "blur", 1),
        (PixelFormat::Nv12, "color", 2),
        (PixelFormat::Bgrx, "blur", 2),
    ] {
        // mask-every 3 through the replays too (a third of the batches run the
        // network, so three times the frames to get past the capture).
        for mask_every in [1, 3] {
            let n = mask_every * batch * (MATTE_WARM_UP as usize + 4);
            let frames = clip(format, n);
            let s = spec(format, background);
            let reference = outputs(&plain, &s, &frames, 1, mask_every);
            let got = outputs(&emulated, &s, &frames, batch, mask_every);
            let (d, at) = max_diff(&reference, &got);
            assert!(
                d <= 1,
                "{format:?} batch {batch} mask-every {mask_every}: frame {at} differs by {d}"
            );
        }
    }
}

#[test]
fn a_batch_of_mixed_shapes_is_refused_by_name() {
    let plain = engine(false);
    let a = clip(PixelFormat::Rgb, 1);
    let b = composite::solid(PixelFormat::Rgb, 32, 32, YuvMatrix::BT709, [1, 2, 3]);
    let mut path = DevicePath::new(&plain).unwrap();
    let err = path
        .run_batch(
            &plain,
            &spec(PixelFormat::Rgb, "blur"),
            &[a[0].as_frame(), b.as_frame()],
            &[true, true],
            2,
        )
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("a batch mixes 96x64 Rgb with 32x32 Rgb"),
        "{err}"
    );
}

#[test]
fn a_short_last_batch_runs_padded_on_the_full_batch_graphs() {
    let plain = engine(false);
    let emulated = engine(true);
    let format = PixelFormat::I420;
    let s = spec(format, "blur");
    // Full batches of 3 past the capture, then 2 frames padded to 3.
    let full = 3 * (MATTE_WARM_UP as usize + 2);
    let frames = clip(format, full + 2);
    let reference = outputs(&plain, &s, &frames, 1, 1);
    let mut path = DevicePath::new(&emulated).unwrap();
    let mut got = Vec::new();
    let mut status_before_short = None;
    for chunk in frames.chunks(3) {
        if chunk.len() < 3 {
            status_before_short = Some(path.graph_status());
        }
        let views: Vec<_> = chunk.iter().map(OwnedFrame::as_frame).collect();
        let in_flight = path
            .run_batch(&emulated, &s, &views, &vec![true; chunk.len()], 3)
            .unwrap();
        // Only the real frames come back.
        assert_eq!(in_flight.len(), chunk.len());
        got.extend(finish_all(in_flight, format));
    }
    let (d, at) = max_diff(&reference, &got);
    assert!(d <= 1, "frame {at} differs by {d}");
    // The short batch replayed the full batch's graphs: none captured for it.
    let before = status_before_short.unwrap();
    let after = path.graph_status();
    assert_eq!(after.captured, before.captured, "{before:?} -> {after:?}");
    assert_eq!(after.replays, before.replays + 2, "{before:?} -> {after:?}");
}
