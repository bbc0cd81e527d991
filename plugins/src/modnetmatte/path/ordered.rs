//! Every-frame pacing with CPU compositing: each frame waits for its own matte (or,
//! by mask-every and drop-late, the last one), the network runs in order on its
//! worker with up to max-in-flight jobs, and the temporal filters (smoothing, OFD)
//! finalise each matte before its frame is composited on the streaming thread.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use modnetmatte::Engine;
use modnetmatte::temporal::{Temporal, TemporalConfig};
use modnetmatte::worker::ordered::Scheduler;

use super::super::context::{CAT, Ctx, StreamError};
use super::super::decide::{self, Kind};
use super::super::jobs::{self, Done};
use super::super::render::Render;
use super::super::stats::ms;
use super::turns::Turns;
use super::{Caps, CpuReady, Incoming, Path};

pub(in super::super) struct Ordered {
    scheduler: Scheduler<Done>,
    /// Fixed at start: it changes the latency the element reports.
    ofd: bool,
    temporal: Temporal,
    turns: Turns,
    /// Input buffers whose matte is not final yet (OFD holds one back).
    pending: VecDeque<gst::Buffer>,
    /// Frames with their final matte, to be composited.
    ready: CpuReady,
}

impl Ordered {
    pub(in super::super) fn new(
        engine: Arc<Engine>,
        in_flight: usize,
        ofd: bool,
    ) -> modnetmatte::Result<Self> {
        Ok(Self {
            scheduler: Scheduler::new(engine, in_flight)?,
            ofd,
            temporal: Temporal::new(),
            turns: Turns::default(),
            pending: VecDeque::new(),
            ready: CpuReady::default(),
        })
    }

    /// Takes in what the worker has finished, in order.
    fn absorb(
        &mut self,
        ctx: &Ctx<'_>,
        done: modnetmatte::Result<Vec<Done>>,
    ) -> Result<(), StreamError> {
        for d in done.map_err(|e| StreamError::Worker(e.to_string()))? {
            self.take(ctx, d)?;
        }
        Ok(())
    }

    /// A worker result, in order, through the temporal filters; what they finalise
    /// becomes ready.
    fn take(&mut self, ctx: &Ctx<'_>, done: Done) -> Result<(), StreamError> {
        let config = TemporalConfig {
            smoothing: ctx.settings.matte.temporal_smoothing as f32,
            ofd: self.ofd,
        };
        let (inbuf, finished) = match done {
            Done::Matte(inbuf, result) => {
                let (matte, t) = result.map_err(StreamError::Matting)?;
                ctx.stats().add_matte(&t);
                gst::log!(
                    CAT,
                    obj = ctx.obj,
                    "matte: preprocess {:.1} ms, inference {:.1} ms, postprocess {:.1} ms",
                    ms(t.preprocess),
                    ms(t.inference),
                    ms(t.postprocess)
                );
                self.turns.count_use(ctx, &inbuf, false);
                let alpha = self
                    .temporal
                    .push(&config, matte.width, matte.height, matte.alpha);
                (inbuf, alpha)
            }
            Done::Reuse(inbuf) => {
                ctx.stats().reused += 1;
                self.turns.count_use(ctx, &inbuf, true);
                let (w, h) = self.turns.size();
                (inbuf, self.temporal.push_reused(&config, w, h))
            }
        };
        self.pending.push_back(inbuf);
        if let Some(alpha) = finished
            && let Some(buf) = self.pending.pop_front()
        {
            self.ready.push(buf, alpha);
        }
        Ok(())
    }
}

impl Path for Ordered {
    fn kind(&self) -> Kind {
        Kind::Ordered
    }

    fn set_caps(&mut self, _caps: &Caps<'_>) -> Result<(), String> {
        self.temporal.reset();
        Ok(())
    }

    fn submit(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
        frame: Incoming,
    ) -> Result<(), StreamError> {
        let info = render.infos()?.input.clone();
        let own = self.turns.take(ctx, &frame, (info.width(), info.height()));
        let inbuf = frame.buffer;
        let submitted = if own {
            self.scheduler
                .submit(move |engine: &Engine| jobs::matte_job(engine, inbuf, &info))
        } else {
            self.scheduler.submit(move |_: &Engine| Done::Reuse(inbuf))
        };
        self.absorb(ctx, submitted)
    }

    fn complete(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
    ) -> Result<Option<gst::Buffer>, StreamError> {
        self.ready.complete(ctx, render)
    }

    fn ready(&self) -> usize {
        self.ready.len()
    }

    fn finish(&mut self, ctx: &Ctx<'_>, _render: &mut Render) {
        match self.scheduler.finish() {
            // A failed result is reported and dropped; the ones after it still go out.
            Ok(done) => {
                for d in done {
                    if let Err(e) = self.take(ctx, d) {
                        gst::warning!(CAT, obj = ctx.obj, "dropping a result at drain: {e:?}");
                    }
                }
            }
            Err(e) => gst::warning!(CAT, obj = ctx.obj, "worker at drain: {e}"),
        }
        if let Some(alpha) = self.temporal.drain()
            && let Some(buf) = self.pending.pop_front()
        {
            self.ready.push(buf, alpha);
        }
        if !self.pending.is_empty() {
            let n = self.pending.len();
            gst::warning!(CAT, obj = ctx.obj, "{n} frames had no matte at drain");
        }
        self.pending.clear();
        self.temporal.reset();
    }

    fn flush(&mut self) {
        self.scheduler.discard();
        self.pending.clear();
        self.ready.clear();
        self.temporal.reset();
    }

    fn latency(&self, interval: Option<Duration>) -> Duration {
        let frames = decide::held_frames(self.scheduler.max_in_flight(), self.ofd);
        interval.map_or(Duration::ZERO, |i| i * frames)
    }
}
