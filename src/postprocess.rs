//! Network output -> alpha at the frame's size.

use tch::Tensor;

use crate::error::Result;

/// A matte at the frame's size, row-major, one value per pixel.
#[derive(Debug, Clone)]
pub struct Matte {
    pub width: u32,
    pub height: u32,
    /// Alpha in [0,1].
    pub alpha: Vec<f32>,
}

impl Matte {
    /// Alpha in 0..=255 (rounded; `composite::alpha_u8`'s soft rule), made when asked.
    pub fn alpha_u8(&self) -> Vec<u8> {
        crate::composite::alpha_u8(&self.alpha, 0.0)
    }
}

/// [1,1,h,w] matte -> frame-sized alpha (bilinear, align_corners = false, as in
/// `tools/modnet/reference.py`).
pub fn to_matte(out: &Tensor, width: u32, height: u32) -> Result<Matte> {
    let alpha = frame_matte(out, width, height)?
        .f_to_device(tch::Device::Cpu)?
        .f_contiguous()?;
    let alpha = Vec::<f32>::try_from(alpha.f_flatten(0, -1)?)?;
    Ok(Matte {
        width,
        height,
        alpha,
    })
}

/// [1,1,h,w] matte -> float [height, width] in [0,1], left on the network's device.
pub fn frame_matte(out: &Tensor, width: u32, height: u32) -> Result<Tensor> {
    let (w, h) = (width as i64, height as i64);
    let size = out.size();
    let resized = if size[2..] == [h, w] {
        out.shallow_clone()
    } else {
        out.f_upsample_bilinear2d([h, w], false, None, None)?
    };
    Ok(resized.f_clamp(0.0, 1.0)?.f_view([h, w])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matte_is_resized_bilinearly_and_quantised() {
        // A 1x2 matte [0, 1] stretched to 4x1: bilinear, align_corners = false.
        let m = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 1, 1, 2]);
        let matte = to_matte(&m, 4, 1).unwrap();
        assert_eq!(matte.alpha, vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!(matte.alpha_u8(), vec![0, 64, 191, 255]);
    }
}
