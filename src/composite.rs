//! Putting a matte to use, in the frame's own format: background frames (solid colour,
//! picture, blurred frame), `out = alpha x frame + (1 - alpha) x background`, straight
//! alpha output and the grey matte. Plain integer loops on the CPU: no libtorch
//! round trip for work that is one multiply-add per byte.
//!
//! YUV frames are blended in Y'CbCr (the conversion is affine, so this equals
//! blending in RGB); a chroma sample takes the mean alpha of the pixels it covers.

use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut, PixelFormat, Plane, YuvMatrix};
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
/// the size.
pub fn blurred(frame: &Frame<'_>, radius: u32) -> Result<OwnedFrame> {
    frame.validate()?;
    let mut out = OwnedFrame::zeroed(frame.format, frame.width, frame.height, frame.matrix);
    let jobs = blur_planes(frame.format, frame.width, frame.height, radius);
    for (i, (pw, ph, channels, radius)) in jobs.into_iter().enumerate() {
        let src = &frame.planes[i];
        let mut buf: Vec<u8> = (0..ph)
            .flat_map(|y| {
                src.data[y * src.stride..y * src.stride + pw * channels]
                    .iter()
                    .copied()
            })
            .collect();
        for _ in 0..3 {
            box_blur(&mut buf, pw, ph, channels, radius);
        }
        out.planes[i] = buf;
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

/// In-place separable box blur of a packed `w` x `h` x `c` picture, edges clamped.
fn box_blur(buf: &mut [u8], w: usize, h: usize, c: usize, r: usize) {
    if r == 0 {
        return;
    }
    let n = (2 * r + 1) as u32;
    let mut line = vec![0u8; w.max(h) * c];
    // Horizontal: running sum along each row.
    for y in 0..h {
        let row = &mut buf[y * w * c..(y + 1) * w * c];
        line[..w * c].copy_from_slice(row);
        for ch in 0..c {
            let at = |x: isize| line[(x.clamp(0, w as isize - 1) as usize) * c + ch] as u32;
            let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
            for x in 0..w {
                row[x * c + ch] = ((sum + n / 2) / n) as u8;
                sum += at(x as isize + r as isize + 1);
                sum -= at(x as isize - r as isize);
            }
        }
    }
    // Vertical: running sums of whole rows, so memory is read row by row.
    let stride = w * c;
    let src = buf.to_vec();
    let row = |y: isize| &src[(y.clamp(0, h as isize - 1) as usize) * stride..][..stride];
    let mut sums = vec![0u32; stride];
    for y in -(r as isize)..=r as isize {
        for (s, &v) in sums.iter_mut().zip(row(y)) {
            *s += v as u32;
        }
    }
    for y in 0..h {
        for (d, s) in buf[y * stride..(y + 1) * stride].iter_mut().zip(&sums) {
            *d = ((s + n / 2) / n) as u8;
        }
        let (add, sub) = (
            row(y as isize + r as isize + 1),
            row(y as isize - r as isize),
        );
        for ((s, &a), &b) in sums.iter_mut().zip(add).zip(sub) {
            *s = *s + a as u32 - b as u32;
        }
    }
}

#[inline]
fn mix(f: u8, b: u8, a: u32) -> u8 {
    ((f as u32 * a + b as u32 * (255 - a) + 127) / 255) as u8
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

/// Mean alpha of the pixels a chroma sample at (cx, cy) covers (`rows` = 2 or 1).
#[inline]
fn chroma_alpha(alpha: &[u8], w: usize, h: usize, cx: usize, cy: usize, rows: usize) -> u32 {
    let (mut sum, mut n) = (0u32, 0u32);
    for y in (cy * rows)..((cy + 1) * rows).min(h) {
        for x in (cx * 2)..(cx * 2 + 2).min(w) {
            sum += alpha[y * w + x] as u32;
            n += 1;
        }
    }
    (sum + n / 2) / n
}

/// Float alpha in [0,1] -> 8-bit alpha: hard at `threshold` when it is in (0, 1)
/// (>= threshold: 255, else 0), else round(clamp(a) x 255). The device path's
/// `composite_tensor::alpha_u8` is this rule on tensors.
pub fn alpha_u8(alpha: &[f32], threshold: f64) -> Vec<u8> {
    let hard = threshold > 0.0 && threshold < 1.0;
    alpha
        .iter()
        .map(|&a| match hard {
            true if f64::from(a) >= threshold => 255,
            true => 0,
            false => (a.clamp(0.0, 1.0) * 255.0).round() as u8,
        })
        .collect()
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
    let bpp = p.bytes_per_pixel;
    let (f, b, o) = (&fg.planes[0], &bg.planes[0], &mut out.planes[0]);
    for y in 0..h {
        let fr = &f.data[y * f.stride..][..w * bpp];
        let br = &b.data[y * b.stride..][..w * bpp];
        let or = &mut o.data[y * o.stride..][..w * bpp];
        let ar = &alpha[y * w..][..w];
        for (x, &a) in ar.iter().enumerate() {
            let i = x * bpp;
            for &c in &p.rgb {
                or[i + c] = mix(fr[i + c], br[i + c], a as u32);
            }
            if let Some(e) = p.extra {
                or[i + e] = 255;
            }
        }
    }
}

/// `blend` for I420 and NV12: luma per pixel, chroma with the mean alpha of its 2x2.
fn blend_420(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for y in 0..h {
        for x in 0..w {
            let i = |p: &Plane<'_>| y * p.stride + x;
            let v = mix(
                fg.planes[0].data[i(&fg.planes[0])],
                bg.planes[0].data[i(&bg.planes[0])],
                alpha[y * w + x] as u32,
            );
            let s = out.planes[0].stride;
            out.planes[0].data[y * s + x] = v;
        }
    }
    let per_sample = if fg.format == PixelFormat::I420 { 1 } else { 2 };
    for plane in 1..fg.planes.len() {
        let (f, b) = (&fg.planes[plane], &bg.planes[plane]);
        let s = out.planes[plane].stride;
        for cy in 0..ch {
            for cx in 0..cw {
                let a = chroma_alpha(alpha, w, h, cx, cy, 2);
                for k in 0..per_sample {
                    let x = cx * per_sample + k;
                    out.planes[plane].data[cy * s + x] =
                        mix(f.data[cy * f.stride + x], b.data[cy * b.stride + x], a);
                }
            }
        }
    }
}

/// `blend` for YUY2: each luma with its pixel's alpha, U and V with their mean.
fn blend_yuy2(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (f, b) = (&fg.planes[0], &bg.planes[0]);
    let s = out.planes[0].stride;
    for y in 0..h {
        for cx in 0..w.div_ceil(2) {
            let x0 = cx * 2;
            let x1 = (x0 + 1).min(w - 1);
            let a0 = alpha[y * w + x0] as u32;
            let a1 = alpha[y * w + x1] as u32;
            let ac = chroma_alpha(alpha, w, h, cx, y, 1);
            let i = cx * 4;
            for (k, a) in [(0, a0), (1, ac), (2, a1), (3, ac)] {
                out.planes[0].data[y * s + i + k] = mix(
                    f.data[y * f.stride + i + k],
                    b.data[y * b.stride + i + k],
                    a,
                );
            }
        }
    }
}

/// The frame's colours with the matte as straight alpha, into an RGBA-family output
/// (RGBA, BGRA, ARGB or ABGR). YUV frames are converted to RGB.
pub fn with_alpha(fg: &Frame<'_>, alpha: &[u8], out: &mut FrameMut<'_>) -> Result<()> {
    fg.validate()?;
    out.validate()?;
    check_alpha(alpha, fg.width, fg.height)?;
    let Some(op) = out.format.packed_rgb().filter(|p| p.bytes_per_pixel == 4) else {
        return Err(Error::InvalidFrame(format!(
            "{:?} has no alpha channel",
            out.format
        )));
    };
    let Some(alpha_byte) = op.extra else {
        return Err(Error::InvalidFrame(format!(
            "{:?} has no alpha channel",
            out.format
        )));
    };
    if (fg.width, fg.height) != (out.width, out.height) {
        return Err(Error::InvalidFrame("frame and output sizes differ".into()));
    }
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (m, off) = fg.matrix.to_rgb_affine();
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let s = out.planes[0].stride;
    for y in 0..h {
        for x in 0..w {
            let rgb: [u8; 3] = if let Some(ip) = fg.format.packed_rgb() {
                let p = &fg.planes[0];
                let i = y * p.stride + x * ip.bytes_per_pixel;
                ip.rgb.map(|c| p.data[i + c])
            } else {
                let (yv, u, v) = match fg.format {
                    PixelFormat::I420 => {
                        let [py, pu, pv] = [&fg.planes[0], &fg.planes[1], &fg.planes[2]];
                        (
                            py.data[y * py.stride + x],
                            pu.data[y / 2 * pu.stride + x / 2],
                            pv.data[y / 2 * pv.stride + x / 2],
                        )
                    }
                    PixelFormat::Nv12 => {
                        let [py, puv] = [&fg.planes[0], &fg.planes[1]];
                        let i = y / 2 * puv.stride + x / 2 * 2;
                        (py.data[y * py.stride + x], puv.data[i], puv.data[i + 1])
                    }
                    PixelFormat::Yuy2 => {
                        let p = &fg.planes[0];
                        let i = y * p.stride + x / 2 * 4;
                        (p.data[i + (x % 2) * 2], p.data[i + 1], p.data[i + 3])
                    }
                    other => {
                        return Err(Error::InvalidFrame(format!(
                            "{other:?} is not an input format"
                        )));
                    }
                };
                let d = [yv as f32 - off[0], u as f32 - off[1], v as f32 - off[2]];
                std::array::from_fn(|c| q(m[c][0] * d[0] + m[c][1] * d[1] + m[c][2] * d[2]))
            };
            let o = y * s + x * 4;
            for (&c, v) in op.rgb.iter().zip(rgb) {
                out.planes[0].data[o + c] = v;
            }
            out.planes[0].data[o + alpha_byte] = alpha[y * w + x];
        }
    }
    Ok(())
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
}
