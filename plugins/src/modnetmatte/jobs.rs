//! What runs on the network's worker thread for the element, and what each job gives
//! back: the CPU paths' matte job, the device path's batch job (`device_job`), and
//! the GPU memory figures the worker reads for `stats`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst_video::VideoFrameRef;
use modnetmatte::composite::spec::OutputSpec;
use modnetmatte::gpu::driver;
use modnetmatte::gpu::graphs::Status as GraphStatus;
use modnetmatte::worker::ordered::Step;
use modnetmatte::{DevicePath, Engine, InFlight, Matte, StageTimings};

use super::buffers::{Infos, map_input, new_output};

/// What the worker hands back to a CPU path for one input buffer.
pub(super) enum Done {
    Matte(gst::Buffer, Result<(Matte, StageTimings), String>),
    /// mask-every, drop-late: this frame reuses the previous matte.
    Reuse(gst::Buffer),
}

/// A device-path frame, finished on the worker.
pub(super) struct Rendered {
    /// The output buffer and its stage times.
    pub(super) result: Result<(gst::Buffer, StageTimings), String>,
    /// No network run of its own (mask-every, drop-late).
    pub(super) reused: bool,
    /// (page-locked, device) bytes the device path held after this frame.
    pub(super) memory: (usize, usize),
    /// The GPU's (used, total) memory, all processes, as last read.
    pub(super) gpu_memory: Option<(usize, usize)>,
    pub(super) graphs: GraphStatus,
}

/// An input buffer waiting for its batch.
pub(super) struct Batched {
    pub(super) buffer: gst::Buffer,
    /// Whether it gets its own network run (mask-every, drop-late).
    pub(super) own_run: bool,
}

/// The device path of a stream, used by one job at a time on the worker.
pub(super) type SharedPath = Arc<Mutex<DeviceSide>>;

pub(super) struct DeviceSide {
    pub(super) path: DevicePath,
    pub(super) gpu_memory: GpuMemory,
}

/// The GPU's memory figures, read on the worker (whose thread has the CUDA context
/// bound) at most every `GpuMemory::EVERY`: reading `stats` then never calls the
/// driver, nor holds the stats lock across a call.
pub(super) struct GpuMemory {
    ordinal: Option<usize>,
    read_at: Option<Instant>,
    figures: Option<(usize, usize)>,
}

impl GpuMemory {
    const EVERY: Duration = Duration::from_millis(500);

    /// For the CUDA device `ordinal` (none: no figures).
    pub(super) fn new(ordinal: Option<usize>) -> Self {
        Self {
            ordinal,
            read_at: None,
            figures: None,
        }
    }

    /// (used, total) bytes, read again if the last reading is older than `EVERY`.
    pub(super) fn read(&mut self, now: Instant) -> Option<(usize, usize)> {
        let ordinal = self.ordinal?;
        if self
            .read_at
            .is_none_or(|t| now.duration_since(t) >= Self::EVERY)
        {
            self.read_at = Some(now);
            self.figures = driver::device_memory(ordinal);
        }
        self.figures
    }
}

/// The CPU paths' job: the matte of one buffer, copied to the host.
pub(super) fn matte_job(engine: &Engine, inbuf: gst::Buffer, info: &gst_video::VideoInfo) -> Done {
    let result = (|| {
        let vframe = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), info)
            .map_err(|_| "input buffer does not match the caps")?;
        let frame = map_input(&vframe, info)?;
        engine.matte(&frame).map_err(|e| e.to_string())
    })();
    Done::Matte(inbuf, result)
}

/// The device path's job: issue the frames (upload, one forward pass over all of them
/// padded to `pad_to`, output frames, downloads); the second step, run once the next
/// job has been issued, waits for the results and fills the output buffers. The input
/// buffers live until then, so frames copied straight from their own page-locked
/// memory stay valid.
pub(super) fn device_job(
    engine: &Engine,
    side: &SharedPath,
    spec: OutputSpec,
    frames: Vec<Batched>,
    pad_to: usize,
    infos: Infos,
) -> Step<Vec<Rendered>> {
    let mut side = side.lock().unwrap_or_else(|e| e.into_inner());
    let own_runs: Vec<bool> = frames.iter().map(|f| f.own_run).collect();
    let issued = (|| -> Result<Vec<InFlight>, String> {
        let mapped = frames
            .iter()
            .map(|f| VideoFrameRef::from_buffer_ref_readable(f.buffer.as_ref(), &infos.input))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "input buffer does not match the caps")?;
        let views = mapped
            .iter()
            .map(|v| map_input(v, &infos.input))
            .collect::<Result<Vec<_>, _>>()?;
        side.path
            .run_batch(engine, &spec, &views, &own_runs, pad_to)
            .map_err(|e| e.to_string())
    })();
    let m = side.path.memory();
    let memory = (m.pinned_bytes, m.device_bytes);
    let graphs = side.path.graph_status();
    let gpu_memory = side.gpu_memory.read(Instant::now());
    drop(side);
    let rendered = move |result, reused| Rendered {
        result,
        reused,
        memory,
        gpu_memory,
        graphs: graphs.clone(),
    };
    match issued {
        Err(e) => Step::Done(vec![rendered(Err(e), false)]),
        Ok(in_flight) => Step::Later(Box::new(move || {
            in_flight
                .into_iter()
                .zip(&frames)
                .map(|(f, b)| rendered(finish_output(f, &b.buffer, &infos.output), !b.own_run))
                .collect()
        })),
    }
}

/// Waits for a device-path frame and writes it into a new output buffer.
fn finish_output(
    in_flight: InFlight,
    inbuf: &gst::Buffer,
    out_info: &gst_video::VideoInfo,
) -> Result<(gst::Buffer, StageTimings), String> {
    new_output(inbuf, out_info, |frame| {
        in_flight.finish(frame).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_memory_without_a_cuda_device_reads_nothing() {
        assert_eq!(GpuMemory::new(None).read(Instant::now()), None);
    }

    #[test]
    fn gpu_memory_is_read_at_most_every_half_second() {
        if driver::skips_with_a_driver() {
            return;
        }
        // Without a driver each reading is None, but when one was taken shows.
        let mut m = GpuMemory::new(Some(0));
        let t0 = Instant::now();
        assert_eq!(m.read(t0), None);
        assert_eq!(m.read_at, Some(t0));
        m.read(t0 + Duration::from_millis(100));
        assert_eq!(m.read_at, Some(t0), "read again within 500 ms");
        let later = t0 + GpuMemory::EVERY;
        m.read(later);
        assert_eq!(m.read_at, Some(later));
    }
}
