//! Each stage of the engine alone, and the whole engine, at 640x360, 1280x720 and
//! 1920x1080 with ref-size 512 and 256 (`cargo bench --bench stages`; setup first).
//! The network dominates on a CPU; the other stages show what pipelining can hide.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use modnetmatte::{
    Engine, EngineConfig, FrameMut, PixelFormat, YuvMatrix, composite, net::postprocess,
    net::preprocess,
};

const SIZES: [(u32, u32); 3] = [(640, 360), (1280, 720), (1920, 1080)];
const REFS: [u32; 2] = [512, 256];

fn photo(w: u32, h: u32) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/images/astronaut.png");
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", p.display()))
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}

fn engine(ref_size: u32) -> Engine {
    let mut config = EngineConfig::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/modnet_photographic.pt"),
    );
    config.ref_size = ref_size;
    config.device = modnetmatte::DeviceRequest::Cpu;
    config.warmup_frame = None;
    Engine::new(config).expect("model loads (run scripts/setup.sh)")
}

fn stages(c: &mut Criterion) {
    for ref_size in REFS {
        let engine = engine(ref_size);
        for (w, h) in SIZES {
            let rgb = photo(w, h);
            let i420 =
                composite::from_rgb(PixelFormat::I420, w, h, YuvMatrix::BT709, &rgb).unwrap();
            let frame = i420.as_frame();
            engine.warm_up(w, h).unwrap();
            let tag = format!("{w}x{h}/ref{ref_size}");

            let mut g = c.benchmark_group("light");
            g.bench_function(format!("preprocess_i420/{tag}"), |b| {
                b.iter(|| {
                    preprocess::to_input(
                        black_box(&frame),
                        ref_size,
                        tch::Device::Cpu,
                        preprocess::Layout::Nchw,
                    )
                    .unwrap()
                })
            });
            // What the CPU variants take: YUV straight from the planes (net::yuv_input).
            for format in [PixelFormat::I420, PixelFormat::Nv12, PixelFormat::Yuy2] {
                let owned = composite::from_rgb(format, w, h, YuvMatrix::BT709, &rgb).unwrap();
                let yuv = owned.as_frame();
                g.bench_function(format!("preprocess_{format:?}_channels_last/{tag}"), |b| {
                    b.iter(|| {
                        preprocess::to_input(
                            black_box(&yuv),
                            ref_size,
                            tch::Device::Cpu,
                            preprocess::Layout::ChannelsLast,
                        )
                        .unwrap()
                    })
                });
            }
            // The packed RGB frame, in both layouts: NCHW (ATen's area resize, as the
            // reference) and channels-last (the CPU variant's input, own area resize).
            let rgb_frame = modnetmatte::Frame::packed(&rgb, w, h, PixelFormat::Rgb);
            for (name, layout) in [
                ("nchw", preprocess::Layout::Nchw),
                ("channels_last", preprocess::Layout::ChannelsLast),
            ] {
                g.bench_function(format!("preprocess_rgb_{name}/{tag}"), |b| {
                    b.iter(|| {
                        preprocess::to_input(
                            black_box(&rgb_frame),
                            ref_size,
                            tch::Device::Cpu,
                            layout,
                        )
                        .unwrap()
                    })
                });
            }
            let input =
                preprocess::to_input(&frame, ref_size, tch::Device::Cpu, preprocess::Layout::Nchw)
                    .unwrap();
            let (iw, ih) = engine.inference_size(w, h);
            let out = tch::Tensor::rand(
                [1, 1, ih as i64, iw as i64],
                (tch::Kind::Float, tch::Device::Cpu),
            );
            g.bench_function(format!("postprocess/{tag}"), |b| {
                b.iter(|| postprocess::to_matte(black_box(&out), w, h).unwrap())
            });
            if ref_size == 512 {
                let (matte, _) = engine.matte(&frame).unwrap();
                let alpha = matte.alpha_u8();
                let bg = composite::solid(PixelFormat::I420, w, h, YuvMatrix::BT709, [0, 177, 64]);
                let mut dst = i420.clone();
                g.bench_function(format!("blend_i420/{w}x{h}"), |b| {
                    b.iter(|| {
                        let mut out = FrameMut {
                            format: PixelFormat::I420,
                            width: w,
                            height: h,
                            planes: dst
                                .planes
                                .iter_mut()
                                .zip([w as usize, w.div_ceil(2) as usize, w.div_ceil(2) as usize])
                                .map(|(data, stride)| modnetmatte::frame::PlaneMut { data, stride })
                                .collect(),
                            matrix: YuvMatrix::BT709,
                        };
                        composite::blend(&frame, &bg.as_frame(), black_box(&alpha), &mut out)
                            .unwrap()
                    })
                });
                g.bench_function(format!("blur16_i420/{w}x{h}"), |b| {
                    b.iter(|| composite::blurred(black_box(&frame), 16).unwrap())
                });
            }
            g.finish();

            // The network: few samples, each takes up to a second on 2 cores.
            let mut g = c.benchmark_group("network");
            g.sample_size(10)
                .measurement_time(Duration::from_secs(8))
                .warm_up_time(Duration::from_secs(1));
            g.bench_function(format!("model_forward/{tag}"), |b| {
                let model_input = input.shallow_clone();
                b.iter(|| engine_forward(&engine, &model_input))
            });
            g.bench_function(format!("engine_matte_i420/{tag}"), |b| {
                b.iter(|| engine.matte(black_box(&frame)).unwrap())
            });
            g.finish();
        }
    }
}

/// The bare forward pass, through the engine's public surface.
fn engine_forward(engine: &Engine, input: &tch::Tensor) -> tch::Tensor {
    engine.forward(input).unwrap()
}

criterion_group!(benches, stages);
criterion_main!(benches);
