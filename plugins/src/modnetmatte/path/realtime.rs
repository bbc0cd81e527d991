//! `pacing=realtime` with CPU compositing: every frame goes out at once with the
//! newest matte, the network (`modnetmatte::worker::newest::Newest`) always works on
//! the newest frame. Until the first matte of these caps exists a frame goes out
//! with an all-background matte: the room is never shown, and the stream never
//! stalls. The newest matte is older than the frame it cuts; `Follow` moves it
//! with the picture and takes away what matches the learnt room (follow-motion,
//! learn-room), and a cut to another picture forgets it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst_video::VideoFrameRef;
use modnetmatte::Engine;
use modnetmatte::temporal::follow::{Follow, FollowConfig};
use modnetmatte::temporal::thumb::Thumb;
use modnetmatte::temporal::{self, Temporal, TemporalConfig};
use modnetmatte::worker::newest::{Newest, own_matte_wait};

use super::super::buffers::map_input;
use super::super::context::{CAT, Ctx, StreamError};
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
    /// The newest matte brought to the frame it cuts.
    follow: Follow,
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
            follow: Follow::new(),
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
    /// is a network frame (mask-every), waits for its matte only as `wait` allows,
    /// and brings the newest matte to this frame.
    fn matte_for(
        &mut self,
        ctx: &Ctx<'_>,
        inbuf: &gst::Buffer,
        index: u64,
    ) -> Result<Arc<Vec<f32>>, StreamError> {
        let follow = follow_config(ctx);
        let network = temporal::is_network_frame(index, ctx.settings.matte.mask_every);
        let started = Instant::now();
        if follow.any() {
            self.see(ctx, &follow, inbuf, index, network);
        }
        self.absorb(ctx, self.worker.take())?;
        if network {
            let (buf, info) = (inbuf.clone(), self.info.clone());
            let lost = self
                .worker
                .post(index, move |e: &Engine| jobs::matte_job(e, buf, &info));
            if let Some(lost) = lost {
                self.follow.lost(lost);
                ctx.stats().add_skipped();
            }
            let wait = self.wait();
            if !wait.is_zero() {
                let got = self.worker.wait_for(index, wait);
                self.absorb(ctx, got)?;
            }
        }
        let Some(m) = &self.current else {
            ctx.stats().add_without_matte();
            return Ok(self.none.clone());
        };
        let (id, age) = (m.id, stats::age(inbuf.pts(), m.pts));
        let alpha = match follow.any().then(|| self.follow.apply(&follow)).flatten() {
            Some((moved, report)) => {
                gst::trace!(
                    CAT,
                    obj = ctx.obj,
                    "frame {index}: matte of frame {id} {report:?}"
                );
                ctx.stats().add_follow(&report, started.elapsed());
                moved
            }
            None => m.alpha.clone(),
        };
        ctx.stats().add_matte_use(id != index, age);
        Ok(alpha)
    }

    /// Shows the frame to the follow-up; at a cut to another picture the matte is
    /// forgotten (frames are covered until the next one).
    fn see(
        &mut self,
        ctx: &Ctx<'_>,
        follow: &FollowConfig,
        inbuf: &gst::Buffer,
        index: u64,
        network: bool,
    ) {
        let thumb = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &self.info)
            .map_err(|_| "input buffer does not match the caps".to_string())
            .and_then(|v| Thumb::of(&map_input(&v, &self.info)?).map_err(|e| e.to_string()));
        let cut = match thumb {
            Ok(t) => self.follow.frame(follow, index, t, network),
            Err(why) => {
                gst::warning!(
                    CAT,
                    obj = ctx.obj,
                    "frame {index}: no thumbnail ({why}); the matte is forgotten"
                );
                self.follow.reset();
                true
            }
        };
        if cut && self.current.take().is_some() {
            gst::debug!(
                CAT,
                obj = ctx.obj,
                "frame {index}: another picture; the matte and the room are forgotten"
            );
            ctx.stats().add_scene_cut();
            self.temporal.reset();
        }
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
            let Some(alpha) = self.temporal.push(&config, w, h, matte.alpha) else {
                continue;
            };
            let follow = follow_config(ctx);
            // A matte of a frame the follow-up does not know (before a cut) is never used.
            if follow.any() && !self.follow.matte(&follow, id, alpha.clone(), w, h) {
                gst::debug!(
                    CAT,
                    obj = ctx.obj,
                    "matte of frame {id}: from before a cut, not used"
                );
                continue;
            }
            {
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
        self.follow.reset();
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

fn follow_config(ctx: &Ctx<'_>) -> FollowConfig {
    FollowConfig {
        motion: ctx.settings.matte.follow_motion,
        room: ctx.settings.matte.learn_room,
    }
}
