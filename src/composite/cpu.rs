//! Compositing on the CPU: `out = alpha x frame + (1 - alpha) x background`, straight
//! alpha output and the grey matte, in the frame's own format. Plain integer loops:
//! no libtorch round trip for work that is one multiply-add per byte.
//!
//! YUV frames are blended in Y'CbCr (the conversion is affine, so this equals
//! blending in RGB); a chroma sample takes the mean alpha of the pixels it covers.

use crate::composite::background::blurred;
use crate::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut, PixelFormat, Plane, PlaneMut, YuvMatrix};

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

// The CPU compositing tests, and the background frames they blend over.
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
