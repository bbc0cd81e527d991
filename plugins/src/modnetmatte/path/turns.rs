//! What the two every-frame paths share: which frames get a network run (mask-every,
//! a new size, drop-late) and how old the matte each frame goes out with is.

use super::super::context::Ctx;
use super::super::decide::{self, Turn};
use super::super::stats;
use super::Incoming;

#[derive(Default)]
pub(super) struct Turns {
    /// The last frame's size: a new one always runs the network.
    size: (u32, u32),
    /// Timestamp of the last frame the network ran on.
    network_pts: Option<gst::ClockTime>,
}

impl Turns {
    /// Whether `frame`, of `size`, runs the network; a late frame that does not is
    /// counted in the stats.
    pub(super) fn take(&mut self, ctx: &Ctx<'_>, frame: &Incoming, size: (u32, u32)) -> bool {
        let m = &ctx.settings.matte;
        let turn = decide::turn(
            frame.index,
            m.mask_every,
            self.size != size,
            m.drop_late,
            frame.late,
        );
        self.size = size;
        if turn == Turn::Late {
            ctx.stats().late += 1;
        }
        turn == Turn::Network
    }

    /// The last frame's size.
    pub(super) fn size(&self) -> (u32, u32) {
        self.size
    }

    /// A frame goes out with its own matte, or (`reused`) with the last network
    /// frame's: for the matte-age stats.
    pub(super) fn count_use(&mut self, ctx: &Ctx<'_>, buf: &gst::Buffer, reused: bool) {
        if !reused {
            self.network_pts = buf.pts();
        }
        let age = stats::age(buf.pts(), self.network_pts);
        ctx.stats().add_matte_use(reused, age);
    }
}
