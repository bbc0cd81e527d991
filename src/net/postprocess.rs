//! Network output -> alpha at the frame's size.

use tch::{Device, Kind, Tensor};

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
    if out.device() != Device::Cpu || out.kind() != Kind::Float {
        // Resized where the network ran, then one copy of the frame-sized matte.
        let alpha = frame_matte(out, width, height)?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?;
        let alpha = Vec::<f32>::try_from(alpha.f_flatten(0, -1)?)?;
        return Ok(Matte {
            width,
            height,
            alpha,
        });
    }
    // On a CPU the resize writes into the matte's own buffer and the clamp runs there
    // in place: two passes over the frame-sized matte instead of four (resize, clamp
    // into a new tensor, copy out).
    let (w, h) = (width as i64, height as i64);
    let mut alpha = vec![0f32; (w * h) as usize];
    {
        // SAFETY: `dst` views exactly `alpha`'s w*h floats, contiguous, and is dropped at
        // the end of this block, before `alpha` is read or moved; nothing keeps it.
        let mut dst = unsafe {
            Tensor::f_from_blob(
                alpha.as_mut_ptr().cast::<u8>(),
                &[1, 1, h, w],
                &[h * w, h * w, w, 1],
                Kind::Float,
                Device::Cpu,
            )?
        };
        if out.size()[2..] == [h, w] {
            dst.f_copy_(out)?;
        } else {
            let _ = out.f_upsample_bilinear2d_out(&dst, [h, w], false, None, None)?;
        }
        let _ = dst.f_clamp_(0.0, 1.0)?;
        if dst.data_ptr() != alpha.as_mut_ptr().cast() {
            // ATen gave the output new storage (it never should at this size): the
            // buffer would hold no matte.
            return Err(crate::error::Error::InvalidFrame(format!(
                "the {w}x{h} matte was not written into its buffer"
            )));
        }
    }
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

    #[test]
    fn the_cpu_path_equals_the_tensor_path_for_every_layout_and_size() {
        let m = (Tensor::rand([1, 1, 9, 7], (Kind::Float, Device::Cpu)) * 1.4) - 0.2;
        for (w, h) in [(7, 9), (20, 31), (3, 4)] {
            let want = Vec::<f32>::try_from(frame_matte(&m, w, h).unwrap().flatten(0, -1)).unwrap();
            // As the plain model gives it, as the CPU variant does (channels-last), and a
            // strided view.
            let transposed = m.transpose(2, 3).contiguous().transpose(2, 3);
            for input in [
                m.shallow_clone(),
                crate::net::model::to_channels_last(&m).unwrap(),
                transposed,
            ] {
                let got = to_matte(&input, w, h).unwrap();
                assert_eq!((got.width, got.height), (w, h));
                assert_eq!(got.alpha, want, "{w}x{h}");
                assert!(got.alpha.iter().all(|a| (0.0..=1.0).contains(a)));
            }
        }
    }
}
