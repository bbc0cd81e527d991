//! The element's choices between its paths, as pure functions of the settings and
//! what the stream is: which path frames take, where output frames are made, frames
//! per forward pass, jobs in flight, which frames get a network run, and the delay
//! each path adds. `State` asks these and holds the answers.

use super::{Compositing, Pacing};

/// Frames per forward pass with batch=0 (auto) on the CUDA device path when upstream
/// is not live (file jobs): the fastest measured there (README, "GPU check").
pub(super) const AUTO_BATCH_CUDA: usize = 8;

/// How frames meet the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// CPU compositing, every frame waits for its own matte.
    Ordered,
    /// CPU compositing, every frame goes out at once with the newest matte.
    Realtime,
    /// Output frames made on the network's device, in batches, each frame its own
    /// matte.
    Device,
}

impl Kind {
    /// The pacing's name, as `stats` and the log say it.
    pub(super) fn pacing(self) -> &'static str {
        match self {
            Kind::Realtime => "realtime",
            Kind::Ordered | Kind::Device => "every-frame",
        }
    }
}

/// Where output frames are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    Cpu,
    /// The device was asked for, but OFD holds mattes back on the host.
    CpuForOfd,
    Device,
}

/// `compositing` on a network that runs on CUDA (`cuda`) or not.
pub(super) fn placement(compositing: Compositing, cuda: bool, ofd: bool) -> Placement {
    let on_device = match compositing {
        Compositing::Auto => cuda,
        Compositing::Cpu => false,
        Compositing::Device => true,
    };
    match (on_device, ofd) {
        (false, _) => Placement::Cpu,
        (true, true) => Placement::CpuForOfd,
        (true, false) => Placement::Device,
    }
}

/// Whether frames go out with the newest matte (`live`: upstream says it is live).
pub(super) fn realtime(pacing: Pacing, live: bool) -> bool {
    match pacing {
        Pacing::Auto => live,
        Pacing::Realtime => true,
        Pacing::EveryFrame => false,
    }
}

/// The path for these caps: the device path gives every frame its own matte (the GPU
/// keeps up), so realtime pacing applies to CPU compositing only.
pub(super) fn kind(device: bool, realtime: bool) -> Kind {
    match (device, realtime) {
        (true, _) => Kind::Device,
        (false, true) => Kind::Realtime,
        (false, false) => Kind::Ordered,
    }
}

/// Jobs in flight for every-frame pacing (`max-in-flight`; 0: 1 on a CPU, whose cores
/// are the network's, 2 on the CUDA device path, where neighbouring frames' upload,
/// network and download overlap).
pub(super) fn in_flight(max_in_flight: u32, device: bool, cuda: bool) -> usize {
    match max_in_flight {
        0 if device && cuda => 2,
        0 => 1,
        n => n as usize,
    }
}

/// Frames per forward pass: batches are for the device path and never for a live
/// source, whose frames must not wait for the next ones.
pub(super) fn batch_size(batch: u32, device: bool, live: bool, cuda: bool) -> usize {
    match (device, live, batch) {
        (false, _, _) | (true, true, _) => 1,
        (true, false, 0) if cuda => AUTO_BATCH_CUDA,
        (true, false, 0) => 1,
        (true, false, n) => n as usize,
    }
}

/// Why a `batch` above 1 was not used, for the log ("" when it was, or not asked).
pub(super) fn batch_note(batch: u32, chosen: usize, live: bool) -> &'static str {
    match (batch, chosen) {
        (n, 1) if n > 1 && live => " (upstream is live)",
        (n, 1) if n > 1 => " (batches are for the device path)",
        _ => "",
    }
}

/// What the log adds to the pacing chosen, where a setting does not apply.
pub(super) fn pacing_note(realtime: bool, device: bool, ofd: bool) -> &'static str {
    match (realtime, device, ofd) {
        (true, true, _) => " (the device path: every frame its own matte)",
        (true, false, true) => {
            " (ofd does not apply: it would hold every matte back by a network run)"
        }
        _ => "",
    }
}

/// What an every-frame stream does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// The network runs on it.
    Network,
    /// It reuses the last network frame's matte (mask-every).
    Reuse,
    /// It reuses the last matte because QoS says it is late (drop-late).
    Late,
}

/// The turn of frame `index` (since start or a flush): a network frame by mask-every,
/// or the first of a new size, runs the network, unless drop-late finds it late and
/// a matte of its size exists to reuse.
pub(super) fn turn(
    index: u64,
    mask_every: u32,
    new_size: bool,
    drop_late: bool,
    late: bool,
) -> Turn {
    let network = modnetmatte::temporal::is_network_frame(index, mask_every) || new_size;
    match network {
        false => Turn::Reuse,
        true if drop_late && late && index > 0 && !new_size => Turn::Late,
        true => Turn::Network,
    }
}

/// Frames an every-frame path holds each frame back by: one per further job in
/// flight, one more for OFD (which waits for the next matte).
pub(super) fn held_frames(in_flight: usize, ofd: bool) -> u32 {
    in_flight.saturating_sub(1) as u32 + u32::from(ofd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositing_goes_to_the_device_only_where_asked_and_possible() {
        assert_eq!(placement(Compositing::Auto, true, false), Placement::Device);
        assert_eq!(placement(Compositing::Auto, false, false), Placement::Cpu);
        assert_eq!(placement(Compositing::Cpu, true, false), Placement::Cpu);
        // device on a CPU: libtorch's kernels, still the device path.
        assert_eq!(
            placement(Compositing::Device, false, false),
            Placement::Device
        );
        assert_eq!(
            placement(Compositing::Auto, true, true),
            Placement::CpuForOfd
        );
        assert_eq!(placement(Compositing::Cpu, true, true), Placement::Cpu);
    }

    #[test]
    fn pacing_follows_liveness_only_on_auto() {
        assert!(realtime(Pacing::Auto, true));
        assert!(!realtime(Pacing::Auto, false));
        assert!(realtime(Pacing::Realtime, false));
        assert!(!realtime(Pacing::EveryFrame, true));
    }

    #[test]
    fn the_device_path_keeps_every_frame_its_own_matte() {
        assert_eq!(kind(true, true), Kind::Device);
        assert_eq!(kind(true, false), Kind::Device);
        assert_eq!(kind(false, true), Kind::Realtime);
        assert_eq!(kind(false, false), Kind::Ordered);
        assert_eq!(Kind::Device.pacing(), "every-frame");
        assert_eq!(Kind::Realtime.pacing(), "realtime");
    }

    #[test]
    fn in_flight_auto_is_two_only_on_the_cuda_device_path() {
        assert_eq!(in_flight(0, true, true), 2);
        assert_eq!(in_flight(0, true, false), 1);
        assert_eq!(in_flight(0, false, true), 1);
        assert_eq!(in_flight(3, false, false), 3);
    }

    #[test]
    fn batches_are_for_non_live_device_streams() {
        assert_eq!(batch_size(0, true, false, true), AUTO_BATCH_CUDA);
        assert_eq!(batch_size(0, true, false, false), 1);
        assert_eq!(batch_size(4, true, false, false), 4);
        assert_eq!(batch_size(4, true, true, true), 1);
        assert_eq!(batch_size(4, false, false, true), 1);
        assert_eq!(batch_note(4, 1, true), " (upstream is live)");
        assert_eq!(
            batch_note(4, 1, false),
            " (batches are for the device path)"
        );
        assert_eq!(batch_note(4, 4, false), "");
        assert_eq!(batch_note(0, 1, false), "");
    }

    #[test]
    fn pacing_notes_name_what_does_not_apply() {
        assert!(pacing_note(true, true, false).contains("device path"));
        assert!(pacing_note(true, false, true).contains("ofd"));
        assert_eq!(pacing_note(false, false, true), "");
        assert_eq!(pacing_note(true, false, false), "");
    }

    #[test]
    fn turns_follow_mask_every_size_and_lateness() {
        // mask-every 2: frames 0, 2, 4 run the network.
        assert_eq!(turn(0, 2, false, false, false), Turn::Network);
        assert_eq!(turn(1, 2, false, false, false), Turn::Reuse);
        assert_eq!(turn(1, 2, true, false, false), Turn::Network);
        // Late network frames reuse, but never the first frame or a new size.
        assert_eq!(turn(2, 2, false, true, true), Turn::Late);
        assert_eq!(turn(2, 2, false, false, true), Turn::Network);
        assert_eq!(turn(0, 1, false, true, true), Turn::Network);
        assert_eq!(turn(5, 1, true, true, true), Turn::Network);
        assert_eq!(turn(3, 2, false, true, true), Turn::Reuse);
    }

    #[test]
    fn held_frames_count_jobs_in_flight_and_ofd() {
        assert_eq!(held_frames(1, false), 0);
        assert_eq!(held_frames(2, false), 1);
        assert_eq!(held_frames(2, true), 2);
        assert_eq!(held_frames(0, false), 0);
    }
}
