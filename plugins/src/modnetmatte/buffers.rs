//! The mapping between GStreamer buffers and the engine's frames: a mapped buffer's
//! planes borrowed as a `Frame` or `FrameMut`, new output buffers with their input's
//! timestamps, and the caps' video infos both sides are read with.

use gst_video::VideoFrameRef;
use gst_video::prelude::*;
use modnetmatte::frame::{Plane, PlaneMut};
use modnetmatte::{Frame, FrameMut};

use crate::formats::{to_pixel_format, yuv_matrix};

/// The caps' input and output video infos.
#[derive(Clone)]
pub(super) struct Infos {
    pub(super) input: gst_video::VideoInfo,
    pub(super) output: gst_video::VideoInfo,
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
    let mut frame = map_output(&mut vout, out_info)?;
    let written = write(&mut frame)?;
    drop(vout);
    Ok((outbuf, written))
}

/// A mapped input buffer as the engine's frame (its planes borrowed).
pub(super) fn map_input<'a>(
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
fn map_output<'a>(
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
