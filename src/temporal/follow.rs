//! Realtime pacing's matte brought to the frame it cuts. A matte finishes a network
//! run (0.5-2 s on a CPU) after its frame; by then the person has moved. Two steps,
//! each switchable:
//!
//! - motion: points on the person are followed from the matte's frame to the
//!   current one (frame-to-frame block matching as the guess, then a direct match
//!   against the matte's own frame, so that errors do not pile up), a scale and shift
//!   is fitted to them, and the matte is moved by it;
//! - room: the room picture ([`Room`]) takes away what the current frame shows to be
//!   room, whatever the matte says.
//!
//! A cut to another picture forgets the room, the motion and the matte.

use std::collections::VecDeque;
use std::sync::Arc;

use super::SharedMatte;
use super::flow::{self, BLOCK, Flow};
use super::room::{Room, RoomCut};
use super::thumb::Thumb;

/// Which steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowConfig {
    pub motion: bool,
    pub room: bool,
}

impl FollowConfig {
    pub fn any(&self) -> bool {
        self.motion || self.room
    }
}

/// Frame-to-frame motion kept to carry a late matte: 10 s at 30 frames/s.
const HISTORY: usize = 300;
/// The median block's match error (levels a pixel) that means another picture.
const CUT_ERROR: f32 = 20.0;
/// A direct match worse than this (mean levels a pixel) keeps the guess.
const MATCH_ERROR: f32 = 14.0;
/// Search around the guess for the direct match, thumbnail pixels.
const REFINE: i32 = 2;
/// Scales outside this range are a failed fit, not a person leaning in.
const SCALES: (f32, f32) = (0.6, 1.6);

/// A scale about the origin and a shift, in frame pixels: p' = k p + t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    pub k: f32,
    pub t: [f32; 2],
}

impl Move {
    pub const NONE: Move = Move {
        k: 1.0,
        t: [0.0, 0.0],
    };

    fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [self.k * p[0] + self.t[0], self.k * p[1] + self.t[1]]
    }
}

/// What the steps did to the last frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FollowReport {
    /// How far the matte's person centre was moved, frame pixels.
    pub shift: f32,
    pub scale: f32,
    /// Points followed on the person.
    pub points: usize,
    pub room: RoomCut,
}

struct Carried {
    width: u32,
    height: u32,
    alpha: Arc<Vec<f32>>,
    /// Where the matte is above 0: columns and rows, ends excluded.
    support: Support,
    /// The matte's frame: what the points are matched against.
    thumb: Arc<Thumb>,
    origins: Vec<[f32; 2]>,
    now: Vec<[f32; 2]>,
}

#[derive(Default)]
pub struct Follow {
    last: Option<(u64, Arc<Thumb>)>,
    /// The flow into frame id from the frame before, oldest first.
    flows: VecDeque<(u64, Flow)>,
    /// Thumbnails of frames handed to the network, until their matte comes.
    /// (Shared with `last`: a frame's thumbnail is made once.)
    posted: VecDeque<(u64, Arc<Thumb>)>,
    carried: Option<Carried>,
    room: Room,
    /// Whether the current matte was moved at all (the history reached its frame).
    moving: bool,
}

impl Follow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the scene: flush, new caps, a cut.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether a matte is being carried.
    pub fn has_matte(&self) -> bool {
        self.carried.is_some()
    }

    /// The next frame, `id`s increasing. True at a cut to another picture: the room,
    /// the motion and the matte are forgotten, and the caller must forget its own.
    pub fn frame(&mut self, config: &FollowConfig, id: u64, thumb: Thumb, posted: bool) -> bool {
        if let Some((_, prev)) = &self.last {
            let same = (prev.width, prev.height) == (thumb.width, thumb.height);
            let f = same.then(|| Flow::between(prev, &thumb));
            let Some(f) = f.filter(|f| f.median_error() <= CUT_ERROR) else {
                self.reset();
                self.keep(id, thumb, posted);
                return true;
            };
            if config.motion {
                if let Some(c) = &mut self.carried {
                    advance(c, &f, &thumb);
                }
                self.flows.push_back((id, f));
                while self.flows.len() > HISTORY {
                    self.flows.pop_front();
                }
            }
        }
        self.keep(id, thumb, posted);
        false
    }

    fn keep(&mut self, id: u64, thumb: Thumb, posted: bool) {
        let thumb = Arc::new(thumb);
        if posted {
            self.posted.push_back((id, thumb.clone()));
            // The network holds at most two (running, waiting): more means `lost`
            // was not called.
            while self.posted.len() > 8 {
                self.posted.pop_front();
            }
        }
        self.last = Some((id, thumb));
    }

    /// Frame `id` lost its turn at the network: its matte will never come.
    pub fn lost(&mut self, id: u64) {
        self.posted.retain(|(p, _)| *p != id);
    }

    /// The network's matte of frame `id`. False when the frame is unknown (before a
    /// cut, or too old): the matte must not be used.
    pub fn matte(
        &mut self,
        config: &FollowConfig,
        id: u64,
        alpha: Arc<Vec<f32>>,
        width: u32,
        height: u32,
    ) -> bool {
        while self.posted.front().is_some_and(|(p, _)| *p < id) {
            self.posted.pop_front();
        }
        let Some((_, thumb)) = self.posted.pop_front().filter(|(p, _)| *p == id) else {
            return false;
        };
        let Some((now_id, now)) = &self.last else {
            return false;
        };
        let small = at_thumb(&alpha, width, &thumb);
        if config.room {
            self.room.learn(&thumb, &small);
        }
        let origins = if config.motion {
            person_points(&thumb, &small)
        } else {
            Vec::new()
        };
        let mut c = Carried {
            width,
            height,
            support: support(&alpha, width, height),
            alpha,
            thumb,
            now: origins.clone(),
            origins,
        };
        // From the matte's frame to now: the frame-to-frame motion, then one direct
        // match. Without the whole history the matte stays where it was.
        let replay: Vec<&Flow> = self
            .flows
            .iter()
            .filter(|(f, _)| *f > id && f <= now_id)
            .map(|(_, f)| f)
            .collect();
        self.moving = config.motion && replay.len() as u64 == now_id - id;
        if self.moving {
            for f in &replay {
                for p in c.now.iter_mut() {
                    let d = f.at(*p);
                    *p = [p[0] + d[0], p[1] + d[1]];
                }
            }
            refine(&mut c, now);
        }
        self.carried = Some(c);
        true
    }

    /// The matte for the frame last given to `frame`, moved and cut by the room as
    /// configured (the carried matte itself, not a copy, when neither changes it);
    /// None before the first matte.
    pub fn apply(&self, config: &FollowConfig) -> Option<(SharedMatte, FollowReport)> {
        let c = self.carried.as_ref()?;
        let (_, now) = self.last.as_ref()?;
        let mut report = FollowReport {
            scale: 1.0,
            points: c.origins.len(),
            ..Default::default()
        };
        let mv = if config.motion && self.moving {
            fit(&c.origins, &c.now).map(|m| to_frame(m, c.thumb.scale))
        } else {
            None
        };
        let mut reach = c.support;
        let mut out: SharedMatte = match mv {
            Some(m) => {
                reach = moved_support(c.support, m, c.width, c.height);
                let centre = centroid(&c.origins).map(|v| v * c.thumb.scale as f32);
                let moved = m.apply(centre);
                report.shift =
                    ((moved[0] - centre[0]).powi(2) + (moved[1] - centre[1]).powi(2)).sqrt();
                report.scale = m.k;
                Arc::new(warp_in(&c.alpha, c.width, c.height, m, c.support))
            }
            None => c.alpha.clone(),
        };
        if config.room {
            let covered = at_thumb(&out, c.width, now);
            let (keep, cut) = self.room.keep(now, &covered);
            report.room = cut;
            if keep.iter().any(|&k| k < 1.0) {
                take_away(
                    Arc::make_mut(&mut out).as_mut_slice(),
                    c.width,
                    now,
                    &keep,
                    reach,
                );
            }
        }
        Some((out, report))
    }
}

/// The frame-sized matte sampled at each thumbnail pixel's centre.
fn at_thumb(alpha: &[f32], width: u32, t: &Thumb) -> Vec<f32> {
    let (w, s) = (width as usize, t.scale);
    let mut out = Vec::with_capacity(t.width * t.height);
    for ty in 0..t.height {
        for tx in 0..t.width {
            out.push(
                alpha
                    .get((ty * s + s / 2) * w + tx * s + s / 2)
                    .copied()
                    .unwrap_or(0.0),
            );
        }
    }
    out
}

/// Block centres on the person with texture enough to follow.
fn person_points(t: &Thumb, small: &[f32]) -> Vec<[f32; 2]> {
    let mut pts = Vec::new();
    for r in 0..t.height / BLOCK {
        for c in 0..t.width / BLOCK {
            let (mut sum, mut lo, mut hi) = (0.0f32, u8::MAX, 0u8);
            for y in r * BLOCK..(r + 1) * BLOCK {
                for x in c * BLOCK..(c + 1) * BLOCK {
                    sum += small[y * t.width + x];
                    lo = lo.min(t.y[y * t.width + x]);
                    hi = hi.max(t.y[y * t.width + x]);
                }
            }
            if sum / (BLOCK * BLOCK) as f32 > 0.3 && hi - lo >= 12 {
                pts.push(flow::block_centre(c, r));
            }
        }
    }
    pts
}

/// One frame on: each point by the frame-to-frame motion, then matched directly
/// against the matte's frame near there.
fn advance(c: &mut Carried, f: &Flow, now: &Thumb) {
    for p in c.now.iter_mut() {
        let d = f.at(*p);
        *p = [p[0] + d[0], p[1] + d[1]];
    }
    refine(c, now);
}

fn refine(c: &mut Carried, now: &Thumb) {
    for (p, o) in c.now.iter_mut().zip(&c.origins) {
        if let Some(m) = flow::find(&c.thumb, *o, now, *p, REFINE)
            && m.sure
            && m.error <= MATCH_ERROR
        {
            *p = m.at;
        }
    }
}

fn centroid(p: &[[f32; 2]]) -> [f32; 2] {
    let n = p.len().max(1) as f32;
    let s = p.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0], a[1] + q[1]]);
    [s[0] / n, s[1] / n]
}

/// Least squares scale and shift from `from` to `to`, refitted without the worst
/// third (points on an arm that moves its own way, points lost).
pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Move> {
    let solve = |idx: &[usize]| -> Option<Move> {
        if idx.is_empty() {
            return None;
        }
        let a: Vec<[f32; 2]> = idx.iter().map(|&i| from[i]).collect();
        let b: Vec<[f32; 2]> = idx.iter().map(|&i| to[i]).collect();
        let (ca, cb) = (centroid(&a), centroid(&b));
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for (p, q) in a.iter().zip(&b) {
            let (u, v) = ([p[0] - ca[0], p[1] - ca[1]], [q[0] - cb[0], q[1] - cb[1]]);
            num += u[0] * v[0] + u[1] * v[1];
            den += u[0] * u[0] + u[1] * u[1];
        }
        // Too few or too close together to tell a scale: a shift only.
        let k = if idx.len() >= 4 && den > 4.0 {
            (num / den).clamp(SCALES.0, SCALES.1)
        } else {
            1.0
        };
        Some(Move {
            k,
            t: [cb[0] - k * ca[0], cb[1] - k * ca[1]],
        })
    };
    let all: Vec<usize> = (0..from.len().min(to.len())).collect();
    let first = solve(&all)?;
    let mut by_error: Vec<(f32, usize)> = all
        .iter()
        .map(|&i| {
            let m = first.apply(from[i]);
            ((m[0] - to[i][0]).powi(2) + (m[1] - to[i][1]).powi(2), i)
        })
        .collect();
    by_error.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = (by_error.len() * 2).div_ceil(3).max(1);
    let kept: Vec<usize> = by_error[..n].iter().map(|&(_, i)| i).collect();
    solve(&kept)
}

/// A move in thumbnail pixels as one in frame pixels (a thumbnail pixel's centre
/// sits at s x + (s - 1) / 2).
fn to_frame(m: Move, s: usize) -> Move {
    let (s, c) = (s as f32, (s as f32 - 1.0) / 2.0);
    Move {
        k: m.k,
        t: [s * m.t[0] + c * (1.0 - m.k), s * m.t[1] + c * (1.0 - m.k)],
    }
}

/// Columns x0..x1 and rows y0..y1 outside which a matte is 0.
pub type Support = (usize, usize, usize, usize);

pub fn support(alpha: &[f32], width: u32, height: u32) -> Support {
    let (w, h) = (width as usize, height as usize);
    let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
    for (y, row) in alpha.chunks_exact(w.max(1)).take(h).enumerate() {
        if let Some(first) = row.iter().position(|&a| a > 0.0) {
            let last = row.iter().rposition(|&a| a > 0.0).unwrap_or(first);
            (x0, x1) = (x0.min(first), x1.max(last + 1));
            (y0, y1) = (y0.min(y), y + 1);
        }
    }
    (x0, x1, y0, y1)
}

/// The matte moved by `m`: each output pixel samples where it came from (bilinear);
/// from outside the frame, background.
pub fn warp(alpha: &[f32], width: u32, height: u32, m: Move) -> Vec<f32> {
    warp_in(alpha, width, height, m, support(alpha, width, height))
}

/// As `warp`, sampling only where the matte is above 0 (`s`): most of a frame is
/// room, and this is the follow-up's largest cost.
fn warp_in(alpha: &[f32], width: u32, height: u32, m: Move, s: Support) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0.0f32; w * h];
    if w < 2 || h < 2 || s.0 >= s.1 || s.2 >= s.3 {
        return out;
    }
    // Per column and per row: the source index and weight, or none (outside the
    // frame, or both taps outside the support).
    let taps = |n: usize, t: f32, lo: usize, hi: usize| -> Vec<Option<(usize, f32)>> {
        (0..n)
            .map(|x| {
                let s = (x as f32 - t) / m.k;
                (s >= 0.0 && s <= (n - 1) as f32)
                    .then(|| {
                        let i = (s.floor() as usize).min(n - 2);
                        (i, s - i as f32)
                    })
                    .filter(|&(i, _)| i + 1 >= lo && i < hi)
            })
            .collect()
    };
    let (cols, rows) = (taps(w, m.t[0], s.0, s.1), taps(h, m.t[1], s.2, s.3));
    let Some(first) = cols.iter().position(Option::is_some) else {
        return out;
    };
    let last = cols.iter().rposition(Option::is_some).unwrap_or(first) + 1;
    for (y, row) in rows.iter().enumerate() {
        let Some((sy, fy)) = *row else { continue };
        let (a, b) = (&alpha[sy * w..][..w], &alpha[(sy + 1) * w..][..w]);
        let line = &mut out[y * w..][..w];
        for (o, col) in line[first..last].iter_mut().zip(&cols[first..last]) {
            if let Some((sx, fx)) = *col {
                let top = a[sx] + (a[sx + 1] - a[sx]) * fx;
                let bottom = b[sx] + (b[sx + 1] - b[sx]) * fx;
                *o = top + (bottom - top) * fy;
            }
        }
    }
    out
}

/// Where a matte with support `s` is above 0 once moved by `m` (a pixel of margin
/// for the bilinear taps).
fn moved_support(s: Support, m: Move, width: u32, height: u32) -> Support {
    let a = m.apply([s.0 as f32, s.2 as f32]);
    let b = m.apply([s.1 as f32, s.3 as f32]);
    let clamp = |v: f32, n: u32| v.clamp(0.0, n as f32) as usize;
    (
        clamp(a[0].floor() - 1.0, width),
        clamp(b[0].ceil() + 1.0, width),
        clamp(a[1].floor() - 1.0, height),
        clamp(b[1].ceil() + 1.0, height),
    )
}

/// Lowers the matte to `keep` (per thumbnail pixel, bilinear between their centres)
/// within `reach`, outside which the matte is 0 already.
fn take_away(out: &mut [f32], width: u32, t: &Thumb, keep: &[f32], reach: Support) {
    let (w, s) = (width as usize, t.scale as f32);
    let pos = |x: usize, n: usize| -> (usize, usize, f32) {
        let g = ((x as f32 - (s - 1.0) / 2.0) / s).clamp(0.0, (n - 1) as f32);
        let i = g.floor() as usize;
        (i, (i + 1).min(n - 1), g - i as f32)
    };
    let (x0, x1) = (reach.0.min(w), reach.1.min(w));
    let cols: Vec<(usize, usize, f32)> = (x0..x1).map(|x| pos(x, t.width)).collect();
    for y in reach.2..reach.3 {
        let (r0, r1, fy) = pos(y, t.height);
        let (k0, k1) = (
            &keep[r0 * t.width..][..t.width],
            &keep[r1 * t.width..][..t.width],
        );
        if k0.iter().chain(k1).all(|&k| k >= 1.0) {
            continue;
        }
        for (o, &(c0, c1, fx)) in out[y * w + x0..y * w + x1].iter_mut().zip(&cols) {
            let top = k0[c0] + (k0[c1] - k0[c0]) * fx;
            let bottom = k1[c0] + (k1[c1] - k1[c0]) * fx;
            *o = o.min(top + (bottom - top) * fy);
        }
    }
}
