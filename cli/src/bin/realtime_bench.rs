//! A live source (`videotestsrc is-live=true`, the camera's stand-in) through
//! `modnetmatte` into a synchronised sink for a fixed time, per pacing and ref-size:
//! output frames/s against the source's, the matte's age, the compositing time per
//! frame. One markdown table row per configuration, all run side by side here.
//!
//!     realtime-bench --size 1280x720 --pacing realtime,every-frame --ref-size 512,256

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../machine.rs"]
mod machine;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gst::prelude::*;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A live source through modnetmatte: frames/s out against in"
)]
struct Args {
    #[arg(long, default_value = "1280x720")]
    size: String,
    #[arg(long, default_value = "YUY2")]
    format: String,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds measured, from the first frame out.
    #[arg(long, default_value_t = 12.0)]
    seconds: f64,
    #[arg(long, default_value = "realtime,every-frame", value_delimiter = ',')]
    pacing: Vec<String>,
    #[arg(long, default_value = "512,256", value_delimiter = ',')]
    ref_size: Vec<u32>,
    /// Further element properties, e.g. "background=blur device=cpu".
    #[arg(long, default_value = "")]
    props: String,
    #[arg(
        long,
        env = "MODNETMATTE_MODEL",
        default_value = "models/modnet_photographic.pt"
    )]
    model: String,
}

fn main() -> Result<()> {
    let a = Args::parse();
    gst::init()?;
    gstmodnet::plugin_register_static()?;
    println!("CPU: {}", machine::cpu_model());
    println!(
        "{} {} at {} frames/s, {} s from the first frame out\n",
        a.size, a.format, a.fps, a.seconds
    );
    println!(
        "| pacing | ref-size | frames out/s | out/source | matte age mean ms | max ms | frames with an earlier matte | without a matte | compositing ms/frame | network ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ref_size in &a.ref_size {
        for pacing in &a.pacing {
            run(&a, pacing, *ref_size)?;
        }
    }
    Ok(())
}

/// One configuration: PLAYING until `seconds` after the first frame out, then the row.
fn run(a: &Args, pacing: &str, ref_size: u32) -> Result<()> {
    let (w, h) = a.size.split_once('x').context("--size: WIDTHxHEIGHT")?;
    let desc = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,format={},width={w},height={h},framerate={}/1 \
         ! modnetmatte name=m model={} ref-size={ref_size} pacing={pacing} {} ! fakesink sync=true",
        a.format, a.fps, a.model, a.props
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let m = pipeline.by_name("m").context("the element")?;
    let out: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = out.clone();
    m.static_pad("src")
        .context("src pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            seen.lock().map(|mut v| v.push(Instant::now())).ok();
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("bus")?;
    let window = Duration::from_secs_f64(a.seconds);
    let deadline = Instant::now() + window + Duration::from_secs(120);
    loop {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error],
        ) {
            pipeline.set_state(gst::State::Null)?;
            bail!("{msg:?}");
        }
        let first = out.lock().ok().and_then(|v| v.first().copied());
        if first.is_some_and(|t| t.elapsed() >= window) || Instant::now() > deadline {
            break;
        }
    }
    let stats = m.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null)?;
    let times = out.lock().map(|v| v.clone()).unwrap_or_default();
    let first = times.first().copied().context("no frame came out")?;
    let n = times.iter().filter(|t| **t - first < window).count();
    let rate = n as f64 / a.seconds;
    let f = |k: &str| stats.get::<f64>(k).unwrap_or(f64::NAN);
    let u = |k: &str| stats.get::<u64>(k).unwrap_or(0);
    println!(
        "| {pacing} | {ref_size} | {rate:.1} | {:.3} | {:.0} | {:.0} | {} | {} | {:.2} | {:.0} |",
        rate / a.fps as f64,
        f("matte-age-mean-ms"),
        f("matte-age-max-ms"),
        u("frames-earlier-matte"),
        u("frames-without-matte"),
        f("mean-compositing-ms"),
        f("mean-inference-ms"),
    );
    Ok(())
}
