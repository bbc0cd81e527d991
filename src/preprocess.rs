//! Frame -> network input: the reference size rule, colour order, normalisation and
//! resize. Mirrors `tools/modnet/reference.py` operator for operator (same libtorch
//! kernels), so our matte can be compared with onnxruntime's pixel for pixel.

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::frame::{Frame, FrameShape, Plane};
use crate::planes;

/// No side of the network input is ever smaller than this (MODNet downsamples by 32).
pub const MIN_SIDE: u32 = 32;
/// The official rule scales small frames so that their short side is `ref_size`; for
/// extreme aspect ratios the long side would explode (100x1 -> 51200x512), so it is
/// capped at this multiple of `ref_size`.
pub const MAX_LONG_SIDE_FACTOR: u32 = 4;

/// The (width, height) the network sees for a frame: MODNet's reference rule
/// (scale so the short side is `ref_size` when the long side is below it or the short
/// side above it; else keep), the long side capped at `MAX_LONG_SIDE_FACTOR x
/// ref_size`, both sides rounded down to a multiple of 32 and at least 32.
pub fn inference_size(width: u32, height: u32, ref_size: u32) -> (u32, u32) {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    let r = ref_size.max(MIN_SIDE) as f64;
    // f64 and truncation exactly as the official Python (int(w / h * ref)).
    let (mut rw, mut rh) = if w.max(h) < r || w.min(h) > r {
        if w >= h {
            ((w / h * r) as u64, r as u64)
        } else {
            (r as u64, (h / w * r) as u64)
        }
    } else {
        (w as u64, h as u64)
    };
    let cap = (MAX_LONG_SIDE_FACTOR as f64) * r;
    let long = rw.max(rh) as f64;
    if long > cap {
        let scale = cap / long;
        rw = (rw as f64 * scale) as u64;
        rh = (rh as f64 * scale) as u64;
    }
    let round = |v: u64| (v - v % 32).max(MIN_SIDE as u64) as u32;
    (round(rw), round(rh))
}

/// Frame -> float32 [1,3,h,w] in [-1,1] at `inference_size`, on `device`.
///
/// YUV frames are resized plane by plane first and converted to RGB at the network
/// size: the conversion is affine, so this equals convert-then-resize (up to the final
/// clamp) at a fraction of the cost.
pub fn to_input(frame: &Frame<'_>, ref_size: u32, device: Device) -> Result<Tensor> {
    frame.validate()?;
    let planes = frame_planes(frame)?
        .into_iter()
        .map(|p| p.f_to_device(device))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    planes_to_input(&planes, &frame.shape(), ref_size)
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

/// The network input from a frame's planes (uint8 [rows, row_bytes] each, on the
/// network's device, as `frame_planes` or the CUDA upload gives them) of a frame of
/// this shape.
pub fn planes_to_input(planes: &[Tensor], frame: &FrameShape, ref_size: u32) -> Result<Tensor> {
    let (rw, rh) = inference_size(frame.width, frame.height, ref_size);
    let (rw, rh) = (rw as i64, rh as i64);
    if let Some(channels) = planes::rgb_channels(planes, frame)? {
        let chw = Tensor::f_stack(&channels, 0)?.f_unsqueeze(0)?;
        // Same operations, same order as the Python reference: (x / 255 - 0.5) / 0.5.
        let x = chw.f_to_kind(Kind::Float)?;
        let x = x
            .f_div_scalar(255.0)?
            .f_sub_scalar(0.5)?
            .f_div_scalar(0.5)?;
        return Ok(resize(&x, rw, rh)?.f_contiguous()?);
    }
    let planes::Yuv { y, u, v, .. } = planes::yuv(planes, frame)?;
    let small = |t: Tensor| -> Result<Tensor> {
        let t = t.f_to_kind(Kind::Float)?.f_unsqueeze(0)?.f_unsqueeze(0)?;
        resize(&t, rw, rh)
    };
    let (y, u, v) = (small(y)?, small(u)?, small(v)?);
    let (m, off) = frame.matrix.to_rgb_affine();
    let (y, u, v) = (y - off[0] as f64, u - off[1] as f64, v - off[2] as f64);
    let ch = |r: [f32; 3]| &y * r[0] as f64 + &u * r[1] as f64 + &v * r[2] as f64;
    let rgb = Tensor::f_cat(&[ch(m[0]), ch(m[1]), ch(m[2])], 1)?.f_clamp(0.0, 255.0)?;
    let x = rgb
        .f_div_scalar(255.0)?
        .f_sub_scalar(0.5)?
        .f_div_scalar(0.5)?;
    Ok(x.f_contiguous()?)
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

/// Area averaging when shrinking in both directions (the official choice), bilinear
/// (align_corners = false) otherwise.
pub fn resize(x: &Tensor, width: i64, height: i64) -> Result<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    if (w, h) == (width, height) {
        return Ok(x.shallow_clone());
    }
    if width <= w && height <= h {
        Ok(x.f_adaptive_avg_pool2d([height, width])?)
    } else {
        Ok(x.f_upsample_bilinear2d([height, width], false, None, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, PixelFormat, YuvMatrix};

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn every_rgb_order_and_padded_rows_give_the_same_input() {
        // 2x1: a red and a blue pixel, written in each packed format; the strided one
        // has 3 bytes of row padding.
        let rgb = [255u8, 0, 0, 0, 0, 255];
        let reference = to_input(
            &Frame::packed(&rgb, 2, 1, PixelFormat::Rgb),
            32,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(reference.size(), [1, 3, 32, 64]);
        let r_left = reference.double_value(&[0, 0, 16, 0]);
        let b_left = reference.double_value(&[0, 2, 16, 0]);
        assert!((r_left - 1.0).abs() < 1e-6 && (b_left + 1.0).abs() < 1e-6);
        for format in PixelFormat::INPUTS.into_iter().filter(|f| !f.is_yuv()) {
            let p = format.packed_rgb().unwrap();
            let mut data = vec![7u8; p.bytes_per_pixel * 2 + 3];
            for (px, colour) in [[255u8, 0, 0], [0, 0, 255]].iter().enumerate() {
                for c in 0..3 {
                    data[px * p.bytes_per_pixel + p.rgb[c]] = colour[c];
                }
            }
            let mut frame = Frame::packed(&data, 2, 1, format);
            frame.planes[0].stride = data.len();
            let x = to_input(&frame, 32, Device::Cpu).unwrap();
            assert_eq!(max_diff(&x, &reference), 0.0, "{format:?}");
        }
    }

    #[test]
    fn yuv_formats_match_the_rgb_they_encode() {
        // A 128x64 frame of flat 4x4 colour blocks, halved to 64x32 for the network:
        // chroma subsampling loses nothing, so every YUV layout must give (nearly) the
        // RGB input. (Upscaling would not: bilinear on a half-size chroma plane
        // interpolates between other sample positions than on the RGB frame.)
        let (w, h) = (128usize, 64usize);
        let colours = [
            [200.0f32, 40.0, 60.0],
            [30.0, 180.0, 90.0],
            [20.0, 60.0, 220.0],
        ];
        let colour_at = |x: usize, y: usize| colours[(x / 4 + y / 4) % 3];
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| colour_at(x, y).map(|c| c as u8)))
            .collect();
        let reference = to_input(
            &Frame::packed(&rgb, w as u32, h as u32, PixelFormat::Rgb),
            32,
            Device::Cpu,
        )
        .unwrap();
        let m = YuvMatrix::BT709;
        let yuv = |x: usize, y: usize| m.from_rgb(colour_at(x, y)).map(|v| v.round() as u8);
        let y_plane: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| yuv(x, y)[0]))
            .collect();
        let u_plane: Vec<u8> = (0..h / 2)
            .flat_map(|y| (0..w / 2).map(move |x| yuv(2 * x, 2 * y)[1]))
            .collect();
        let v_plane: Vec<u8> = (0..h / 2)
            .flat_map(|y| (0..w / 2).map(move |x| yuv(2 * x, 2 * y)[2]))
            .collect();
        let uv: Vec<u8> = u_plane
            .iter()
            .zip(&v_plane)
            .flat_map(|(&u, &v)| [u, v])
            .collect();
        let yuy2: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w / 2).flat_map(move |x| {
                    [
                        yuv(2 * x, y)[0],
                        yuv(2 * x, y)[1],
                        yuv(2 * x + 1, y)[0],
                        yuv(2 * x, y)[2],
                    ]
                })
            })
            .collect();
        let frames = [
            (
                PixelFormat::I420,
                vec![
                    (&y_plane[..], w),
                    (&u_plane[..], w / 2),
                    (&v_plane[..], w / 2),
                ],
            ),
            (PixelFormat::Nv12, vec![(&y_plane[..], w), (&uv[..], w)]),
            (PixelFormat::Yuy2, vec![(&yuy2[..], w * 2)]),
        ];
        for (format, planes) in frames {
            let frame = Frame {
                format,
                width: w as u32,
                height: h as u32,
                planes: planes
                    .into_iter()
                    .map(|(data, stride)| Plane { data, stride })
                    .collect(),
                matrix: m,
            };
            let x = to_input(&frame, 32, Device::Cpu).unwrap();
            assert_eq!(x.size(), reference.size());
            // One code step of rounding in Y'CbCr is under 2/255 in RGB.
            let d = max_diff(&x, &reference) * 127.5;
            assert!(d < 2.5, "{format:?}: {d} codes");
        }
    }
}
