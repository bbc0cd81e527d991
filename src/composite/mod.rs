//! Putting a matte to use: what the element makes of a frame (`spec`), background
//! frames (`background`, `blur`), the output frame on the CPU (`cpu`) and the same
//! as tensor ops for the device path (`tensor`).

pub mod background;
pub mod blur;
pub mod cpu;
pub mod spec;
pub mod tensor;

pub use background::{blur_planes, blurred, from_rgb, solid};
pub use cpu::{alpha_u8, blend, output_frame, with_alpha, write_gray};
