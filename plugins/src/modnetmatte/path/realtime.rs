//! `pacing=realtime` with CPU compositing: every frame goes out at once with the
//! newest matte, the network (`modnetmatte::worker::newest::Newest`) always works on
//! the newest frame. Until the first matte of these caps exists a frame goes out
//! with an all-background matte: the room is never shown, and the stream never
//! stalls.

use std::sync::Arc;
use std::time::Duration;

use modnetmatte::Engine;
use modnetmatte::temporal::{self, Temporal, TemporalConfig};
use modnetmatte::worker::newest::{Newest, own_matte_wait};

use super::super::context::{Ctx, StreamError};
use super::super::decide::Kind;
use super::super::jobs::{self, Done};
use super::super::render::Render;
use super::super::stats;
use super::{Caps, CpuReady, Incoming, Path, frame_interval};

/// The matte frames go out with now.
struct Current {
    /// The frame it was computed on: its index and timestamp.
    id: u64,
    pts: Option<gst::ClockTime>,
    alpha: Arc<Vec<f32>>,
}

pub(in super::super) struct Realtime {
    worker: Newest<Done>,
    info: gst_video::VideoInfo,
    /// EMA across network mattes (OFD does not apply: it would hold each matte back
    /// by one more network run).
    temporal: Temporal,
    current: Option<Current>,
    /// All background: what frames get before the first matte.
    none: Arc<Vec<f32>>,
    /// The network's last run (warm-up first), for the own-matte wait.
    network: Option<Duration>,
    /// Frames with the matte they go out with, to be composited.
    ready: CpuReady,
}

impl Realtime {
    pub(in super::super) fn new(engine: Arc<Engine>, caps: &Caps<'_>) -> Result<Self, String> {
        let mut rt = Self {
            worker: Newest::new(engine).map_err(|e| e.to_string())?,
            info: caps.info.clone(),
            temporal: Temporal::new(),
            current: None,
            none: Arc::default(),
            network: None,
            ready: CpuReady::default(),
        };
        rt.set_caps(caps)?;
        Ok(rt)
    }

    /// The longest a frame waits for its own matte now (only when the network keeps
    /// up; also what the latency query adds).
    fn wait(&self) -> Duration {
        own_matte_wait(self.network, frame_interval(&self.info))
    }

    /// The matte frame `index` goes out with: hands the frame to the network if it
    /// is a network frame (mask-every), and waits for its matte only as `wait`
    /// allows.
    fn matte_for(
        &mut self,
        ctx: &Ctx<'_>,
        inbuf: &gst::Buffer,
        index: u64,
    ) -> Result<Arc<Vec<f32>>, StreamError> {
        self.absorb(ctx, self.worker.take())?;
        if temporal::is_network_frame(index, ctx.settings.matte.mask_every) {
            let (buf, info) = (inbuf.clone(), self.info.clone());
            let lost = self
                .worker
                .post(index, move |e: &Engine| jobs::matte_job(e, buf, &info));
            if lost.is_some() {
                ctx.stats().add_skipped();
            }
            let wait = self.wait();
            if !wait.is_zero() {
                let got = self.worker.wait_for(index, wait);
                self.absorb(ctx, got)?;
            }
        }
        let mut stats = ctx.stats();
        Ok(match &self.current {
            Some(m) => {
                stats.add_matte_use(m.id != index, stats::age(inbuf.pts(), m.pts));
                m.alpha.clone()
            }
            None => {
                stats.add_without_matte();
                self.none.clone()
            }
        })
    }

    /// Takes in finished mattes, oldest first, through the EMA; one of another size
    /// than the caps is never used.
    fn absorb(&mut self, ctx: &Ctx<'_>, done: Vec<(u64, Done)>) -> Result<(), StreamError> {
        let (w, h) = (self.info.width(), self.info.height());
        let config = TemporalConfig {
            smoothing: ctx.settings.matte.temporal_smoothing as f32,
            ofd: false,
        };
        for (id, d) in done {
            let Done::Matte(buf, result) = d else {
                continue;
            };
            let (matte, t) = result.map_err(StreamError::Matting)?;
            ctx.stats().add_matte(&t);
            self.network = Some(t.preprocess + t.inference + t.postprocess);
            if (matte.width, matte.height) != (w, h) {
                continue;
            }
            if let Some(alpha) = self.temporal.push(&config, w, h, matte.alpha) {
                self.current = Some(Current {
                    id,
                    pts: buf.pts(),
                    alpha,
                });
            }
        }
        Ok(())
    }

    /// The network's pending work and every matte are forgotten; the next frames
    /// are covered until a new matte exists.
    fn forget(&mut self) {
        self.worker.discard();
        self.current = None;
        self.temporal.reset();
    }
}

impl Path for Realtime {
    fn kind(&self) -> Kind {
        Kind::Realtime
    }

    /// The same worker: dropping it would wait for the network's current run.
    fn set_caps(&mut self, caps: &Caps<'_>) -> Result<(), String> {
        self.forget();
        let n = caps.info.width() as usize * caps.info.height() as usize;
        self.none = Arc::new(vec![0.0; n]);
        self.info = caps.info.clone();
        self.network = Some(caps.network);
        Ok(())
    }

    fn submit(
        &mut self,
        ctx: &Ctx<'_>,
        _render: &mut Render,
        frame: Incoming,
    ) -> Result<(), StreamError> {
        let alpha = self.matte_for(ctx, &frame.buffer, frame.index)?;
        self.ready.push(frame.buffer, alpha);
        Ok(())
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

    /// Every frame went out already; the network's pending work is of no use.
    fn finish(&mut self, _ctx: &Ctx<'_>, _render: &mut Render) {
        self.forget();
    }

    fn flush(&mut self) {
        self.forget();
        self.ready.clear();
    }

    fn latency(&self, _interval: Option<Duration>) -> Duration {
        self.wait()
    }
}
