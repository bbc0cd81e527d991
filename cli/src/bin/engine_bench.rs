//! The bare engine's device path on one frame size, as the element runs it but
//! without GStreamer: throughput and per-frame latency with N frames in flight, and
//! (`--stages`) each stage waited for and timed alone, whose sum is what a frame
//! would cost without overlap. Prints markdown table rows (scripts/gpu_check.sh
//! gathers them).
//!
//!     engine-bench --size 1920x1080 --device cuda --precision fp16 --in-flight 1,2 \
//!         --graphs off,on --batch 1,4,8 --stages

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use modnetmatte::OwnedFrame;
use modnetmatte::composite;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::frame::parse_size;
use modnetmatte::worker::ordered::{Scheduler, Step};
use modnetmatte::{
    DevicePath, DeviceRequest, Engine, EngineConfig, FrameMut, InFlight, PixelFormat, Precision,
    StageTimings, YuvMatrix,
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

/// One engine's runs: the arguments, the frame, the output asked for, the row label.
struct Bench<'a> {
    a: &'a Args,
    engine: Arc<Engine>,
    frame: Arc<OwnedFrame>,
    spec: OutputSpec,
    graphs: &'a str,
    label: String,
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
        let bench = Bench::new(&a, graphs, frame.clone())?;
        match &a.reference {
            Some(reference) => bench.parity(reference)?,
            None => bench.timing()?,
        }
    }
    Ok(())
}

impl<'a> Bench<'a> {
    /// A fresh engine for one `--graphs` value.
    fn new(a: &'a Args, graphs: &'a str, frame: Arc<OwnedFrame>) -> Result<Self> {
        let mut config = EngineConfig::new(&a.model);
        config.device = a.device;
        config.precision = a.precision;
        config.ref_size = a.ref_size;
        config.warmup_frame = Some(a.size);
        config.cuda_graphs = match graphs {
            "on" => true,
            "off" => false,
            other => bail!("--graphs {other}: expected on or off"),
        };
        let engine = Arc::new(Engine::new(config)?);
        eprintln!("{} (graphs {graphs})", engine.device_note());
        let (w, h) = a.size;
        let (output, background) = match (&a.reference, a.background.as_str()) {
            (Some(_), _) => (OutputKind::Matte, BackgroundSource::Blur(1)),
            (None, "blur") => (OutputKind::Composite, BackgroundSource::Blur(16)),
            (None, "color") => (
                OutputKind::Composite,
                BackgroundSource::Frame(Arc::new(composite::solid(
                    frame.format,
                    w,
                    h,
                    YuvMatrix::BT709,
                    [0, 177, 64],
                ))),
            ),
            (None, other) => bail!("background {other}: expected color or blur"),
        };
        let label = format!(
            "| engine | {w}x{h} {} | {} | {} | {} | graphs {graphs}",
            a.format,
            engine.precision(),
            format!("{:?}", engine.device()).to_lowercase(),
            a.background
        );
        Ok(Self {
            a,
            engine,
            frame,
            spec: OutputSpec {
                output,
                background,
                threshold: 0.0,
                smoothing: 0.0,
            },
            graphs,
            label,
        })
    }

    /// The device path's matte (output=matte) against a reference, past the graphs'
    /// warm-up and capture, for each batch size; fails past --max-diff.
    fn parity(&self, reference: &Path) -> Result<()> {
        let (a, (w, h)) = (self.a, self.a.size);
        let r = image::open(reference)
            .with_context(|| format!("reference {}", reference.display()))?
            .to_luma16();
        if r.dimensions() != (w, h) {
            bail!("reference is {:?}, --size {w}x{h}", r.dimensions());
        }
        let mut worst = 0.0f64;
        for &batch in &a.batch {
            let batch = batch.max(1);
            let mut path = DevicePath::new(&self.engine)?;
            let mut last = Vec::new();
            for _ in 0..(modnetmatte::gpu::graphs::MATTE_WARM_UP + 3) {
                let frames = vec![self.frame.as_frame(); batch];
                let flags = vec![true; batch];
                let in_flight = path.run_batch(&self.engine, &self.spec, &frames, &flags, batch)?;
                last =
                    finish_all(in_flight, PixelFormat::Gray8, w, h).map_err(anyhow::Error::msg)?;
            }
            let max = last
                .iter()
                .flat_map(|(_, m)| {
                    m[0].iter()
                        .zip(r.as_raw())
                        .map(|(&a, &b)| (f64::from(a) - f64::from(b) / 65535.0 * 255.0).abs())
                })
                .fold(0.0, f64::max);
            worst = worst.max(max);
            println!(
                "| parity | {w}x{h} {} | {} | {:?} | matte | graphs {} | batch {batch} | max abs diff {max:.2}/255 (limit {}) | | {} |",
                a.format,
                self.engine.precision(),
                self.engine.device(),
                self.graphs,
                a.max_diff,
                graph_note(&path)
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

    /// Pipelined rows for every batch and depth, then (`--stages`) the stages alone.
    fn timing(&self) -> Result<()> {
        let shared = Arc::new(Mutex::new(DevicePath::new(&self.engine)?));
        for &batch in &self.a.batch {
            for &in_flight in &self.a.in_flight {
                self.pipelined(&shared, in_flight, batch.max(1))?;
            }
        }
        if self.a.stages {
            let mut path = shared
                .lock()
                .map_err(|_| anyhow::anyhow!("state poisoned"))?;
            self.stages_alone(&mut path)?;
        }
        Ok(())
    }

    /// Each stage waited for and timed alone, batch 1; their medians and sum.
    fn stages_alone(&self, path: &mut DevicePath) -> Result<()> {
        let (a, f) = (self.a, &self.frame);
        path.set_sync_stages(true);
        let mut rows: Vec<StageTimings> = Vec::new();
        for i in 0..(a.warmup + a.frames) {
            let in_flight = path.run(&self.engine, &self.spec, &f.as_frame(), true)?;
            let done = finish_all(vec![in_flight], f.format, f.width, f.height)
                .map_err(anyhow::Error::msg)?;
            if i >= a.warmup {
                rows.extend(done.into_iter().map(|(t, _)| t));
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
            "{} | stages alone, batch 1 | upload {up:.2} + preprocess {pre:.2} + network {inf:.2} + postprocess {post:.2} + compositing {comp:.2} + download {down:.2} = {sum:.2} ms | {:.0} frames/s if not overlapped; {} |",
            self.label,
            1e3 / sum,
            graph_note(path)
        );
        Ok(())
    }

    /// Pipelined, as the element runs it: the worker issues job N+1 (a batch of
    /// frames) before it waits for job N.
    fn pipelined(
        &self,
        shared: &Arc<Mutex<DevicePath>>,
        in_flight: usize,
        batch: usize,
    ) -> Result<()> {
        let mut scheduler: Scheduler<Job> = Scheduler::new(self.engine.clone(), in_flight)?;
        // Whole batches: the warm-up rounded up (at least past the stages' warm-up
        // runs and capture), then the timed frames.
        let warm_jobs = self
            .a
            .warmup
            .div_ceil(batch as u32)
            .max(modnetmatte::gpu::graphs::MATTE_WARM_UP + 3);
        let timed_jobs = self.a.frames.div_ceil(batch as u32).max(1);
        let mut seen = Seen::new(warm_jobs);
        for _ in 0..(warm_jobs + timed_jobs) {
            let (shared, spec, frame) = (shared.clone(), self.spec.clone(), self.frame.clone());
            let done = scheduler.submit_staged(move |engine: &Engine| {
                batch_job(engine, &shared, &spec, frame, batch)
            })?;
            seen.take(done)?;
        }
        seen.take(scheduler.finish()?)?;
        let fps = f64::from(seen.timed_frames) / seen.elapsed().as_secs_f64();
        let note = match shared.lock() {
            Ok(g) => graph_note(&g),
            Err(_) => "state poisoned".into(),
        };
        println!(
            "{} | batch {batch}, in flight {in_flight} | {fps:.0} frames/s, {:.3} ms/frame | latency median {:.2} ms, p95 {:.2} ms | {note} |",
            self.label,
            1e3 / fps,
            median(&mut seen.latencies),
            p95(&mut seen.latencies)
        );
        Ok(())
    }
}

/// A job's frames' latencies, or why it failed.
type Job = Result<Vec<Duration>, String>;

/// One job on the worker: the batch issued now, waited for in its second step.
fn batch_job(
    engine: &Engine,
    shared: &Mutex<DevicePath>,
    spec: &OutputSpec,
    frame: Arc<OwnedFrame>,
    batch: usize,
) -> Step<Job> {
    let issued = match shared.lock() {
        Ok(mut path) => {
            let frames = vec![frame.as_frame(); batch];
            path.run_batch(engine, spec, &frames, &vec![true; batch], batch)
        }
        Err(_) => return Step::Done(Err("poisoned".into())),
    };
    match issued {
        Err(e) => Step::Done(Err(e.to_string())),
        Ok(in_flight) => Step::Later(Box::new(move || {
            let done = finish_all(in_flight, frame.format, frame.width, frame.height)?;
            Ok(done.into_iter().map(|(t, _)| t.wall).collect())
        })),
    }
}

/// Jobs seen so far: the clock starts after the warm-up jobs.
struct Seen {
    warm_jobs: u32,
    jobs: u32,
    timed_frames: u32,
    started: Option<Instant>,
    latencies: Vec<f64>,
}

impl Seen {
    fn new(warm_jobs: u32) -> Self {
        Self {
            warm_jobs,
            jobs: 0,
            timed_frames: 0,
            started: None,
            latencies: Vec::new(),
        }
    }

    fn take(&mut self, done: Vec<Job>) -> Result<()> {
        for r in done {
            let walls = r.map_err(anyhow::Error::msg)?;
            self.jobs += 1;
            if self.jobs == self.warm_jobs {
                self.started = Some(Instant::now());
            } else if self.jobs > self.warm_jobs {
                self.timed_frames += walls.len() as u32;
                self.latencies.extend(walls.iter().map(|w| ms(*w)));
            }
        }
        Ok(())
    }

    fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }
}

/// What the CUDA graphs did, for a row's notes.
fn graph_note(path: &DevicePath) -> String {
    let g = path.graph_status();
    match g.failure {
        Some(why) => format!("graph capture FAILED: {why}"),
        None => format!("{} graphs captured, {} replays", g.captured, g.replays),
    }
}

/// A frame's timings and output planes (tight rows).
type Finished = (StageTimings, Vec<Vec<u8>>);

/// Waits for each frame; its timings and output planes.
fn finish_all(
    in_flight: Vec<InFlight>,
    format: PixelFormat,
    w: u32,
    h: u32,
) -> std::result::Result<Vec<Finished>, String> {
    let sizes = format.plane_sizes(w as usize, h as usize);
    in_flight
        .into_iter()
        .map(|f| {
            let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|(r, n)| vec![0u8; r * n]).collect();
            let mut out = FrameMut::over(format, w, h, &mut bufs, 0);
            let t = f.finish(&mut out).map_err(|e| e.to_string())?;
            Ok((t, bufs))
        })
        .collect()
}
