//! What runs on the network's worker thread for the element, and what each job gives
//! back: the CPU path's matte job, the device path's batch job (`device_job`), and
//! the mapping between GStreamer buffers and the engine's frames they share.

use std::sync::{Arc, Mutex};

use gst_video::VideoFrameRef;
use gst_video::prelude::*;
use modnetmatte::composite::spec::OutputSpec;
use modnetmatte::frame::{Plane, PlaneMut};
use modnetmatte::gpu::graphs::Status as GraphStatus;
use modnetmatte::worker::ordered::Step;
use modnetmatte::{DevicePath, Engine, Frame, FrameMut, InFlight, Matte, StageTimings};

use crate::formats::{to_pixel_format, yuv_matrix};

/// What the worker hands back for one input buffer, in submission order.
pub(super) enum Done {
    Matte(gst::Buffer, Result<(Matte, StageTimings), String>),
    /// mask-every: this frame reuses the previous matte.
    Reuse(gst::Buffer),
    /// The device path: the finished output buffer (`reused`: no network run).
    Rendered {
        result: Result<(gst::Buffer, StageTimings), String>,
        reused: bool,
        /// (page-locked, device) bytes the device path held after this frame.
        memory: (usize, usize),
        graphs: GraphStatus,
    },
    /// The device path: a batch's frames, in order.
    Batch(Vec<Done>),
}

/// An input buffer and whether it gets its own network run (mask-every, drop-late).
pub(super) type Queued = (gst::Buffer, bool);

/// The device path of a stream, used by one job at a time on the worker.
pub(super) type SharedPath = Arc<Mutex<DevicePath>>;

/// The CPU path's job: the matte of one buffer, copied to the host.
pub(super) fn matte_job(engine: &Engine, inbuf: gst::Buffer, info: &gst_video::VideoInfo) -> Done {
    let result = (|| {
        let vframe = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), info)
            .map_err(|_| "input buffer does not match the caps")?;
        let frame = input_frame(&vframe, info)?;
        engine.matte(&frame).map_err(|e| e.to_string())
    })();
    Done::Matte(inbuf, result)
}

/// The device path's job: issue the frames (upload, one forward pass over all of them
/// padded to `pad_to`, output frames, downloads); the second step, run once the next
/// job has been issued, waits for the results and fills the output buffers. The input
/// buffers live until then, so frames copied straight from their own page-locked
/// memory stay valid.
pub(super) fn device_job(
    engine: &Engine,
    path: &SharedPath,
    spec: OutputSpec,
    frames: Vec<Queued>,
    pad_to: usize,
    info: gst_video::VideoInfo,
    out_info: gst_video::VideoInfo,
) -> Step<Done> {
    let mut path = path.lock().unwrap_or_else(|e| e.into_inner());
    let infer: Vec<bool> = frames.iter().map(|(_, i)| *i).collect();
    let issued = (|| -> Result<Vec<InFlight>, String> {
        let mapped = frames
            .iter()
            .map(|(buf, _)| VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "input buffer does not match the caps")?;
        let views = mapped
            .iter()
            .map(|v| input_frame(v, &info))
            .collect::<Result<Vec<_>, _>>()?;
        path.run_batch(engine, &spec, &views, &infer, pad_to)
            .map_err(|e| e.to_string())
    })();
    let m = path.memory();
    let memory = (m.pinned_bytes, m.device_bytes);
    let graphs = path.graph_status();
    drop(path);
    let rendered = move |result, reused| Done::Rendered {
        result,
        reused,
        memory,
        graphs: graphs.clone(),
    };
    match issued {
        Err(e) => Step::Done(rendered(Err(e), false)),
        Ok(in_flight) => Step::Later(Box::new(move || {
            let mut done: Vec<Done> = in_flight
                .into_iter()
                .zip(&frames)
                .map(|(f, (buf, infer))| rendered(finish_output(f, buf, &out_info), !infer))
                .collect();
            match done.len() {
                1 => done.remove(0),
                _ => Done::Batch(done),
            }
        })),
    }
}

/// Waits for a device-path frame and writes it into a new output buffer.
fn finish_output(
    in_flight: InFlight,
    inbuf: &gst::Buffer,
    out_info: &gst_video::VideoInfo,
) -> Result<(gst::Buffer, StageTimings), String> {
    new_output(inbuf, out_info, |frame| {
        in_flight.finish(frame).map_err(|e| e.to_string())
    })
}

/// A new output buffer carrying `inbuf`'s timestamps, duration and flags, its frame
/// written by `write`; with what `write` returned.
pub(super) fn new_output<T>(
    inbuf: &gst::Buffer,
    out_info: &gst_video::VideoInfo,
    write: impl FnOnce(&mut FrameMut<'_>) -> Result<T, String>,
) -> Result<(gst::Buffer, T), String> {
    let mut outbuf = gst::Buffer::with_size(out_info.size())
        .map_err(|_| format!("cannot allocate a {} byte output buffer", out_info.size()))?;
    let out = outbuf.get_mut().ok_or("output buffer not writable")?;
    inbuf
        .copy_into(
            out,
            gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
            ..,
        )
        .map_err(|_| "cannot copy the input's timestamps")?;
    let mut vout = VideoFrameRef::from_buffer_ref_writable(out, out_info)
        .map_err(|_| "output buffer does not match the caps")?;
    let mut frame = output_frame(&mut vout, out_info)?;
    let written = write(&mut frame)?;
    drop(vout);
    Ok((outbuf, written))
}

/// A mapped input buffer as the engine's frame (its planes borrowed).
pub(super) fn input_frame<'a>(
    f: &'a VideoFrameRef<&gst::BufferRef>,
    info: &gst_video::VideoInfo,
) -> Result<Frame<'a>, String> {
    let format = to_pixel_format(info.format()).ok_or("unsupported format")?;
    let planes = (0..f.n_planes())
        .map(|i| {
            let data = f.plane_data(i).map_err(|_| "input buffer unreadable")?;
            let stride = usize::try_from(f.plane_stride()[i as usize])
                .map_err(|_| "input buffer has a negative stride")?;
            Ok(Plane { data, stride })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Frame {
        format,
        width: f.width(),
        height: f.height(),
        planes,
        matrix: yuv_matrix(info),
    })
}

/// A mapped output buffer as the engine's frame to write into.
fn output_frame<'a>(
    f: &'a mut VideoFrameRef<&mut gst::BufferRef>,
    info: &gst_video::VideoInfo,
) -> Result<FrameMut<'a>, String> {
    let format = to_pixel_format(f.format()).ok_or("unsupported output format")?;
    let (width, height) = (f.width(), f.height());
    let strides: Vec<usize> = f
        .plane_stride()
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| "output buffer has a negative stride"))
        .collect::<Result<_, _>>()?;
    let n = f.n_planes() as usize;
    let planes = f
        .planes_data_mut()
        .into_iter()
        .take(n)
        .zip(strides)
        .map(|(data, stride)| PlaneMut { data, stride })
        .collect();
    Ok(FrameMut {
        format,
        width,
        height,
        planes,
        matrix: yuv_matrix(info),
    })
}
