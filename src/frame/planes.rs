//! A frame's planes as tensors (uint8 [rows, row bytes] each, as `Transfer::upload`
//! and `frame_planes` give them) taken apart into channels: the one place
//! both preprocessing and the tensor compositing read pixel layouts from. No index
//! tensors: on CUDA each would be a synchronous host-to-device copy per frame.

use tch::Tensor;

use crate::error::{Error, Result};
use crate::frame::{Frame, FrameShape, PixelFormat, Plane};

/// Plane `i`, or an error naming it.
pub fn plane(planes: &[Tensor], i: usize) -> Result<Tensor> {
    planes
        .get(i)
        .map(Tensor::shallow_clone)
        .ok_or_else(|| Error::InvalidFrame(format!("plane {i} is missing")))
}

/// A packed RGB-family frame's R, G and B, uint8 [h, w] each (None for YUV).
pub fn rgb_channels(planes: &[Tensor], shape: &FrameShape) -> Result<Option<[Tensor; 3]>> {
    let Some(p) = shape.format.packed_rgb() else {
        return Ok(None);
    };
    let (w, h) = (i64::from(shape.width), i64::from(shape.height));
    let px = plane(planes, 0)?.f_view([h, w, p.bytes_per_pixel as i64])?;
    Ok(Some([
        px.f_select(2, p.rgb[0] as i64)?,
        px.f_select(2, p.rgb[1] as i64)?,
        px.f_select(2, p.rgb[2] as i64)?,
    ]))
}

/// A YUV frame's Y (uint8 [h, w]) and U, V at chroma resolution, and how many rows
/// one chroma row covers (2 for 4:2:0, 1 for YUY2's 4:2:2).
pub struct Yuv {
    pub y: Tensor,
    pub u: Tensor,
    pub v: Tensor,
    pub chroma_rows: i64,
}

/// The Y, U and V of a YUY2, NV12 or I420 frame.
pub fn yuv(planes: &[Tensor], shape: &FrameShape) -> Result<Yuv> {
    let (w, h) = (i64::from(shape.width), i64::from(shape.height));
    let (cw, ch) = ((w + 1) / 2, (h + 1) / 2);
    let (y, u, v, chroma_rows) = match shape.format {
        PixelFormat::I420 => (plane(planes, 0)?, plane(planes, 1)?, plane(planes, 2)?, 2),
        PixelFormat::Nv12 => {
            let uv = plane(planes, 1)?.f_view([ch, cw, 2])?;
            (plane(planes, 0)?, uv.f_select(2, 0)?, uv.f_select(2, 1)?, 2)
        }
        PixelFormat::Yuy2 => {
            // Y0 U Y1 V: the two lumas of each pair side by side, the last dropped at
            // an odd width.
            let px = plane(planes, 0)?.f_view([h, cw, 4])?;
            let y = Tensor::f_stack(&[px.f_select(2, 0)?, px.f_select(2, 2)?], 2)?
                .f_reshape([h, cw * 2])?
                .f_narrow(1, 0, w)?;
            (y, px.f_select(2, 1)?, px.f_select(2, 3)?, 1)
        }
        other => {
            return Err(Error::InvalidFrame(format!(
                "{other:?} is not an input format"
            )));
        }
    };
    Ok(Yuv {
        y,
        u,
        v,
        chroma_rows,
    })
}

/// A frame's planes as uint8 [rows, row_bytes] tensors on the CPU, padding dropped.
pub fn frame_planes(frame: &Frame<'_>) -> Result<Vec<Tensor>> {
    frame.validate()?;
    frame
        .format
        .plane_sizes(frame.width as usize, frame.height as usize)
        .into_iter()
        .zip(&frame.planes)
        .map(|((row_bytes, rows), plane)| plane_tensor(plane, rows as i64, row_bytes as i64))
        .collect()
}

/// A plane as a [rows, row_bytes] uint8 tensor (one copy of the bytes it spans).
fn plane_tensor(plane: &Plane<'_>, rows: i64, row_bytes: i64) -> Result<Tensor> {
    let used = plane.stride * (rows as usize - 1) + row_bytes as usize;
    let raw = Tensor::from_slice(&plane.data[..used]);
    if plane.stride as i64 == row_bytes {
        Ok(raw.f_view([rows, row_bytes])?)
    } else {
        Ok(raw.f_as_strided([rows, row_bytes], [plane.stride as i64, 1], None)?)
    }
}
