//! A frame that owns its planes: backgrounds, blurred frames, test frames.

use crate::frame::{Frame, FrameMut, PixelFormat, Plane, PlaneMut, YuvMatrix};

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
    pub fn zeroed(format: PixelFormat, width: u32, height: u32, matrix: YuvMatrix) -> Self {
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

impl OwnedFrame {
    /// The frame to write into.
    pub fn as_frame_mut(&mut self) -> FrameMut<'_> {
        let strides = self.strides();
        FrameMut {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: self
                .planes
                .iter_mut()
                .zip(strides)
                .map(|(data, stride)| PlaneMut { data, stride })
                .collect(),
            matrix: self.matrix,
        }
    }
}
