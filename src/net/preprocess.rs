//! Frame -> network input: the reference size rule, colour order, normalisation and
//! resize. Mirrors `tools/modnet/reference.py` operator for operator (same libtorch
//! kernels), so our matte can be compared with onnxruntime's pixel for pixel.

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::frame::planes;
use crate::frame::{Frame, FrameShape, PackedRgb};
use crate::net::area::{add_row, area_windows};
use crate::net::yuv_input;

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

/// The memory layout of the network input: NCHW (contiguous), or channels-last
/// (NHWC in memory, [N,C,H,W] strides as PyTorch writes them) for a network that
/// takes it (the CPU variant), which then needs no layout copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Nchw,
    ChannelsLast,
}

/// Frame -> float32 [1,3,h,w] in [-1,1] at `inference_size`, on `device`, in
/// `layout`.
///
/// YUV frames are resized plane by plane first and converted to RGB at the network
/// size: the conversion is affine, so this equals convert-then-resize (up to the final
/// clamp) at a fraction of the cost. On a CPU in channels-last (the CPU variants) both
/// packed RGB and YUV go straight from the frame's bytes (`area_channels_last`,
/// `yuv_input`); the tensor path stays for NCHW and the device.
pub fn to_input(
    frame: &Frame<'_>,
    ref_size: u32,
    device: Device,
    layout: Layout,
) -> Result<Tensor> {
    frame.validate()?;
    let (rw, rh) = inference_size(frame.width, frame.height, ref_size);
    if let (Layout::ChannelsLast, Device::Cpu, Some(p)) =
        (layout, device, frame.format.packed_rgb())
        && rw <= frame.width
        && rh <= frame.height
    {
        return area_channels_last(frame, p, rw as usize, rh as usize);
    }
    if (layout, device) == (Layout::ChannelsLast, Device::Cpu) && frame.format.is_yuv() {
        return yuv_input::channels_last(frame, rw as usize, rh as usize);
    }
    let planes = planes::frame_planes(frame)?
        .into_iter()
        .map(|p| p.f_to_device(device))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    planes_to_input(&planes, &frame.shape(), ref_size, layout)
}

/// One output row from the column sums of its window of rows (`acc`, one u32 per
/// byte of a frame row): each window of `cols` (pixels of `BPP` bytes) summed per
/// channel and normalised, mean / 255 * 2 - 1 (the reference's (x / 255 - 0.5) / 0.5)
/// as one multiply-add per value.
fn window_means<const BPP: usize>(
    acc: &[u32],
    cols: &[(usize, usize)],
    col_scale: &[f32],
    rgb: [usize; 3],
    rows: usize,
    out: &mut [f32],
) {
    let [cr, cg, cb] = rgb.map(|c| c.min(BPP - 1));
    let row_scale = 1.0 / rows as f32;
    for ((o, &(s, e)), &c) in out.chunks_exact_mut(3).zip(cols).zip(col_scale) {
        let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
        for px in acc[s * BPP..e * BPP].chunks_exact(BPP) {
            r += px[cr];
            g += px[cg];
            b += px[cb];
        }
        let k = c * row_scale;
        o.copy_from_slice(&[r as f32 * k - 1.0, g as f32 * k - 1.0, b as f32 * k - 1.0]);
    }
}

/// A packed RGB frame shrunk to `rw` x `rh` by area averaging (the windows of
/// `adaptive_avg_pool2d`, which the NCHW path and the Python reference use), straight
/// from the frame's bytes into a normalised float input in channels-last memory.
/// Written out because ATen's kernel recomputes each window per output and per
/// channel plane, and first needs the frame as float planes; separable integer sums
/// here are several times faster and round once, at the mean.
/// Equal to the NCHW path within float rounding (tested).
fn area_channels_last(frame: &Frame<'_>, p: PackedRgb, rw: usize, rh: usize) -> Result<Tensor> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let plane = frame
        .planes
        .first()
        .ok_or_else(|| crate::error::Error::InvalidFrame("plane 0 is missing".into()))?;
    let bpp = p.bytes_per_pixel;
    let cols = area_windows(w, rw);
    let rows = area_windows(h, rh);
    // The tensor is written in place: a fresh buffer of this size per frame would be
    // page-faulted in anew, while libtorch's allocator (src/host/cpu_cache.rs) reuses one.
    let input = Tensor::f_empty([1, rh as i64, rw as i64, 3], (Kind::Float, Device::Cpu))?;
    let len = rh * rw * 3;
    // SAFETY: `input` is a new contiguous float32 CPU tensor of exactly `len` values,
    // owned here and not shared until it is returned.
    let values = unsafe { std::slice::from_raw_parts_mut(input.data_ptr() as *mut f32, len) };
    // Per output row: its window's frame rows summed byte by byte (wide, vectorised
    // adds), then each column window across that one sum: the narrow per-pixel work
    // runs once per output row, not once per frame row (2.8x fewer at ref 256).
    let mut acc = vec![0u32; w * bpp];
    // 2 / (255 * window width): with 1 / window height, the mean's scale.
    let col_scale: Vec<f32> = cols
        .iter()
        .map(|&(s, e)| 2.0 / (255.0 * (e - s) as f32))
        .collect();
    for (out, &(s, e)) in values.chunks_exact_mut(rw * 3).zip(&rows) {
        acc.fill(0);
        for y in s..e {
            add_row(
                &mut acc,
                &plane.data[y * plane.stride..y * plane.stride + w * bpp],
            );
        }
        match bpp {
            3 => window_means::<3>(&acc, &cols, &col_scale, p.rgb, e - s, out),
            _ => window_means::<4>(&acc, &cols, &col_scale, p.rgb, e - s, out),
        }
    }
    Ok(input.f_permute([0, 3, 1, 2])?)
}

/// The network input from a frame's planes (uint8 [rows, row_bytes] each, on the
/// network's device, as `frame_planes` or the CUDA upload gives them) of a frame of
/// this shape, in `layout`.
pub fn planes_to_input(
    planes: &[Tensor],
    frame: &FrameShape,
    ref_size: u32,
    layout: Layout,
) -> Result<Tensor> {
    let (rw, rh) = inference_size(frame.width, frame.height, ref_size);
    let (rw, rh) = (rw as i64, rh as i64);
    if layout == Layout::ChannelsLast {
        // The uncommon channels-last cases (YUV, frames smaller than the input, the
        // device path's planes): one layout copy, of the network-sized input.
        return crate::net::model::to_channels_last(&planes_to_input(
            planes,
            frame,
            ref_size,
            Layout::Nchw,
        )?);
    }
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
    use crate::frame::{Frame, PixelFormat, Plane, YuvMatrix};

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
            Layout::Nchw,
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
            let x = to_input(&frame, 32, Device::Cpu, Layout::Nchw).unwrap();
            assert_eq!(max_diff(&x, &reference), 0.0, "{format:?}");
        }
    }

    #[test]
    fn channels_last_input_equals_the_nchw_one() {
        // Every packed order with padded rows, at sizes that shrink by uneven ratios
        // (the own area resize), keep the size, and grow (ATen's bilinear), plus a
        // YUV frame: the same values within float rounding, in channels-last memory.
        let sizes = [
            (1280, 720, 512),
            (333, 211, 64),
            (97, 64, 64),
            (64, 32, 32),
            (20, 9, 32),
        ];
        for (w, h, ref_size) in sizes {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
            for format in PixelFormat::INPUTS.into_iter().filter(|f| !f.is_yuv()) {
                let p = format.packed_rgb().unwrap();
                let stride = w * p.bytes_per_pixel + 5;
                let mut data = vec![9u8; stride * h];
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    let o = (i / w) * stride + (i % w) * p.bytes_per_pixel;
                    for c in 0..3 {
                        data[o + p.rgb[c]] = px[c];
                    }
                }
                let mut frame = Frame::packed(&data, w as u32, h as u32, format);
                frame.planes[0].stride = stride;
                let nchw = to_input(&frame, ref_size, Device::Cpu, Layout::Nchw).unwrap();
                let cl = to_input(&frame, ref_size, Device::Cpu, Layout::ChannelsLast).unwrap();
                assert_eq!(cl.size(), nchw.size(), "{format:?} {w}x{h}");
                let [_, c, hh, ww] = cl.size()[..] else {
                    unreachable!()
                };
                assert_eq!(cl.stride(), [hh * ww * c, 1, ww * c, c], "{format:?}");
                let d = max_diff(&cl, &nchw);
                assert!(d < 1e-5, "{format:?} {w}x{h} ref {ref_size}: {d}");
            }
        }
        let gray = vec![128u8; 64 * 32 * 3 / 2];
        let i420 = Frame {
            format: PixelFormat::I420,
            width: 64,
            height: 32,
            planes: vec![
                Plane {
                    data: &gray[..2048],
                    stride: 64,
                },
                Plane {
                    data: &gray[2048..2560],
                    stride: 32,
                },
                Plane {
                    data: &gray[2560..],
                    stride: 32,
                },
            ],
            matrix: YuvMatrix::BT709,
        };
        let cl = to_input(&i420, 32, Device::Cpu, Layout::ChannelsLast).unwrap();
        assert_eq!(cl.stride(), [32 * 64 * 3, 1, 64 * 3, 3]);
        // YUV goes straight from the planes in channels-last (net::yuv_input): float
        // rounding apart, the same values.
        let d = max_diff(
            &cl,
            &to_input(&i420, 32, Device::Cpu, Layout::Nchw).unwrap(),
        );
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn area_windows_are_atens() {
        // adaptive_avg_pool2d's windows: 5 -> 3 covers [0,2) [1,4) [3,5).
        assert_eq!(area_windows(5, 3), [(0, 2), (1, 4), (3, 5)]);
        assert_eq!(area_windows(4, 4), [(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert_eq!(area_windows(1280, 896).last(), Some(&(1278, 1280)));
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
            Layout::Nchw,
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
            let x = to_input(&frame, 32, Device::Cpu, Layout::Nchw).unwrap();
            assert_eq!(x.size(), reference.size());
            // One code step of rounding in Y'CbCr is under 2/255 in RGB.
            let d = max_diff(&x, &reference) * 127.5;
            assert!(d < 2.5, "{format:?}: {d} codes");
        }
    }
}
