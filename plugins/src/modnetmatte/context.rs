//! What every part of the element's stream logic shares: the debug category, the
//! context a call runs in (the element, its settings now, its stats) and the typed
//! errors that `imp.rs` turns into bus messages. It imports nothing of its siblings
//! but the settings and stats, so each of them can import it.

use std::sync::{LazyLock, Mutex, MutexGuard};

use super::settings::Settings;
use super::stats::Stats;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "modnetmatte",
        gst::DebugColorFlags::empty(),
        Some("MODNet background replacement"),
    )
});

/// Why a frame could not be handled; `imp.rs` posts it on the bus.
#[derive(Debug)]
pub(super) enum StreamError {
    /// A buffer arrived before any caps.
    NotNegotiated,
    /// The worker could not take a job.
    Worker(String),
    /// The network or the device path failed on a frame.
    Matting(String),
    /// The background frame could not be built.
    Background(String),
    /// The output frame could not be made.
    Output(String),
}

/// The element's object, settings and stats, for the stream's methods.
pub(super) struct Ctx<'a> {
    pub(super) obj: &'a super::ModnetMatte,
    pub(super) settings: &'a Settings,
    pub(super) stats: &'a Mutex<Stats>,
}

impl Ctx<'_> {
    pub(super) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}
