//! The CPU compositing alone (`composite::output_frame`: the threshold, the background
//! and the blend) at 1280x720 and 1920x1080, per format and background, one thread
//! (`cargo bench --bench compositing`). No model needed: the matte is a soft ellipse.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use modnetmatte::composite;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::{FrameMut, PixelFormat, YuvMatrix};

const SIZES: [(u32, u32); 2] = [(1280, 720), (1920, 1080)];
const FORMATS: [PixelFormat; 4] = [
    PixelFormat::I420,
    PixelFormat::Yuy2,
    PixelFormat::Nv12,
    PixelFormat::Bgrx,
];
/// The element's defaults: blur-radius 16, threshold 0 (soft matte).
const BLUR_RADIUS: u32 = 16;
const THRESHOLD: f64 = 0.0;

/// A person-like matte: 1 inside an ellipse, a soft edge ~3% of the height wide, 0 out.
fn matte(w: u32, h: u32) -> Vec<f32> {
    let (cx, cy) = (w as f32 / 2.0, h as f32 * 0.6);
    let (rx, ry) = (w as f32 * 0.22, h as f32 * 0.45);
    let edge = h as f32 * 0.03;
    (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
                let d = ((dx * dx + dy * dy).sqrt() - 1.0) * ry;
                (0.5 - d / edge).clamp(0.0, 1.0)
            })
        })
        .collect()
}

/// Gradients with a little texture, so the blur and the chroma are not trivial.
fn picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                let t = (x * 7 + y * 13 + seed) % 23;
                [
                    (x * 255 / w) as u8 ^ t as u8,
                    (y * 255 / h) as u8,
                    ((x + y + seed) % 256) as u8,
                ]
            })
        })
        .collect()
}

fn compositing(c: &mut Criterion) {
    let m = YuvMatrix::BT709;
    for (w, h) in SIZES {
        let alpha = matte(w, h);
        let (fg_rgb, bg_rgb) = (picture(w, h, 0), picture(w, h, 101));
        let mut g = c.benchmark_group("output_frame");
        for format in FORMATS {
            let fg = composite::from_rgb(format, w, h, m, &fg_rgb).unwrap();
            let frame = fg.as_frame();
            let backgrounds: [(&str, BackgroundSource); 3] = [
                (
                    "color",
                    BackgroundSource::Frame(Arc::new(composite::solid(
                        format,
                        w,
                        h,
                        m,
                        [0, 177, 64],
                    ))),
                ),
                (
                    "picture",
                    BackgroundSource::Frame(Arc::new(
                        composite::from_rgb(format, w, h, m, &bg_rgb).unwrap(),
                    )),
                ),
                ("blur", BackgroundSource::Blur(BLUR_RADIUS)),
            ];
            let mut dst: Vec<Vec<u8>> = fg.planes.clone();
            for (name, background) in backgrounds {
                let spec = OutputSpec {
                    output: OutputKind::Composite,
                    background,
                    threshold: THRESHOLD,
                    smoothing: 0.0,
                };
                g.bench_function(format!("{format:?}/{name}/{w}x{h}"), |b| {
                    b.iter(|| {
                        let mut out = FrameMut::over(format, w, h, &mut dst, 0);
                        out.matrix = m;
                        composite::output_frame(&frame, black_box(&alpha), &spec, &mut out).unwrap()
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, compositing);
criterion_main!(benches);
