//! `modnetmatte`: the person cut out of a webcam or a video file, the background
//! replaced, written to a virtual camera, a file or a window. Each command builds a
//! GStreamer pipeline around the `modnetmatte` element (linked in, no plugin path
//! needed) and runs it.

mod describe;
mod media;
mod options;
mod run;
mod v4l2;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use gst::prelude::*;

use describe::{Container, FileOut, Geometry, Pacing};
use options::{Backdrop, GeometryArgs, MatteArgs};

const EXAMPLES: &str = "\
Examples:
  modnetmatte cam                                   blurred background, first virtual camera
  modnetmatte cam -b beach.jpg --mirror             a picture behind you, selfie view
  modnetmatte cam -b green --size 1280x720 --fps 30 -o /dev/video10
  modnetmatte file talk.mp4 talk-office.mp4 -b office.jpg
  modnetmatte file talk.mp4 talk-alpha.mov --alpha  transparent person (ProRes 4444)
  modnetmatte preview                               original and result side by side

A virtual camera needs v4l2loopback:
  sudo apt install v4l2loopback-dkms
  sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"modnetmatte\" exclusive_caps=1";

/// Cut the person out of live video and replace the background (MODNet portrait
/// matting), for video calls, streaming and video files.
#[derive(Debug, Parser)]
#[command(name = "modnetmatte", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print the GStreamer pipeline instead of running it (gst-launch-1.0 syntax).
    #[arg(long, global = true)]
    print_pipeline: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Webcam -> background replaced -> virtual camera (Zoom, Meet, Teams, OBS).
    Cam(CamArgs),
    /// Matte a video file: background replaced, or a transparent person with --alpha.
    File(FileArgs),
    /// Show the camera (or a video file) and the result side by side in a window.
    Preview(PreviewArgs),
    /// List cameras and virtual cameras.
    Devices,
}

#[derive(Debug, Args)]
struct CamArgs {
    /// Camera device, or a video file standing in for one.
    #[arg(short, long, default_value = "/dev/video0", value_name = "DEVICE")]
    camera: PathBuf,
    /// Virtual camera (v4l2loopback) to write to [default: the first one found], or
    /// `null` to run without one (to try the camera and see the speed).
    #[arg(short, long, value_name = "DEVICE")]
    output: Option<String>,
    /// Stop after N frames.
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    #[command(flatten)]
    geometry: GeometryArgs,
    #[command(flatten)]
    matte: MatteArgs,
}

#[derive(Debug, Args)]
struct FileArgs {
    /// Video file to read (anything GStreamer decodes); its audio is kept.
    input: PathBuf,
    /// File to write: .mp4 (H.264 + AAC), .webm (VP8 + Opus), .mkv or .mov; with
    /// --alpha .mov (ProRes 4444) or .mkv (FFV1).
    output: PathBuf,
    /// Keep the person on a transparent background instead of replacing it.
    #[arg(long)]
    alpha: bool,
    /// Replace OUTPUT if it exists.
    #[arg(short = 'y', long)]
    overwrite: bool,
    #[command(flatten)]
    geometry: GeometryArgs,
    #[command(flatten)]
    matte: MatteArgs,
}

#[derive(Debug, Args)]
struct PreviewArgs {
    /// Camera device or video file.
    #[arg(default_value = "/dev/video0")]
    source: PathBuf,
    /// Stop after N frames.
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Video sink for the window (autovideosink, xvimagesink, glimagesink, ...).
    #[arg(long, default_value = "autovideosink", value_name = "ELEMENT")]
    sink: String,
    #[command(flatten)]
    geometry: GeometryArgs,
    #[command(flatten)]
    matte: MatteArgs,
}

fn init_gstreamer() -> Result<()> {
    gst::init().context("GStreamer did not initialise")?;
    // The element is linked into this program. Registering it replaces the factory of
    // an installed copy (possibly another version) for this process only.
    gstmodnet::plugin_register_static().context("registering the modnetmatte element")?;
    Ok(())
}

/// A camera, or a regular file standing in for one: the source fragment (ending in
/// raw video), its geometry, and the pacing it gets: realtime for a camera, every
/// frame its own matte for a file (a snapshot such as `preview --frames 1` would
/// otherwise go out before the first matte, background only).
fn open_source(path: &Path, g: &GeometryArgs) -> Result<(String, Geometry, Pacing)> {
    if path.is_file() {
        let info = media::discover(path, "input")?;
        return Ok((
            describe::file_source(path),
            info.geometry,
            Pacing::EveryFrame,
        ));
    }
    let (w, h) = g.size.unwrap_or((1280, 720));
    let fps = g.fps.unwrap_or(30) as i32;
    let mode = v4l2::probe_camera(path, (w, h, fps))?;
    Ok((
        v4l2::camera_source(path, &mode),
        mode.geometry,
        Pacing::Realtime,
    ))
}

fn parse(desc: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(desc)
        .map_err(|e| anyhow!("the pipeline does not build: {e}\n  {desc}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("the description is not a pipeline"))
}

/// With a video background: starts its loop into `bgsrc`, and ends it with the matted
/// stream: the loop stops once it covers that stream's end, and the compositor's
/// frames past the last matted one (made from background frames already queued) are
/// dropped, so the output has exactly the input's frames.
fn attach_background(
    pipeline: &gst::Pipeline,
    m: &MatteArgs,
    size: (u32, u32),
) -> Result<Option<media::LoopedVideo>> {
    let Backdrop::Video(path) = &m.background else {
        return Ok(None);
    };
    let appsrc = pipeline
        .by_name("bgsrc")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .context("pipeline has no appsrc `bgsrc`")?;
    let matte_src = pipeline
        .by_name("matte")
        .and_then(|e| e.static_pad("src"))
        .context("pipeline has no element `matte`")?;
    let mix_src = pipeline
        .by_name("bgmix")
        .and_then(|e| e.static_pad("src"))
        .context("pipeline has no compositor `bgmix`")?;
    // Running time where the matted stream ends, set when its EOS passes the element's
    // src pad: before the compositor sees that EOS, and so before it can make a frame
    // past the end.
    let end: media::StreamEnd = Arc::new(Mutex::new(None));
    let last_stop = Arc::new(Mutex::new(None::<gst::ClockTime>));
    let end_in = end.clone();
    matte_src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let mut last = last_stop.lock().unwrap_or_else(|p| p.into_inner());
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    let seg = pad
                        .sticky_event::<gst::event::Segment>(0)
                        .and_then(|s| s.segment().clone().downcast::<gst::ClockTime>().ok());
                    if let (Some(seg), Some(pts)) = (seg, b.pts()) {
                        let stop = pts + b.duration().unwrap_or(gst::ClockTime::ZERO);
                        *last = seg.to_running_time(stop).or(*last);
                    }
                }
                Some(gst::PadProbeData::Event(ev)) if ev.type_() == gst::EventType::Eos => {
                    // ZERO when nothing was matted: the background ends at once.
                    *end_in.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(last.unwrap_or(gst::ClockTime::ZERO));
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let end_out = end.clone();
    mix_src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let end = *end_out.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(gst::PadProbeData::Buffer(b)), Some(stop)) = (&info.data, end)
            && b.pts().is_some_and(|pts| pts >= stop)
        {
            return gst::PadProbeReturn::Drop;
        }
        gst::PadProbeReturn::Ok
    });
    Ok(Some(media::LoopedVideo::start(path, size, appsrc, end)?))
}

fn summary(what: &str, o: &run::Outcome) {
    let fps = if o.seconds > 0.0 {
        o.frames as f64 / o.seconds
    } else {
        0.0
    };
    eprintln!(
        "{what}: {} frames in {:.1} s ({fps:.2} frames/s), network {:.1} ms per frame, \
         matte age {:.0} ms on average, {} dropped{}",
        o.frames,
        o.seconds,
        o.mean_inference_ms,
        o.matte_age_mean_ms,
        o.dropped,
        if o.interrupted {
            ", stopped by Ctrl-C"
        } else {
            ""
        }
    );
}

fn cam(a: CamArgs, print: bool) -> Result<()> {
    let (source, input, pacing) = open_source(&a.camera, &a.geometry)?;
    let output = match a.output.as_deref() {
        Some("null") => None,
        Some(dev) => {
            let dev = PathBuf::from(dev);
            if !dev.exists() {
                bail!(
                    "virtual camera {}: no such device. Make one with:\n  {}",
                    dev.display(),
                    v4l2::MODPROBE
                );
            }
            Some(dev)
        }
        None => Some(v4l2::first_loopback(&v4l2::devices()?)?),
    };
    let desc = describe::cam(
        &source,
        a.frames,
        &a.geometry,
        &a.matte,
        output.as_deref(),
        pacing,
    );
    if print {
        println!("{desc}");
        return Ok(());
    }
    let out = input.shaped(&a.geometry);
    let pipeline = parse(&desc)?;
    let _bg = attach_background(&pipeline, &a.matte, (out.width, out.height))?;
    eprintln!(
        "{} -> {} at {}x{}",
        a.camera.display(),
        output
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "nothing (--output null)".into()),
        out.width,
        out.height
    );
    let o = run::run(&pipeline, run::Report::Live)?;
    summary("camera", &o);
    Ok(())
}

fn preview(a: PreviewArgs, print: bool) -> Result<()> {
    let (source, input, pacing) = open_source(&a.source, &a.geometry)?;
    let out = input.shaped(&a.geometry);
    let desc = describe::preview(
        &source,
        a.frames,
        &a.geometry,
        out,
        &a.matte,
        &a.sink,
        pacing,
    );
    if print {
        println!("{desc}");
        return Ok(());
    }
    let pipeline = parse(&desc)?;
    let _bg = attach_background(&pipeline, &a.matte, (out.width, out.height))?;
    let o = run::run(&pipeline, run::Report::Live)?;
    summary("preview", &o);
    Ok(())
}

fn file(a: FileArgs, print: bool) -> Result<()> {
    let container = Container::from_path(&a.output, a.alpha).map_err(|e| anyhow!(e))?;
    let info = media::discover(&a.input, "input")?;
    if a.output.exists() {
        if let (Ok(i), Ok(o)) = (a.input.canonicalize(), a.output.canonicalize())
            && i == o
        {
            bail!("output {}: is the input", a.output.display());
        }
        if !a.overwrite && !print {
            bail!(
                "output {}: exists (pass -y to replace it)",
                a.output.display()
            );
        }
    }
    let aac = gst::ElementFactory::find("avenc_aac").is_some();
    let out = FileOut {
        path: &a.output,
        container,
        alpha: a.alpha,
        audio: info.audio,
        aac,
    };
    let desc = describe::file(&a.input, &a.geometry, &a.matte, &out);
    if print {
        println!("{desc}");
        return Ok(());
    }
    // Fail now, with the reason, rather than after the model has loaded.
    std::fs::File::create(&a.output)
        .map_err(|e| anyhow!("output {}: cannot be written: {e}", a.output.display()))?;
    let result = (|| {
        let pipeline = parse(&desc)?;
        let g = info.geometry.shaped(&a.geometry);
        let _bg = if a.alpha {
            None
        } else {
            attach_background(&pipeline, &a.matte, (g.width, g.height))?
        };
        run::run(&pipeline, run::Report::Progress(info.duration))
    })();
    match result {
        Ok(o) => {
            summary(&format!("wrote {}", a.output.display()), &o);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&a.output); // no half-written file left behind
            Err(e)
        }
    }
}

fn devices() -> Result<()> {
    let all = v4l2::devices()?;
    if all.is_empty() {
        println!("no video devices (GStreamer's device monitor lists none)");
    }
    for d in &all {
        let kind = match (d.loopback, d.source) {
            (true, true) => "virtual camera (v4l2loopback), being written",
            (true, false) => "virtual camera (v4l2loopback)",
            (false, true) => "camera",
            (false, false) => "video output",
        };
        println!("{}\t{}\t{kind}", d.path.display(), d.name);
    }
    if !all.iter().any(|d| d.loopback) {
        println!("no virtual camera; make one with:\n  {}", v4l2::MODPROBE);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::install_ctrlc();
    let result = init_gstreamer().and_then(|()| match cli.command {
        Command::Cam(a) => cam(a, cli.print_pipeline),
        Command::File(a) => file(a, cli.print_pipeline),
        Command::Preview(a) => preview(a, cli.print_pipeline),
        Command::Devices => devices(),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
