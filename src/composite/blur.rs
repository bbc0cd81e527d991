//! The background blur of one plane: three box passes (close to a Gaussian). Large
//! radii run at reduced resolution: the plane is averaged down by a factor `k`, blurred
//! there with radius / k and scaled back up bilinearly. The result is a blur anyway, so
//! the detail lost is detail the blur would remove; it costs about 1/k^2 of the
//! full-resolution passes. Every step is integer arithmetic with one rounding, so
//! `composite_tensor` repeats it exactly on tensors (see `factor`, `reduced_radius`,
//! `tap`).

/// The reduction factor for a plane blurred with radius `r`: the largest of 1, 2, 4
/// and 8 that leaves at least 4 pixels of radius at reduced size (below 4 the box
/// steps would show). Radius < 8: full resolution, as before reduced blurs existed.
pub fn factor(r: usize) -> usize {
    [8, 4, 2].into_iter().find(|&k| r >= 4 * k).unwrap_or(1)
}

/// The box radius at reduced size: r / k rounded, capped at 2047 (a box wider than any
/// frame; keeps `Recip` exact).
pub fn reduced_radius(r: usize, k: usize) -> usize {
    ((2 * r + k) / (2 * k)).min(2047)
}

/// Bilinear tap of output index `x` (of a side scaled up `k` times from `len` samples,
/// centres aligned): (left sample, right sample, weight of the right one in 1/(2k)).
pub fn tap(x: usize, len: usize, k: usize) -> (usize, usize, u16) {
    let k2 = 2 * k;
    // The sample position in units of 1/(2k): (x + 1/2) / k - 1/2, clamped to the ends.
    let p = (2 * x + 1).saturating_sub(k).min(k2 * (len - 1));
    let i0 = p / k2;
    (i0, (i0 + 1).min(len - 1), (p - i0 * k2) as u16)
}

/// Blurs a `w` x `h` x `c` plane (rows `stride` bytes apart in `src`) with box radius
/// `r` (three passes) into the tight `dst`.
pub fn plane(src: &[u8], stride: usize, dst: &mut [u8], w: usize, h: usize, c: usize, r: usize) {
    let k = factor(r);
    if k == 1 {
        for (d, s) in dst.chunks_exact_mut(w * c).zip(src.chunks(stride)) {
            d.copy_from_slice(&s[..w * c]);
        }
        for _ in 0..3 {
            box_blur(dst, w, h, c, r);
        }
        return;
    }
    let (dw, dh) = (w.div_ceil(k), h.div_ceil(k));
    let mut small = downscale(src, stride, w, h, c, k);
    for _ in 0..3 {
        box_blur(&mut small, dw, dh, c, reduced_radius(r, k));
    }
    upscale(&small, dw, dh, c, k, dst, w, h);
}

/// Each `k` x `k` block's mean, (sum + k^2/2) / k^2; blocks past the edge repeat the
/// last row and column (as the box blur's clamped edges).
fn downscale(src: &[u8], stride: usize, w: usize, h: usize, c: usize, k: usize) -> Vec<u8> {
    let (dw, dh, len) = (w.div_ceil(k), h.div_ceil(k), w * c);
    let shift = 2 * k.trailing_zeros();
    let half = (k * k / 2) as u16;
    let mut out = vec![0u8; dw * dh * c];
    // Column sums of the block's rows, then sums along each row: rows are read whole.
    let mut cols = vec![0u16; len];
    for (y, orow) in out.chunks_exact_mut(dw * c).enumerate() {
        cols.fill(0);
        for j in 0..k {
            let sy = (y * k + j).min(h - 1);
            for (s, &v) in cols.iter_mut().zip(&src[sy * stride..][..len]) {
                *s += u16::from(v);
            }
        }
        // Whole blocks, then an edge block padded with the last column.
        let full = w / k;
        by_channels!(
            c,
            sum_blocks,
            &mut orow[..full * c],
            &cols[..full * k * c],
            k,
            half,
            shift
        );
        if full < dw {
            let (px, last) = (&mut orow[full * c..], &cols[(w - 1) * c..][..c]);
            for (ch, o) in px.iter_mut().enumerate() {
                let sum: u16 = (0..k)
                    .map(|i| cols.get((full * k + i) * c + ch).map_or(last[ch], |&v| v))
                    .sum();
                *o = ((sum + half) >> shift) as u8;
            }
        }
    }
    out
}

/// Calls `$f::<C>(args)` with the channel count as a constant (1 to 4), so the
/// per-pixel loops over channels unroll.
macro_rules! by_channels {
    ($c:expr, $f:ident, $($arg:expr),*) => {
        match $c {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}
use by_channels;

/// Each block of `k` pixels of `cols` (column sums) -> one rounded mean per channel.
fn sum_blocks<const C: usize>(out: &mut [u8], cols: &[u16], k: usize, half: u16, shift: u32) {
    for (px, block) in out.chunks_exact_mut(C).zip(cols.chunks_exact(k * C)) {
        let mut sum = [half; C];
        for p in block.chunks_exact(C) {
            for ch in 0..C {
                sum[ch] += p[ch];
            }
        }
        for ch in 0..C {
            px[ch] = (sum[ch] >> shift) as u8;
        }
    }
}

/// Bilinear `k`x upscale of `small` (`dw` x `dh` x `c`) into `out` (`w` x `h` x `c`):
/// the weights are in 1/(2k) per side, so each output is one sum of four products
/// rounded once, (sum + 2k^2) / 4k^2 (at most 255 x 256 for k 8: u16 lanes).
#[allow(clippy::too_many_arguments)]
fn upscale(
    small: &[u8],
    dw: usize,
    dh: usize,
    c: usize,
    k: usize,
    out: &mut [u8],
    w: usize,
    h: usize,
) {
    let k2 = 2 * k as u16;
    let row = w * c;
    // Horizontal first, on the few small rows, kept unrounded (x 2k). Rows are
    // dw x k pixels long (>= w): the taps repeat every k outputs.
    let wrow_len = dw * k * c;
    let mut wide = vec![0u16; dh * wrow_len];
    for (wrow, srow) in wide
        .chunks_exact_mut(wrow_len)
        .zip(small.chunks_exact(dw * c))
    {
        by_channels!(c, widen_row, wrow, srow, k);
    }
    // Vertical at full size: a straight loop over whole rows.
    let shift = 2 * (2 * k).trailing_zeros();
    let half = k2 * k2 / 2;
    for (y, orow) in out.chunks_exact_mut(row).take(h).enumerate() {
        let (j0, j1, g) = tap(y, dh, k);
        let (r0, r1) = (&wide[j0 * wrow_len..][..row], &wide[j1 * wrow_len..][..row]);
        for ((o, &a), &b) in orow.iter_mut().zip(r0).zip(r1) {
            *o = ((a * (k2 - g) + b * g + half) >> shift) as u8;
        }
    }
}

/// One row of `upscale`'s horizontal step: `tap` written out. The first k/2 outputs
/// are the first sample; then between each two samples' centres k outputs at
/// weights 1, 3, .., 2k-1 (/2k) of the right one; the last k/2 the last sample.
fn widen_row<const C: usize>(out: &mut [u16], small: &[u8], k: usize) {
    let k2 = 2 * k as u16;
    let (head, rest) = out.split_at_mut(k / 2 * C);
    let (first, last) = (&small[..C], &small[small.len() - C..]);
    for px in head.chunks_exact_mut(C) {
        for ch in 0..C {
            px[ch] = u16::from(first[ch]) * k2;
        }
    }
    let pairs = small.chunks_exact(C).zip(small.chunks_exact(C).skip(1));
    let mut spans = rest.chunks_exact_mut(k * C);
    for ((a, b), span) in pairs.zip(&mut spans) {
        for (j, px) in span.chunks_exact_mut(C).enumerate() {
            let f = 2 * j as u16 + 1;
            for ch in 0..C {
                px[ch] = u16::from(a[ch]) * (k2 - f) + u16::from(b[ch]) * f;
            }
        }
    }
    for px in spans.into_remainder().chunks_exact_mut(C) {
        for ch in 0..C {
            px[ch] = u16::from(last[ch]) * k2;
        }
    }
}

/// (x + n/2) / n by a multiply and a shift: exact for x < 2^32 / n, which holds for
/// box sums (x <= 256 n) while n <= 4096 (`reduced_radius` caps it).
#[derive(Clone, Copy)]
struct Recip {
    m: u64,
    half: u32,
}

impl Recip {
    fn new(n: u32) -> Self {
        Self {
            m: (1u64 << 32).div_ceil(u64::from(n)),
            half: n / 2,
        }
    }

    #[inline(always)]
    fn div_round(self, x: u32) -> u8 {
        ((u64::from(x + self.half) * self.m) >> 32) as u8
    }
}

/// In-place separable box blur of a packed `w` x `h` x `c` picture, edges clamped,
/// each pass rounded to 8 bits.
pub fn box_blur(buf: &mut [u8], w: usize, h: usize, c: usize, r: usize) {
    if r == 0 {
        return;
    }
    let div = Recip::new((2 * r + 1) as u32);
    // Horizontal: a running sum along each row over a copy padded with the edge
    // values, so the loop needs no clamping.
    let mut line = vec![0u8; (w + 2 * r + 2) * c];
    for row in buf.chunks_exact_mut(w * c) {
        by_channels!(c, running_sum, row, &mut line, r, div);
    }
    vertical(buf, w * c, h, r, div);
}

/// The horizontal box pass over one row, from its edge-padded copy in `line`
/// (`line[i]` is pixel i - r - 1, clamped).
fn running_sum<const C: usize>(row: &mut [u8], line: &mut [u8], r: usize, div: Recip) {
    let (head, rest) = line.split_at_mut((r + 1) * C);
    let (body, tail) = rest.split_at_mut(row.len());
    body.copy_from_slice(row);
    for (pad, edge) in [(head, &row[..C]), (tail, &row[row.len() - C..])] {
        for px in pad.chunks_exact_mut(C) {
            px.copy_from_slice(edge);
        }
    }
    let mut sum = [0u32; C];
    for px in line[C..(2 * r + 2) * C].chunks_exact(C) {
        for ch in 0..C {
            sum[ch] += u32::from(px[ch]);
        }
    }
    let (adds, subs) = (
        line[(2 * r + 2) * C..].chunks_exact(C),
        line[C..].chunks_exact(C),
    );
    for ((o, add), sub) in row.chunks_exact_mut(C).zip(adds).zip(subs) {
        for ch in 0..C {
            o[ch] = div.div_round(sum[ch]);
            sum[ch] = sum[ch] + u32::from(add[ch]) - u32::from(sub[ch]);
        }
    }
}

/// The vertical box pass: running sums of whole rows, so memory is read row by row.
fn vertical(buf: &mut [u8], stride: usize, h: usize, r: usize, div: Recip) {
    let src = buf.to_vec();
    let row = |y: isize| &src[(y.clamp(0, h as isize - 1) as usize) * stride..][..stride];
    let mut sums = vec![0u32; stride];
    for y in -(r as isize)..=r as isize {
        for (s, &v) in sums.iter_mut().zip(row(y)) {
            *s += u32::from(v);
        }
    }
    for (y, out) in buf.chunks_exact_mut(stride).enumerate() {
        for (d, &s) in out.iter_mut().zip(&sums) {
            *d = div.div_round(s);
        }
        let (add, sub) = (
            row(y as isize + r as isize + 1),
            row(y as isize - r as isize),
        );
        for ((s, &a), &b) in sums.iter_mut().zip(add).zip(sub) {
            *s = *s + u32::from(a) - u32::from(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reciprocal_divides_exactly_for_every_box() {
        // Every sum for small boxes; for large ones, the sums where the quotient steps.
        for n in (1..=4095u32).step_by(2) {
            let d = Recip::new(n);
            let steps = (1..=255).flat_map(|q| [q * n - n / 2 - 1, q * n - n / 2]);
            let xs: Vec<u32> = match n {
                ..=127 => (0..=255 * n).collect(),
                _ => steps.chain([0, 255 * n]).collect(),
            };
            for x in xs {
                assert_eq!(u32::from(d.div_round(x)), (x + n / 2) / n, "{x} / {n}");
            }
        }
    }

    #[test]
    fn taps_cover_the_side_with_weights_that_sum_to_one() {
        for (len, k) in [(1, 2), (5, 2), (3, 4), (10, 8)] {
            for x in 0..len * k {
                let (i0, i1, f) = tap(x, len, k);
                assert!(i0 <= i1 && i1 < len && f < 2 * k as u16, "{x} {len} {k}");
                // The centre of output x maps back to i0 + f / 2k.
                let pos = ((x as f64 + 0.5) / k as f64 - 0.5).clamp(0.0, (len - 1) as f64);
                assert!((i0 as f64 + f as f64 / (2 * k) as f64 - pos).abs() < 1e-9);
            }
        }
    }
}
