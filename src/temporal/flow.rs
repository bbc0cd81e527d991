//! How the picture moved between two thumbnails: block matching on luma, with a
//! sub-pixel fit, on a grid of blocks. At 30 frames/s a frame-to-frame step is a few
//! thumbnail pixels, so a small search finds it.

use super::thumb::Thumb;

/// Block side, in thumbnail pixels (32 frame pixels at 720p).
pub const BLOCK: usize = 8;
/// How far a frame-to-frame search looks each way, in thumbnail pixels (16 frame
/// pixels at 720p: 480 px/s at 30 frames/s).
pub const SEARCH: i32 = 4;
/// A block whose best match is not this much better than its average candidate (mean
/// levels a pixel) is too flat to tell its motion.
const FLAT: u32 = 3;
/// Cost a pixel of offset adds, so that flat areas read as still (SAD units).
const STILL_BIAS: u32 = 8;

/// Where the patch of `from` at a point went in `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// The patch's centre in `to`, thumbnail pixels.
    pub at: [f32; 2],
    /// Mean absolute luma difference a pixel at the best offset.
    pub error: f32,
    /// Whether the best offset stands out from the others (the patch has texture).
    pub sure: bool,
}

fn sad(from: &Thumb, fx: usize, fy: usize, to: &Thumb, tx: usize, ty: usize) -> u32 {
    let mut s = 0u32;
    for r in 0..BLOCK {
        let a = &from.y[(fy + r) * from.width + fx..][..BLOCK];
        let b = &to.y[(ty + r) * to.width + tx..][..BLOCK];
        s += a
            .iter()
            .zip(b)
            .map(|(&p, &q)| u32::from(p.abs_diff(q)))
            .sum::<u32>();
    }
    s
}

/// The parabola's vertex through three costs around the best, in (-0.5, 0.5).
fn vertex(left: u32, mid: u32, right: u32) -> f32 {
    let (l, m, r) = (left as f32, mid as f32, right as f32);
    let d = l - 2.0 * m + r;
    if d <= 0.0 {
        return 0.0;
    }
    ((l - r) / (2.0 * d)).clamp(-0.5, 0.5)
}

/// Finds the BLOCK x BLOCK patch of `from` centred near `origin` in `to`, within
/// `radius` of `guess`. None when the patch or every candidate falls off a thumbnail.
pub fn find(
    from: &Thumb,
    origin: [f32; 2],
    to: &Thumb,
    guess: [f32; 2],
    radius: i32,
) -> Option<Match> {
    let half = (BLOCK / 2) as f32;
    let corner = |p: [f32; 2], w: usize, h: usize| -> Option<(i64, i64)> {
        let (x, y) = (
            (p[0] - half + 0.5).round() as i64,
            (p[1] - half + 0.5).round() as i64,
        );
        let fits = x >= 0 && y >= 0 && x as usize + BLOCK <= w && y as usize + BLOCK <= h;
        fits.then_some((x, y))
    };
    let (fx, fy) = corner(origin, from.width, from.height)?;
    let (gx, gy) = (
        (guess[0] - origin[0]).round() as i64,
        (guess[1] - origin[1]).round() as i64,
    );
    let side = (2 * radius + 1) as usize;
    let mut costs = vec![u32::MAX; side * side];
    // (best cost, its index, sum of raw costs, candidates)
    let mut acc = (u32::MAX, 0usize, 0u64, 0u64);
    let try_at = |i: i32, j: i32, costs: &mut Vec<u32>, acc: &mut (u32, usize, u64, u64)| {
        let k = (j + radius) as usize * side + (i + radius) as usize;
        if costs[k] != u32::MAX {
            return;
        }
        let (tx, ty) = (fx + gx + i as i64, fy + gy + j as i64);
        if tx < 0 || ty < 0 || tx as usize + BLOCK > to.width || ty as usize + BLOCK > to.height {
            return;
        }
        let raw = sad(from, fx as usize, fy as usize, to, tx as usize, ty as usize);
        let off = (gx + i as i64).unsigned_abs() + (gy + j as i64).unsigned_abs();
        let c = raw + STILL_BIAS * off as u32;
        costs[k] = c;
        acc.2 += u64::from(raw);
        acc.3 += 1;
        if c < acc.0 {
            (acc.0, acc.1) = (c, k);
        }
    };
    // Every other offset first (a thumbnail is smooth at that step), then the eight
    // around the best of them.
    for j in (-radius..=radius).step_by(2) {
        for i in (-radius..=radius).step_by(2) {
            try_at(i, j, &mut costs, &mut acc);
        }
    }
    let coarse = acc.1;
    let (ci, cj) = (
        (coarse % side) as i32 - radius,
        (coarse / side) as i32 - radius,
    );
    for j in (cj - 1).max(-radius)..=(cj + 1).min(radius) {
        for i in (ci - 1).max(-radius)..=(ci + 1).min(radius) {
            try_at(i, j, &mut costs, &mut acc);
        }
    }
    let (best, best_i, sum, n) = acc;
    if n == 0 {
        return None;
    }
    let (bi, bj) = ((best_i % side) as i32, (best_i / side) as i32);
    let cost = |i: i32, j: i32| {
        let inside = (0..side as i32).contains(&i) && (0..side as i32).contains(&j);
        inside
            .then(|| costs[j as usize * side + i as usize])
            .filter(|&c| c != u32::MAX)
    };
    let sub = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (Some(a), Some(b)) => vertex(a, best, b),
        _ => 0.0,
    };
    let sx = sub(cost(bi - 1, bj), cost(bi + 1, bj));
    let sy = sub(cost(bi, bj - 1), cost(bi, bj + 1));
    let dx = (gx + (bi - radius) as i64) as f32 + sx;
    let dy = (gy + (bj - radius) as i64) as f32 + sy;
    let px = (BLOCK * BLOCK) as u32;
    let mean = (sum / n) as u32;
    Some(Match {
        at: [origin[0] + dx, origin[1] + dy],
        error: best.min(u32::MAX / 2) as f32 / px as f32,
        sure: n > 1 && mean.saturating_sub(best) >= FLAT * px,
    })
}

/// The motion of every block of `from` into `to`, frame to frame.
#[derive(Debug, Clone)]
pub struct Flow {
    pub cols: usize,
    pub rows: usize,
    /// Per block (row-major), thumbnail pixels.
    pub d: Vec<[f32; 2]>,
    /// Per block, the best match's mean luma difference a pixel.
    pub error: Vec<f32>,
}

/// The centre of block (c, r), thumbnail pixels.
pub fn block_centre(c: usize, r: usize) -> [f32; 2] {
    let half = BLOCK as f32 / 2.0 - 0.5;
    [(c * BLOCK) as f32 + half, (r * BLOCK) as f32 + half]
}

impl Flow {
    pub fn between(from: &Thumb, to: &Thumb) -> Flow {
        let (cols, rows) = (from.width / BLOCK, from.height / BLOCK);
        let mut d = vec![[0.0; 2]; cols * rows];
        let mut sure = vec![false; cols * rows];
        let mut error = vec![f32::INFINITY; cols * rows];
        for r in 0..rows {
            for c in 0..cols {
                let o = block_centre(c, r);
                if let Some(m) = find(from, o, to, o, SEARCH) {
                    d[r * cols + c] = [m.at[0] - o[0], m.at[1] - o[1]];
                    sure[r * cols + c] = m.sure;
                    error[r * cols + c] = m.error;
                }
            }
        }
        // A flat block moves as its textured neighbours do (a plain shirt with the
        // person), or not at all without any.
        let measured = d.clone();
        for r in 0..rows {
            for c in 0..cols {
                if sure[r * cols + c] {
                    continue;
                }
                let (mut s, mut n) = ([0.0f32; 2], 0);
                for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                    for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                        if sure[rr * cols + cc] {
                            let m = measured[rr * cols + cc];
                            s = [s[0] + m[0], s[1] + m[1]];
                            n += 1;
                        }
                    }
                }
                d[r * cols + c] = if n > 0 {
                    [s[0] / n as f32, s[1] / n as f32]
                } else {
                    [0.0, 0.0]
                };
            }
        }
        Flow {
            cols,
            rows,
            d,
            error,
        }
    }

    /// The median block's match error: small while most of the picture is found
    /// again (a person moving over a still room), large at a cut to another picture.
    pub fn median_error(&self) -> f32 {
        let mut e = self.error.clone();
        if e.is_empty() {
            return f32::INFINITY;
        }
        let mid = e.len() / 2;
        *e.select_nth_unstable_by(mid, f32::total_cmp).1
    }

    /// The motion at point `p` (thumbnail pixels), bilinear between block centres.
    pub fn at(&self, p: [f32; 2]) -> [f32; 2] {
        if self.cols == 0 || self.rows == 0 {
            return [0.0, 0.0];
        }
        let half = BLOCK as f32 / 2.0 - 0.5;
        let gx = ((p[0] - half) / BLOCK as f32).clamp(0.0, (self.cols - 1) as f32);
        let gy = ((p[1] - half) / BLOCK as f32).clamp(0.0, (self.rows - 1) as f32);
        let (c0, r0) = (gx.floor() as usize, gy.floor() as usize);
        let (c1, r1) = ((c0 + 1).min(self.cols - 1), (r0 + 1).min(self.rows - 1));
        let (fx, fy) = (gx - c0 as f32, gy - r0 as f32);
        let v = |c: usize, r: usize| self.d[r * self.cols + c];
        let lerp =
            |a: [f32; 2], b: [f32; 2], t: f32| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
        lerp(
            lerp(v(c0, r0), v(c1, r0), fx),
            lerp(v(c0, r1), v(c1, r1), fx),
            fy,
        )
    }
}
