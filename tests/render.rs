//! The device path's tensor ops (`composite_tensor`, run here on libtorch's CPU kernels) against
//! the CPU loops of `composite`: every input format, every output, every background,
//! odd sizes and padded rows; and `DevicePath::run` against `Engine::matte` + the loops.

mod common;

use std::sync::Arc;

use modnetmatte::DevicePath;
use modnetmatte::OwnedFrame;
use modnetmatte::composite;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::composite::tensor::{self, BackgroundCache, MatteHistory};
use modnetmatte::frame::Plane;
use modnetmatte::gpu::transfer::Transfer;
use modnetmatte::{Engine, EngineConfig, Frame, FrameMut, PixelFormat, YuvMatrix};
use tch::{Device, Kind, Tensor};

/// Deterministic noise with some smooth structure (so blurs and chroma means matter).
fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((i as u32 * 7 / 3) as u8).wrapping_add((x >> 24) as u8 / 4)
        })
        .collect()
}

/// A frame with `pad` bytes of padding after every row of every plane.
struct Padded {
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: Vec<(Vec<u8>, usize)>,
    matrix: YuvMatrix,
}

impl Padded {
    fn new(format: PixelFormat, width: u32, height: u32, pad: usize, seed: u32) -> Self {
        let planes = format
            .plane_sizes(width as usize, height as usize)
            .into_iter()
            .enumerate()
            .map(|(i, (row, rows))| (bytes((row + pad) * rows, seed + i as u32), row + pad))
            .collect();
        Self {
            format,
            width,
            height,
            planes,
            matrix: YuvMatrix::BT709,
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: self
                .planes
                .iter()
                .map(|(d, s)| Plane {
                    data: d,
                    stride: *s,
                })
                .collect(),
            matrix: self.matrix,
        }
    }
}

/// Runs `f` with an output frame of this format and size, then returns its planes
/// with the padding dropped.
fn with_output(
    format: PixelFormat,
    w: u32,
    h: u32,
    f: impl FnOnce(&mut FrameMut<'_>),
) -> Vec<Vec<u8>> {
    let sizes = format.plane_sizes(w as usize, h as usize);
    let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|(r, n)| vec![0u8; (r + 3) * n]).collect();
    {
        let mut out = FrameMut::over(format, w, h, &mut bufs, 3);
        out.matrix = YuvMatrix::BT709;
        f(&mut out);
    }
    bufs.iter()
        .zip(&sizes)
        .map(|(b, (r, n))| {
            (0..*n)
                .flat_map(|y| b[y * (r + 3)..][..*r].to_vec())
                .collect()
        })
        .collect()
}

fn max_diff(a: &[Vec<u8>], b: &[Vec<u8>]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| p.abs_diff(*q))
        })
        .max()
        .unwrap_or(0)
}

/// The tensor path's output for `frame` and matte `alpha` (u8), through `Transfer`'s
/// CPU upload and download, as the engine runs it.
fn tensor_output(
    spec: &OutputSpec,
    frame: &Frame<'_>,
    alpha: &[u8],
    out: PixelFormat,
) -> Vec<Vec<u8>> {
    let mut transfer = Transfer::new(Device::Cpu).unwrap();
    let mut background = BackgroundCache::default();
    let planes = transfer.upload(frame).unwrap();
    let matte = Tensor::from_slice(alpha)
        .view([frame.height as i64, frame.width as i64])
        .to_kind(Kind::Float)
        / 255.0;
    let result =
        tensor::output_planes(&mut background, spec, &planes, &frame.shape(), &matte).unwrap();
    let download = transfer.download(result).unwrap();
    with_output(out, frame.width, frame.height, |o| {
        o.matrix = frame.matrix;
        download.wait_into(o).unwrap()
    })
}

fn spec(output: OutputKind, background: BackgroundSource) -> OutputSpec {
    OutputSpec {
        output,
        background,
        threshold: 0.0,
        smoothing: 0.0,
    }
}

#[test]
fn tensor_compositing_matches_the_cpu_loops() {
    for (w, h) in [(33u32, 17u32), (64, 36)] {
        let alpha = bytes((w * h) as usize, 99);
        for (k, format) in PixelFormat::INPUTS.into_iter().enumerate() {
            let input = Padded::new(format, w, h, 5, k as u32);
            let frame = input.frame();
            // Blur, several radii (the chroma planes take half): full resolution up to
            // 7, reduced 2, 4 or 8 times from 8 on (`composite::blur::factor`).
            for radius in [0u32, 1, 4, 16, 40] {
                let cpu = with_output(format, w, h, |o| {
                    o.matrix = frame.matrix;
                    let bg = composite::blurred(&frame, radius).unwrap();
                    composite::blend(&frame, &bg.as_frame(), &alpha, o).unwrap()
                });
                let gpu = tensor_output(
                    &spec(OutputKind::Composite, BackgroundSource::Blur(radius)),
                    &frame,
                    &alpha,
                    format,
                );
                assert_eq!(max_diff(&cpu, &gpu), 0, "{format:?} {w}x{h} blur {radius}");
            }
            // A picture background.
            let picture = bytes((w * h * 3) as usize, 7);
            let bg = Arc::new(composite::from_rgb(format, w, h, frame.matrix, &picture).unwrap());
            let cpu = with_output(format, w, h, |o| {
                o.matrix = frame.matrix;
                composite::blend(&frame, &bg.as_frame(), &alpha, o).unwrap()
            });
            let gpu = tensor_output(
                &spec(OutputKind::Composite, BackgroundSource::Frame(bg.clone())),
                &frame,
                &alpha,
                format,
            );
            assert_eq!(max_diff(&cpu, &gpu), 0, "{format:?} {w}x{h} picture");
            // Alpha out, in every RGBA order.
            for out in [
                PixelFormat::Rgba,
                PixelFormat::Bgra,
                PixelFormat::Argb,
                PixelFormat::Abgr,
            ] {
                let cpu = with_output(out, w, h, |o| {
                    composite::with_alpha(&frame, &alpha, o).unwrap()
                });
                let gpu = tensor_output(
                    &spec(OutputKind::Alpha(out), BackgroundSource::Blur(0)),
                    &frame,
                    &alpha,
                    out,
                );
                // YUV -> RGB in float32 may round a half the other way.
                let tolerance = u8::from(format.is_yuv());
                assert!(
                    max_diff(&cpu, &gpu) <= tolerance,
                    "{format:?} -> {out:?} {w}x{h}: {}",
                    max_diff(&cpu, &gpu)
                );
            }
            // The grey matte.
            let cpu = with_output(PixelFormat::Gray8, w, h, |o| {
                composite::write_gray(&alpha, o).unwrap()
            });
            let gpu = tensor_output(
                &spec(OutputKind::Matte, BackgroundSource::Blur(0)),
                &frame,
                &alpha,
                PixelFormat::Gray8,
            );
            assert_eq!(max_diff(&cpu, &gpu), 0, "{format:?} gray");
        }
    }
}

#[test]
fn a_background_of_the_wrong_size_is_refused() {
    let input = Padded::new(PixelFormat::Rgb, 8, 8, 0, 1);
    let frame = input.frame();
    let bg: Arc<OwnedFrame> = Arc::new(composite::solid(
        PixelFormat::Rgb,
        4,
        8,
        YuvMatrix::BT601,
        [0, 255, 0],
    ));
    let planes = Transfer::new(Device::Cpu).unwrap().upload(&frame).unwrap();
    let matte = Tensor::zeros([8, 8], (Kind::Float, Device::Cpu));
    let err = tensor::output_planes(
        &mut BackgroundCache::default(),
        &spec(OutputKind::Composite, BackgroundSource::Frame(bg)),
        &planes,
        &frame.shape(),
        &matte,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("background is 4x8") && err.contains("8x8"),
        "{err}"
    );
}

#[test]
fn smoothing_and_reuse_follow_the_temporal_rules() {
    use modnetmatte::temporal::{Temporal, TemporalConfig};
    let (w, h) = (5u32, 3u32);
    let mattes: Vec<Vec<f32>> = (0..4)
        .map(|i| {
            (0..w * h)
                .map(|p| ((p * 7 + i * 13) % 17) as f32 / 16.0)
                .collect()
        })
        .collect();
    let config = TemporalConfig {
        smoothing: 0.6,
        ofd: false,
    };
    let mut cpu = Temporal::new();
    let mut dev = MatteHistory::default();
    // Network on frames 0 and 2, reuse on 1 and 3 (mask-every 2).
    for (i, m) in mattes.iter().enumerate() {
        let infer = i % 2 == 0;
        let expected = if infer {
            cpu.push(&config, w, h, m.clone())
        } else {
            cpu.push_reused(&config, w, h)
        }
        .unwrap();
        let t = infer.then(|| Tensor::from_slice(m).view([h as i64, w as i64]));
        let got = dev.smooth(t, w, h, config.smoothing, Device::Cpu).unwrap();
        let got = Vec::<f32>::try_from(got.flatten(0, -1)).unwrap();
        for (a, b) in expected.iter().zip(&got) {
            assert!((a - b).abs() < 1e-6, "frame {i}: {a} vs {b}");
        }
    }
}

#[test]
fn device_path_on_the_cpu_equals_matte_then_blend() {
    let mut config = EngineConfig::new(common::model());
    config.device = modnetmatte::DeviceRequest::Cpu;
    config.ref_size = 128;
    config.warmup_frame = None;
    let engine = Engine::new(config).unwrap();
    let img = image::open(common::prepared("data/images/astronaut.png"))
        .unwrap()
        .resize_exact(160, 120, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let frame = Frame::packed(img.as_raw(), 160, 120, PixelFormat::Rgb);
    let (matte, _) = engine.matte(&frame).unwrap();
    let expected = with_output(PixelFormat::Rgb, 160, 120, |o| {
        let bg = composite::blurred(&frame, 6).unwrap();
        composite::blend(&frame, &bg.as_frame(), &matte.alpha_u8(), o).unwrap()
    });
    let mut path = DevicePath::new(&engine).unwrap();
    let spec = spec(OutputKind::Composite, BackgroundSource::Blur(6));
    let in_flight = path.run(&engine, &spec, &frame, true).unwrap();
    let mut timings = None;
    let got = with_output(PixelFormat::Rgb, 160, 120, |o| {
        timings = Some(in_flight.finish(o).unwrap())
    });
    assert_eq!(max_diff(&expected, &got), 0);
    let timings = timings.unwrap();
    assert!(timings.inference > std::time::Duration::ZERO);
    assert!(timings.wall >= timings.inference);
    // The next frame reuses the matte (mask-every): same output, no network.
    let in_flight = path.run(&engine, &spec, &frame, false).unwrap();
    let again = with_output(PixelFormat::Rgb, 160, 120, |o| {
        assert_eq!(
            in_flight.finish(o).unwrap().inference,
            std::time::Duration::ZERO
        )
    });
    assert_eq!(again, got);
}
