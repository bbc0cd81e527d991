//! The three ways frames meet the network, behind one interface that `State` holds
//! one of: `ordered` (CPU compositing, every frame its own matte, in order),
//! `realtime` (CPU compositing, every frame at once with the newest matte) and
//! `device` (output frames made on the network's device, in batches). `turns` is
//! what the two every-frame paths share.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::context::{CAT, Ctx, StreamError};
use super::decide::Kind;
use super::render::Render;

pub(super) mod device;
pub(super) mod ordered;
pub(super) mod realtime;
mod turns;

/// An input buffer as the stream hands it to its path.
pub(super) struct Incoming {
    pub(super) buffer: gst::Buffer,
    /// Frames submitted before it since start or the last flush.
    pub(super) index: u64,
    /// QoS says it is already too late to be worth the network (drop-late on).
    pub(super) late: bool,
}

/// New caps, after a drain.
pub(super) struct Caps<'a> {
    pub(super) info: &'a gst_video::VideoInfo,
    /// The warm-up's forward pass at these caps.
    pub(super) network: Duration,
    /// Frames per forward pass (the device path).
    pub(super) batch: usize,
}

/// One way frames meet the network. Output frames come out in input order, each
/// with its input's timestamps; every frame that goes in comes out, or is logged
/// as dropped.
pub(super) trait Path: Send {
    fn kind(&self) -> Kind;

    /// New caps (the path was drained): frames of `caps.info` from now on.
    fn set_caps(&mut self, caps: &Caps<'_>) -> Result<(), String>;

    /// Takes one input buffer; what it finishes waits for `complete`.
    fn submit(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
        frame: Incoming,
    ) -> Result<(), StreamError>;

    /// The next output frame, if one is ready (CPU paths composite it now). A frame
    /// that fails is taken off the queue with its error.
    fn complete(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
    ) -> Result<Option<gst::Buffer>, StreamError>;

    /// Output frames waiting for `complete`.
    fn ready(&self) -> usize;

    /// EOS, new caps: waits for the work in flight and makes it ready, failures
    /// logged and dropped.
    fn finish(&mut self, ctx: &Ctx<'_>, render: &mut Render);

    /// A flush: work in flight and every frame held are forgotten.
    fn flush(&mut self);

    /// The delay the path adds to a frame (`interval`: the caps' frame interval).
    fn latency(&self, interval: Option<Duration>) -> Duration;

    /// Every frame still held, in order: nothing that came in is lost.
    fn drain(&mut self, ctx: &Ctx<'_>, render: &mut Render) -> Vec<gst::Buffer> {
        self.finish(ctx, render);
        let mut outputs = Vec::new();
        // Bounded by what is ready: a failed frame leaves the queue too.
        for _ in 0..self.ready() {
            match self.complete(ctx, render) {
                Ok(Some(out)) => outputs.push(out),
                Ok(None) => break,
                Err(e) => gst::warning!(CAT, obj = ctx.obj, "dropping a frame at drain: {e:?}"),
            }
        }
        outputs
    }
}

/// Frames with their final matte, waiting to be composited on the CPU (what the two
/// CPU paths' `complete` takes from).
#[derive(Default)]
struct CpuReady(VecDeque<(gst::Buffer, Arc<Vec<f32>>)>);

impl CpuReady {
    fn push(&mut self, buffer: gst::Buffer, alpha: Arc<Vec<f32>>) {
        self.0.push_back((buffer, alpha));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    /// The next frame, composited now; a failed one leaves the queue with its error.
    fn complete(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
    ) -> Result<Option<gst::Buffer>, StreamError> {
        match self.0.pop_front() {
            None => Ok(None),
            Some((inbuf, alpha)) => render.composite(ctx, &inbuf, &alpha).map(Some),
        }
    }
}

/// The caps' frame interval, if the frame rate is fixed.
pub(super) fn frame_interval(info: &gst_video::VideoInfo) -> Option<Duration> {
    let f = info.fps();
    (f.numer() > 0 && f.denom() > 0)
        .then(|| Duration::from_secs(f.denom() as u64) / f.numer() as u32)
}
