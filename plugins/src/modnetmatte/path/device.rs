//! The device path: output frames are made on the network's device (tensor ops),
//! on the worker, in batches of `batch` frames per forward pass, each frame with its
//! own matte (or by mask-every and drop-late the last one) and in order; only the
//! finished frame comes back to the host.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modnetmatte::worker::ordered::Scheduler;
use modnetmatte::{DevicePath, Engine};

use super::super::context::{CAT, Ctx, StreamError};
use super::super::decide::{self, Kind};
use super::super::jobs::{self, Batched, DeviceSide, GpuMemory, Rendered, SharedPath};
use super::super::render::Render;
use super::super::stats::ms;
use super::turns::Turns;
use super::{Caps, Incoming, Path};

pub(in super::super) struct Device {
    scheduler: Scheduler<Vec<Rendered>>,
    side: SharedPath,
    turns: Turns,
    /// Frames per forward pass (per caps), and those collected for the next one.
    batch_size: usize,
    batch: Vec<Batched>,
    ready: VecDeque<gst::Buffer>,
}

impl Device {
    pub(in super::super) fn new(
        engine: Arc<Engine>,
        path: DevicePath,
        in_flight: usize,
    ) -> modnetmatte::Result<Self> {
        let gpu_memory = GpuMemory::new(engine.cuda_ordinal());
        Ok(Self {
            scheduler: Scheduler::new(engine, in_flight)?,
            side: Arc::new(Mutex::new(DeviceSide { path, gpu_memory })),
            turns: Turns::default(),
            batch_size: 1,
            batch: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    /// Hands the frames collected to the worker as one job (one forward pass; a
    /// short batch runs padded to the full one).
    fn submit_batch(&mut self, ctx: &Ctx<'_>, render: &mut Render) -> Result<(), StreamError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let infos = render.infos()?.clone();
        let spec = render.spec(ctx)?;
        let frames = std::mem::take(&mut self.batch);
        let (side, pad_to) = (self.side.clone(), self.batch_size);
        let submitted = self.scheduler.submit_staged(move |engine: &Engine| {
            jobs::device_job(engine, &side, spec, frames, pad_to, infos)
        });
        for frames in submitted.map_err(|e| StreamError::Worker(e.to_string()))? {
            for r in frames {
                self.take(ctx, r)?;
            }
        }
        Ok(())
    }

    /// A finished frame, in order: its stats, then ready to go out.
    fn take(&mut self, ctx: &Ctx<'_>, r: Rendered) -> Result<(), StreamError> {
        let (out, t) = r.result.map_err(StreamError::Matting)?;
        self.turns.count_use(ctx, &out, r.reused);
        let failure = ctx
            .stats()
            .add_device_frame(&t, r.reused, r.memory, r.gpu_memory, r.graphs);
        if let Some(why) = failure {
            gst::warning!(
                CAT,
                obj = ctx.obj,
                "CUDA graph capture failed, running plain forwards: {why}"
            );
        }
        gst::log!(
            CAT,
            obj = ctx.obj,
            "frame out (device path): upload {:.2} ms, network {:.2} ms, compositing {:.2} ms, download and wait {:.2} ms, latency {:.2} ms",
            ms(t.upload),
            ms(t.inference),
            ms(t.compositing),
            ms(t.download),
            ms(t.wall)
        );
        self.ready.push_back(out);
        Ok(())
    }
}

impl Path for Device {
    fn kind(&self) -> Kind {
        Kind::Device
    }

    fn set_caps(&mut self, caps: &Caps<'_>) -> Result<(), String> {
        self.batch_size = caps.batch.max(1);
        Ok(())
    }

    fn submit(
        &mut self,
        ctx: &Ctx<'_>,
        render: &mut Render,
        frame: Incoming,
    ) -> Result<(), StreamError> {
        let info = &render.infos()?.input;
        let own_run = self.turns.take(ctx, &frame, (info.width(), info.height()));
        self.batch.push(Batched {
            buffer: frame.buffer,
            own_run,
        });
        if self.batch.len() < self.batch_size {
            return Ok(());
        }
        self.submit_batch(ctx, render)
    }

    fn complete(
        &mut self,
        _ctx: &Ctx<'_>,
        _render: &mut Render,
    ) -> Result<Option<gst::Buffer>, StreamError> {
        Ok(self.ready.pop_front())
    }

    fn ready(&self) -> usize {
        self.ready.len()
    }

    fn finish(&mut self, ctx: &Ctx<'_>, render: &mut Render) {
        // A short last batch goes through as it is.
        if let Err(e) = self.submit_batch(ctx, render) {
            gst::warning!(CAT, obj = ctx.obj, "last batch at drain: {e:?}");
        }
        match self.scheduler.finish() {
            // A failed frame is reported and dropped; the ones after it still go out.
            Ok(done) => {
                for r in done.into_iter().flatten() {
                    if let Err(e) = self.take(ctx, r) {
                        gst::warning!(CAT, obj = ctx.obj, "dropping a result at drain: {e:?}");
                    }
                }
            }
            Err(e) => gst::warning!(CAT, obj = ctx.obj, "worker at drain: {e}"),
        }
    }

    fn flush(&mut self) {
        self.scheduler.discard();
        self.batch.clear();
        self.ready.clear();
        let mut side = self.side.lock().unwrap_or_else(|e| e.into_inner());
        side.path.reset();
    }

    fn latency(&self, interval: Option<Duration>) -> Duration {
        let frames = decide::held_frames(self.scheduler.max_in_flight(), false);
        interval.map_or(Duration::ZERO, |i| i * frames)
    }
}
