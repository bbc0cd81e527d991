//! Realtime pacing's follow-up per frame at 1280x720 YUY2 on the streaming thread
//! (one core; `cargo bench --bench follow`): the thumbnail, the frame-to-frame
//! motion, and carrying a matte with the room picture on, a person-sized box
//! moving 8 px a frame over a textured room. No model needed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use modnetmatte::temporal::flow::Flow;
use modnetmatte::temporal::follow::{Follow, FollowConfig};
use modnetmatte::temporal::thumb::Thumb;
use modnetmatte::{Frame, PixelFormat};

const W: u32 = 1280;
const H: u32 = 720;

/// A YUY2 frame with a textured box at `x0` and its alpha.
fn frame(x0: u32) -> (Vec<u8>, Vec<f32>) {
    let mut yuy2 = vec![0u8; (W * H * 2) as usize];
    let mut alpha = vec![0f32; (W * H) as usize];
    for y in 0..H {
        for x in 0..W {
            let inside = x >= x0 && x < x0 + 500 && y >= 120;
            let v = if inside {
                let (u, v) = ((x - x0) as f32, y as f32);
                90.0 + 50.0 * (u / 5.0).sin() * (v / 7.0).cos()
            } else {
                128.0 + 60.0 * (x as f32 / 11.0).sin() * (y as f32 / 9.0).cos()
            };
            let i = (y * W + x) as usize;
            yuy2[2 * i] = v as u8;
            yuy2[2 * i + 1] = if inside { 100 } else { 140 };
            alpha[i] = f32::from(u8::from(inside));
        }
    }
    (yuy2, alpha)
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let frames: Vec<(Vec<u8>, Vec<f32>)> = (0..4).map(|i| frame(200 + 8 * i)).collect();
    let thumb =
        |i: usize| Thumb::of(&Frame::packed(&frames[i].0, W, H, PixelFormat::Yuy2)).unwrap();
    let mut g = c.benchmark_group("follow 1280x720 YUY2");
    g.bench_function("thumbnail", |b| {
        b.iter(|| {
            Thumb::of(&Frame::packed(
                black_box(&frames[1].0),
                W,
                H,
                PixelFormat::Yuy2,
            ))
        })
    });
    let (t0, t1) = (thumb(0), thumb(1));
    g.bench_function("frame-to-frame motion", |b| {
        b.iter(|| Flow::between(black_box(&t0), black_box(&t1)))
    });
    let config = FollowConfig {
        motion: true,
        room: true,
    };
    g.bench_function("a frame: thumbnail, motion, carried matte, room", |b| {
        let mut f = Follow::new();
        f.frame(&config, 0, thumb(0), true);
        f.matte(&config, 0, Arc::new(frames[0].1.clone()), W, H);
        let mut id = 1u64;
        b.iter(|| {
            // Back and forth between frames 1..3, so that every step has motion.
            let i = 1 + (id % 3) as usize;
            let t = Thumb::of(&Frame::packed(&frames[i].0, W, H, PixelFormat::Yuy2)).unwrap();
            f.frame(&config, id, t, false);
            id += 1;
            black_box(f.apply(&config))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
