//! Temporal stability of the matte across frames (all off by default):
//!
//! - mask-every N: run the network on every Nth frame only ([`is_network_frame`],
//!   asked by the caller) and reuse the last matte between ([`Temporal::push_reused`]);
//! - `smoothing` s in [0, 1): exponential moving average, a(t) = s a(t-1) + (1-s) m(t);
//! - `ofd`: MODNet's one-frame-delay fix (never released by its authors): where
//!   a(t-1) and a(t+1) agree within `OFD_TOLERANCE` but a(t) differs from both by
//!   more, a(t) becomes their mean. The matte of frame t is known once frame t+1 has
//!   been seen: one frame of latency.
//!
//! Realtime pacing brings its late matte to the current frame with [`follow`]
//! (motion from [`flow`] on [`thumb`]nails, the [`room`] picture).
//!
//! Mattes are frame-sized f32 alpha, shared (`Arc`): the history keeps the same
//! matte the caller composites, and a filter that changes one copies it only while it
//! is shared (`Arc::make_mut`). A size change (renegotiation) resets the history.

pub mod flow;
pub mod follow;
pub mod room;
pub mod thumb;

use std::collections::VecDeque;
use std::sync::Arc;

/// A frame-sized matte, shared between the history and the frame it is applied to.
pub type SharedMatte = Arc<Vec<f32>>;

/// "Agree within a small tolerance" of the OFD rule, in alpha units.
pub const OFD_TOLERANCE: f32 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemporalConfig {
    pub smoothing: f32,
    pub ofd: bool,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self {
            smoothing: 0.0,
            ofd: false,
        }
    }
}

/// The mask-every rule: the network runs on frame `index` (counted from 0 since the
/// stream started or was flushed) when it is a multiple of `mask_every`.
pub fn is_network_frame(index: u64, mask_every: u32) -> bool {
    index.is_multiple_of(u64::from(mask_every.max(1)))
}

#[derive(Debug, Default)]
pub struct Temporal {
    frames_seen: u64,
    size: (u32, u32),
    /// The last network (or reused) matte, before smoothing.
    last_raw: Option<SharedMatte>,
    ema: Option<SharedMatte>,
    /// Up to the last two smoothed mattes waiting for the OFD decision.
    window: VecDeque<SharedMatte>,
}

impl Temporal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget all history (flush, new stream, new size).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The next frame's matte from the network. Returns the matte of the frame that
    /// is now final: this frame's, or with OFD the previous frame's (None for the
    /// first frame of a stream). With no filter on, that is `matte` itself, not a copy.
    pub fn push(
        &mut self,
        config: &TemporalConfig,
        width: u32,
        height: u32,
        matte: Vec<f32>,
    ) -> Option<SharedMatte> {
        self.push_shared(config, width, height, Arc::new(matte))
    }

    fn push_shared(
        &mut self,
        config: &TemporalConfig,
        width: u32,
        height: u32,
        matte: SharedMatte,
    ) -> Option<SharedMatte> {
        if self.size != (width, height) {
            self.reset();
            self.size = (width, height);
        }
        self.frames_seen += 1;
        self.last_raw = Some(matte.clone());
        let s = config.smoothing.clamp(0.0, 0.999);
        let smoothed = match self.ema.take() {
            Some(mut prev) if s > 0.0 => {
                for (p, m) in Arc::make_mut(&mut prev).iter_mut().zip(matte.iter()) {
                    *p = s * *p + (1.0 - s) * m;
                }
                prev
            }
            _ => matte,
        };
        if s > 0.0 {
            self.ema = Some(smoothed.clone());
        }
        if !config.ofd {
            self.window.clear();
            return Some(smoothed);
        }
        self.window.push_back(smoothed);
        match self.window.len() {
            1 => None,
            2 if self.frames_seen == 2 => self.window.front().cloned(), // no t-1 for the first frame
            _ => {
                let next = self.window.pop_back()?;
                let mut current = self.window.pop_back()?;
                if let Some(prev) = self.window.pop_front() {
                    one_frame_delay(&prev, Arc::make_mut(&mut current).as_mut_slice(), &next);
                }
                self.window.push_back(current.clone());
                self.window.push_back(next);
                Some(current)
            }
        }
    }

    /// The next frame reuses the last matte (mask-every, drop-late); same return as
    /// `push`.
    pub fn push_reused(
        &mut self,
        config: &TemporalConfig,
        width: u32,
        height: u32,
    ) -> Option<SharedMatte> {
        // Never a matte of another size: without one of this size, all background.
        let last = match &self.last_raw {
            Some(m) if self.size == (width, height) => m.clone(),
            _ => Arc::new(vec![0.0; width as usize * height as usize]),
        };
        self.push_shared(config, width, height, last)
    }

    /// End of stream: the matte still held back by OFD, if any.
    pub fn drain(&mut self) -> Option<SharedMatte> {
        let last = if self.window.len() >= 2 || self.frames_seen == 1 {
            self.window.pop_back()
        } else {
            None
        };
        self.window.clear();
        last
    }
}

/// The OFD rule applied in place to `current`.
fn one_frame_delay(prev: &[f32], current: &mut [f32], next: &[f32]) {
    for ((c, &p), &n) in current.iter_mut().zip(prev).zip(next) {
        if (p - n).abs() <= OFD_TOLERANCE
            && (*c - p).abs() > OFD_TOLERANCE
            && (*c - n).abs() > OFD_TOLERANCE
        {
            *c = 0.5 * (p + n);
        }
    }
}

/// Flicker of a matte sequence: the mean |a(t) - a(t-1)| over the pixels where
/// `static_mask` is true (pixels whose input did not change), in alpha units.
pub fn flicker(mattes: &[Vec<f32>], static_mask: &[bool]) -> f64 {
    let mut sum = 0f64;
    let mut n = 0u64;
    for pair in mattes.windows(2) {
        for ((a, b), &s) in pair[0].iter().zip(&pair[1]).zip(static_mask) {
            if s {
                sum += f64::from((a - b).abs());
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: TemporalConfig, seq: &[f32]) -> Vec<f32> {
        let mut t = Temporal::new();
        let mut out: Vec<f32> = seq
            .iter()
            .filter_map(|&v| t.push(&config, 1, 1, vec![v]))
            .map(|m| m[0])
            .collect();
        out.extend(t.drain().map(|m| m[0]));
        out
    }

    #[test]
    fn off_by_default_is_the_identity() {
        let seq = [0.0, 1.0, 0.0, 0.5];
        assert_eq!(run(TemporalConfig::default(), &seq), seq);
    }

    #[test]
    fn ofd_removes_a_one_frame_spike_and_keeps_every_frame() {
        let config = TemporalConfig {
            ofd: true,
            ..Default::default()
        };
        // A spike at t=2 between agreeing neighbours is replaced; a real change
        // (t=4 onwards) is kept; the output has as many frames as the input.
        let out = run(config, &[0.9, 0.9, 0.1, 0.9, 0.2, 0.2]);
        assert_eq!(out, vec![0.9, 0.9, 0.9, 0.9, 0.2, 0.2]);
        assert_eq!(run(config, &[0.4]), vec![0.4]);
        assert_eq!(run(config, &[0.4, 0.6]), vec![0.4, 0.6]);
    }

    #[test]
    fn smoothing_is_an_exponential_moving_average() {
        let config = TemporalConfig {
            smoothing: 0.5,
            ..Default::default()
        };
        assert_eq!(run(config, &[0.0, 1.0, 1.0]), vec![0.0, 0.5, 0.75]);
    }

    #[test]
    fn mask_every_reuses_the_last_network_matte() {
        let config = TemporalConfig::default();
        let mut t = Temporal::new();
        let mut out = Vec::new();
        for i in 0..7u64 {
            let m = if is_network_frame(i, 3) {
                t.push(&config, 1, 1, vec![i as f32])
            } else {
                t.push_reused(&config, 1, 1)
            };
            out.push(m.map(|m| m[0]));
        }
        let want = [0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 6.0].map(Some);
        assert_eq!(out, want);
        // A reuse at a new size has no matte of that size: all background.
        assert_eq!(t.push_reused(&config, 2, 1).as_deref(), Some(&vec![0.0; 2]));
    }

    #[test]
    fn unfiltered_mattes_are_not_copied_and_held_ones_never_change() {
        let off = TemporalConfig::default();
        let mut t = Temporal::new();
        let matte = vec![0.25f32; 64];
        let ptr = matte.as_ptr();
        let out = t.push(&off, 8, 8, matte).unwrap();
        assert_eq!(out.as_ptr(), ptr, "filters off: the network's matte itself");
        assert_eq!(t.push_reused(&off, 8, 8).unwrap().as_ptr(), ptr);
        // Smoothing and OFD change mattes the history shares with frames still held
        // by the caller: those frames keep what they were given.
        for config in [
            TemporalConfig {
                smoothing: 0.5,
                ..off
            },
            TemporalConfig { ofd: true, ..off },
        ] {
            let mut t = Temporal::new();
            let mut held = Vec::new();
            for v in [0.9, 0.9, 0.1, 0.9, 0.2] {
                if let Some(m) = t.push(&config, 2, 1, vec![v; 2]) {
                    held.push((m.clone(), m[0]));
                }
            }
            for (m, v) in &held {
                assert!(m.iter().all(|a| a == v), "{config:?}: {m:?} was {v}");
            }
        }
    }

    #[test]
    fn flicker_counts_only_static_pixels() {
        let mattes = vec![vec![0.0, 0.0], vec![0.5, 1.0], vec![0.0, 0.0]];
        assert_eq!(flicker(&mattes, &[true, false]), 0.5);
        assert_eq!(flicker(&mattes, &[false, false]), 0.0);
    }
}
