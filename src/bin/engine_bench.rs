//! The bare engine's device path on one frame size, as the element runs it but
//! without GStreamer: throughput and per-frame latency with N frames in flight, and
//! (`--stages`) each stage waited for and timed alone, whose sum is what a frame
//! would cost without overlap. Prints markdown table rows (scripts/gpu_check.sh
//! gathers them).
//!
//!     engine-bench --size 1920x1080 --device cuda --precision fp16 --in-flight 1,2 \
//!         --graphs off,on --batch 1,4,8 --stages

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
    /// Frames in flight (the element's max-in-flight; jobs, with batches); a comma
    /// list runs each.
    #[arg(long, default_value = "2", value_delimiter = ',')]
    in_flight: Vec<usize>,
    /// Frames per forward pass (the element's batch); a comma list runs each.
    #[arg(long, default_value = "1", value_delimiter = ',')]
    batch: Vec<usize>,
    /// CUDA graphs: on, off, or both (off,on); a fresh engine for each.
    #[arg(long, default_value = "on", value_delimiter = ',')]
    graphs: Vec<String>,
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
    /// Parity instead of timing: the device path's matte output (GRAY8) for the
    /// photo, at each --graphs and --batch past the graphs' warm-up, against this
    /// reference matte (16-bit grey PNG of the photo's size, tools/modnet/fixtures.py).
    /// Use --size equal to the photo's and --format rgb.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Largest accepted |diff| against --reference, in 1/255 steps (the output's own
    /// rounding to 8 bits included).
    #[arg(long, default_value_t = 2.0)]
    max_diff: f64,
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
    for graphs in &a.graphs {
        let on = match graphs.as_str() {
            "on" => true,
            "off" => false,
            other => bail!("--graphs {other}: expected on or off"),
        };
        let mut config = EngineConfig::new(&a.model);
        config.device = a.device;
        config.precision = a.precision;
        config.ref_size = a.ref_size;
        config.warmup_frame = Some((w, h));
        config.cuda_graphs = on;
        let engine = Arc::new(Engine::new(config)?);
        eprintln!("{} (graphs {graphs})", engine.device_note());
        match &a.reference {
            Some(reference) => parity(&a, &engine, &frame, graphs, reference)?,
            None => bench(&a, &engine, &frame, format, graphs)?,
        }
    }
    Ok(())
}

/// The device path's matte (output=matte) against a reference, past the graphs'
/// warm-up and capture, for each batch size; fails past --max-diff.
fn parity(
    a: &Args,
    engine: &Engine,
    frame: &modnetmatte::composite::OwnedFrame,
    graphs: &str,
    reference: &std::path::Path,
) -> Result<()> {
    let (w, h) = a.size;
    let r = image::open(reference)
        .with_context(|| format!("reference {}", reference.display()))?
        .to_luma16();
    if r.dimensions() != (w, h) {
        bail!("reference is {:?}, --size {w}x{h}", r.dimensions());
    }
    let spec = RenderSpec {
        output: OutputKind::Matte,
        background: BackgroundSource::Blur(1),
        threshold: 0.0,
        smoothing: 0.0,
    };
    let mut worst = 0.0f64;
    for &batch in &a.batch {
        let batch = batch.max(1);
        let (mut transfer, mut state) = engine.render_state()?;
        let mut last = Vec::new();
        for _ in 0..(modnetmatte::graphs::MATTE_WARM_UP + 3) {
            let frames = vec![frame.as_frame(); batch];
            let in_flight = engine.render_batch(
                &mut transfer,
                &mut state,
                &spec,
                &frames,
                &vec![true; batch],
            )?;
            last.clear();
            for f in in_flight {
                let mut out = vec![vec![0u8; (w * h) as usize]];
                let mut o = out_frame(PixelFormat::Gray8, w, h, &mut out);
                f.finish(&mut o)?;
                last.push(out.remove(0));
            }
        }
        let max = last
            .iter()
            .flat_map(|m| {
                m.iter()
                    .zip(r.as_raw())
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b) / 65535.0 * 255.0).abs())
            })
            .fold(0.0, f64::max);
        worst = worst.max(max);
        println!(
            "| parity | {w}x{h} {} | {} | {:?} | matte | graphs {graphs} | batch {batch} | max abs diff {max:.2}/255 (limit {}) | | {} |",
            a.format,
            engine.precision(),
            engine.device(),
            a.max_diff,
            graph_note(&state)
        );
    }
    if worst > a.max_diff {
        bail!(
            "max |diff| {worst:.2}/255 exceeds --max-diff {}",
            a.max_diff
        );
    }
    Ok(())
}

fn bench(
    a: &Args,
    engine: &Arc<Engine>,
    frame: &Arc<modnetmatte::composite::OwnedFrame>,
    format: PixelFormat,
    graphs: &str,
) -> Result<()> {
    let (w, h) = a.size;
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
        "| engine | {w}x{h} {} | {} | {} | {} | graphs {graphs}",
        a.format,
        engine.precision(),
        device,
        a.background
    );
    let sizes = format.plane_sizes(w as usize, h as usize);
    let out_planes = || -> Vec<Vec<u8>> { sizes.iter().map(|(r, n)| vec![0u8; r * n]).collect() };

    let shared = Arc::new(Mutex::new((transfer, state)));
    for &batch in &a.batch {
        for &in_flight in &a.in_flight {
            pipelined(
                a,
                engine,
                &shared,
                &spec,
                frame,
                in_flight,
                batch.max(1),
                &label,
            )?;
        }
    }
    if a.stages {
        let mut guard = shared
            .lock()
            .map_err(|_| anyhow::anyhow!("state poisoned"))?;
        let (transfer, state) = &mut *guard;
        transfer.set_sync_stages(true);
        engine.enter_stream()?;
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
        // With graphs, preprocess and postprocess are inside the network's replay.
        println!(
            "{label} | stages alone, batch 1 | upload {up:.2} + preprocess {pre:.2} + network {inf:.2} + postprocess {post:.2} + compositing {comp:.2} + download {down:.2} = {sum:.2} ms | {:.0} frames/s if not overlapped; {} |",
            1e3 / sum,
            graph_note(state)
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

/// What the CUDA graphs did, for a row's notes.
fn graph_note(state: &modnetmatte::render::RenderState) -> String {
    let g = state.graph_status();
    match g.failure {
        Some(why) => format!("graph capture FAILED: {why}"),
        None => format!("{} graphs captured, {} replays", g.captured, g.replays),
    }
}

/// Pipelined, as the element runs it: the worker issues job N+1 (a batch of frames)
/// before it waits for job N.
#[allow(clippy::too_many_arguments)]
fn pipelined(
    a: &Args,
    engine: &Arc<Engine>,
    shared: &Shared,
    spec: &RenderSpec,
    frame: &Arc<modnetmatte::composite::OwnedFrame>,
    in_flight: usize,
    batch: usize,
    label: &str,
) -> Result<()> {
    type Job = Result<Vec<Duration>, String>;
    let mut scheduler: Scheduler<Job> = Scheduler::new(engine.clone(), in_flight)?;
    let mut latencies = Vec::new();
    let mut started = None;
    // Whole batches: the warm-up rounded up (at least past the stages' warm-up runs
    // and capture), then the timed frames.
    let warm_jobs = a
        .warmup
        .div_ceil(batch as u32)
        .max(modnetmatte::graphs::MATTE_WARM_UP + 3);
    let timed_jobs = a.frames.div_ceil(batch as u32).max(1);
    let mut timed_frames = 0u32;
    let mut seen_jobs = 0u32;
    let mut collect = |done: Vec<Job>, latencies: &mut Vec<f64>| -> Result<()> {
        for r in done {
            let walls = r.map_err(anyhow::Error::msg)?;
            seen_jobs += 1;
            if seen_jobs == warm_jobs {
                started = Some(Instant::now());
            } else if seen_jobs > warm_jobs {
                timed_frames += walls.len() as u32;
                latencies.extend(walls.iter().map(|w| ms(*w)));
            }
        }
        Ok(())
    };
    for _ in 0..(warm_jobs + timed_jobs) {
        let (shared, spec, frame) = (shared.clone(), spec.clone(), frame.clone());
        let done = scheduler.submit_staged(move |engine: &Engine| {
            let issued = {
                let mut guard = match shared.lock() {
                    Ok(g) => g,
                    Err(_) => return Step::Done(Err("poisoned".into())),
                };
                let (transfer, state) = &mut *guard;
                let frames = vec![frame.as_frame(); batch];
                engine.render_batch(transfer, state, &spec, &frames, &vec![true; batch])
            };
            match issued {
                Err(e) => Step::Done(Err(e.to_string())),
                Ok(in_flight) => Step::Later(Box::new(move || {
                    let (w, h) = (frame.width, frame.height);
                    let mut out: Vec<Vec<u8>> =
                        frame.planes.iter().map(|p| vec![0u8; p.len()]).collect();
                    in_flight
                        .into_iter()
                        .map(|f| {
                            let mut o = out_frame(frame.format, w, h, &mut out);
                            f.finish(&mut o).map(|t| t.wall).map_err(|e| e.to_string())
                        })
                        .collect()
                })),
            }
        })?;
        collect(done, &mut latencies)?;
    }
    let done = scheduler.finish()?;
    collect(done, &mut latencies)?;
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    let fps = f64::from(timed_frames) / elapsed.as_secs_f64();
    let note = match shared.lock() {
        Ok(g) => graph_note(&g.1),
        Err(_) => "state poisoned".into(),
    };
    println!(
        "{label} | batch {batch}, in flight {in_flight} | {fps:.0} frames/s, {:.3} ms/frame | latency median {:.2} ms, p95 {:.2} ms | {note} |",
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
