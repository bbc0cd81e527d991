//! Runs a pipeline to its end: bus messages, Ctrl-C, and what the user sees meanwhile
//! (a live status line, or a progress bar with ETA).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

/// Ctrl-C presses since start (SIGINT and SIGTERM).
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

pub fn install_ctrlc() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // A failure only costs the clean stop; the default handler still ends us.
        let _ = ctrlc::set_handler(|| {
            INTERRUPTS.fetch_add(1, Ordering::SeqCst);
        });
    });
}

pub enum Report {
    /// A camera: a status line (frames/s, network time, matte age, dropped frames).
    Live,
    /// A file: a progress bar over the input's duration.
    Progress(Option<gst::ClockTime>),
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub frames: u64,
    pub seconds: f64,
    pub mean_inference_ms: f64,
    pub matte_age_mean_ms: f64,
    pub dropped: u64,
    pub interrupted: bool,
}

struct Stats {
    frames: u64,
    last_ms: f64,
    mean_ms: f64,
    /// How old the matte on the last frame was, and on average (realtime pacing).
    age_last_ms: f64,
    age_mean_ms: f64,
}

fn stats(pipeline: &gst::Pipeline) -> Option<Stats> {
    let s = pipeline
        .by_name("matte")?
        .property::<gst::Structure>("stats");
    Some(Stats {
        frames: s.get("frames").unwrap_or(0),
        last_ms: s.get("last-inference-ms").unwrap_or(0.0),
        mean_ms: s.get("mean-inference-ms").unwrap_or(0.0),
        age_last_ms: s.get("matte-age-last-ms").unwrap_or(0.0),
        age_mean_ms: s.get("matte-age-mean-ms").unwrap_or(0.0),
    })
}

fn error_text(e: &gst::message::Error) -> String {
    let src = e
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let mut text = format!("{src}: {}", e.error());
    if let Some(d) = e.debug() {
        text += &format!("\n  ({d})");
    }
    text
}

/// A line above the bar; on stderr directly when the bar is hidden (not a terminal),
/// where indicatif would drop it.
fn say(bar: &ProgressBar, msg: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", msg.as_ref());
    } else {
        bar.println(msg);
    }
}

/// Plays `pipeline` until EOS, an error, or Ctrl-C (which sends EOS so files are
/// finalised; a second Ctrl-C stops at once). Leaves it in NULL.
pub fn run(pipeline: &gst::Pipeline, report: Report) -> Result<Outcome> {
    install_ctrlc();
    let result = play(pipeline, report);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn play(pipeline: &gst::Pipeline, report: Report) -> Result<Outcome> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("pipeline has no bus"))?;
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus.
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(500)) {
            if let gst::MessageView::Error(e) = msg.view() {
                bail!("{}", error_text(e));
            }
        }
        bail!("the pipeline did not start");
    }

    let bar = match &report {
        Report::Live => {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        }
        Report::Progress(d) => {
            let b = ProgressBar::new(d.map(|d| d.mseconds()).unwrap_or(0));
            b.set_style(
                ProgressStyle::with_template(
                    "{wide_bar} {percent:>3}% {msg} elapsed {elapsed_precise}, ETA {eta_precise}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        }
    };

    let start = Instant::now();
    let mut out = Outcome::default();
    let mut dropped: HashMap<String, u64> = HashMap::new();
    let (mut last_tick, mut last_frames) = (Instant::now(), 0u64);
    let mut stopping_since: Option<Instant> = None;
    // Until the pipeline plays, an EOS would meet elements still starting (typefind
    // fails with a flow error); a Ctrl-C then just stops.
    let mut playing = false;
    loop {
        let presses = INTERRUPTS.load(Ordering::SeqCst);
        if presses >= 2 {
            out.interrupted = true;
            break;
        }
        if presses == 1 && !playing {
            out.interrupted = true;
            break;
        }
        if presses == 1 && stopping_since.is_none() {
            say(&bar, "stopping (Ctrl-C again to quit at once)");
            pipeline.send_event(gst::event::Eos::new());
            stopping_since = Some(Instant::now());
            out.interrupted = true;
        }
        if stopping_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            say(&bar, "no end of stream after 10 s: quitting");
            break;
        }

        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::StateChanged(sc)
                    if sc.src() == Some(pipeline.upcast_ref::<gst::Object>())
                        && sc.current() == gst::State::Playing =>
                {
                    playing = true;
                    if matches!(report, Report::Live) {
                        say(&bar, "running; Ctrl-C stops");
                    }
                }
                gst::MessageView::Error(e) => {
                    bar.finish_and_clear();
                    bail!("{}", error_text(e));
                }
                gst::MessageView::Warning(w) => {
                    let src = w.src().map(|s| s.path_string().to_string());
                    say(
                        &bar,
                        format!("warning: {}: {}", src.unwrap_or_default(), w.error()),
                    );
                }
                gst::MessageView::Qos(q) => {
                    let (_, d) = q.stats();
                    if let (Some(src), gst::GenericFormattedValue::Buffers(Some(d))) = (q.src(), d)
                    {
                        dropped.insert(src.path_string().to_string(), *d);
                    }
                }
                _ => {}
            }
        }

        if last_tick.elapsed() >= Duration::from_millis(500) {
            let st = stats(pipeline);
            let frames = st.as_ref().map(|s| s.frames).unwrap_or(0);
            let fps = (frames - last_frames.min(frames)) as f64 / last_tick.elapsed().as_secs_f64();
            (last_tick, last_frames) = (Instant::now(), frames);
            let net = st.as_ref().map(|s| s.last_ms).unwrap_or(0.0);
            let (age, age_mean) = st
                .as_ref()
                .map_or((0.0, 0.0), |s| (s.age_last_ms, s.age_mean_ms));
            let drops: u64 = dropped.values().sum();
            match &report {
                Report::Live => bar.set_message(format!(
                    "{fps:5.1} frames/s | network {net:5.0} ms | matte age {age:5.0} ms \
                     (mean {age_mean:5.0}) | dropped {drops} | {frames} frames"
                )),
                Report::Progress(_) => {
                    if let Some(pos) = pipeline.query_position::<gst::ClockTime>() {
                        bar.set_position(pos.mseconds());
                    }
                    bar.set_message(format!("frame {frames}, {fps:.1} frames/s"));
                }
            }
            bar.tick();
        }
    }
    bar.finish_and_clear();
    out.seconds = start.elapsed().as_secs_f64();
    if let Some(st) = stats(pipeline) {
        out.frames = st.frames;
        out.mean_inference_ms = st.mean_ms;
        out.matte_age_mean_ms = st.age_mean_ms;
    }
    out.dropped = dropped.values().sum();
    Ok(out)
}
