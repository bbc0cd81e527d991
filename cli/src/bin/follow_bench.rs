//! A moving person, live at 30 frames/s, through `modnetmatte pacing=realtime
//! output=matte`, each output matte scored against that frame's true alpha: how
//! much room shows (true alpha < 5%, matte >= 50%, share of the frame) and how much
//! person is cut away (true alpha > 95%, matte < 50%, share of the person), per
//! follow-up step (none, follow-motion, learn-room, both) and ref-size. The person
//! is the astronaut photo cut out with the network's own matte at ref-size 512 over
//! the coffee-shop photo: sliding sideways, or leaning in towards the camera.
//!
//!     follow-bench --ref-size 512,256 --strip docs/follow.png

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[path = "../machine.rs"]
mod machine;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gst::prelude::*;
use image::{RgbImage, RgbaImage, imageops};
use modnetmatte::{Engine, EngineConfig, Frame, PixelFormat, YuvMatrix, composite};

const W: u32 = 1280;
const H: u32 = 720;
const FPS: u32 = 30;
/// One period of the motion, frames (4 s).
const PERIOD: usize = 120;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A moving person through realtime pacing, scored per frame"
)]
struct Args {
    #[arg(long, default_value = "512,256", value_delimiter = ',')]
    ref_size: Vec<u32>,
    /// Seconds scored, after `--settle` seconds.
    #[arg(long, default_value_t = 12.0)]
    seconds: f64,
    #[arg(long, default_value_t = 4.0)]
    settle: f64,
    #[arg(long, default_value = "slide,lean", value_delimiter = ',')]
    cases: Vec<String>,
    /// Where to write input | follow-ups off | on, for the slide at ref-size 512.
    #[arg(long)]
    strip: Option<PathBuf>,
    #[arg(long, default_value = "data/images")]
    images: PathBuf,
    #[arg(
        long,
        env = "MODNETMATTE_MODEL",
        default_value = "models/modnet_photographic.pt"
    )]
    model: PathBuf,
}

/// One period of the clip: YUY2 frames, their RGB (for the strip) and true alpha.
struct Clip {
    yuy2: Vec<Vec<u8>>,
    rgb: Vec<RgbImage>,
    truth: Vec<Vec<u8>>,
}

const STEPS: [(&str, bool, bool); 4] = [
    ("none (today)", false, false),
    ("follow-motion", true, false),
    ("learn-room", false, true),
    ("both (default)", true, true),
];

fn main() -> Result<()> {
    let a = Args::parse();
    gst::init()?;
    gstmodnet::plugin_register_static()?;
    println!("CPU: {} ({} cores)", machine::cpu_model(), num_cores());
    let cutout = cut_out(&a)?;
    let room = room(&a)?;
    println!(
        "\n| case | ref-size | follow-up | room shown mean % | worst frame % | person cut away mean % | matte age ms | follow ms/frame | out/source |"
    );
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut strip: Vec<Vec<u8>> = Vec::new();
    for case in &a.cases {
        let clip = make_clip(&cutout, &room, case)?;
        for &r in &a.ref_size {
            for (name, motion, learn) in STEPS {
                let row = run(&a, &clip, r, motion, learn)?;
                println!(
                    "| {case} | {r} | {name} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.3} |",
                    row.room_mean, row.room_worst, row.cut_mean, row.age, row.follow_ms, row.rate
                );
                if case == "slide" && r == 512 && (!motion && !learn || motion && learn) {
                    strip.push(row.sample);
                }
            }
        }
        if let (Some(path), true) = (&a.strip, case == "slide" && strip.len() == 2) {
            write_strip(path, &clip, &strip)?;
        }
    }
    Ok(())
}

/// The astronaut with the network's own matte (ref-size 512) as its alpha.
fn cut_out(a: &Args) -> Result<RgbaImage> {
    let photo = image::open(a.images.join("astronaut.png"))
        .context("data/images/astronaut.png (made by scripts/setup.sh)")?
        .to_rgb8();
    let mut config = EngineConfig::new(&a.model);
    config.ref_size = 512;
    let engine = Engine::new(config)?;
    let (w, h) = photo.dimensions();
    let (m, _) = engine.matte(&Frame::packed(photo.as_raw(), w, h, PixelFormat::Rgb))?;
    let mut out = RgbaImage::new(w, h);
    for (i, (p, o)) in photo.pixels().zip(out.pixels_mut()).enumerate() {
        let alpha = (m.alpha[i] * 255.0).round() as u8;
        *o = image::Rgba([p[0], p[1], p[2], alpha]);
    }
    Ok(out)
}

fn room(a: &Args) -> Result<RgbImage> {
    let scene = image::open(a.images.join("coffee.png"))
        .context("data/images/coffee.png")?
        .to_rgb8();
    Ok(imageops::resize(
        &scene,
        W,
        H,
        imageops::FilterType::Triangle,
    ))
}

/// Frame i of the period: the person's size and left edge.
fn placement(case: &str, i: usize) -> Result<(u32, i64)> {
    let phase = (i as f64 / PERIOD as f64) * std::f64::consts::TAU;
    Ok(match case {
        // 220 px amplitude, 4 s period: 345 px/s at the middle.
        "slide" => (
            600,
            (W as i64 - 600) / 2 + (220.0 * phase.sin()).round() as i64,
        ),
        // From 560 to 760 px tall and back, centred.
        "lean" => {
            let s = (660.0 - 100.0 * phase.cos()).round() as u32;
            (s, (W as i64 - s as i64) / 2)
        }
        other => bail!("--cases: {other:?} is not slide or lean"),
    })
}

fn make_clip(cutout: &RgbaImage, room: &RgbImage, case: &str) -> Result<Clip> {
    let mut clip = Clip {
        yuy2: Vec::new(),
        rgb: Vec::new(),
        truth: Vec::new(),
    };
    for i in 0..PERIOD {
        let (size, left) = placement(case, i)?;
        let person = imageops::resize(cutout, size, size, imageops::FilterType::Triangle);
        let top = H as i64 - size as i64;
        let mut rgb = room.clone();
        let mut truth = vec![0u8; (W * H) as usize];
        for (x, y, p) in person.enumerate_pixels() {
            let (fx, fy) = (left + x as i64, top + y as i64);
            if fx < 0 || fy < 0 || fx >= W as i64 || fy >= H as i64 {
                continue;
            }
            let a = f32::from(p[3]) / 255.0;
            let q = rgb.get_pixel_mut(fx as u32, fy as u32);
            for c in 0..3 {
                q[c] = (a * f32::from(p[c]) + (1.0 - a) * f32::from(q[c])).round() as u8;
            }
            truth[(fy as u32 * W + fx as u32) as usize] = p[3];
        }
        // The caps say colorimetry=bt601: the engine's BT.601 matrix, as the element reads them.
        let yuy2 = composite::from_rgb(PixelFormat::Yuy2, W, H, YuvMatrix::BT601, rgb.as_raw())?;
        clip.yuy2.push(
            yuy2.planes
                .into_iter()
                .next()
                .context("a YUY2 frame without its plane")?,
        );
        clip.rgb.push(rgb);
        clip.truth.push(truth);
    }
    Ok(clip)
}

struct Row {
    room_mean: f64,
    room_worst: f64,
    cut_mean: f64,
    age: f64,
    follow_ms: f64,
    rate: f64,
    /// The matte of the frame at the period's middle (fastest), the last seen.
    sample: Vec<u8>,
}

#[derive(Default)]
struct Scores {
    room: Vec<f64>,
    cut: Vec<f64>,
    frames: usize,
    sample: Vec<u8>,
}

fn run(a: &Args, clip: &Clip, ref_size: u32, motion: bool, learn: bool) -> Result<Row> {
    let desc = format!(
        "appsrc name=src is-live=true format=time block=true max-buffers=2 \
         caps=video/x-raw,format=YUY2,width={W},height={H},framerate={FPS}/1,colorimetry=bt601 \
         ! clocksync ! modnetmatte name=m model={} ref-size={ref_size} pacing=realtime output=matte \
         follow-motion={motion} learn-room={learn} ! appsink name=out sync=false",
        a.model.display()
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .context("appsrc")?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("appsink")?;
    let m = pipeline.by_name("m").context("the element")?;
    let frame_ns = 1_000_000_000u64 / u64::from(FPS);
    let settle = (a.settle * f64::from(FPS)) as u64;
    let total = settle + (a.seconds * f64::from(FPS)) as u64;
    let scores: Arc<Mutex<Scores>> = Arc::default();
    let out_times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    sink.set_callbacks(scorer(
        clip.truth.clone(),
        settle,
        scores.clone(),
        out_times.clone(),
    ));
    pipeline.set_state(gst::State::Playing)?;
    let started = Instant::now();
    for i in 0..total {
        let mut b = gst::Buffer::from_slice(clip.yuy2[i as usize % PERIOD].clone());
        if let Some(b) = b.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(i * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        if src.push_buffer(b).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let bus = pipeline.bus().context("bus")?;
    let limit = gst::ClockTime::from_seconds(60);
    if let Some(msg) =
        bus.timed_pop_filtered(limit, &[gst::MessageType::Eos, gst::MessageType::Error])
        && let gst::MessageView::Error(e) = msg.view()
    {
        pipeline.set_state(gst::State::Null)?;
        bail!("{}", e.error());
    }
    let stats = m.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null)?;
    let wall = started.elapsed();
    let s = scores.lock().map_err(|_| anyhow::anyhow!("scores"))?;
    if s.frames == 0 {
        bail!("no frame was scored");
    }
    let n_out = out_times.lock().map(|t| t.len()).unwrap_or(0);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let f = |k: &str| stats.get::<f64>(k).unwrap_or(f64::NAN);
    let expected = wall.as_secs_f64().min(total as f64 / f64::from(FPS)) * f64::from(FPS);
    Ok(Row {
        room_mean: mean(&s.room),
        room_worst: s.room.iter().copied().fold(0.0, f64::max),
        cut_mean: mean(&s.cut),
        age: f(gstmodnet::stats_fields::MATTE_AGE_MEAN_MS),
        follow_ms: f(gstmodnet::stats_fields::MEAN_FOLLOW_MS),
        rate: (n_out as f64 / expected).min(1.0),
        sample: s.sample.clone(),
    })
}

/// The appsink's callbacks: each matte after `settle` frames scored against its
/// frame's true alpha into `scores`; every output's arrival into `times`.
fn scorer(
    truth: Vec<Vec<u8>>,
    settle: u64,
    scores: Arc<Mutex<Scores>>,
    times: Arc<Mutex<Vec<Instant>>>,
) -> gst_app::AppSinkCallbacks {
    let frame_ns = 1_000_000_000u64 / u64::from(FPS);
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |s| {
            let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            times.lock().map(|mut t| t.push(Instant::now())).ok();
            let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
            let i = buf.pts().map_or(0, |p| p.nseconds() / frame_ns);
            if i < settle {
                return Ok(gst::FlowSuccess::Ok);
            }
            let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
            let t = &truth[i as usize % PERIOD];
            let stride = map.len() / H as usize;
            let (mut room, mut person, mut cut) = (0u64, 0u64, 0u64);
            for y in 0..H as usize {
                let row = &map[y * stride..][..W as usize];
                for (m, &tr) in row.iter().zip(&t[y * W as usize..][..W as usize]) {
                    room += u64::from(tr < 13 && *m >= 128);
                    person += u64::from(tr > 242);
                    cut += u64::from(tr > 242 && *m < 128);
                }
            }
            if let Ok(mut s) = scores.lock() {
                s.room.push(room as f64 / f64::from(W * H) * 100.0);
                s.cut.push(cut as f64 / person.max(1) as f64 * 100.0);
                s.frames += 1;
                if i as usize % PERIOD == PERIOD / 2 {
                    s.sample = (0..H as usize)
                        .flat_map(|y| map[y * stride..][..W as usize].to_vec())
                        .collect();
                }
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// input | matte with the follow-ups off | on, each over grey, at half size.
fn write_strip(path: &PathBuf, clip: &Clip, mattes: &[Vec<u8>]) -> Result<()> {
    let input = &clip.rgb[PERIOD / 2];
    let (w, h) = (W / 2, H / 2);
    let mut strip = RgbImage::new(w * 3, h);
    let tiles: Vec<RgbImage> = std::iter::once(input.clone())
        .chain(mattes.iter().map(|m| {
            let mut o = input.clone();
            for (i, p) in o.pixels_mut().enumerate() {
                let a = f32::from(m.get(i).copied().unwrap_or(0)) / 255.0;
                for c in 0..3 {
                    p[c] = (a * f32::from(p[c]) + (1.0 - a) * 40.0).round() as u8;
                }
            }
            o
        }))
        .collect();
    for (k, t) in tiles.iter().enumerate() {
        let small = imageops::resize(t, w, h, imageops::FilterType::Triangle);
        imageops::replace(&mut strip, &small, i64::from(k as u32 * w), 0);
    }
    strip
        .save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
