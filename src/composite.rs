//! Putting a matte to use, in the frame's own format: background frames (solid colour,
//! picture, blurred frame), `out = alpha x frame + (1 - alpha) x background`, straight
//! alpha output and the grey matte. Plain integer loops on the CPU: no libtorch
//! round trip for work that is one multiply-add per byte.
//!
//! YUV frames are blended in Y'CbCr (the conversion is affine, so this equals
//! blending in RGB); a chroma sample takes the mean alpha of the pixels it covers.

use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut, PixelFormat, Plane, PlaneMut, YuvMatrix};

pub mod blur;
use crate::output::{BackgroundSource, OutputKind, OutputSpec};

/// A frame that owns its planes, rows tightly packed.
#[derive(Debug, Clone)]
pub struct OwnedFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub planes: Vec<Vec<u8>>,
    pub matrix: YuvMatrix,
}

impl OwnedFrame {
    fn zeroed(format: PixelFormat, width: u32, height: u32, matrix: YuvMatrix) -> Self {
        let planes = format
            .plane_sizes(width as usize, height as usize)
            .into_iter()
            .map(|(row, rows)| vec![0u8; row * rows])
            .collect();
        Self {
            format,
            width,
            height,
            planes,
            matrix,
        }
    }

    fn strides(&self) -> Vec<usize> {
        self.format
            .plane_sizes(self.width as usize, self.height as usize)
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: self
                .planes
                .iter()
                .zip(self.strides())
                .map(|(data, stride)| Plane { data, stride })
                .collect(),
            matrix: self.matrix,
        }
    }
}

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

/// The first `n` rows of a plane, `len` bytes each (`validate` checked they exist).
fn rows<'a>(p: &Plane<'a>, len: usize, n: usize) -> impl Iterator<Item = &'a [u8]> {
    p.data.chunks(p.stride).take(n).map(move |r| &r[..len])
}

fn rows_mut<'a>(
    p: &'a mut PlaneMut<'_>,
    len: usize,
    n: usize,
) -> impl Iterator<Item = &'a mut [u8]> {
    p.data
        .chunks_mut(p.stride)
        .take(n)
        .map(move |r| &mut r[..len])
}

/// (f x a + b x (255 - a) + 127) / 255 exactly: x / 255 rounded is (y + (y >> 8)) >> 8
/// with y = x + 128 for every x up to 255 x 255, and all of it fits u16 lanes
/// (no division, so the row loops vectorise).
#[inline(always)]
fn mix(f: u8, b: u8, a: u8) -> u8 {
    let (f, b, a) = (u16::from(f), u16::from(b), u16::from(a));
    let y = f * a + b * (255 - a) + 128;
    ((y + (y >> 8)) >> 8) as u8
}

/// `mix` over a row: every byte with its own alpha.
fn mix_row(out: &mut [u8], f: &[u8], b: &[u8], a: &[u8]) {
    for (((o, &f), &b), &a) in out.iter_mut().zip(f).zip(b).zip(a) {
        *o = mix(f, b, a);
    }
}

/// Each alpha `N` times (one per byte of a packed pixel).
fn spread<const N: usize>(dst: &mut [u8], alpha: &[u8]) {
    for (d, &a) in dst.chunks_exact_mut(N).zip(alpha) {
        d.copy_from_slice(&[a; N]);
    }
}

fn check_alpha(alpha: &[u8], width: u32, height: u32) -> Result<()> {
    let n = width as usize * height as usize;
    if alpha.len() != n {
        return Err(Error::InvalidFrame(format!(
            "matte has {} values, the {width}x{height} frame needs {n}",
            alpha.len()
        )));
    }
    Ok(())
}

fn check_same(a: &Frame<'_>, b: &FrameMut<'_>, what: &str) -> Result<()> {
    if (a.format, a.width, a.height) != (b.format, b.width, b.height) {
        return Err(Error::InvalidFrame(format!(
            "{what}: {}x{} {:?} does not match the output {}x{} {:?}",
            a.width, a.height, a.format, b.width, b.height, b.format
        )));
    }
    Ok(())
}

/// The alpha of one row of 4:2:0 chroma samples: the rounded mean, (sum + n/2) / n, of
/// the 2x2 pixels each covers in rows `top` and `bottom` (empty at an odd height's
/// last row; an odd width's last sample covers one column).
fn chroma_alpha_row(out: &mut [u8], top: &[u8], bottom: &[u8]) {
    let w = top.len();
    if bottom.is_empty() {
        return pair_alpha_row(out, top);
    }
    for ((o, t), b) in out
        .iter_mut()
        .zip(top.chunks_exact(2))
        .zip(bottom.chunks_exact(2))
    {
        let s = u16::from(t[0]) + u16::from(t[1]) + u16::from(b[0]) + u16::from(b[1]);
        *o = ((s + 2) >> 2) as u8;
    }
    if w % 2 == 1
        && let Some(o) = out.last_mut()
    {
        *o = ((u16::from(top[w - 1]) + u16::from(bottom[w - 1]) + 1) >> 1) as u8;
    }
}

/// As `chroma_alpha_row` for samples covering 2x1 pixels (YUY2, or 4:2:0's odd last row).
fn pair_alpha_row(out: &mut [u8], row: &[u8]) {
    for (o, p) in out.iter_mut().zip(row.chunks_exact(2)) {
        *o = ((u16::from(p[0]) + u16::from(p[1]) + 1) >> 1) as u8;
    }
    if row.len() % 2 == 1
        && let (Some(o), Some(&a)) = (out.last_mut(), row.last())
    {
        *o = a;
    }
}

/// round(v) clamped to 0..=255, as `v.round().clamp(0.0, 255.0) as u8` (halves away
/// from zero) but without the libm call, so loops over it vectorise: below 0.5 it is
/// 0; from 0.5 up, v + 0.5 is exact or rounds to the same integer part (it stays in
/// v's binade or lands on the next power of two), and the cast truncates and
/// saturates (NaN: 0 both ways).
#[inline(always)]
fn round_u8(v: f32) -> u8 {
    if v < 0.5 { 0 } else { (v + 0.5) as u8 }
}

/// Float alpha in [0,1] -> 8-bit alpha: hard at `threshold` when it is in (0, 1)
/// (>= threshold: 255, else 0), else round(clamp(a) x 255). The device path's
/// `composite_tensor::alpha_u8` is this rule on tensors.
pub fn alpha_u8(alpha: &[f32], threshold: f64) -> Vec<u8> {
    if threshold > 0.0 && threshold < 1.0 {
        alpha
            .iter()
            .map(|&a| if f64::from(a) >= threshold { 255 } else { 0 })
            .collect()
    } else {
        alpha
            .iter()
            .map(|&a| round_u8(a.clamp(0.0, 1.0) * 255.0))
            .collect()
    }
}

/// The whole output frame on the CPU for `frame` and its matte (float alpha, one per
/// pixel): the threshold, then the composite over `spec`'s background (the frame
/// blurred, or a prepared frame of the same shape), the alpha output or the grey
/// matte. `composite_tensor::output_planes` is the same on tensors.
pub fn output_frame(
    frame: &Frame<'_>,
    alpha: &[f32],
    spec: &OutputSpec,
    out: &mut FrameMut<'_>,
) -> Result<()> {
    let alpha = alpha_u8(alpha, spec.threshold);
    match (&spec.output, &spec.background) {
        (OutputKind::Matte, _) => write_gray(&alpha, out),
        (OutputKind::Alpha(_), _) => with_alpha(frame, &alpha, out),
        (OutputKind::Composite, BackgroundSource::Blur(radius)) => {
            blend(frame, &blurred(frame, *radius)?.as_frame(), &alpha, out)
        }
        (OutputKind::Composite, BackgroundSource::Frame(bg)) => {
            blend(frame, &bg.as_frame(), &alpha, out)
        }
    }
}

/// out = alpha x fg + (1 - alpha) x bg; all three frames of one format and size.
/// The alpha/padding byte of packed formats comes out opaque.
pub fn blend(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) -> Result<()> {
    fg.validate()?;
    bg.validate()?;
    out.validate()?;
    check_same(fg, out, "frame")?;
    check_same(bg, out, "background")?;
    check_alpha(alpha, fg.width, fg.height)?;
    if let Some(p) = fg.format.packed_rgb() {
        blend_packed(fg, bg, alpha, out, p);
        return Ok(());
    }
    match fg.format {
        PixelFormat::I420 | PixelFormat::Nv12 => blend_420(fg, bg, alpha, out),
        PixelFormat::Yuy2 => blend_yuy2(fg, bg, alpha, out),
        other => return Err(Error::InvalidFrame(format!("{other:?} cannot be blended"))),
    }
    Ok(())
}

/// `blend` for packed RGB formats (the padding/alpha byte set to 255).
fn blend_packed(
    fg: &Frame<'_>,
    bg: &Frame<'_>,
    alpha: &[u8],
    out: &mut FrameMut<'_>,
    p: crate::frame::PackedRgb,
) {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (bpp, len) = (p.bytes_per_pixel, w * p.bytes_per_pixel);
    // The row's alpha, one per byte; fixed-size copies so the spread is cheap.
    let mut spread_alpha = vec![0u8; len];
    let lines = rows(&fg.planes[0], len, h).zip(rows(&bg.planes[0], len, h));
    for ((o, (f, b)), a) in rows_mut(&mut out.planes[0], len, h)
        .zip(lines)
        .zip(alpha.chunks_exact(w))
    {
        match bpp {
            4 => spread::<4>(&mut spread_alpha, a),
            _ => spread::<3>(&mut spread_alpha, a),
        }
        mix_row(o, f, b, &spread_alpha);
        if let Some(e) = p.extra {
            for px in o.chunks_exact_mut(4) {
                px[e & 3] = 255;
            }
        }
    }
}

/// `blend` for I420 and NV12: luma per pixel, chroma with the mean alpha of its 2x2.
fn blend_420(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let lines = rows(&fg.planes[0], w, h).zip(rows(&bg.planes[0], w, h));
    for ((o, (f, b)), a) in rows_mut(&mut out.planes[0], w, h)
        .zip(lines)
        .zip(alpha.chunks_exact(w))
    {
        mix_row(o, f, b, a);
    }
    // NV12's U and V sit side by side: each chroma alpha twice.
    let per_sample = if fg.format == PixelFormat::I420 { 1 } else { 2 };
    let len = cw * per_sample;
    let (mut ca, mut spread_ca) = (vec![0u8; cw], vec![0u8; len]);
    let pairs = alpha.chunks(2 * w);
    let mut planes: Vec<_> = out
        .planes
        .iter_mut()
        .skip(1)
        .map(|p| rows_mut(p, len, ch))
        .collect();
    let mut inputs: Vec<_> = (1..fg.planes.len())
        .map(|i| rows(&fg.planes[i], len, ch).zip(rows(&bg.planes[i], len, ch)))
        .collect();
    for pair in pairs {
        let (top, bottom) = pair.split_at(w.min(pair.len()));
        chroma_alpha_row(&mut ca, top, bottom);
        let a = match per_sample {
            1 => &ca,
            _ => {
                spread::<2>(&mut spread_ca, &ca);
                &spread_ca
            }
        };
        for (o, input) in planes.iter_mut().zip(&mut inputs) {
            if let (Some(o), Some((f, b))) = (o.next(), input.next()) {
                mix_row(o, f, b, a);
            }
        }
    }
}

/// `blend` for YUY2: each luma with its pixel's alpha, U and V with their mean.
fn blend_yuy2(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let len = w.div_ceil(2) * 4;
    let mut quad = vec![0u8; len];
    let lines = rows(&fg.planes[0], len, h).zip(rows(&bg.planes[0], len, h));
    for ((o, (f, b)), a) in rows_mut(&mut out.planes[0], len, h)
        .zip(lines)
        .zip(alpha.chunks_exact(w))
    {
        // Y0 U Y1 V <- a0, mean, a1, mean; an odd width's last pair is one pixel.
        for (q, p) in quad.chunks_exact_mut(4).zip(a.chunks_exact(2)) {
            let m = ((u16::from(p[0]) + u16::from(p[1]) + 1) >> 1) as u8;
            q.copy_from_slice(&[p[0], m, p[1], m]);
        }
        if w % 2 == 1
            && let (Some(q), Some(&last)) = (quad.chunks_exact_mut(4).last(), a.last())
        {
            q.fill(last);
        }
        mix_row(o, f, b, &quad);
    }
}

/// The frame's colours with the matte as straight alpha, into an RGBA-family output
/// (RGBA, BGRA, ARGB or ABGR). YUV frames are converted to RGB.
pub fn with_alpha(fg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) -> Result<()> {
    fg.validate()?;
    out.validate()?;
    check_alpha(alpha, fg.width, fg.height)?;
    let rgba = out.format.packed_rgb().filter(|p| p.bytes_per_pixel == 4);
    let Some((op, alpha_byte)) = rgba.and_then(|p| p.extra.map(|e| (p, e))) else {
        return Err(Error::InvalidFrame(format!(
            "{:?} has no alpha channel",
            out.format
        )));
    };
    if (fg.width, fg.height) != (out.width, out.height) {
        return Err(Error::InvalidFrame("frame and output sizes differ".into()));
    }
    let (w, h) = (fg.width as usize, fg.height as usize);
    let mut rgb = vec![[0u8; 3]; w];
    let [r, g, b] = op.rgb.map(|c| c & 3);
    let a_at = alpha_byte & 3;
    for (y, (o, a)) in rows_mut(&mut out.planes[0], w * 4, h)
        .zip(alpha.chunks_exact(w))
        .enumerate()
    {
        rgb_row(fg, y, &mut rgb)?;
        for ((px, c), &a) in o.chunks_exact_mut(4).zip(&rgb).zip(a) {
            (px[r], px[g], px[b], px[a_at]) = (c[0], c[1], c[2], a);
        }
    }
    Ok(())
}

/// Row `y` of the frame as RGB (YUV: nearest chroma sample, the matrix, rounded).
fn rgb_row(fg: &Frame<'_>, y: usize, rgb: &mut [[u8; 3]]) -> Result<()> {
    let w = rgb.len();
    let line =
        |p: usize, row: usize, len: usize| &fg.planes[p].data[row * fg.planes[p].stride..][..len];
    if let Some(ip) = fg.format.packed_rgb() {
        let bpp = ip.bytes_per_pixel;
        for (d, s) in rgb.iter_mut().zip(line(0, y, w * bpp).chunks_exact(bpp)) {
            *d = ip.rgb.map(|c| s[c]);
        }
        return Ok(());
    }
    let cw = w.div_ceil(2);
    let to_rgb = Yuv2Rgb::new(fg.matrix);
    match fg.format {
        PixelFormat::I420 => {
            let (us, vs) = (line(1, y / 2, cw), line(2, y / 2, cw));
            let uv = us.iter().copied().zip(vs.iter().copied());
            yuv_row(rgb, line(0, y, w).iter().copied(), uv, &to_rgb);
        }
        PixelFormat::Nv12 => {
            let uv = line(1, y / 2, cw * 2).chunks_exact(2).map(|p| (p[0], p[1]));
            yuv_row(rgb, line(0, y, w).iter().copied(), uv, &to_rgb);
        }
        PixelFormat::Yuy2 => {
            let quads = line(0, y, cw * 4).chunks_exact(4);
            let luma = quads.clone().flat_map(|q| [q[0], q[2]]);
            yuv_row(rgb, luma, quads.map(|q| (q[1], q[3])), &to_rgb);
        }
        other => {
            return Err(Error::InvalidFrame(format!(
                "{other:?} is not an input format"
            )));
        }
    }
    Ok(())
}

/// RGB of a row of YUV pixels, two per chroma sample (an odd width's last sample: one).
fn yuv_row(
    rgb: &mut [[u8; 3]],
    mut luma: impl Iterator<Item = u8>,
    uv: impl Iterator<Item = (u8, u8)>,
    to_rgb: &Yuv2Rgb,
) {
    for (pair, (u, v)) in rgb.chunks_mut(2).zip(uv) {
        for (d, l) in pair.iter_mut().zip(&mut luma) {
            *d = to_rgb.convert(l, u, v);
        }
    }
}

/// Y'CbCr codes -> 8-bit R'G'B' with the frame's matrix (the float expression of
/// `YuvMatrix::to_rgb_affine`, term for term, so results do not move by a rounding).
struct Yuv2Rgb {
    m: [[f32; 3]; 3],
    off: [f32; 3],
}

impl Yuv2Rgb {
    fn new(matrix: YuvMatrix) -> Self {
        let (m, off) = matrix.to_rgb_affine();
        Self { m, off }
    }

    #[inline(always)]
    fn convert(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let (m, off) = (&self.m, &self.off);
        let d = [
            f32::from(y) - off[0],
            f32::from(u) - off[1],
            f32::from(v) - off[2],
        ];
        std::array::from_fn(|c| round_u8(m[c][0] * d[0] + m[c][1] * d[1] + m[c][2] * d[2]))
    }
}

/// The matte as a GRAY8 frame.
pub fn write_gray(alpha: &[u8], out: &mut FrameMut<'_>) -> Result<()> {
    out.validate()?;
    if out.format != PixelFormat::Gray8 {
        return Err(Error::InvalidFrame(format!(
            "matte output must be Gray8, not {:?}",
            out.format
        )));
    }
    check_alpha(alpha, out.width, out.height)?;
    let w = out.width as usize;
    let s = out.planes[0].stride;
    for (y, row) in alpha.chunks_exact(w).enumerate() {
        out.planes[0].data[y * s..y * s + w].copy_from_slice(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fg` over `bg` with `alpha`, into a new frame.
    fn blended(fg: &OwnedFrame, bg: &OwnedFrame, alpha: &[u8]) -> OwnedFrame {
        let mut out = OwnedFrame::zeroed(fg.format, fg.width, fg.height, fg.matrix);
        blend(
            &fg.as_frame(),
            &bg.as_frame(),
            alpha,
            &mut frame_mut(&mut out),
        )
        .unwrap();
        out
    }

    fn frame_mut<'a>(o: &'a mut OwnedFrame) -> FrameMut<'a> {
        let strides = o.strides();
        FrameMut {
            format: o.format,
            width: o.width,
            height: o.height,
            planes: o
                .planes
                .iter_mut()
                .zip(strides)
                .map(|(data, stride)| crate::frame::PlaneMut { data, stride })
                .collect(),
            matrix: o.matrix,
        }
    }

    /// Decodes any format back to RGB through `with_alpha` into RGBA.
    fn decode(f: &Frame<'_>) -> Vec<[u8; 3]> {
        let mut rgba = OwnedFrame::zeroed(PixelFormat::Rgba, f.width, f.height, f.matrix);
        let alpha = vec![255u8; (f.width * f.height) as usize];
        with_alpha(f, &alpha, &mut frame_mut(&mut rgba)).unwrap();
        rgba.planes[0]
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    fn picture(w: u32, h: u32) -> Vec<u8> {
        // Flat 2x2 blocks of varied colour, so chroma subsampling loses nothing.
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    let (bx, by) = (x / 2, y / 2);
                    [
                        (bx * 40 % 200 + 30) as u8,
                        (by * 70 % 180 + 40) as u8,
                        ((bx + by) * 25 % 190 + 30) as u8,
                    ]
                })
            })
            .collect()
    }

    #[test]
    fn blend_is_right_in_every_format() {
        let (w, h) = (16u32, 8u32);
        let rgb = picture(w, h);
        let bg_rgb = [20u8, 200, 60];
        // Alpha in 2x2 blocks: opaque, transparent and half, by column pair.
        let alpha: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).map(|x| [255u8, 0, 128][(x as usize / 2) % 3]))
            .collect();
        for format in PixelFormat::INPUTS {
            let m = YuvMatrix::BT709;
            let fg = from_rgb(format, w, h, m, &rgb).unwrap();
            let out = blended(&fg, &solid(format, w, h, m, bg_rgb), &alpha);
            let got = decode(&out.as_frame());
            for (i, px) in got.iter().enumerate() {
                let a = alpha[i] as f32 / 255.0;
                for c in 0..3 {
                    let want = a * rgb[i * 3 + c] as f32 + (1.0 - a) * bg_rgb[c] as f32;
                    let tol = if format.is_yuv() { 4.0 } else { 1.0 };
                    assert!(
                        (px[c] as f32 - want).abs() <= tol,
                        "{format:?} pixel {i} ch {c}: {} vs {want}",
                        px[c]
                    );
                }
            }
            if let Some(e) = format.packed_rgb().and_then(|p| p.extra) {
                assert!(
                    out.planes[0].chunks_exact(4).all(|p| p[e] == 255),
                    "{format:?} opaque"
                );
            }
        }
    }

    #[test]
    fn odd_sizes_and_tiny_frames_work_in_every_format() {
        for (w, h) in [(1, 1), (33, 17), (3, 2)] {
            let rgb = picture(w, h);
            let alpha = vec![200u8; (w * h) as usize];
            for format in PixelFormat::INPUTS {
                let m = YuvMatrix::BT601;
                let fg = from_rgb(format, w, h, m, &rgb).unwrap();
                let out = blended(&fg, &blurred(&fg.as_frame(), 5).unwrap(), &alpha);
                assert_eq!(decode(&out.as_frame()).len(), (w * h) as usize);
            }
        }
    }

    #[test]
    fn blur_keeps_flat_areas_and_spreads_edges() {
        let (w, h) = (40u32, 20u32);
        let flat = solid(PixelFormat::Bgrx, w, h, YuvMatrix::BT601, [90, 90, 90]);
        let b = blurred(&flat.as_frame(), 6).unwrap();
        assert_eq!(b.planes, flat.planes);
        // A white left half on black: after blurring the edge column is in between.
        let rgb: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [if x < w / 2 { 255u8 } else { 0 }; 3]))
            .collect();
        let f = from_rgb(PixelFormat::Rgb, w, h, YuvMatrix::BT601, &rgb).unwrap();
        let b = blurred(&f.as_frame(), 4).unwrap();
        let at = |x: u32| b.planes[0][((h / 2 * w + x) * 3) as usize];
        assert_eq!(at(0), 255);
        assert_eq!(at(w - 1), 0);
        assert!((100..=155).contains(&at(w / 2)), "{}", at(w / 2));
        assert!(at(w / 2 - 3) > at(w / 2) && at(w / 2) > at(w / 2 + 3));
    }

    #[test]
    fn straight_alpha_and_gray_outputs() {
        let (w, h) = (6u32, 4u32);
        let rgb = picture(w, h);
        let alpha: Vec<u8> = (0..w * h).map(|i| (i * 10) as u8).collect();
        let fg = from_rgb(PixelFormat::I420, w, h, YuvMatrix::BT601, &rgb).unwrap();
        let mut out = OwnedFrame::zeroed(PixelFormat::Argb, w, h, YuvMatrix::BT601);
        with_alpha(&fg.as_frame(), &alpha, &mut frame_mut(&mut out)).unwrap();
        for (i, p) in out.planes[0].chunks_exact(4).enumerate() {
            assert_eq!(p[0], alpha[i]);
            for c in 0..3 {
                assert!(
                    (p[1 + c] as i32 - rgb[i * 3 + c] as i32).abs() <= 3,
                    "pixel {i}"
                );
            }
        }
        let mut gray = OwnedFrame::zeroed(PixelFormat::Gray8, w, h, YuvMatrix::BT601);
        write_gray(&alpha, &mut frame_mut(&mut gray)).unwrap();
        assert_eq!(gray.planes[0], alpha);
        let err = with_alpha(&fg.as_frame(), &alpha, &mut frame_mut(&mut gray)).unwrap_err();
        assert!(err.to_string().contains("no alpha channel"));
        let err = write_gray(&alpha[1..], &mut frame_mut(&mut gray)).unwrap_err();
        assert!(err.to_string().contains("matte has 23 values"), "{err}");
    }

    /// Deterministic bytes (xorshift).
    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    /// A frame of random bytes whose rows are `pad` bytes longer than the format's.
    fn padded(format: PixelFormat, w: u32, h: u32, pad: usize, seed: u32) -> Vec<(Vec<u8>, usize)> {
        let sizes = format.plane_sizes(w as usize, h as usize);
        sizes
            .into_iter()
            .enumerate()
            .map(|(i, (row, rows))| (noise((row + pad) * rows, seed + i as u32), row + pad))
            .collect()
    }

    fn view(format: PixelFormat, w: u32, h: u32, planes: &[(Vec<u8>, usize)]) -> Frame<'_> {
        Frame {
            format,
            width: w,
            height: h,
            planes: planes
                .iter()
                .map(|(data, stride)| Plane {
                    data,
                    stride: *stride,
                })
                .collect(),
            matrix: YuvMatrix::BT709,
        }
    }

    /// Sample (x, y) of plane `p`, `c` bytes into it.
    fn at(f: &Frame<'_>, p: usize, x: usize, y: usize) -> u32 {
        u32::from(f.planes[p].data[y * f.planes[p].stride + x])
    }

    /// The blend written out per byte: which pixels each byte covers, their mean
    /// alpha (sum + n/2) / n, and (f a + b (255 - a) + 127) / 255 in u32.
    fn reference_blend(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8]) -> Vec<Vec<u8>> {
        let (w, h) = (fg.width as usize, fg.height as usize);
        let mean = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
            let (mut s, mut n) = (0u32, 0u32);
            for y in ys.start..ys.end.min(h) {
                for x in xs.start..xs.end.min(w) {
                    s += u32::from(alpha[y * w + x]);
                    n += 1;
                }
            }
            (s + n / 2) / n
        };
        let sizes = fg.format.plane_sizes(w, h);
        let packed = fg.format.packed_rgb();
        sizes
            .iter()
            .enumerate()
            .map(|(p, &(row, rows))| {
                let mut out = vec![0u8; row * rows];
                for y in 0..rows {
                    for x in 0..row {
                        let a = match (fg.format, p, packed) {
                            (_, _, Some(pk)) if Some(x % pk.bytes_per_pixel) == pk.extra => {
                                out[y * row + x] = 255;
                                continue;
                            }
                            (_, _, Some(pk)) => {
                                mean(x / pk.bytes_per_pixel..x / pk.bytes_per_pixel + 1, y..y + 1)
                            }
                            (PixelFormat::Yuy2, _, _) if x % 2 == 0 => {
                                let px = (x / 4 * 2 + x % 4 / 2).min(w - 1);
                                mean(px..px + 1, y..y + 1)
                            }
                            (PixelFormat::Yuy2, _, _) => mean(x / 4 * 2..x / 4 * 2 + 2, y..y + 1),
                            (_, 0, _) => mean(x..x + 1, y..y + 1),
                            (PixelFormat::Nv12, _, _) => {
                                mean(x / 2 * 2..x / 2 * 2 + 2, 2 * y..2 * y + 2)
                            }
                            _ => mean(2 * x..2 * x + 2, 2 * y..2 * y + 2),
                        };
                        let v = (at(fg, p, x, y) * a + at(bg, p, x, y) * (255 - a) + 127) / 255;
                        out[y * row + x] = v as u8;
                    }
                }
                out
            })
            .collect()
    }

    /// The tight planes of an output blended with padded rows.
    fn blend_padded(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8]) -> Vec<Vec<u8>> {
        let (w, h) = (fg.width, fg.height);
        let sizes = fg.format.plane_sizes(w as usize, h as usize);
        let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|(r, n)| vec![7u8; (r + 3) * n]).collect();
        blend(
            fg,
            bg,
            alpha,
            &mut FrameMut::over(fg.format, w, h, &mut bufs, 3),
        )
        .unwrap();
        bufs.iter()
            .zip(&sizes)
            .map(|(b, (r, n))| {
                (0..*n)
                    .flat_map(|y| b[y * (r + 3)..][..*r].to_vec())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn mix_is_the_rounded_division_for_every_input() {
        for a in 0..=255u32 {
            for f in 0..=255u32 {
                for b in 0..=255u32 {
                    let want = (f * a + b * (255 - a) + 127) / 255;
                    assert_eq!(
                        u32::from(mix(f as u8, b as u8, a as u8)),
                        want,
                        "{f} {b} {a}"
                    );
                }
            }
        }
    }

    #[test]
    fn round_u8_rounds_as_round_then_clamp() {
        let reference = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        // Every float within 300 ulps of each half and whole number, and some far ones.
        let mut values: Vec<f32> = vec![f32::NAN, -1e9, 1e9, f32::INFINITY, 0.0, -0.0];
        for k in -4..=600 {
            let centre = (k as f32 / 2.0).to_bits();
            values
                .extend((0..600).map(|d| f32::from_bits(centre.wrapping_sub(300).wrapping_add(d))));
        }
        values.extend(
            noise(400_000, 3)
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3] & 0x43])),
        );
        for v in values {
            assert_eq!(round_u8(v), reference(v), "{v:e} ({:#x})", v.to_bits());
        }
    }

    #[test]
    fn alpha_u8_follows_the_threshold_rule() {
        let floats: Vec<f32> = noise(40_000, 5)
            .chunks_exact(4)
            .map(|b| {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / u32::MAX as f32 * 1.2 - 0.1
            })
            .chain([
                0.0,
                1.0,
                0.5,
                0.5 / 255.0,
                127.5 / 255.0,
                f32::NAN,
                -3.0,
                7.0,
            ])
            .collect();
        let soft: Vec<u8> = floats
            .iter()
            .map(|a| (a.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        assert_eq!(alpha_u8(&floats, 0.0), soft);
        assert_eq!(alpha_u8(&floats, 1.0), soft);
        let hard: Vec<u8> = floats
            .iter()
            .map(|&a| if f64::from(a) >= 0.3 { 255 } else { 0 })
            .collect();
        assert_eq!(alpha_u8(&floats, 0.3), hard);
    }

    #[test]
    fn blend_equals_the_formula_on_random_frames_in_every_format() {
        for (w, h) in [(1u32, 1u32), (2, 2), (7, 5), (33, 17), (64, 36)] {
            for (k, format) in PixelFormat::INPUTS.into_iter().enumerate() {
                let seed = k as u32 * 10;
                let (fg, bg) = (
                    padded(format, w, h, 5, seed),
                    padded(format, w, h, 2, seed + 3),
                );
                let (fg, bg) = (view(format, w, h, &fg), view(format, w, h, &bg));
                let alpha = noise((w * h) as usize, seed + 7);
                let want = reference_blend(&fg, &bg, &alpha);
                assert_eq!(blend_padded(&fg, &bg, &alpha), want, "{format:?} {w}x{h}");
            }
        }
    }

    /// `with_alpha` before the row loops: per pixel, nearest chroma, rounded floats.
    fn reference_rgba(fg: &Frame<'_>, alpha: &[u8]) -> Vec<[u8; 4]> {
        let (w, h) = (fg.width as usize, fg.height as usize);
        let (m, off) = fg.matrix.to_rgb_affine();
        let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let rgb = match (fg.format.packed_rgb(), fg.format) {
                    (Some(p), _) => p.rgb.map(|c| at(fg, 0, x * p.bytes_per_pixel + c, y) as u8),
                    (_, f) => {
                        let [l, u, v] = match f {
                            PixelFormat::I420 => [
                                at(fg, 0, x, y),
                                at(fg, 1, x / 2, y / 2),
                                at(fg, 2, x / 2, y / 2),
                            ],
                            PixelFormat::Nv12 => [
                                at(fg, 0, x, y),
                                at(fg, 1, x / 2 * 2, y / 2),
                                at(fg, 1, x / 2 * 2 + 1, y / 2),
                            ],
                            _ => [
                                at(fg, 0, x / 2 * 4 + x % 2 * 2, y),
                                at(fg, 0, x / 2 * 4 + 1, y),
                                at(fg, 0, x / 2 * 4 + 3, y),
                            ],
                        };
                        let d = [l as f32 - off[0], u as f32 - off[1], v as f32 - off[2]];
                        std::array::from_fn(|c| q(m[c][0] * d[0] + m[c][1] * d[1] + m[c][2] * d[2]))
                    }
                };
                out.push([rgb[0], rgb[1], rgb[2], alpha[y * w + x]]);
            }
        }
        out
    }

    #[test]
    fn straight_alpha_equals_the_per_pixel_conversion_in_every_format() {
        for (w, h) in [(1u32, 1u32), (7, 5), (33, 17)] {
            for (k, format) in PixelFormat::INPUTS.into_iter().enumerate() {
                let planes = padded(format, w, h, 4, k as u32);
                let fg = view(format, w, h, &planes);
                let alpha = noise((w * h) as usize, 77);
                let want = reference_rgba(&fg, &alpha);
                for out_format in [
                    PixelFormat::Rgba,
                    PixelFormat::Bgra,
                    PixelFormat::Argb,
                    PixelFormat::Abgr,
                ] {
                    let mut out = OwnedFrame::zeroed(out_format, w, h, fg.matrix);
                    with_alpha(&fg, &alpha, &mut frame_mut(&mut out)).unwrap();
                    let p = out_format.packed_rgb().unwrap();
                    let e = p.extra.unwrap();
                    for (i, px) in out.planes[0].chunks_exact(4).enumerate() {
                        let got = [px[p.rgb[0]], px[p.rgb[1]], px[p.rgb[2]], px[e]];
                        assert_eq!(
                            got, want[i],
                            "{format:?} -> {out_format:?} {w}x{h} pixel {i}"
                        );
                    }
                }
            }
        }
    }

    /// Smooth shapes with some texture: what a camera frame looks like to a blur.
    fn scene(w: u32, h: u32) -> Vec<u8> {
        let grain = noise((w * h * 3) as usize, 11);
        (0..w * h * 3)
            .map(|i| {
                let (x, y, c) = ((i / 3) % w, (i / 3) / w, i % 3);
                let base = (x * 255 / w + y * 120 / h + c * 60) % 256;
                let stripe = if (x / 13 + y / 9) % 3 == 0 { 60 } else { 0 };
                ((base + stripe) % 256) as u8 ^ (grain[i as usize] >> 5)
            })
            .collect()
    }

    #[test]
    fn reduced_blur_keeps_size_flat_areas_and_radius_zero() {
        let (w, h) = (37u32, 22u32);
        let rgb = scene(w, h);
        for format in PixelFormat::INPUTS {
            let f = from_rgb(format, w, h, YuvMatrix::BT709, &rgb).unwrap();
            let same = blurred(&f.as_frame(), 0).unwrap();
            assert_eq!(same.planes, f.planes, "{format:?} radius 0");
            for radius in [8, 16, 40, 300] {
                let b = blurred(&f.as_frame(), radius).unwrap();
                assert_eq!((b.format, b.width, b.height), (format, w, h));
                let sizes = format.plane_sizes(w as usize, h as usize);
                let lens: Vec<usize> = sizes.iter().map(|(r, n)| r * n).collect();
                assert_eq!(b.planes.iter().map(Vec::len).collect::<Vec<_>>(), lens);
                let flat = solid(format, w, h, YuvMatrix::BT709, [200, 40, 90]);
                let fb = blurred(&flat.as_frame(), radius).unwrap();
                assert_eq!(fb.planes, flat.planes, "{format:?} radius {radius} flat");
            }
        }
    }

    #[test]
    fn reduced_blur_stays_close_to_the_full_resolution_blur() {
        let (w, h) = (320u32, 180u32);
        let rgb = scene(w, h);
        for (format, radius) in [
            (PixelFormat::Rgb, 16u32),
            (PixelFormat::I420, 16),
            (PixelFormat::Yuy2, 24),
            (PixelFormat::Nv12, 40),
        ] {
            let f = from_rgb(format, w, h, YuvMatrix::BT709, &rgb).unwrap();
            let fast = blurred(&f.as_frame(), radius).unwrap();
            let jobs = blur_planes(format, w, h, radius);
            let (mut sum, mut n, mut max) = (0u64, 0u64, 0u8);
            for ((plane, got), (pw, ph, c, r)) in f.planes.iter().zip(&fast.planes).zip(jobs) {
                let mut full = plane.clone();
                for _ in 0..3 {
                    blur::box_blur(&mut full, pw, ph, c, r);
                }
                for (a, b) in full.iter().zip(got) {
                    let d = a.abs_diff(*b);
                    (sum, n, max) = (sum + u64::from(d), n + 1, max.max(d));
                }
            }
            let mean = sum as f64 / n as f64;
            println!("{format:?} r {radius}: mean {mean:.3}, max {max}");
            assert!(
                mean < 1.5 && max <= 10,
                "{format:?} r {radius}: mean {mean:.2}, max {max}"
            );
        }
    }
}
