//! Runs a pipeline to its end: bus messages, Ctrl-C, and what the user sees meanwhile
//! (a live status line, or a progress bar with ETA).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use gst::prelude::*;
use gstmodnet::stats_fields as f;
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
        frames: s.get(f::FRAMES).unwrap_or(0),
        last_ms: s.get(f::LAST_INFERENCE_MS).unwrap_or(0.0),
        mean_ms: s.get(f::MEAN_INFERENCE_MS).unwrap_or(0.0),
        age_last_ms: s.get(f::MATTE_AGE_LAST_MS).unwrap_or(0.0),
        age_mean_ms: s.get(f::MATTE_AGE_MEAN_MS).unwrap_or(0.0),
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
    start_playing(pipeline, &bus)?;
    let mut watch = Watch::new(pipeline, report);
    let result = watch.until_the_end(&bus);
    watch.bar.finish_and_clear();
    result?;
    let mut out = watch.out;
    out.seconds = watch.start.elapsed().as_secs_f64();
    if let Some(st) = stats(pipeline) {
        out.frames = st.frames;
        out.mean_inference_ms = st.mean_ms;
        out.matte_age_mean_ms = st.age_mean_ms;
    }
    out.dropped = watch.dropped.values().sum();
    Ok(out)
}

/// Sets the pipeline playing, or says why it did not start (from the bus).
fn start_playing(pipeline: &gst::Pipeline, bus: &gst::Bus) -> Result<()> {
    if pipeline.set_state(gst::State::Playing).is_ok() {
        return Ok(());
    }
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(500)) {
        if let gst::MessageView::Error(e) = msg.view() {
            bail!("{}", error_text(e));
        }
    }
    bail!("the pipeline did not start")
}

/// A spinner with a status line (a camera), or a bar over the input's duration.
fn progress_bar(report: &Report) -> ProgressBar {
    match report {
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
    }
}

/// A playing pipeline watched until its end: Ctrl-C, bus messages, the status line.
struct Watch<'a> {
    pipeline: &'a gst::Pipeline,
    report: Report,
    bar: ProgressBar,
    start: Instant,
    out: Outcome,
    /// Frames each element reported dropped (QoS).
    dropped: HashMap<String, u64>,
    last_tick: Instant,
    last_frames: u64,
    stopping_since: Option<Instant>,
    /// Until the pipeline plays, an EOS would meet elements still starting (typefind
    /// fails with a flow error); a Ctrl-C then just stops.
    playing: bool,
}

impl<'a> Watch<'a> {
    fn new(pipeline: &'a gst::Pipeline, report: Report) -> Self {
        Self {
            pipeline,
            bar: progress_bar(&report),
            report,
            start: Instant::now(),
            out: Outcome::default(),
            dropped: HashMap::new(),
            last_tick: Instant::now(),
            last_frames: 0,
            stopping_since: None,
            playing: false,
        }
    }

    fn until_the_end(&mut self, bus: &gst::Bus) -> Result<()> {
        while !self.interrupted() {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100))
                && self.handle(&msg)?
            {
                return Ok(());
            }
            if self.last_tick.elapsed() >= Duration::from_millis(500) {
                self.tick();
            }
        }
        Ok(())
    }

    /// Ctrl-C: the first sends EOS (files are finalised), the second, or one before
    /// the pipeline plays, stops at once; true when the loop must end now.
    fn interrupted(&mut self) -> bool {
        let presses = INTERRUPTS.load(Ordering::SeqCst);
        if presses >= 2 || (presses == 1 && !self.playing) {
            self.out.interrupted = true;
            return true;
        }
        if presses == 1 && self.stopping_since.is_none() {
            say(&self.bar, "stopping (Ctrl-C again to quit at once)");
            self.pipeline.send_event(gst::event::Eos::new());
            self.stopping_since = Some(Instant::now());
            self.out.interrupted = true;
        }
        if self
            .stopping_since
            .is_some_and(|t| t.elapsed() > Duration::from_secs(10))
        {
            say(&self.bar, "no end of stream after 10 s: quitting");
            return true;
        }
        false
    }

    /// One bus message; true at the end of the stream.
    fn handle(&mut self, msg: &gst::Message) -> Result<bool> {
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(true),
            gst::MessageView::StateChanged(sc)
                if sc.src() == Some(self.pipeline.upcast_ref::<gst::Object>())
                    && sc.current() == gst::State::Playing =>
            {
                self.playing = true;
                if matches!(self.report, Report::Live) {
                    say(&self.bar, "running; Ctrl-C stops");
                }
            }
            gst::MessageView::Error(e) => bail!("{}", error_text(e)),
            gst::MessageView::Warning(w) => {
                let src = w.src().map(|s| s.path_string().to_string());
                say(
                    &self.bar,
                    format!("warning: {}: {}", src.unwrap_or_default(), w.error()),
                );
            }
            gst::MessageView::Qos(q) => {
                let (_, d) = q.stats();
                if let (Some(src), gst::GenericFormattedValue::Buffers(Some(d))) = (q.src(), d) {
                    self.dropped.insert(src.path_string().to_string(), *d);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    /// The status line or the bar, from the element's stats.
    fn tick(&mut self) {
        let st = stats(self.pipeline);
        let frames = st.as_ref().map(|s| s.frames).unwrap_or(0);
        let fps =
            (frames - self.last_frames.min(frames)) as f64 / self.last_tick.elapsed().as_secs_f64();
        (self.last_tick, self.last_frames) = (Instant::now(), frames);
        let net = st.as_ref().map(|s| s.last_ms).unwrap_or(0.0);
        let (age, age_mean) = st
            .as_ref()
            .map_or((0.0, 0.0), |s| (s.age_last_ms, s.age_mean_ms));
        let drops: u64 = self.dropped.values().sum();
        match &self.report {
            Report::Live => self.bar.set_message(format!(
                "{fps:5.1} frames/s | network {net:5.0} ms | matte age {age:5.0} ms \
                 (mean {age_mean:5.0}) | dropped {drops} | {frames} frames"
            )),
            Report::Progress(_) => {
                if let Some(pos) = self.pipeline.query_position::<gst::ClockTime>() {
                    self.bar.set_position(pos.mseconds());
                }
                self.bar
                    .set_message(format!("frame {frames}, {fps:.1} frames/s"));
            }
        }
        self.bar.tick();
    }
}
