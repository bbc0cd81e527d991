//! Area averaging as ATen's `adaptive_avg_pool2d` computes it, written as separable
//! integer sums straight from a frame's bytes: the windows, and the vectorised row
//! adds. Shared by the packed-RGB and the YUV network inputs.

/// `acc[i] += row[i]`: the vertical half of the area sums, over whole frame rows.
pub fn add_row(acc: &mut [u32], row: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { add_row_avx2(acc, row) };
        return;
    }
    add_row_plain(acc, row);
}

#[inline(always)]
fn add_row_plain(acc: &mut [u32], row: &[u8]) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += u32::from(v);
    }
}

/// The same loop compiled for AVX2 (8 bytes widened and added per instruction instead
/// of the baseline build's 4; the package targets any x86-64).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_row_avx2(acc: &mut [u32], row: &[u8]) {
    add_row_plain(acc, row);
}

/// The input windows of adaptive average pooling, as ATen computes them: output `i`
/// of `out` averages inputs `[floor(i * inp / out), ceil((i + 1) * inp / out))`.
pub fn area_windows(inp: usize, out: usize) -> Vec<(usize, usize)> {
    (0..out)
        .map(|i| (i * inp / out, ((i + 1) * inp).div_ceil(out)))
        .collect()
}
