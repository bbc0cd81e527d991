//! `pacing=realtime` on the CPU compositing path: every frame goes out at once with
//! the newest matte, the network (`modnetmatte::worker::newest::Newest`) always works on the
//! newest frame. Until the first matte of these caps exists a frame goes out with an
//! all-background matte: the room is never shown, and the stream never stalls.

use std::sync::Arc;
use std::time::Duration;

use modnetmatte::Engine;
use modnetmatte::temporal::{self, Temporal, TemporalConfig};
use modnetmatte::worker::newest::{Newest, own_matte_wait};

use super::jobs::{self, Done};
use super::state::{Ctx, StreamError};

/// The matte frames go out with now.
struct Current {
    /// The frame it was computed on: its id (count since caps) and timestamp.
    id: u64,
    pts: Option<gst::ClockTime>,
    alpha: Arc<Vec<f32>>,
}

pub(super) struct Realtime {
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
}

impl Realtime {
    /// For frames of `info`; `network`: the warm-up's forward time.
    pub(super) fn new(
        engine: Arc<Engine>,
        info: &gst_video::VideoInfo,
        network: Duration,
    ) -> Result<Self, String> {
        let mut rt = Self {
            worker: Newest::new(engine).map_err(|e| e.to_string())?,
            info: info.clone(),
            temporal: Temporal::new(),
            current: None,
            none: Arc::default(),
            network: None,
        };
        rt.set_caps(info, network);
        Ok(rt)
    }

    /// New caps (after `forget` at the drain): frames of `info` from now on.
    pub(super) fn set_caps(&mut self, info: &gst_video::VideoInfo, network: Duration) {
        self.forget();
        let n = info.width() as usize * info.height() as usize;
        self.none = Arc::new(vec![0.0; n]);
        self.info = info.clone();
        self.network = Some(network);
    }

    /// The longest a frame waits for its own matte now (only when the network keeps
    /// up; also what the latency query adds).
    pub(super) fn wait(&self) -> Duration {
        own_matte_wait(self.network, frame_interval(&self.info))
    }

    /// Frame `index` (since caps): hands it to the network if it is a network frame
    /// (mask-every), waits for its matte only as `wait` allows, and returns the matte
    /// it goes out with.
    pub(super) fn frame(
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
                let age = super::stats::age(inbuf.pts(), m.pts);
                stats.add_matte_use(m.id != index, age);
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
            mask_every: 1,
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

    /// Flush, EOS, new caps: the network's pending work and every matte are
    /// forgotten; the next frames are covered until a new matte exists.
    pub(super) fn forget(&mut self) {
        self.worker.discard();
        self.current = None;
        self.temporal.reset();
    }
}

/// The caps' frame interval, if the frame rate is fixed.
pub(super) fn frame_interval(info: &gst_video::VideoInfo) -> Option<Duration> {
    let f = info.fps();
    (f.numer() > 0 && f.denom() > 0)
        .then(|| Duration::from_secs(f.denom() as u64) / f.numer() as u32)
}
