//! A YUV frame (I420, NV12, YUY2: what webcams give) straight into the network's
//! channels-last input on the CPU. Y is area-averaged from the frame's bytes,
//! chroma area-averaged or bilinearly scaled (as `preprocess::resize` chooses, from
//! its half-resolution planes), and each input pixel converted to RGB once: the
//! conversion is affine, so converting after resizing equals the tensor path, which
//! does the same with ATen's kernels on float planes, within float rounding.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::frame::{Frame, PixelFormat};
use crate::net::area::{add_row, area_windows};

/// Per output index along one side: two source indices and the second's weight.
type Taps = Vec<(usize, usize, f32)>;

/// ATen's `upsample_bilinear2d` source positions (align_corners false).
fn bilinear_taps(inp: usize, out: usize) -> Taps {
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|i| {
            let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(inp - 1);
            let i1 = (i0 + 1).min(inp - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// One row of a plane of the frame as bytes: 0 luma, 1 U, 2 V (YUY2 and NV12
/// de-interleaved into `buf`).
fn row<'a>(frame: &'a Frame<'_>, which: usize, y: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    let (w, cw) = (frame.width as usize, (frame.width as usize).div_ceil(2));
    let p = |i: usize| frame.planes[i];
    match (frame.format, which) {
        (PixelFormat::I420, c) => &p(c).data[y * p(c).stride..][..if c == 0 { w } else { cw }],
        (PixelFormat::Nv12, 0) => &p(0).data[y * p(0).stride..][..w],
        (PixelFormat::Nv12, c) => {
            let line = &p(1).data[y * p(1).stride..][..cw * 2];
            buf.clear();
            buf.extend(line.iter().skip(c - 1).step_by(2));
            buf
        }
        (_, c) => {
            // YUY2: Y0 U Y1 V.
            let line = &p(0).data[y * p(0).stride..][..cw * 4];
            buf.clear();
            if c == 0 {
                buf.extend(line.chunks_exact(4).flat_map(|q| [q[0], q[2]]).take(w));
            } else {
                buf.extend(line.iter().skip(2 * c - 1).step_by(4));
            }
            buf
        }
    }
}

/// Plane `which` (w x h samples) resized to `rw` x `rh` as float rows, one output row
/// at a time into `out` (rw values per row).
fn resized_plane(
    frame: &Frame<'_>,
    which: usize,
    (w, h): (usize, usize),
    (rw, rh): (usize, usize),
    mut out: impl FnMut(usize, &[f32]),
) {
    let mut buf = Vec::new();
    let mut line = vec![0f32; rw];
    if rw <= w && rh <= h {
        let (cols, rows) = (area_windows(w, rw), area_windows(h, rh));
        let mut acc = vec![0u32; w];
        for (oy, &(s, e)) in rows.iter().enumerate() {
            acc.fill(0);
            for y in s..e {
                add_row(&mut acc, row(frame, which, y, &mut buf));
            }
            for (o, &(a, b)) in line.iter_mut().zip(&cols) {
                let sum: u32 = acc[a..b].iter().sum();
                *o = sum as f32 / ((b - a) * (e - s)) as f32;
            }
            out(oy, &line);
        }
        return;
    }
    let (cols, rows) = (bilinear_taps(w, rw), bilinear_taps(h, rh));
    let (mut top, mut bottom) = (vec![0f32; w], vec![0f32; w]);
    for (oy, &(y0, y1, fy)) in rows.iter().enumerate() {
        for (t, &v) in top.iter_mut().zip(row(frame, which, y0, &mut buf)) {
            *t = f32::from(v);
        }
        for (b, &v) in bottom.iter_mut().zip(row(frame, which, y1, &mut buf)) {
            *b = f32::from(v);
        }
        for (o, &(x0, x1, fx)) in line.iter_mut().zip(&cols) {
            let a = top[x0] + (top[x1] - top[x0]) * fx;
            let b = bottom[x0] + (bottom[x1] - bottom[x0]) * fx;
            *o = a + (b - a) * fy;
        }
        out(oy, &line);
    }
}

/// The network input of a YUV frame shrunk (its luma) to `rw` x `rh`: float32
/// [1,3,rh,rw] in [-1,1], channels-last.
pub fn channels_last(frame: &Frame<'_>, rw: usize, rh: usize) -> Result<Tensor> {
    if !frame.format.is_yuv() {
        return Err(Error::InvalidFrame(format!(
            "{:?} is not YUV",
            frame.format
        )));
    }
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // YUY2 halves chroma horizontally only.
    let chroma_h = if frame.format == PixelFormat::Yuy2 {
        h
    } else {
        ch
    };
    let mut u = vec![0f32; rw * rh];
    let mut v = vec![0f32; rw * rh];
    resized_plane(frame, 1, (cw, chroma_h), (rw, rh), |y, l| {
        u[y * rw..][..rw].copy_from_slice(l)
    });
    resized_plane(frame, 2, (cw, chroma_h), (rw, rh), |y, l| {
        v[y * rw..][..rw].copy_from_slice(l)
    });
    let input = Tensor::f_empty([1, rh as i64, rw as i64, 3], (Kind::Float, Device::Cpu))?;
    // SAFETY: `input` is a new contiguous float32 CPU tensor of exactly rh*rw*3
    // values, owned here and not shared until it is returned.
    let values =
        unsafe { std::slice::from_raw_parts_mut(input.data_ptr() as *mut f32, rh * rw * 3) };
    let (m, off) = frame.matrix.to_rgb_affine();
    resized_plane(frame, 0, (w, h), (rw, rh), |oy, luma| {
        let out = &mut values[oy * rw * 3..][..rw * 3];
        let (us, vs) = (&u[oy * rw..][..rw], &v[oy * rw..][..rw]);
        for (((o, &yy), &uu), &vv) in out.chunks_exact_mut(3).zip(luma).zip(us).zip(vs) {
            let d = [yy - off[0], uu - off[1], vv - off[2]];
            for c in 0..3 {
                let rgb = (m[c][0] * d[0] + m[c][1] * d[1] + m[c][2] * d[2]).clamp(0.0, 255.0);
                // (x / 255 - 0.5) / 0.5, as the reference.
                o[c] = rgb * (2.0 / 255.0) - 1.0;
            }
        }
    });
    Ok(input.f_permute([0, 3, 1, 2])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Plane, YuvMatrix};
    use crate::net::preprocess::{Layout, to_input};

    /// The straight path against the tensor one (ATen's pooling and bilinear kernels on
    /// float planes, then the same affine conversion): within 1e-4 of the [-1,1] input
    /// (float rounding; both clamp after converting).
    #[test]
    fn yuv_straight_in_equals_the_tensor_path() {
        // Shrinking both ways (luma and chroma area), 720p at 512 (luma area, chroma
        // bilinear), odd sizes, growing, and mixed.
        let sizes = [
            (1280, 720, 512),
            (1280, 720, 256),
            (333, 211, 64),
            (97, 65, 64),
            (21, 9, 32),
            (40, 300, 64),
        ];
        for (w, h, ref_size) in sizes {
            for format in [PixelFormat::I420, PixelFormat::Nv12, PixelFormat::Yuy2] {
                let pad = 3;
                let mut bufs: Vec<Vec<u8>> = format
                    .plane_sizes(w, h)
                    .iter()
                    .enumerate()
                    .map(|(k, &(row, rows))| {
                        (0..(row + pad) * rows)
                            .map(|i| ((i * 7919 + k * 31 + i / 97) % 256) as u8)
                            .collect()
                    })
                    .collect();
                let strides: Vec<usize> = format
                    .plane_sizes(w, h)
                    .iter()
                    .map(|&(row, _)| row + pad)
                    .collect();
                let planes = bufs
                    .iter_mut()
                    .zip(&strides)
                    .map(|(b, &stride)| Plane { data: b, stride })
                    .collect();
                let frame = Frame {
                    format,
                    width: w as u32,
                    height: h as u32,
                    planes,
                    matrix: YuvMatrix::BT601,
                };
                let tensor = to_input(&frame, ref_size, Device::Cpu, Layout::Nchw).unwrap();
                let straight =
                    to_input(&frame, ref_size, Device::Cpu, Layout::ChannelsLast).unwrap();
                assert_eq!(straight.size(), tensor.size(), "{format:?} {w}x{h}");
                let [_, c, hh, ww] = straight.size()[..] else {
                    unreachable!()
                };
                assert_eq!(straight.stride(), [hh * ww * c, 1, ww * c, c]);
                let d = (&straight - &tensor).abs().max().double_value(&[]);
                assert!(d < 1e-4, "{format:?} {w}x{h} ref {ref_size}: {d}");
            }
        }
    }
}
