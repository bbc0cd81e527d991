//! What the element has done since start, read through the `stats` property (and
//! logged at stop): frame counts, time per stage, where compositing runs, memory held,
//! batch size and CUDA graphs.

use std::time::Duration;

use modnetmatte::StageTimings;
use modnetmatte::gpu::graphs::Status as GraphStatus;

use crate::stats_fields as f;

#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub(super) frames: u64,
    pub(super) reused: u64,
    pub(super) late: u64,
    /// Network runs (realtime: fewer than frames).
    runs: u64,
    inference: Duration,
    last_inference: Duration,
    total: Duration,
    preprocess: Duration,
    postprocess: Duration,
    compositing: Duration,
    upload: Duration,
    download: Duration,
    /// Device path: start of a frame to its output on the host, summed.
    wall: Duration,
    /// Device path frames (their stage times are issue times on CUDA).
    device_frames: u64,
    /// Where output frames are made ("cpu", or the device the network runs on).
    compositing_on: String,
    /// The GPU's (used, total) memory, all processes, as the worker last read it.
    gpu_memory: (usize, usize),
    /// Page-locked host bytes and device bytes the device path holds.
    pinned_bytes: usize,
    device_bytes: usize,
    /// Frames per forward pass now.
    pub(super) batch: u32,
    /// Whether CUDA graphs were asked for and can be used (CUDA device path).
    graphs_wanted: bool,
    graphs: GraphStatus,
    /// The capture failure has been logged.
    graph_failure_logged: bool,
    /// How frames meet their mattes now ("realtime" or "every-frame").
    pub(super) pacing: &'static str,
    ages: MatteAges,
    follow: Following,
}

/// Realtime: what the matte's follow-up did (`temporal::follow`).
#[derive(Debug, Default, Clone)]
struct Following {
    frames: u64,
    shift_sum: f64,
    shift_last: f32,
    known: f32,
    removed_sum: f64,
    cuts: u64,
    time: Duration,
}

/// How old the mattes applied to frames were: the time between the frame a matte
/// was computed on and the frame it went out with (timestamps).
#[derive(Debug, Default, Clone)]
struct MatteAges {
    sum: Duration,
    /// Frames with a known age (both timestamps).
    timed: u64,
    last: Duration,
    max: Duration,
    /// Frames that went out with a matte from an earlier frame.
    earlier: u64,
    /// Realtime: frames that went out before any matte existed (background only).
    without: u64,
    /// Realtime: frames the network did not get to (a newer one took their turn).
    skipped: u64,
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A matte's age: how far the frame it goes out with (`applied`) lies after the frame
/// it was computed on, where both have timestamps.
pub(super) fn age(
    applied: Option<gst::ClockTime>,
    computed: Option<gst::ClockTime>,
) -> Option<Duration> {
    applied
        .zip(computed)
        .map(|(a, c)| Duration::from_nanos(a.nseconds().saturating_sub(c.nseconds())))
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Stats {
    /// Zero counts, for a stream that composites on `compositing_on`.
    pub(super) fn new(compositing_on: String, graphs_wanted: bool) -> Self {
        Self {
            compositing_on,
            graphs_wanted,
            batch: 1,
            pacing: "every-frame",
            ..Self::default()
        }
    }

    /// A network run's stage times (the CPU path).
    pub(super) fn add_matte(&mut self, t: &StageTimings) {
        self.add_network(t);
        self.total += t.total();
    }

    fn add_network(&mut self, t: &StageTimings) {
        self.runs += 1;
        self.inference += t.inference;
        self.last_inference = t.inference;
        self.preprocess += t.preprocess;
        self.postprocess += t.postprocess;
    }

    /// A frame goes out with the matte of an earlier frame (`earlier`) or its own;
    /// `age`: their timestamps' distance, where both are known.
    pub(super) fn add_matte_use(&mut self, earlier: bool, age: Option<Duration>) {
        self.ages.earlier += u64::from(earlier);
        if let Some(age) = age {
            self.ages.sum += age;
            self.ages.timed += 1;
            self.ages.last = age;
            self.ages.max = self.ages.max.max(age);
        }
    }

    /// Realtime: a frame went out before any matte existed (background only).
    pub(super) fn add_without_matte(&mut self) {
        self.ages.without += 1;
    }

    /// Realtime: a frame lost its turn at the network to a newer one.
    pub(super) fn add_skipped(&mut self) {
        self.ages.skipped += 1;
    }

    /// Realtime: the follow-up of one frame's matte, and its time.
    pub(super) fn add_follow(
        &mut self,
        r: &modnetmatte::temporal::follow::FollowReport,
        d: Duration,
    ) {
        let f = &mut self.follow;
        f.frames += 1;
        f.shift_sum += f64::from(r.shift);
        f.shift_last = r.shift;
        f.known = r.room.known;
        f.removed_sum += f64::from(r.room.removed);
        f.time += d;
    }

    /// Realtime: a cut to another picture made the element forget the matte.
    pub(super) fn add_scene_cut(&mut self) {
        self.follow.cuts += 1;
    }

    /// A frame composited on the CPU in `d`.
    pub(super) fn add_composited(&mut self, d: Duration) {
        self.frames += 1;
        self.compositing += d;
        self.total += d;
    }

    /// A device-path frame; returns the graph capture failure the first time one is
    /// seen (to be logged once).
    pub(super) fn add_device_frame(
        &mut self,
        t: &StageTimings,
        reused: bool,
        memory: (usize, usize),
        gpu_memory: Option<(usize, usize)>,
        graphs: GraphStatus,
    ) -> Option<String> {
        self.frames += 1;
        self.device_frames += 1;
        if reused {
            self.reused += 1;
        } else {
            self.add_network(t);
        }
        self.compositing += t.compositing;
        self.upload += t.upload;
        self.download += t.download;
        self.wall += t.wall;
        self.total += t.wall;
        (self.pinned_bytes, self.device_bytes) = memory;
        if let Some(m) = gpu_memory {
            self.gpu_memory = m;
        }
        let failure = match (&graphs.failure, self.graph_failure_logged) {
            (Some(why), false) => Some(why.clone()),
            _ => None,
        };
        self.graph_failure_logged |= failure.is_some();
        self.graphs = graphs;
        failure
    }

    /// `cuda-graphs`: off, waiting (warm-up), on (how many), or the failure.
    fn graphs_summary(&self) -> String {
        match (
            &self.graphs.failure,
            self.graphs_wanted,
            self.graphs.captured,
        ) {
            (_, false, _) => "off".into(),
            (Some(why), _, _) => format!("failed, plain forwards: {why}"),
            (None, true, 0) => "on (not captured yet)".into(),
            (None, true, n) => format!("on ({n} captured)"),
        }
    }

    /// The `stats` structure: stage times per network run; compositing and total per
    /// output frame; the GPU's memory as the worker last read it (every process).
    /// Plain values only: it runs under the stats lock, which the streaming thread
    /// takes every frame.
    pub(super) fn to_structure(&self) -> gst::Structure {
        let inferred = self.runs;
        let per = |d: Duration, n: u64| if n == 0 { 0.0 } else { ms(d) / n as f64 };
        let (used, total) = self.gpu_memory;
        let a = &self.ages;
        let fw = &self.follow;
        gst::Structure::builder("modnetmatte-stats")
            .field(f::FRAMES, self.frames)
            .field(f::PACING, self.pacing)
            .field(f::MATTE_AGE_MEAN_MS, per(a.sum, a.timed))
            .field(f::MATTE_AGE_LAST_MS, ms(a.last))
            .field(f::MATTE_AGE_MAX_MS, ms(a.max))
            .field(f::FRAMES_EARLIER_MATTE, a.earlier)
            .field(f::FRAMES_WITHOUT_MATTE, a.without)
            .field(f::FRAMES_SKIPPED_BY_NETWORK, a.skipped)
            .field(f::FRAMES_MATTE_REUSED, self.reused)
            .field(f::NETWORK_RUNS, self.runs)
            .field(f::FRAMES_LATE_REUSED, self.late)
            .field(f::MEAN_INFERENCE_MS, per(self.inference, inferred))
            .field(f::LAST_INFERENCE_MS, ms(self.last_inference))
            .field(f::MEAN_PREPROCESS_MS, per(self.preprocess, inferred))
            .field(f::MEAN_POSTPROCESS_MS, per(self.postprocess, inferred))
            .field(f::MEAN_COMPOSITING_MS, per(self.compositing, self.frames))
            .field(f::MEAN_TOTAL_MS, per(self.total, self.frames))
            .field(f::COMPOSITING_ON, self.compositing_on.as_str())
            .field(f::MEAN_UPLOAD_MS, per(self.upload, self.device_frames))
            .field(f::MEAN_DOWNLOAD_MS, per(self.download, self.device_frames))
            .field(f::MEAN_LATENCY_MS, per(self.wall, self.device_frames))
            .field(f::PINNED_MB, mb(self.pinned_bytes))
            .field(f::DEVICE_BUFFERS_MB, mb(self.device_bytes))
            .field(f::BATCH, self.batch)
            .field(f::CUDA_GRAPHS, self.graphs_summary())
            .field(f::GRAPH_REPLAYS, self.graphs.replays)
            .field(f::GPU_MEMORY_USED_MB, mb(used))
            .field(f::GPU_MEMORY_TOTAL_MB, mb(total))
            .field(
                f::MATTE_SHIFT_MEAN_PX,
                fw.shift_sum / fw.frames.max(1) as f64,
            )
            .field(f::MATTE_SHIFT_LAST_PX, f64::from(fw.shift_last))
            .field(f::ROOM_KNOWN_PERCENT, f64::from(fw.known) * 100.0)
            .field(
                f::ROOM_REMOVED_MEAN_PERCENT,
                fw.removed_sum / fw.frames.max(1) as f64 * 100.0,
            )
            .field(f::SCENE_CUTS, fw.cuts)
            .field(f::MEAN_FOLLOW_MS, per(fw.time, fw.frames))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: for<'a> gst::glib::value::FromValue<'a> + 'static>(
        s: &gst::Structure,
        name: &str,
    ) -> T {
        s.get::<T>(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn gpu_memory_comes_from_the_last_device_frame_not_the_driver() {
        gst::init().unwrap();
        let mut stats = Stats::new("cuda:0 (tensor ops)".into(), false);
        let s = stats.to_structure();
        assert_eq!(field::<f64>(&s, "gpu-memory-total-mb"), 0.0);
        let t = StageTimings::default();
        let mb = 1024 * 1024;
        stats.add_device_frame(
            &t,
            false,
            (0, 0),
            Some((3 * mb, 8 * mb)),
            GraphStatus::default(),
        );
        // A frame without a new reading keeps the last one.
        stats.add_device_frame(&t, true, (0, 0), None, GraphStatus::default());
        let s = stats.to_structure();
        assert_eq!(field::<f64>(&s, "gpu-memory-used-mb"), 3.0);
        assert_eq!(field::<f64>(&s, "gpu-memory-total-mb"), 8.0);
        assert_eq!(field::<u64>(&s, "frames"), 2);
        assert_eq!(field::<u64>(&s, "frames-matte-reused"), 1);
    }

    #[test]
    fn the_structure_has_every_shared_field_name_and_no_other() {
        gst::init().unwrap();
        let s = Stats::default().to_structure();
        let names: Vec<&str> = s.fields().map(|n| n.as_str()).collect();
        assert_eq!(names, f::ALL);
    }
}
