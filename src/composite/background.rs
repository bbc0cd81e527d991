//! Background frames in the frame's own format: one colour, a picture, the frame
//! blurred.

use crate::composite::blur;
use crate::error::{Error, Result};
use crate::frame::{Frame, OwnedFrame, PixelFormat, YuvMatrix};

/// A background of one colour in the given format.
pub fn solid(
    format: PixelFormat,
    width: u32,
    height: u32,
    matrix: YuvMatrix,
    rgb: [u8; 3],
) -> OwnedFrame {
    let pixels = vec![rgb; width as usize * height as usize];
    from_rgb_pixels(format, width, height, matrix, &pixels)
}

/// A background from a packed RGB picture of exactly `width` x `height`.
pub fn from_rgb(
    format: PixelFormat,
    width: u32,
    height: u32,
    matrix: YuvMatrix,
    rgb: &[u8],
) -> Result<OwnedFrame> {
    let n = width as usize * height as usize;
    if rgb.len() != n * 3 {
        return Err(Error::InvalidFrame(format!(
            "background picture has {} bytes, {width}x{height} RGB needs {}",
            rgb.len(),
            n * 3
        )));
    }
    let pixels: Vec<[u8; 3]> = rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    Ok(from_rgb_pixels(format, width, height, matrix, &pixels))
}

fn from_rgb_pixels(
    format: PixelFormat,
    width: u32,
    height: u32,
    matrix: YuvMatrix,
    px: &[[u8; 3]],
) -> OwnedFrame {
    let mut out = OwnedFrame::zeroed(format, width, height, matrix);
    let (w, h) = (width as usize, height as usize);
    if let Some(p) = format.packed_rgb() {
        let plane = &mut out.planes[0];
        for (dst, src) in plane.chunks_exact_mut(p.bytes_per_pixel).zip(px) {
            for c in 0..3 {
                dst[p.rgb[c]] = src[c];
            }
            if let Some(e) = p.extra {
                dst[e] = 255;
            }
        }
        return out;
    }
    if format == PixelFormat::Gray8 {
        return out;
    }
    let yuv: Vec<[f32; 3]> = px
        .iter()
        .map(|p| matrix.from_rgb(p.map(f32::from)))
        .collect();
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    // Mean chroma over the pixels a chroma sample covers (2x2, or 2x1 for YUY2).
    let chroma = |cx: usize, cy: usize, rows: usize| -> (u8, u8) {
        let (mut u, mut v, mut n) = (0.0, 0.0, 0.0);
        for y in (cy * rows)..((cy + 1) * rows).min(h) {
            for x in (cx * 2)..(cx * 2 + 2).min(w) {
                u += yuv[y * w + x][1];
                v += yuv[y * w + x][2];
                n += 1.0;
            }
        }
        (q(u / n), q(v / n))
    };
    let cw = w.div_ceil(2);
    match format {
        PixelFormat::I420 | PixelFormat::Nv12 => {
            for (i, p) in yuv.iter().enumerate() {
                out.planes[0][i] = q(p[0]);
            }
            for cy in 0..h.div_ceil(2) {
                for cx in 0..cw {
                    let (u, v) = chroma(cx, cy, 2);
                    if format == PixelFormat::I420 {
                        out.planes[1][cy * cw + cx] = u;
                        out.planes[2][cy * cw + cx] = v;
                    } else {
                        out.planes[1][cy * cw * 2 + cx * 2] = u;
                        out.planes[1][cy * cw * 2 + cx * 2 + 1] = v;
                    }
                }
            }
        }
        PixelFormat::Yuy2 => {
            for y in 0..h {
                for cx in 0..cw {
                    let (u, v) = chroma(cx, y, 1);
                    let x1 = (cx * 2 + 1).min(w - 1);
                    let o = y * cw * 4 + cx * 4;
                    out.planes[0][o..o + 4].copy_from_slice(&[
                        q(yuv[y * w + cx * 2][0]),
                        u,
                        q(yuv[y * w + x1][0]),
                        v,
                    ]);
                }
            }
        }
        _ => {}
    }
    out
}

/// The frame blurred (box blur, three passes: close to a Gaussian of the same
/// radius), in its own format. Chroma planes use half the radius, as they are half
/// the size; radii from 8 up are blurred at reduced resolution (`blur::plane`).
pub fn blurred(frame: &Frame<'_>, radius: u32) -> Result<OwnedFrame> {
    frame.validate()?;
    let mut out = OwnedFrame::zeroed(frame.format, frame.width, frame.height, frame.matrix);
    let jobs = blur_planes(frame.format, frame.width, frame.height, radius);
    for ((src, dst), (pw, ph, channels, radius)) in
        frame.planes.iter().zip(&mut out.planes).zip(jobs)
    {
        blur::plane(src.data, src.stride, dst, pw, ph, channels, radius);
    }
    Ok(out)
}

/// How each plane is blurred, in plane order: (pixels per row, rows, channels per
/// pixel, radius). Chroma planes take half the radius; YUY2's Y0 U Y1 V is blurred as
/// a 4-channel picture of half width. Shared by the CPU loops and `render`.
pub fn blur_planes(
    format: PixelFormat,
    width: u32,
    height: u32,
    radius: u32,
) -> Vec<(usize, usize, usize, usize)> {
    let (w, h) = (width as usize, height as usize);
    let r = radius as usize;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match format {
        PixelFormat::I420 => vec![(w, h, 1, r), (cw, ch, 1, r / 2), (cw, ch, 1, r / 2)],
        PixelFormat::Nv12 => vec![(w, h, 1, r), (cw, ch, 2, r / 2)],
        PixelFormat::Yuy2 => vec![(cw, h, 4, r / 2)],
        PixelFormat::Gray8 => vec![(w, h, 1, r)],
        f => vec![(w, h, f.packed_rgb().map_or(3, |p| p.bytes_per_pixel), r)],
    }
}
