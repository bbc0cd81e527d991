//! Frame -> network input: the reference size rule, colour order, normalisation and
//! resize. Mirrors `tools/modnet/reference.py` operator for operator (same libtorch
//! kernels), so our matte can be compared with onnxruntime's pixel for pixel.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// No side of the network input is ever smaller than this (MODNet downsamples by 32).
pub const MIN_SIDE: u32 = 32;
/// The official rule scales small frames so that their short side is `ref_size`; for
/// extreme aspect ratios the long side would explode (100x1 -> 51200x512), so it is
/// capped at this multiple of `ref_size`.
pub const MAX_LONG_SIDE_FACTOR: u32 = 4;

/// Byte layout of an 8-bit interleaved frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
}

impl PixelLayout {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Rgb | Self::Bgr => 3,
            Self::Rgba | Self::Bgra => 4,
        }
    }

    /// Byte offsets of R, G and B inside a pixel.
    fn rgb_offsets(self) -> [i64; 3] {
        match self {
            Self::Rgb | Self::Rgba => [0, 1, 2],
            Self::Bgr | Self::Bgra => [2, 1, 0],
        }
    }
}

/// A borrowed 8-bit frame; `stride` is the distance between rows in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub layout: PixelLayout,
}

impl<'a> Frame<'a> {
    /// A tightly packed frame (stride = width x bytes per pixel).
    pub fn packed(data: &'a [u8], width: u32, height: u32, layout: PixelLayout) -> Self {
        let stride = width as usize * layout.bytes_per_pixel();
        Self {
            data,
            width,
            height,
            stride,
            layout,
        }
    }

    /// Checks sizes against the buffer, so that nothing later can index out of it.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidFrame(format!(
                "size {}x{} is empty (at least 1x1)",
                self.width, self.height
            )));
        }
        let row = self.width as usize * self.layout.bytes_per_pixel();
        if self.stride < row {
            return Err(Error::InvalidFrame(format!(
                "stride {} is shorter than a row of {} {:?} pixels ({row} bytes)",
                self.stride, self.width, self.layout
            )));
        }
        let needed = self.stride * (self.height as usize - 1) + row;
        if self.data.len() < needed {
            return Err(Error::InvalidFrame(format!(
                "{} bytes for {}x{} {:?} with stride {} (needs {needed})",
                self.data.len(),
                self.width,
                self.height,
                self.layout,
                self.stride
            )));
        }
        Ok(())
    }
}

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
pub fn to_input(frame: &Frame<'_>, ref_size: u32, device: Device) -> Result<Tensor> {
    frame.validate()?;
    let (w, h) = (frame.width as i64, frame.height as i64);
    let bpp = frame.layout.bytes_per_pixel() as i64;
    let rows = frame.height as usize;
    let used = frame.stride * (rows - 1) + w as usize * bpp as usize;
    // One copy of the (strided) bytes into a tensor; everything after is libtorch.
    let raw = Tensor::from_slice(&frame.data[..used]);
    let hwc = if frame.stride as i64 == w * bpp {
        raw.f_view([h, w, bpp])?
    } else {
        raw.f_as_strided([h, w, bpp], [frame.stride as i64, bpp, 1], None)?
    };
    let hwc = hwc.f_to_device(device)?;
    let idx = Tensor::from_slice(&frame.layout.rgb_offsets()).f_to_device(device)?;
    let chw = hwc
        .f_index_select(2, &idx)?
        .f_permute([2, 0, 1])?
        .f_unsqueeze(0)?;
    // Same operations, same order as the Python reference: (x / 255 - 0.5) / 0.5.
    let x = chw.f_to_kind(Kind::Float)?;
    let x = x
        .f_div_scalar(255.0)?
        .f_sub_scalar(0.5)?
        .f_div_scalar(0.5)?;
    let (rw, rh) = inference_size(frame.width, frame.height, ref_size);
    Ok(resize(&x, rw as i64, rh as i64)?.f_contiguous()?)
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

    #[test]
    fn rejects_inconsistent_frames() {
        let data = [0u8; 12];
        let ok = Frame::packed(&data, 2, 2, PixelLayout::Rgb);
        assert!(ok.validate().is_ok());
        let cases = [
            (Frame::packed(&data, 0, 2, PixelLayout::Rgb), "empty"),
            (Frame::packed(&data, 2, 2, PixelLayout::Rgba), "needs 16"),
            (
                Frame {
                    stride: 5,
                    ..Frame::packed(&data, 2, 2, PixelLayout::Rgb)
                },
                "shorter than a row",
            ),
        ];
        for (frame, why) in cases {
            let err = frame.validate().unwrap_err().to_string();
            assert!(err.starts_with("frame: ") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn colour_order_and_stride_are_honoured() {
        // 2x1 frames: a red and a blue pixel, with 3 bytes of row padding for the
        // strided one; every layout must give the same input tensor.
        let rgb = [255u8, 0, 0, 0, 0, 255];
        let bgra = [0u8, 0, 255, 9, 255, 0, 0, 9];
        let padded = [255u8, 0, 0, 0, 0, 255, 7, 7, 7];
        let frames = [
            Frame::packed(&rgb, 2, 1, PixelLayout::Rgb),
            Frame::packed(&bgra, 2, 1, PixelLayout::Bgra),
            Frame {
                stride: 9,
                ..Frame::packed(&padded, 2, 1, PixelLayout::Rgb)
            },
        ];
        let reference = to_input(&frames[0], 32, Device::Cpu).unwrap();
        assert_eq!(reference.size(), [1, 3, 32, 64]);
        // Left half red (R = +1, B = -1), right half blue.
        let r_left = reference.double_value(&[0, 0, 16, 0]);
        let b_left = reference.double_value(&[0, 2, 16, 0]);
        assert!((r_left - 1.0).abs() < 1e-6 && (b_left + 1.0).abs() < 1e-6);
        for f in &frames[1..] {
            let x = to_input(f, 32, Device::Cpu).unwrap();
            assert_eq!(x.size(), reference.size());
            let diff = (&x - &reference).abs().max().double_value(&[]);
            assert_eq!(diff, 0.0, "{:?} stride {}", f.layout, f.stride);
        }
    }
}
