//! The room picture: thumbnail pixels the network called background, learnt from
//! each network frame. Where the frame now matches it, the pixel is room whatever an
//! older matte says; the picture only ever takes person away.

use super::thumb::Thumb;

/// Alpha below this (around a pixel) is room the picture may learn.
const ROOM_ALPHA: f32 = 0.02;
/// Y+U+V distance (mean over a 3x3 neighbourhood) under which a pixel is the room; at
/// twice it, not at all.
const MATCH: f32 = 6.0;
/// Thumbnail pixels of room all around a pixel before it is learnt: a hole the
/// network left in a person is not room.
const LEARN_MARGIN: usize = 2;
/// How fast the picture follows light changes: the share of a new sighting.
const LEARN: f32 = 0.3;
/// Two sightings this close agree; a farther one starts the pixel again (something
/// was moved, or the network called a moving person room).
const AGREE: f32 = 2.0 * MATCH;
/// Sightings that must agree before a pixel counts as known: a person the network
/// missed does not look the same at two network runs once they move.
const SIGHTINGS: u8 = 2;

#[derive(Debug, Clone, Default)]
pub struct Room {
    width: usize,
    height: usize,
    yuv: Vec<[f32; 3]>,
    /// Agreeing sightings of each pixel (saturating).
    seen: Vec<u8>,
}

/// What the picture did to one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoomCut {
    /// Share of the thumbnail the picture knows.
    pub known: f32,
    /// Share of the thumbnail taken away from the matte.
    pub removed: f32,
}

impl Room {
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn fits(&mut self, t: &Thumb) {
        if (self.width, self.height) != (t.width, t.height) {
            self.width = t.width;
            self.height = t.height;
            self.yuv = vec![[0.0; 3]; t.width * t.height];
            self.seen = vec![0; t.width * t.height];
        }
    }

    fn known(&self, i: usize) -> bool {
        self.seen[i] >= SIGHTINGS
    }

    /// Learns from a network frame's thumbnail and its matte at thumbnail size: the
    /// pixels with room all around (`LEARN_MARGIN`). A pixel the network now calls
    /// person although it looks as the picture says is unlearnt: the picture had
    /// learnt a part of the person the network once missed.
    pub fn learn(&mut self, t: &Thumb, alpha: &[f32]) {
        self.fits(t);
        let (w, h) = (t.width, t.height);
        if alpha.len() != w * h {
            return;
        }
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let s = [t.y[i], t.u[i], t.v[i]].map(f32::from);
                if alpha[i] >= 0.5 && self.seen[i] > 0 && distance(self.yuv[i], s, 1.0) <= MATCH {
                    self.seen[i] = 0;
                    continue;
                }
                let near = around(x, y, w, h, LEARN_MARGIN).all(|i| alpha[i] < ROOM_ALPHA);
                if !near {
                    continue;
                }
                let p = &mut self.yuv[i];
                if self.seen[i] == 0 || distance(*p, s, 1.0) > AGREE {
                    *p = s;
                    self.seen[i] = 1;
                } else {
                    for c in 0..3 {
                        p[c] += LEARN * (s[c] - p[c]);
                    }
                    self.seen[i] = self.seen[i].saturating_add(1);
                }
            }
        }
    }

    /// Per thumbnail pixel, how much of the matte may stay (0: room, 1: not the
    /// room, or unknown). `covered` (thumbnail-sized alpha, the matte now applied)
    /// picks where the exposure change is measured: what it leaves as room.
    pub fn keep(&self, t: &Thumb, covered: &[f32]) -> (Vec<f32>, RoomCut) {
        let n = t.width * t.height;
        if (self.width, self.height) != (t.width, t.height) || covered.len() != n {
            return (vec![1.0; n], RoomCut::default());
        }
        let gain = self.gain(t, covered);
        let d: Vec<f32> = (0..n)
            .map(|i| {
                if self.known(i) {
                    distance(self.yuv[i], [t.y[i], t.u[i], t.v[i]].map(f32::from), gain)
                } else {
                    f32::INFINITY
                }
            })
            .collect();
        let (w, h) = (t.width, t.height);
        let mean = box3(&d, w, h);
        let mut keep = vec![1.0; n];
        let (mut removed, mut known) = (0usize, 0usize);
        for i in 0..n {
            known += self.known(i) as usize;
            let k = ((mean[i] - MATCH) / MATCH).clamp(0.0, 1.0);
            if k < 0.5 && covered[i] >= 0.5 {
                removed += 1;
            }
            keep[i] = k;
        }
        let cut = RoomCut {
            known: known as f32 / n.max(1) as f32,
            removed: removed as f32 / n.max(1) as f32,
        };
        (keep, cut)
    }

    /// The camera's exposure now against the picture's: the median ratio of luma
    /// over the known pixels the matte leaves as room (a person who walked into
    /// some of them must not move it), within 0.5 to 2.
    fn gain(&self, t: &Thumb, covered: &[f32]) -> f32 {
        // Ratios in 1% steps of the log scale from 0.5 to 2, 1.0 a bin centre.
        const BINS: usize = 141;
        let span = 4f32.ln();
        let mut hist = [0u32; BINS];
        let mut n = 0u32;
        for (i, &a) in covered.iter().enumerate() {
            let then = self.yuv[i][0];
            if self.known(i) && a < ROOM_ALPHA && then >= 8.0 {
                let r = (f32::from(t.y[i]) / then).clamp(0.5, 2.0);
                let b = (((r.ln() + span / 2.0) / span) * (BINS - 1) as f32).round() as usize;
                hist[b.min(BINS - 1)] += 1;
                n += 1;
            }
        }
        if n == 0 {
            return 1.0;
        }
        let mut seen = 0;
        for (b, &c) in hist.iter().enumerate() {
            seen += c;
            if seen * 2 >= n {
                return (b as f32 / (BINS - 1) as f32 * span - span / 2.0).exp();
            }
        }
        1.0
    }
}

/// The mean over each pixel's 3x3 neighbourhood (edges repeated), in two passes.
fn box3(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let at = |i: usize, n: usize, k: isize| (i as isize + k).clamp(0, n as isize - 1) as usize;
    let mut rows = vec![0.0f32; w * h];
    for y in 0..h {
        let r = &v[y * w..][..w];
        for x in 0..w {
            rows[y * w + x] = r[at(x, w, -1)] + r[x] + r[at(x, w, 1)];
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        let (a, b, c) = (at(y, h, -1) * w, y * w, at(y, h, 1) * w);
        for x in 0..w {
            out[y * w + x] = (rows[a + x] + rows[b + x] + rows[c + x]) / 9.0;
        }
    }
    out
}

/// The (2r+1)^2 neighbourhood's indices, clamped at the edges.
fn around(x: usize, y: usize, w: usize, h: usize, r: usize) -> impl Iterator<Item = usize> {
    let side = 2 * r + 1;
    (0..side * side).map(move |k| {
        let xx = (x + k % side).saturating_sub(r).min(w - 1);
        let yy = (y + k / side).saturating_sub(r).min(h - 1);
        yy * w + xx
    })
}

/// Y+U+V absolute distance, the picture's luma scaled by `gain`.
fn distance(room: [f32; 3], now: [f32; 3], gain: f32) -> f32 {
    (now[0] - gain * room[0]).abs() + (now[1] - room[1]).abs() + (now[2] - room[2]).abs()
}
