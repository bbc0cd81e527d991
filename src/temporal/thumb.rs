//! A frame at about 320 pixels wide, as Y, U, V planes of block averages: what the
//! motion estimate and the room picture look at. Small enough to make from every
//! camera frame on the streaming thread.

use crate::error::Result;
use crate::frame::{Frame, PixelFormat};

/// The width a thumbnail aims at: 4x4 blocks at 720p, 6x6 at 1080p.
const TARGET_WIDTH: u32 = 320;

#[derive(Debug, Clone, PartialEq)]
pub struct Thumb {
    pub width: usize,
    pub height: usize,
    /// Frame pixels per thumbnail pixel, each way.
    pub scale: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

/// The block size for a frame `width` wide.
pub fn scale_for(width: u32, height: u32) -> usize {
    let s = (width as f32 / TARGET_WIDTH as f32).round().max(1.0) as usize;
    s.min(width as usize).min(height as usize).max(1)
}

impl Thumb {
    /// The frame's thumbnail; the rows and columns past the last whole block are left out.
    pub fn of(frame: &Frame<'_>) -> Result<Thumb> {
        frame.validate()?;
        let s = scale_for(frame.width, frame.height);
        let (w, h) = (frame.width as usize / s, frame.height as usize / s);
        let mut t = Thumb {
            width: w,
            height: h,
            scale: s,
            y: vec![0; w * h],
            u: vec![0; w * h],
            v: vec![0; w * h],
        };
        match frame.format {
            PixelFormat::Yuy2 => t.fill_yuy2(frame),
            PixelFormat::Nv12 | PixelFormat::I420 => t.fill_planar(frame),
            PixelFormat::Gray8 => t.fill_luma(frame),
            _ => t.fill_rgb(frame),
        }
        Ok(t)
    }

    /// Y from a one-byte-a-pixel first plane (NV12, I420, GRAY8), chroma neutral.
    fn fill_luma(&mut self, frame: &Frame<'_>) {
        let (s, w) = (self.scale, self.width);
        let luma = frame.planes[0];
        let mut acc = vec![0u32; w];
        for ty in 0..self.height {
            for row in ty * s..(ty + 1) * s {
                let line = &luma.data[row * luma.stride..];
                for (tx, a) in acc.iter_mut().enumerate() {
                    *a += line[tx * s..(tx + 1) * s]
                        .iter()
                        .map(|&b| u32::from(b))
                        .sum::<u32>();
                }
            }
            for (tx, a) in acc.iter_mut().enumerate() {
                self.y[ty * w + tx] = (*a / (s * s) as u32) as u8;
                *a = 0;
            }
        }
        self.u.fill(128);
        self.v.fill(128);
    }

    fn fill_rgb(&mut self, frame: &Frame<'_>) {
        let Some(p) = frame.format.packed_rgb() else {
            return;
        };
        let (s, w, bpp) = (self.scale, self.width, p.bytes_per_pixel);
        let mut acc = vec![[0u32; 3]; w];
        let n = (s * s) as f32;
        let plane = frame.planes[0];
        for ty in 0..self.height {
            for row in ty * s..(ty + 1) * s {
                let line = &plane.data[row * plane.stride..];
                for (tx, a) in acc.iter_mut().enumerate() {
                    for px in line[tx * s * bpp..(tx + 1) * s * bpp].chunks_exact(bpp) {
                        for c in 0..3 {
                            a[c] += u32::from(px[p.rgb[c]]);
                        }
                    }
                }
            }
            for (tx, a) in acc.iter_mut().enumerate() {
                let [r, g, b] = a.map(|v| v as f32 / n);
                // BT.601 full range: only differences and ratios are compared.
                let y = 0.299 * r + 0.587 * g + 0.114 * b;
                let i = ty * w + tx;
                self.y[i] = y.round().clamp(0.0, 255.0) as u8;
                self.u[i] = (128.0 + 0.564 * (b - y)).round().clamp(0.0, 255.0) as u8;
                self.v[i] = (128.0 + 0.713 * (r - y)).round().clamp(0.0, 255.0) as u8;
                *a = [0; 3];
            }
        }
    }

    fn fill_yuy2(&mut self, frame: &Frame<'_>) {
        let (s, w) = (self.scale, self.width);
        let mut acc = vec![[0u32; 3]; w];
        let plane = frame.planes[0];
        // Pixel pairs (Y0 U Y1 V) into the block of their first pixel: an odd block
        // size shares a pair's chroma with the next block, compared only coarsely.
        let pairs = (w * s) / 2;
        // The pairs of each block (those whose first pixel lies in it).
        let ranges: Vec<(usize, usize)> = (0..w)
            .map(|tx| ((tx * s).div_ceil(2), ((tx + 1) * s).div_ceil(2).min(pairs)))
            .collect();
        for ty in 0..self.height {
            for row in ty * s..(ty + 1) * s {
                let line = &plane.data[row * plane.stride..][..pairs * 4];
                for (a, &(p0, p1)) in acc.iter_mut().zip(&ranges) {
                    for q in line[p0 * 4..p1 * 4].chunks_exact(4) {
                        a[0] += u32::from(q[0]) + u32::from(q[2]);
                        a[1] += 2 * u32::from(q[1]);
                        a[2] += 2 * u32::from(q[3]);
                    }
                }
            }
            for (tx, a) in acc.iter_mut().enumerate() {
                // The pairs this block got, two samples each, s rows.
                let pairs_here = ((tx + 1) * s).div_ceil(2) - (tx * s).div_ceil(2);
                let n = (2 * pairs_here * s).max(1) as u32;
                let i = ty * w + tx;
                self.y[i] = (a[0] / n).min(255) as u8;
                self.u[i] = (a[1] / n).min(255) as u8;
                self.v[i] = (a[2] / n).min(255) as u8;
                *a = [0; 3];
            }
        }
    }

    fn fill_planar(&mut self, frame: &Frame<'_>) {
        let (s, w, h) = (self.scale, self.width, self.height);
        self.fill_luma(frame);
        // Chroma: the half-resolution samples under each block (at least one).
        let (cw, ch) = (
            (frame.width as usize).div_ceil(2),
            (frame.height as usize).div_ceil(2),
        );
        let sample = |plane: usize, step: usize, offset: usize, cx: usize, cy: usize| {
            let p = frame.planes[plane];
            u32::from(p.data[cy * p.stride + cx * step + offset])
        };
        for ty in 0..h {
            for tx in 0..w {
                let (x0, x1) = ((tx * s) / 2, ((tx + 1) * s).div_ceil(2).min(cw));
                let (y0, y1) = ((ty * s) / 2, ((ty + 1) * s).div_ceil(2).min(ch));
                let (mut su, mut sv, mut n) = (0u32, 0u32, 0u32);
                for cy in y0..y1.max(y0 + 1) {
                    for cx in x0..x1.max(x0 + 1) {
                        let (u, v) = if frame.format == PixelFormat::Nv12 {
                            (sample(1, 2, 0, cx, cy), sample(1, 2, 1, cx, cy))
                        } else {
                            (sample(1, 1, 0, cx, cy), sample(2, 1, 0, cx, cy))
                        };
                        su += u;
                        sv += v;
                        n += 1;
                    }
                }
                self.u[ty * w + tx] = (su / n) as u8;
                self.v[ty * w + tx] = (sv / n) as u8;
            }
        }
    }
}
