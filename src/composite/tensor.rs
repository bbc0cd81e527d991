//! The output frame made with tensor ops on the network's device (the device path's
//! compositing; `composite` is the same on the CPU with loops): the matte through the
//! EMA, the threshold, then the composite, alpha or grey output. This is how the CUDA
//! path keeps the frame on the GPU between upload and download; on a CPU the same ops
//! run on libtorch's CPU kernels (which is how the tests check them).
//!
//! Every op mirrors `composite` (integer rounding included), so the two paths agree
//! to within one code value; `tests/render.rs` holds them to that.

use tch::{Device, Kind, Tensor};

use crate::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use crate::composite::{self, blur};
use crate::error::{Error, Result};
use crate::frame::{FrameShape, OwnedFrame, PixelFormat, planes};

/// The mattes a stream has seen: the last raw one and the EMA.
#[derive(Debug, Default)]
pub struct MatteHistory {
    size: (u32, u32),
    last_raw: Option<Tensor>,
    ema: Option<Tensor>,
}

impl MatteHistory {
    /// Bytes of device memory held (the last matte and the EMA).
    pub(crate) fn bytes(&self) -> usize {
        let bytes = |t: &Tensor| t.numel() * t.kind().elt_size_in_bytes();
        self.last_raw.iter().chain(&self.ema).map(bytes).sum()
    }

    /// The matte for this frame after the EMA: `matte` (float [h,w] in [0,1], on the
    /// device) from the network, or `None` to reuse the last one (mask-every).
    /// Same rule as `temporal::Temporal::push` / `push_reused` without OFD. A size
    /// change forgets the history.
    pub fn smooth(
        &mut self,
        matte: Option<Tensor>,
        width: u32,
        height: u32,
        smoothing: f32,
        device: Device,
    ) -> Result<Tensor> {
        if self.size != (width, height) {
            *self = Self::default();
            self.size = (width, height);
        }
        let raw = match matte {
            Some(m) => m,
            None => match &self.last_raw {
                Some(m) => m.shallow_clone(),
                None => Tensor::f_zeros([height as i64, width as i64], (Kind::Float, device))?,
            },
        };
        self.last_raw = Some(raw.shallow_clone());
        let s = f64::from(smoothing.clamp(0.0, 0.999));
        if s <= 0.0 {
            self.ema = None;
            return Ok(raw);
        }
        let smoothed = match self.ema.take() {
            Some(prev) => prev.f_mul_scalar(s)?.f_add(&raw.f_mul_scalar(1.0 - s)?)?,
            None => raw,
        };
        self.ema = Some(smoothed.shallow_clone());
        Ok(smoothed)
    }
}

/// The background frame on the device, uploaded once per new `Arc`.
#[derive(Debug, Default)]
pub struct BackgroundCache(Option<(std::sync::Arc<OwnedFrame>, Vec<Tensor>)>);

impl BackgroundCache {
    /// The background planes on `device`, uploading only when the frame changed.
    pub fn planes(
        &mut self,
        frame: &std::sync::Arc<OwnedFrame>,
        device: Device,
    ) -> Result<Vec<Tensor>> {
        if let Some((held, planes)) = &self.0
            && std::sync::Arc::ptr_eq(held, frame)
        {
            return Ok(planes.iter().map(Tensor::shallow_clone).collect());
        }
        let sizes = frame
            .format
            .plane_sizes(frame.width as usize, frame.height as usize);
        let planes = frame
            .planes
            .iter()
            .zip(sizes)
            .map(|(data, (row, rows))| {
                Tensor::from_slice(data)
                    .f_view([rows as i64, row as i64])?
                    .f_to_device(device)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.0 = Some((
            frame.clone(),
            planes.iter().map(Tensor::shallow_clone).collect(),
        ));
        Ok(planes)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.0
            .iter()
            .flat_map(|(_, p)| p.iter().map(|t| t.numel() * t.kind().elt_size_in_bytes()))
            .sum()
    }
}

/// The frame's output planes (uint8 [rows, row_bytes] each, tight) from its input
/// planes (as `frame::planes::frame_planes`), its shape and the final matte (float
/// [h,w]); the background frame comes from (and is uploaded once into) `background`.
pub fn output_planes(
    background: &mut BackgroundCache,
    spec: &OutputSpec,
    planes: &[Tensor],
    shape: &FrameShape,
    matte: &Tensor,
) -> Result<Vec<Tensor>> {
    let FrameShape {
        format,
        width,
        height,
        ..
    } = *shape;
    let device = matte.device();
    let alpha = alpha_u8(matte, spec.threshold)?;
    match spec.output {
        OutputKind::Matte => Ok(vec![alpha]),
        OutputKind::Alpha(out) => Ok(vec![with_alpha(planes, shape, &alpha, out)?]),
        OutputKind::Composite => {
            let background = match &spec.background {
                BackgroundSource::Blur(radius) => planes
                    .iter()
                    .zip(composite::blur_planes(format, width, height, *radius))
                    .map(|(p, (pw, ph, c, r))| blur_plane(p, pw, ph, c, r))
                    .collect::<Result<Vec<_>>>()?,
                BackgroundSource::Frame(frame) => {
                    if (frame.format, frame.width, frame.height) != (format, width, height) {
                        return Err(Error::InvalidFrame(format!(
                            "background is {}x{} {:?}, the frame {width}x{height} {format:?}",
                            frame.width, frame.height, frame.format
                        )));
                    }
                    background.planes(frame, device)?
                }
            };
            blend(planes, &background, format, width, height, &alpha)
        }
    }
}

/// float matte -> uint8 alpha: hard at `threshold` when it is in (0, 1), else
/// round(clamp(a) x 255).
pub fn alpha_u8(matte: &Tensor, threshold: f64) -> Result<Tensor> {
    let a = if threshold > 0.0 && threshold < 1.0 {
        matte
            .f_ge(threshold)?
            .f_to_kind(Kind::Uint8)?
            .f_mul_scalar(255)?
    } else {
        matte
            .f_clamp(0.0, 1.0)?
            .f_mul_scalar(255.0)?
            .f_round()?
            .f_to_kind(Kind::Uint8)?
    };
    Ok(a)
}

/// (f x a + b x (255 - a) + 127) / 255 in integers, as `composite::mix`.
fn mix(f: &Tensor, b: &Tensor, a: &Tensor) -> Result<Tensor> {
    let (f, b, a) = (
        f.f_to_kind(Kind::Int)?,
        b.f_to_kind(Kind::Int)?,
        a.f_to_kind(Kind::Int)?,
    );
    let inv = a.f_neg()?.f_add_scalar(255)?;
    let sum = f.f_mul(&a)?.f_add(&b.f_mul(&inv)?)?.f_add_scalar(127)?;
    Ok(sum
        .f_div_scalar_mode(255, "floor")?
        .f_to_kind(Kind::Uint8)?)
}

/// Mean alpha over the pixels each chroma sample covers (2x2, or 2x1 with `rows` 1),
/// rounded as `(sum + n/2) / n`; edges of odd sizes average what is there.
fn chroma_alpha(alpha: &Tensor, rows: i64) -> Result<Tensor> {
    let a = alpha
        .f_to_kind(Kind::Float)?
        .f_unsqueeze(0)?
        .f_unsqueeze(0)?;
    let mean = a.f_avg_pool2d([rows, 2], [rows, 2], [0, 0], true, false, None::<i64>)?;
    Ok(mean
        .f_add_scalar(0.5)?
        .f_floor()?
        .f_squeeze_dim(0)?
        .f_squeeze_dim(0)?
        .f_to_kind(Kind::Uint8)?)
}

fn blend(
    fg: &[Tensor],
    bg: &[Tensor],
    format: PixelFormat,
    width: u32,
    height: u32,
    alpha: &Tensor,
) -> Result<Vec<Tensor>> {
    let (w, h) = (width as i64, height as i64);
    if fg.len() != bg.len() || fg.is_empty() {
        return Err(Error::InvalidFrame(format!(
            "{format:?}: {} frame planes, {} background planes",
            fg.len(),
            bg.len()
        )));
    }
    if let Some(p) = format.packed_rgb() {
        let bpp = p.bytes_per_pixel as i64;
        let f = fg[0].f_view([h, w, bpp])?;
        let b = bg[0].f_view([h, w, bpp])?;
        let out = mix(&f, &b, &alpha.f_unsqueeze(2)?)?;
        if let Some(e) = p.extra {
            let _ = out.f_narrow(2, e as i64, 1)?.f_fill_(255)?;
        }
        return Ok(vec![out.f_view([h, w * bpp])?]);
    }
    match format {
        PixelFormat::I420 | PixelFormat::Nv12 => {
            let ca = chroma_alpha(alpha, 2)?;
            let mut out = vec![mix(&fg[0], &bg[0], alpha)?];
            for (f, b) in fg.iter().zip(bg).skip(1) {
                let a = if format == PixelFormat::Nv12 {
                    twice(&ca, 1)?
                } else {
                    ca.shallow_clone()
                };
                out.push(mix(f, b, &a)?);
            }
            Ok(out)
        }
        PixelFormat::Yuy2 => {
            let cw = (w + 1) / 2;
            // Y0 takes the alpha of pixel 2x, Y1 of 2x+1 (the last pixel again at an
            // odd width), U and V the mean of both.
            let padded = if w % 2 == 1 {
                Tensor::f_cat(&[alpha.shallow_clone(), alpha.f_narrow(1, w - 1, 1)?], 1)?
            } else {
                alpha.shallow_clone()
            };
            let pairs = padded.f_view([h, cw, 2])?;
            let ca = chroma_alpha(alpha, 1)?;
            let a = Tensor::f_stack(
                &[
                    pairs.f_select(2, 0)?,
                    ca.shallow_clone(),
                    pairs.f_select(2, 1)?,
                    ca,
                ],
                2,
            )?
            .f_view([h, cw * 4])?;
            Ok(vec![mix(&fg[0], &bg[0], &a)?])
        }
        other => Err(Error::InvalidFrame(format!("{other:?} cannot be blended"))),
    }
}

/// The frame's RGB with the matte as alpha, packed in `out` (an RGBA-family format).
fn with_alpha(
    planes: &[Tensor],
    shape: &FrameShape,
    alpha: &Tensor,
    out: PixelFormat,
) -> Result<Tensor> {
    let (w, h) = (i64::from(shape.width), i64::from(shape.height));
    let (Some(op), Some(alpha_byte)) = (
        out.packed_rgb().filter(|p| p.bytes_per_pixel == 4),
        out.packed_rgb().and_then(|p| p.extra),
    ) else {
        return Err(Error::InvalidFrame(format!("{out:?} has no alpha channel")));
    };
    // R, G, B ([h, w] uint8 each) and alpha into their byte positions.
    let rgb = match planes::rgb_channels(planes, shape)? {
        Some(channels) => channels,
        None => yuv_to_rgb(planes, shape)?,
    };
    let mut bytes: [Option<Tensor>; 4] = Default::default();
    for (c, &pos) in op.rgb.iter().enumerate() {
        bytes[pos] = Some(rgb[c].shallow_clone());
    }
    bytes[alpha_byte] = Some(alpha.shallow_clone());
    let bytes = bytes
        .into_iter()
        .map(|b| b.ok_or_else(|| Error::InvalidFrame(format!("{out:?}: a byte without a channel"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::f_stack(&bytes, 2)?.f_view([h, w * 4])?)
}

/// A YUV frame's R, G and B at full size, uint8 [h, w] each: nearest chroma (sample
/// x/2, y/rows), the matrix, rounded and clamped as `composite::with_alpha`.
fn yuv_to_rgb(planes: &[Tensor], shape: &FrameShape) -> Result<[Tensor; 3]> {
    let (w, h) = (i64::from(shape.width), i64::from(shape.height));
    let planes::Yuv {
        y,
        u,
        v,
        chroma_rows,
    } = planes::yuv(planes, shape)?;
    let up = |t: Tensor| -> Result<Tensor> {
        let t = twice(&t, 1)?;
        let t = if chroma_rows == 2 { twice(&t, 0)? } else { t };
        Ok(t.f_narrow(0, 0, h)?.f_narrow(1, 0, w)?)
    };
    let (u, v) = (up(u)?, up(v)?);
    let (m, off) = shape.matrix.to_rgb_affine();
    let d = [
        y.f_to_kind(Kind::Float)?.f_sub_scalar(f64::from(off[0]))?,
        u.f_to_kind(Kind::Float)?.f_sub_scalar(f64::from(off[1]))?,
        v.f_to_kind(Kind::Float)?.f_sub_scalar(f64::from(off[2]))?,
    ];
    let channel = |r: [f32; 3]| -> Result<Tensor> {
        Ok(d[0]
            .f_mul_scalar(f64::from(r[0]))?
            .f_add(&d[1].f_mul_scalar(f64::from(r[1]))?)?
            .f_add(&d[2].f_mul_scalar(f64::from(r[2]))?)?
            .f_round()?
            .f_clamp(0.0, 255.0)?
            .f_to_kind(Kind::Uint8)?)
    };
    Ok([channel(m[0])?, channel(m[1])?, channel(m[2])?])
}

/// Each element twice along `dim` (nearest-neighbour 2x), by expand: no index
/// tensor, no host round trip.
fn twice(t: &Tensor, dim: i64) -> Result<Tensor> {
    let mut size = t.size();
    let d = dim as usize;
    let x = t.f_unsqueeze(dim + 1)?;
    let mut expanded = x.size();
    expanded[d + 1] = 2;
    size[d] *= 2;
    Ok(x.f_expand(&expanded, false)?.f_reshape(&size)?)
}

/// `composite::blur::plane` on a uint8 [rows, pw x c] plane: three box passes (edges
/// clamped, each pass rounded to uint8), at reduced resolution for large radii (block
/// means, the passes, bilinear back up), in the same integers as the CPU.
fn blur_plane(plane: &Tensor, pw: usize, ph: usize, c: usize, r: usize) -> Result<Tensor> {
    if r == 0 {
        return Ok(plane.shallow_clone());
    }
    let t = plane
        .f_view([ph as i64, pw as i64, c as i64])?
        .f_to_kind(Kind::Int64)?;
    let k = blur::factor(r);
    let blurred = if k == 1 {
        box_passes(t, r as i64)?
    } else {
        let small = box_passes(downscale(&t, k as i64)?, blur::reduced_radius(r, k) as i64)?;
        upscale(&small, pw as i64, ph as i64, k as i64)?
    };
    Ok(blurred
        .f_to_kind(Kind::Uint8)?
        .f_view([ph as i64, (pw * c) as i64])?)
}

/// Three rounds of a horizontal and a vertical box pass on an int64 [rows, pw, c].
fn box_passes(mut t: Tensor, r: i64) -> Result<Tensor> {
    for _ in 0..3 {
        t = box_pass(&t, 1, r)?;
        t = box_pass(&t, 0, r)?;
    }
    Ok(t)
}

/// Means of k x k blocks of an int64 [h, w, c], (sum + k^2/2) / k^2, the last row and
/// column repeated to fill the edge blocks (`composite::blur`'s downscale).
fn downscale(t: &Tensor, k: i64) -> Result<Tensor> {
    let size = t.size();
    let (h, w, c) = (size[0], size[1], size[2]);
    let (dh, dw) = ((h + k - 1) / k, (w + k - 1) / k);
    let device = t.device();
    let clamped =
        |n: i64, len: i64| Tensor::f_arange(n, (Kind::Int64, device))?.f_clamp_max(len - 1);
    let blocks = t
        .f_index_select(0, &clamped(dh * k, h)?)?
        .f_index_select(1, &clamped(dw * k, w)?)?
        .f_view([dh, k, dw, k, c])?
        .f_sum_dim_intlist([1i64, 3].as_slice(), false, Kind::Int64)?;
    Ok(blocks
        .f_add_scalar(k * k / 2)?
        .f_div_scalar_mode(k * k, "floor")?)
}

/// Bilinear `k`x upscale of an int64 [dh, dw, c] to [h, w, c] with `blur::tap`'s
/// weights (1/(2k) per side), both sides summed unrounded and rounded once.
fn upscale(small: &Tensor, w: i64, h: i64, k: i64) -> Result<Tensor> {
    let wide = interpolate(small, 1, w, k)?;
    let full = interpolate(&wide, 0, h, k)?;
    let d = 4 * k * k;
    Ok(full.f_add_scalar(d / 2)?.f_div_scalar_mode(d, "floor")?)
}

/// One side of `upscale`: `len` outputs along `dim`, each a x (2k - f) + b x f.
fn interpolate(t: &Tensor, dim: i64, len: i64, k: i64) -> Result<Tensor> {
    let n = t.size()[dim as usize];
    let device = t.device();
    // blur::tap: p = clamp(2x + 1 - k, 0, 2k (n - 1)); i0 = p / 2k; f = p - 2k i0.
    let p = Tensor::f_arange(len, (Kind::Int64, device))?
        .f_mul_scalar(2)?
        .f_add_scalar(1 - k)?
        .f_clamp(0, 2 * k * (n - 1))?;
    let i0 = p.f_div_scalar_mode(2 * k, "floor")?;
    let f = p.f_sub(&i0.f_mul_scalar(2 * k)?)?;
    let i1 = i0.f_add_scalar(1)?.f_clamp_max(n - 1)?;
    let shape: Vec<i64> = (0..3).map(|d| if d == dim { len } else { 1 }).collect();
    let f = f.f_view(shape.as_slice())?;
    let left = t
        .f_index_select(dim, &i0)?
        .f_mul(&f.f_neg()?.f_add_scalar(2 * k)?)?;
    Ok(left.f_add(&t.f_index_select(dim, &i1)?.f_mul(&f)?)?)
}

/// One box pass along `dim` of an int64 tensor: window sums from a cumulative sum
/// over the edge-clamped signal, then (sum + n/2) / n.
fn box_pass(t: &Tensor, dim: i64, r: i64) -> Result<Tensor> {
    let len = t.size()[dim as usize];
    let device = t.device();
    let idx =
        Tensor::f_arange_start(-r - 1, len + r, (Kind::Int64, device))?.f_clamp(0, len - 1)?;
    // Index -r-1 is a zero column for the cumulative sum to start from.
    let padded = t.f_index_select(dim, &idx)?;
    let zero_first = {
        let first = padded.f_narrow(dim, 0, 1)?.f_zeros_like()?;
        Tensor::f_cat(&[first, padded.f_narrow(dim, 1, len + 2 * r)?], dim)?
    };
    let cs = zero_first.f_cumsum(dim, Kind::Int64)?;
    let n = 2 * r + 1;
    let sums = cs
        .f_narrow(dim, n, len)?
        .f_sub(&cs.f_narrow(dim, 0, len)?)?;
    Ok(sums.f_add_scalar(n / 2)?.f_div_scalar_mode(n, "floor")?)
}
