//! Borrowed 8-bit video frames in the formats webcams and GStreamer deliver: packed
//! RGB orders (with or without a padding/alpha byte), YUY2, NV12, I420, and GRAY8 for
//! mattes. Planes carry their own row stride, as GStreamer buffers do.

use crate::error::{Error, Result};

pub mod owned;
pub mod planes;

pub use owned::OwnedFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgbx,
    Bgrx,
    Xrgb,
    Xbgr,
    Rgba,
    Bgra,
    Argb,
    Abgr,
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuy2,
    /// Y plane, then interleaved U V at half width and height.
    Nv12,
    /// Y, U, V planes; U and V at half width and height.
    I420,
    Gray8,
}

/// How R, G, B (and the fourth byte) sit in a packed RGB-family pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedRgb {
    pub bytes_per_pixel: usize,
    pub rgb: [usize; 3],
    /// The alpha or padding byte, if any.
    pub extra: Option<usize>,
}

impl PixelFormat {
    /// Every format a frame may come in (GRAY8 is output only).
    pub const INPUTS: [PixelFormat; 13] = [
        Self::Rgb,
        Self::Bgr,
        Self::Rgbx,
        Self::Bgrx,
        Self::Xrgb,
        Self::Xbgr,
        Self::Rgba,
        Self::Bgra,
        Self::Argb,
        Self::Abgr,
        Self::Yuy2,
        Self::Nv12,
        Self::I420,
    ];

    pub fn packed_rgb(self) -> Option<PackedRgb> {
        let p = |bytes_per_pixel, rgb, extra| {
            Some(PackedRgb {
                bytes_per_pixel,
                rgb,
                extra,
            })
        };
        match self {
            Self::Rgb => p(3, [0, 1, 2], None),
            Self::Bgr => p(3, [2, 1, 0], None),
            Self::Rgbx | Self::Rgba => p(4, [0, 1, 2], Some(3)),
            Self::Bgrx | Self::Bgra => p(4, [2, 1, 0], Some(3)),
            Self::Xrgb | Self::Argb => p(4, [1, 2, 3], Some(0)),
            Self::Xbgr | Self::Abgr => p(4, [3, 2, 1], Some(0)),
            Self::Yuy2 | Self::Nv12 | Self::I420 | Self::Gray8 => None,
        }
    }

    pub fn is_yuv(self) -> bool {
        matches!(self, Self::Yuy2 | Self::Nv12 | Self::I420)
    }

    /// Bytes in one row of the first plane, tightly packed.
    pub fn row_bytes(self, width: u32) -> usize {
        self.plane_sizes(width as usize, 1)
            .first()
            .map_or(0, |p| p.0)
    }

    /// (bytes per row, rows) of each plane for a width x height frame.
    pub fn plane_sizes(self, width: usize, height: usize) -> Vec<(usize, usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match self {
            Self::Yuy2 => vec![(cw * 4, height)],
            Self::Nv12 => vec![(width, height), (cw * 2, ch)],
            Self::I420 => vec![(width, height), (cw, ch), (cw, ch)],
            Self::Gray8 => vec![(width, height)],
            packed => {
                let bpp = packed.packed_rgb().map_or(3, |p| p.bytes_per_pixel);
                vec![(width * bpp, height)]
            }
        }
    }
}

/// The Y'CbCr <-> R'G'B' matrix of a YUV frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    pub kr: f32,
    pub kb: f32,
    /// Full range (0..255) rather than studio range (Y 16..235, C 16..240).
    pub full_range: bool,
}

impl YuvMatrix {
    pub const BT601: Self = Self {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    pub const BT709: Self = Self {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };

    /// R'G'B' in 0..255 -> Y'CbCr codes.
    pub fn from_rgb(&self, [r, g, b]: [f32; 3]) -> [f32; 3] {
        let kg = 1.0 - self.kr - self.kb;
        let y = self.kr * r + kg * g + self.kb * b;
        let cb = (b - y) / (2.0 * (1.0 - self.kb));
        let cr = (r - y) / (2.0 * (1.0 - self.kr));
        if self.full_range {
            [y, cb + 128.0, cr + 128.0]
        } else {
            [
                16.0 + y * 219.0 / 255.0,
                128.0 + cb * 224.0 / 255.0,
                128.0 + cr * 224.0 / 255.0,
            ]
        }
    }

    /// The affine map Y'CbCr codes -> R'G'B' (0..255, unclamped): rgb = m * (yuv - off).
    pub fn to_rgb_affine(&self) -> ([[f32; 3]; 3], [f32; 3]) {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, cs, off) = if self.full_range {
            (1.0, 1.0, [0.0, 128.0, 128.0])
        } else {
            (255.0 / 219.0, 255.0 / 224.0, [16.0, 128.0, 128.0])
        };
        let rv = 2.0 * (1.0 - self.kr) * cs;
        let bu = 2.0 * (1.0 - self.kb) * cs;
        let gu = -bu * self.kb / kg;
        let gv = -rv * self.kr / kg;
        ([[ys, 0.0, rv], [ys, gu, gv], [ys, bu, 0.0]], off)
    }

    pub fn to_rgb(&self, yuv: [f32; 3]) -> [f32; 3] {
        let (m, off) = self.to_rgb_affine();
        let d = [yuv[0] - off[0], yuv[1] - off[1], yuv[2] - off[2]];
        std::array::from_fn(|i| m[i][0] * d[0] + m[i][1] * d[1] + m[i][2] * d[2])
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

/// A frame size written WIDTHxHEIGHT (x or X, spaces allowed; command-line
/// arguments), each side 1 to 8192.
pub fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT, e.g. 1280x720"))?;
    let side = |v: &str| match v.trim().parse::<u32>() {
        Ok(n) if (1..=8192).contains(&n) => Ok(n),
        _ => Err(format!("{s:?}: each side must be a number from 1 to 8192")),
    };
    Ok((side(w)?, side(h)?))
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_either_x_and_spaces() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("640X480"), Ok((640, 480)));
        assert_eq!(parse_size(" 64 x 32 "), Ok((64, 32)));
        for bad in ["1280", "0x720", "axb", "9000x100", "12x"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(
            parse_size("axb")
                .unwrap_err()
                .contains("a number from 1 to 8192")
        );
    }
}

/// What a frame is, without its bytes: format, size and (for YUV) colour matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameShape {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub matrix: YuvMatrix,
}

/// A frame's format, size, planes and (for YUV) colour matrix; `Frame` borrows its
/// planes to read, `FrameMut` to write.
#[derive(Debug, Clone)]
pub struct FrameOf<P> {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub planes: Vec<P>,
    pub matrix: YuvMatrix,
}

/// A borrowed frame to read.
pub type Frame<'a> = FrameOf<Plane<'a>>;
/// A frame to write into.
pub type FrameMut<'a> = FrameOf<PlaneMut<'a>>;

pub struct PlaneMut<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
}

/// What a frame needs to know of its planes.
pub trait PlaneBytes {
    /// (bytes, row stride).
    fn extent(&self) -> (usize, usize);
}

impl PlaneBytes for Plane<'_> {
    fn extent(&self) -> (usize, usize) {
        (self.data.len(), self.stride)
    }
}

impl PlaneBytes for PlaneMut<'_> {
    fn extent(&self) -> (usize, usize) {
        (self.data.len(), self.stride)
    }
}

impl<P: PlaneBytes> FrameOf<P> {
    /// A single-plane frame (BT.601 for the matrix, which only YUV uses).
    fn single(format: PixelFormat, width: u32, height: u32, plane: P) -> Self {
        Self {
            format,
            width,
            height,
            planes: vec![plane],
            matrix: YuvMatrix::BT601,
        }
    }

    pub fn shape(&self) -> FrameShape {
        FrameShape {
            format: self.format,
            width: self.width,
            height: self.height,
            matrix: self.matrix,
        }
    }

    /// Checks sizes against the buffers, so that nothing later can index out of them.
    pub fn validate(&self) -> Result<()> {
        check_layout(
            self.format,
            self.width,
            self.height,
            self.planes.iter().map(PlaneBytes::extent),
        )
    }
}

impl<'a> Frame<'a> {
    /// A single-plane frame with tightly packed rows.
    pub fn packed(data: &'a [u8], width: u32, height: u32, format: PixelFormat) -> Self {
        let stride = format.row_bytes(width);
        Self::single(format, width, height, Plane { data, stride })
    }
}

impl<'a> FrameMut<'a> {
    /// A single-plane frame with tightly packed rows.
    pub fn packed(data: &'a mut [u8], width: u32, height: u32, format: PixelFormat) -> Self {
        let stride = format.row_bytes(width);
        Self::single(format, width, height, PlaneMut { data, stride })
    }

    /// A frame over one buffer per plane, each row `pad` bytes longer than the
    /// format's (0: tight); `validate` says whether the buffers are large enough.
    pub fn over(
        format: PixelFormat,
        width: u32,
        height: u32,
        bufs: &'a mut [Vec<u8>],
        pad: usize,
    ) -> Self {
        let sizes = format.plane_sizes(width as usize, height as usize);
        Self {
            format,
            width,
            height,
            planes: bufs
                .iter_mut()
                .zip(sizes)
                .map(|(data, (row, _))| PlaneMut {
                    data,
                    stride: row + pad,
                })
                .collect(),
            matrix: YuvMatrix::BT601,
        }
    }
}

fn check_layout(
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: impl ExactSizeIterator<Item = (usize, usize)>,
) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::InvalidFrame(format!(
            "size {width}x{height} is empty (at least 1x1)"
        )));
    }
    let sizes = format.plane_sizes(width as usize, height as usize);
    if planes.len() != sizes.len() {
        return Err(Error::InvalidFrame(format!(
            "{format:?} needs {} plane(s), got {}",
            sizes.len(),
            planes.len()
        )));
    }
    for (i, ((len, stride), (row, rows))) in planes.zip(sizes).enumerate() {
        if stride < row {
            return Err(Error::InvalidFrame(format!(
                "plane {i} of {width}x{height} {format:?}: stride {stride} is shorter than a row ({row} bytes)"
            )));
        }
        let needed = stride * (rows - 1) + row;
        if len < needed {
            return Err(Error::InvalidFrame(format!(
                "plane {i} of {width}x{height} {format:?}: {len} bytes with stride {stride} (needs {needed})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_matrices_round_trip() {
        for m in [
            YuvMatrix::BT601,
            YuvMatrix::BT709,
            YuvMatrix {
                full_range: true,
                ..YuvMatrix::BT709
            },
        ] {
            for rgb in [[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [200.0, 30.0, 90.0]] {
                let back = m.to_rgb(m.from_rgb(rgb));
                for c in 0..3 {
                    assert!((back[c] - rgb[c]).abs() < 1e-3, "{m:?} {rgb:?} -> {back:?}");
                }
            }
        }
        // Studio range: black is Y 16, white Y 235, grey has neutral chroma.
        let [y, u, v] = YuvMatrix::BT601.from_rgb([255.0; 3]);
        assert!((y - 235.0).abs() < 1e-3 && (u - 128.0).abs() < 1e-3 && (v - 128.0).abs() < 1e-3);
    }

    #[test]
    fn rejects_inconsistent_frames() {
        let data = [0u8; 12];
        assert!(
            Frame::packed(&data, 2, 2, PixelFormat::Rgb)
                .validate()
                .is_ok()
        );
        let short = Frame::packed(&data, 2, 2, PixelFormat::Rgba).validate();
        assert!(short.unwrap_err().to_string().contains("needs 16"));
        let empty = Frame::packed(&data, 0, 2, PixelFormat::Rgb).validate();
        assert!(empty.unwrap_err().to_string().contains("empty"));
        let one_plane_nv12 = Frame::packed(&data, 2, 2, PixelFormat::Nv12).validate();
        assert!(
            one_plane_nv12
                .unwrap_err()
                .to_string()
                .contains("needs 2 plane(s)")
        );
        let mut narrow = Frame::packed(&data, 2, 2, PixelFormat::Rgb);
        narrow.planes[0].stride = 5;
        let err = narrow.validate().unwrap_err().to_string();
        assert!(err.contains("shorter than a row"), "{err}");
    }
}
