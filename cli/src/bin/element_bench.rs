//! The `modnetmatte` element alone, fed frames through a pad of our own and drained
//! into another (no other GStreamer plugin is needed, so a GPU machine without
//! GStreamer's plugins can run it): frames per second and per-frame latency (push to
//! output) for one configuration. Upstream buffers come from the pool the element
//! proposes in the ALLOCATION query (page-locked on CUDA), as a real source's would.
//! Prints one markdown table row (scripts/gpu_check.sh gathers them).
//!
//!     element-bench --size 1920x1080 --device cuda --precision fp16 --in-flight 2

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gst::prelude::*;
use gst_video::prelude::*;
use gstmodnet::stats_fields as f;
use modnetmatte::frame::parse_size;

#[derive(Debug, Parser)]
#[command(version, about = "Time the modnetmatte element: frames/s and latency")]
struct Args {
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    size: (u32, u32),
    /// GStreamer format name: I420, NV12, YUY2, RGB, BGRx, ...
    #[arg(long, default_value = "I420")]
    format: String,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value = "fp32")]
    precision: String,
    #[arg(long, default_value_t = 512)]
    ref_size: u32,
    /// max-in-flight; a comma list runs each (the element restarted in between).
    #[arg(long, default_value = "2", value_delimiter = ',')]
    in_flight: Vec<u32>,
    /// The element's batch (frames per forward pass; our source is not live); a
    /// comma list runs each.
    #[arg(long, default_value = "1", value_delimiter = ',')]
    batch: Vec<u32>,
    /// The element's cuda-graphs: on, off, or a list.
    #[arg(long, default_value = "on", value_delimiter = ',')]
    graphs: Vec<String>,
    /// color or blur.
    #[arg(long, default_value = "color")]
    background: String,
    /// auto, cpu or device.
    #[arg(long, default_value = "auto")]
    compositing: String,
    #[arg(long, default_value_t = 300)]
    frames: u64,
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// Allocate upstream buffers ourselves instead of taking the element's pool.
    #[arg(long)]
    no_pool: bool,
    #[arg(
        long,
        env = "MODNETMATTE_MODEL",
        default_value = "models/modnet_photographic.pt"
    )]
    model: PathBuf,
    #[arg(long, default_value = "data/images/astronaut.png")]
    photo: PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let (w, h) = a.size;
    gst::init()?;
    gstmodnet::plugin_register_static()?;
    let format = gst_video::VideoFormat::from_string(&a.format);
    let pixel = gstmodnet::formats::to_pixel_format(format)
        .with_context(|| format!("--format {}: not a format the element takes", a.format))?;
    let info = gst_video::VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()?;
    let photo = image::open(&a.photo)
        .with_context(|| format!("photo {}", a.photo.display()))?
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let frame = modnetmatte::composite::from_rgb(
        pixel,
        w,
        h,
        gstmodnet::formats::yuv_matrix(&info),
        photo.as_raw(),
    )?;
    for graphs in &a.graphs {
        let graphs = match graphs.as_str() {
            "on" => true,
            "off" => false,
            other => bail!("--graphs {other}: expected on or off"),
        };
        for &batch in &a.batch {
            for &in_flight in &a.in_flight {
                run(&a, &info, &frame, in_flight, batch, graphs)?;
            }
        }
    }
    Ok(())
}

/// One element, fed `warmup + frames` frames; prints its row.
fn run(
    a: &Args,
    info: &gst_video::VideoInfo,
    frame: &modnetmatte::OwnedFrame,
    in_flight: u32,
    batch: u32,
    graphs: bool,
) -> Result<()> {
    let caps = info.to_caps()?;
    let element = element(a, in_flight, batch, graphs)?;
    // The sink pad must live as long as the run: a dropped pad unlinks itself.
    let (src, _sink, arrived) = wire(&element)?;
    start(&element, &src, &caps)?;
    let pool = upstream_pool(&src, &caps, a.no_pool)?;
    // Past the stages' warm-up runs and capture, in whole batches.
    let warmup = a.warmup.max(8 * u64::from(batch.max(1)));
    let (pushed, first_timed) =
        push_frames(&src, pool.as_ref(), info, frame, warmup + a.frames, warmup)?;
    src.push_event(gst::event::Eos::new());
    element.set_state(gst::State::Null)?;

    let arrived = arrived.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if arrived.len() as u64 != warmup + a.frames {
        bail!("{} frames in, {} out", warmup + a.frames, arrived.len());
    }
    let timed = |i: &u64| *i >= gst::ClockTime::from_mseconds(33 * warmup).nseconds();
    let last = arrived
        .iter()
        .filter(|(k, _)| timed(k))
        .map(|(_, t)| *t)
        .max()
        .context("no output")?;
    let elapsed = last - first_timed;
    let mut lat: Vec<f64> = pushed
        .iter()
        .filter(|(k, _)| timed(k))
        .filter_map(|(k, t0)| arrived.get(k).map(|t1| (*t1 - *t0).as_secs_f64() * 1e3))
        .collect();
    lat.sort_by(f64::total_cmp);
    let fps = a.frames as f64 / elapsed.as_secs_f64();
    let pool_name = pool
        .as_ref()
        .map(|p| p.type_().name().to_string())
        .unwrap_or_else(|| "none".into());
    let stats = element.property::<gst::Structure>("stats");
    let on = stats.get::<String>(f::COMPOSITING_ON).unwrap_or_default();
    let gpu = stats.get::<f64>(f::GPU_MEMORY_USED_MB).unwrap_or(0.0);
    let pinned = stats.get::<f64>(f::PINNED_MB).unwrap_or(0.0);
    let used_batch = stats.get::<u32>(f::BATCH).unwrap_or(0);
    let graph_state = stats.get::<String>(f::CUDA_GRAPHS).unwrap_or_default();
    let replays = stats.get::<u64>(f::GRAPH_REPLAYS).unwrap_or(0);
    println!(
        "| element | {}x{} {} | {} | {} | {} | graphs {} | batch {used_batch}, in flight {} | {fps:.0} frames/s, {:.3} ms/frame | latency median {:.2} ms, p95 {:.2} ms | compositing on {on}, graphs {graph_state}, {replays} replays, upstream pool {pool_name}, pinned {pinned:.1} MB, GPU used {gpu:.0} MB |",
        info.width(),
        info.height(),
        a.format,
        a.precision,
        a.device,
        a.background,
        if graphs { "on" } else { "off" },
        in_flight,
        1e3 / fps,
        lat[lat.len() / 2],
        lat[lat.len() * 95 / 100],
    );
    Ok(())
}

/// The element as the arguments configure it.
fn element(a: &Args, in_flight: u32, batch: u32, graphs: bool) -> Result<gst::Element> {
    let element = gst::ElementFactory::make("modnetmatte")
        .property("model", a.model.display().to_string())
        .property("device", &a.device)
        .property("ref-size", a.ref_size)
        .property("max-in-flight", in_flight)
        .property("batch", batch)
        .property("cuda-graphs", graphs)
        .build()?;
    element.set_property_from_str("precision", &a.precision);
    element.set_property_from_str("background", &a.background);
    element.set_property_from_str("compositing", &a.compositing);
    Ok(element)
}

/// Output arrival times by pts (ns), filled on the streaming thread.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// Pads of our own linked to the element's: the one we push into, the one the
/// output arrives on, and where the output's arrival times are kept.
fn wire(element: &gst::Element) -> Result<(gst::Pad, gst::Pad, Arrivals)> {
    let arrived: Arrivals = Arc::default();
    let sink = {
        let arrived = arrived.clone();
        gst::Pad::builder(gst::PadDirection::Sink)
            .name("bench-sink")
            .chain_function(move |_, _, buf| {
                if let (Some(pts), Ok(mut m)) = (buf.pts(), arrived.lock()) {
                    m.insert(pts.nseconds(), Instant::now());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build()
    };
    let src = gst::Pad::builder(gst::PadDirection::Src)
        .name("bench-src")
        .build();
    src.link(&element.static_pad("sink").context("sink pad")?)?;
    element.static_pad("src").context("src pad")?.link(&sink)?;
    sink.set_active(true)?;
    src.set_active(true)?;
    Ok((src, sink, arrived))
}

/// Plays the element and sends the stream's first events; why not, from its bus.
fn start(element: &gst::Element, src: &gst::Pad, caps: &gst::Caps) -> Result<()> {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    if element.set_state(gst::State::Playing).is_err() {
        let why = bus
            .iter()
            .find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "no reason given".into());
        bail!("the element did not start: {why}");
    }
    src.push_event(gst::event::StreamStart::new("bench"));
    src.push_event(gst::event::Caps::new(caps));
    src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    Ok(())
}

/// The pool the element proposes in the ALLOCATION query, active (none: `no_pool`,
/// or none proposed).
fn upstream_pool(
    src: &gst::Pad,
    caps: &gst::Caps,
    no_pool: bool,
) -> Result<Option<gst::BufferPool>> {
    let mut query = gst::query::Allocation::new(Some(caps), true);
    if no_pool || !src.peer_query(&mut query) {
        return Ok(None);
    }
    let pool = query.allocation_pools().find_map(|(p, _, _, _)| p);
    if let Some(p) = &pool {
        p.set_active(true)?;
    }
    Ok(pool)
}

/// Pushes `n` copies of `frame`, 33 ms apart, written into buffers as a camera or
/// decoder would; their push times by pts (ns), and the time frame `timed_from` went.
fn push_frames(
    src: &gst::Pad,
    pool: Option<&gst::BufferPool>,
    info: &gst_video::VideoInfo,
    frame: &modnetmatte::OwnedFrame,
    n: u64,
    timed_from: u64,
) -> Result<(HashMap<u64, Instant>, Instant)> {
    let (w, h) = (info.width() as usize, info.height() as usize);
    let mut pushed = HashMap::new();
    let mut first_timed = None;
    for i in 0..n {
        let buffer = match pool {
            Some(p) => p.acquire_buffer(None)?,
            None => gst::Buffer::with_size(info.size())?,
        };
        let mut vf = gst_video::VideoFrame::from_buffer_writable(buffer, info)
            .map_err(|_| anyhow::anyhow!("buffer does not fit the caps"))?;
        for (p, (row, rows)) in frame.format.plane_sizes(w, h).iter().enumerate() {
            let stride = vf.plane_stride()[p] as usize;
            let dst = vf.plane_data_mut(p as u32)?;
            for y in 0..*rows {
                dst[y * stride..y * stride + row]
                    .copy_from_slice(&frame.planes[p][y * row..(y + 1) * row]);
            }
        }
        let mut buffer = vf.into_buffer();
        let pts = gst::ClockTime::from_mseconds(33 * i);
        buffer.get_mut().context("fresh buffer")?.set_pts(pts);
        let now = Instant::now();
        if i == timed_from {
            first_timed = Some(now);
        }
        pushed.insert(pts.nseconds(), now);
        if let Err(e) = src.push(buffer) {
            bail!("frame {i}: the element returned {e:?}");
        }
    }
    Ok((pushed, first_timed.context("no timed frame")?))
}
