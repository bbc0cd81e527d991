//! The bare engine's device path on one frame size, as the element runs it but
//! without GStreamer: throughput and per-frame latency with N frames in flight, and
//! (`--stages`) each stage waited for and timed alone, whose sum is what a frame
//! would cost without overlap. Prints markdown table rows (scripts/gpu_check.sh
//! gathers them).
//!
//!     engine-bench --size 1920x1080 --device cuda --precision fp16 --in-flight 1,2 --stages

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use modnetmatte::composite;
use modnetmatte::frame::PlaneMut;
use modnetmatte::render::{BackgroundSource, OutputKind, RenderSpec};
use modnetmatte::schedule::{Scheduler, Step};
use modnetmatte::{
    DeviceRequest, Engine, EngineConfig, FrameMut, PixelFormat, Precision, StageTimings, YuvMatrix,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Time the engine's device path (upload, network, compositing, download)"
)]
struct Args {
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    size: (u32, u32),
    /// Frame format: i420, nv12, yuy2, rgb or bgrx.
    #[arg(long, default_value = "i420")]
    format: String,
    #[arg(long, default_value = "auto")]
    device: DeviceRequest,
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    #[arg(long, default_value_t = 512)]
    ref_size: u32,
    /// Frames in flight (the element's max-in-flight); a comma list runs each.
    #[arg(long, default_value = "2", value_delimiter = ',')]
    in_flight: Vec<usize>,
    /// Background: color or blur.
    #[arg(long, default_value = "color")]
    background: String,
    /// Frames timed (after --warmup untimed ones).
    #[arg(long, default_value_t = 200)]
    frames: u32,
    #[arg(long, default_value_t = 20)]
    warmup: u32,
    /// Also time each stage alone (the device waited for after each).
    #[arg(long)]
    stages: bool,
    #[arg(
        long,
        env = "MODNETMATTE_MODEL",
        default_value = "models/modnet_photographic.pt"
    )]
    model: PathBuf,
    /// Photo the frame is made from (any picture; the content barely matters).
    #[arg(long, default_value = "data/images/astronaut.png")]
    photo: PathBuf,
}

fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT"))?;
    match (w.parse::<u32>(), h.parse::<u32>()) {
        (Ok(w), Ok(h)) if (1..=8192).contains(&w) && (1..=8192).contains(&h) => Ok((w, h)),
        _ => Err(format!("{s:?}: sides must be numbers from 1 to 8192")),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn p95(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() * 95 / 100).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let a = Args::parse();
    let format = match a.format.to_ascii_lowercase().as_str() {
        "i420" => PixelFormat::I420,
        "nv12" => PixelFormat::Nv12,
        "yuy2" => PixelFormat::Yuy2,
        "rgb" => PixelFormat::Rgb,
        "bgrx" => PixelFormat::Bgrx,
        other => bail!("format {other}: expected i420, nv12, yuy2, rgb or bgrx"),
    };
    let (w, h) = a.size;
    let photo = image::open(&a.photo)
        .with_context(|| format!("photo {}: cannot be read", a.photo.display()))?
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let frame = Arc::new(composite::from_rgb(
        format,
        w,
        h,
        YuvMatrix::BT709,
        photo.as_raw(),
    )?);
    let mut config = EngineConfig::new(&a.model);
    config.device = a.device;
    config.precision = a.precision;
    config.ref_size = a.ref_size;
    config.warmup_frame = Some((w, h));
    let engine = Arc::new(Engine::new(config)?);
    eprintln!("{}", engine.device_note());
    let background = match a.background.as_str() {
        "blur" => BackgroundSource::Blur(16),
        "color" => BackgroundSource::Frame(Arc::new(composite::solid(
            format,
            w,
            h,
            YuvMatrix::BT709,
            [0, 177, 64],
        ))),
        other => bail!("background {other}: expected color or blur"),
    };
    let spec = RenderSpec {
        output: OutputKind::Composite,
        background,
        threshold: 0.0,
        smoothing: 0.0,
    };
    let (transfer, state) = engine.render_state()?;
    let device = format!("{:?}", engine.device()).to_lowercase();
    let label = format!(
        "| engine | {w}x{h} {} | {} | {} | {}",
        a.format,
        engine.precision(),
        device,
        a.background
    );
    let sizes = format.plane_sizes(w as usize, h as usize);
    let out_planes = || -> Vec<Vec<u8>> { sizes.iter().map(|(r, n)| vec![0u8; r * n]).collect() };

    let shared = Arc::new(Mutex::new((transfer, state)));
    for &in_flight in &a.in_flight {
        pipelined(&a, &engine, &shared, &spec, &frame, in_flight, &label)?;
    }
    if a.stages {
        let mut guard = shared
            .lock()
            .map_err(|_| anyhow::anyhow!("state poisoned"))?;
        let (transfer, state) = &mut *guard;
        transfer.set_sync_stages(true);
        let mut out = out_planes();
        let mut rows: Vec<StageTimings> = Vec::new();
        for i in 0..(a.warmup + a.frames) {
            let f = frame.as_frame();
            let in_flight = engine.render(transfer, state, &spec, &f, true)?;
            let mut o = out_frame(format, w, h, &mut out);
            let t = in_flight.finish(&mut o)?;
            if i >= a.warmup {
                rows.push(t);
            }
        }
        let col = |f: fn(&StageTimings) -> Duration| {
            median(&mut rows.iter().map(|t| ms(f(t))).collect::<Vec<_>>())
        };
        let (up, pre, inf, post, comp, down) = (
            col(|t| t.upload),
            col(|t| t.preprocess),
            col(|t| t.inference),
            col(|t| t.postprocess),
            col(|t| t.compositing),
            col(|t| t.download),
        );
        let sum = up + pre + inf + post + comp + down;
        println!(
            "{label} | stages alone | upload {up:.2} + preprocess {pre:.2} + network {inf:.2} + postprocess {post:.2} + compositing {comp:.2} + download {down:.2} = {sum:.2} ms | {:.0} frames/s if not overlapped |",
            1e3 / sum
        );
    }
    Ok(())
}

type Shared = Arc<
    Mutex<(
        modnetmatte::transfer::Transfer,
        modnetmatte::render::RenderState,
    )>,
>;

/// Pipelined, as the element runs it: the worker issues frame N+1 before it waits
/// for frame N.
fn pipelined(
    a: &Args,
    engine: &Arc<Engine>,
    shared: &Shared,
    spec: &RenderSpec,
    frame: &Arc<modnetmatte::composite::OwnedFrame>,
    in_flight: usize,
    label: &str,
) -> Result<()> {
    let mut scheduler: Scheduler<Result<Duration, String>> =
        Scheduler::new(engine.clone(), in_flight)?;
    let mut latencies = Vec::new();
    let mut started = None;
    let total = a.warmup + a.frames;
    let collect = |done: Vec<Result<Duration, String>>,
                   latencies: &mut Vec<f64>,
                   started: &mut Option<Instant>,
                   seen: &mut u32|
     -> Result<()> {
        for r in done {
            let wall = r.map_err(anyhow::Error::msg)?;
            *seen += 1;
            if *seen == a.warmup {
                *started = Some(Instant::now());
            } else if *seen > a.warmup {
                latencies.push(ms(wall));
            }
        }
        Ok(())
    };
    let mut seen = 0u32;
    for _ in 0..total {
        let (shared, spec, frame) = (shared.clone(), spec.clone(), frame.clone());
        let done = scheduler.submit_staged(move |engine: &Engine| {
            let issued = {
                let mut guard = match shared.lock() {
                    Ok(g) => g,
                    Err(_) => return Step::Done(Err("poisoned".into())),
                };
                let (transfer, state) = &mut *guard;
                engine.render(transfer, state, &spec, &frame.as_frame(), true)
            };
            match issued {
                Err(e) => Step::Done(Err(e.to_string())),
                Ok(in_flight) => Step::Later(Box::new(move || {
                    let (w, h) = (frame.width, frame.height);
                    let mut out: Vec<Vec<u8>> =
                        frame.planes.iter().map(|p| vec![0u8; p.len()]).collect();
                    let mut o = out_frame(frame.format, w, h, &mut out);
                    in_flight
                        .finish(&mut o)
                        .map(|t| t.wall)
                        .map_err(|e| e.to_string())
                })),
            }
        })?;
        collect(done, &mut latencies, &mut started, &mut seen)?;
    }
    let done = scheduler.finish()?;
    collect(done, &mut latencies, &mut started, &mut seen)?;
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    let fps = f64::from(a.frames) / elapsed.as_secs_f64();
    println!(
        "{label} | in flight {in_flight} | {fps:.0} frames/s, {:.2} ms/frame | latency median {:.2} ms, p95 {:.2} ms |",
        1e3 / fps,
        median(&mut latencies),
        p95(&mut latencies)
    );
    Ok(())
}

fn out_frame<'a>(format: PixelFormat, w: u32, h: u32, bufs: &'a mut [Vec<u8>]) -> FrameMut<'a> {
    let sizes = format.plane_sizes(w as usize, h as usize);
    FrameMut {
        format,
        width: w,
        height: h,
        planes: bufs
            .iter_mut()
            .zip(sizes)
            .map(|(data, (row, _))| PlaneMut { data, stride: row })
            .collect(),
        matrix: YuvMatrix::BT709,
    }
}
