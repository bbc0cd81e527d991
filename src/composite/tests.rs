use super::*;
use crate::composite::background::*;
use crate::composite::blur;
use crate::frame::{Frame, FrameMut, OwnedFrame, PixelFormat, Plane, YuvMatrix};

/// `fg` over `bg` with `alpha`, into a new frame.
fn blended(fg: &OwnedFrame, bg: &OwnedFrame, alpha: &[u8]) -> OwnedFrame {
    let mut out = OwnedFrame::zeroed(fg.format, fg.width, fg.height, fg.matrix);
    blend(
        &fg.as_frame(),
        &bg.as_frame(),
        alpha,
        &mut out.as_frame_mut(),
    )
    .unwrap();
    out
}

/// Decodes any format back to RGB through `with_alpha` into RGBA.
fn decode(f: &Frame<'_>) -> Vec<[u8; 3]> {
    let mut rgba = OwnedFrame::zeroed(PixelFormat::Rgba, f.width, f.height, f.matrix);
    let alpha = vec![255u8; (f.width * f.height) as usize];
    with_alpha(f, &alpha, &mut rgba.as_frame_mut()).unwrap();
    rgba.planes[0]
        .chunks_exact(4)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

fn picture(w: u32, h: u32) -> Vec<u8> {
    // Flat 2x2 blocks of varied colour, so chroma subsampling loses nothing.
    (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                let (bx, by) = (x / 2, y / 2);
                [
                    (bx * 40 % 200 + 30) as u8,
                    (by * 70 % 180 + 40) as u8,
                    ((bx + by) * 25 % 190 + 30) as u8,
                ]
            })
        })
        .collect()
}

#[test]
fn blend_is_right_in_every_format() {
    let (w, h) = (16u32, 8u32);
    let rgb = picture(w, h);
    let bg_rgb = [20u8, 200, 60];
    // Alpha in 2x2 blocks: opaque, transparent and half, by column pair.
    let alpha: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).map(|x| [255u8, 0, 128][(x as usize / 2) % 3]))
        .collect();
    for format in PixelFormat::INPUTS {
        let m = YuvMatrix::BT709;
        let fg = from_rgb(format, w, h, m, &rgb).unwrap();
        let out = blended(&fg, &solid(format, w, h, m, bg_rgb), &alpha);
        let got = decode(&out.as_frame());
        for (i, px) in got.iter().enumerate() {
            let a = alpha[i] as f32 / 255.0;
            for c in 0..3 {
                let want = a * rgb[i * 3 + c] as f32 + (1.0 - a) * bg_rgb[c] as f32;
                let tol = if format.is_yuv() { 4.0 } else { 1.0 };
                assert!(
                    (px[c] as f32 - want).abs() <= tol,
                    "{format:?} pixel {i} ch {c}: {} vs {want}",
                    px[c]
                );
            }
        }
        if let Some(e) = format.packed_rgb().and_then(|p| p.extra) {
            assert!(
                out.planes[0].chunks_exact(4).all(|p| p[e] == 255),
                "{format:?} opaque"
            );
        }
    }
}

#[test]
fn odd_sizes_and_tiny_frames_work_in_every_format() {
    for (w, h) in [(1, 1), (33, 17), (3, 2)] {
        let rgb = picture(w, h);
        let alpha = vec![200u8; (w * h) as usize];
        for format in PixelFormat::INPUTS {
            let m = YuvMatrix::BT601;
            let fg = from_rgb(format, w, h, m, &rgb).unwrap();
            let out = blended(&fg, &blurred(&fg.as_frame(), 5).unwrap(), &alpha);
            assert_eq!(decode(&out.as_frame()).len(), (w * h) as usize);
        }
    }
}

#[test]
fn blur_keeps_flat_areas_and_spreads_edges() {
    let (w, h) = (40u32, 20u32);
    let flat = solid(PixelFormat::Bgrx, w, h, YuvMatrix::BT601, [90, 90, 90]);
    let b = blurred(&flat.as_frame(), 6).unwrap();
    assert_eq!(b.planes, flat.planes);
    // A white left half on black: after blurring the edge column is in between.
    let rgb: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).flat_map(|x| [if x < w / 2 { 255u8 } else { 0 }; 3]))
        .collect();
    let f = from_rgb(PixelFormat::Rgb, w, h, YuvMatrix::BT601, &rgb).unwrap();
    let b = blurred(&f.as_frame(), 4).unwrap();
    let at = |x: u32| b.planes[0][((h / 2 * w + x) * 3) as usize];
    assert_eq!(at(0), 255);
    assert_eq!(at(w - 1), 0);
    assert!((100..=155).contains(&at(w / 2)), "{}", at(w / 2));
    assert!(at(w / 2 - 3) > at(w / 2) && at(w / 2) > at(w / 2 + 3));
}

#[test]
fn straight_alpha_and_gray_outputs() {
    let (w, h) = (6u32, 4u32);
    let rgb = picture(w, h);
    let alpha: Vec<u8> = (0..w * h).map(|i| (i * 10) as u8).collect();
    let fg = from_rgb(PixelFormat::I420, w, h, YuvMatrix::BT601, &rgb).unwrap();
    let mut out = OwnedFrame::zeroed(PixelFormat::Argb, w, h, YuvMatrix::BT601);
    with_alpha(&fg.as_frame(), &alpha, &mut out.as_frame_mut()).unwrap();
    for (i, p) in out.planes[0].chunks_exact(4).enumerate() {
        assert_eq!(p[0], alpha[i]);
        for c in 0..3 {
            assert!(
                (p[1 + c] as i32 - rgb[i * 3 + c] as i32).abs() <= 3,
                "pixel {i}"
            );
        }
    }
    let mut gray = OwnedFrame::zeroed(PixelFormat::Gray8, w, h, YuvMatrix::BT601);
    write_gray(&alpha, &mut gray.as_frame_mut()).unwrap();
    assert_eq!(gray.planes[0], alpha);
    let err = with_alpha(&fg.as_frame(), &alpha, &mut gray.as_frame_mut()).unwrap_err();
    assert!(err.to_string().contains("no alpha channel"));
    let err = write_gray(&alpha[1..], &mut gray.as_frame_mut()).unwrap_err();
    assert!(err.to_string().contains("matte has 23 values"), "{err}");
}

/// Deterministic bytes (xorshift).
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A frame of random bytes whose rows are `pad` bytes longer than the format's.
fn padded(format: PixelFormat, w: u32, h: u32, pad: usize, seed: u32) -> Vec<(Vec<u8>, usize)> {
    let sizes = format.plane_sizes(w as usize, h as usize);
    sizes
        .into_iter()
        .enumerate()
        .map(|(i, (row, rows))| (noise((row + pad) * rows, seed + i as u32), row + pad))
        .collect()
}

fn view(format: PixelFormat, w: u32, h: u32, planes: &[(Vec<u8>, usize)]) -> Frame<'_> {
    Frame {
        format,
        width: w,
        height: h,
        planes: planes
            .iter()
            .map(|(data, stride)| Plane {
                data,
                stride: *stride,
            })
            .collect(),
        matrix: YuvMatrix::BT709,
    }
}

/// Sample (x, y) of plane `p`, `c` bytes into it.
fn at(f: &Frame<'_>, p: usize, x: usize, y: usize) -> u32 {
    u32::from(f.planes[p].data[y * f.planes[p].stride + x])
}

/// The blend written out per byte: which pixels each byte covers, their mean
/// alpha (sum + n/2) / n, and (f a + b (255 - a) + 127) / 255 in u32.
fn reference_blend(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8]) -> Vec<Vec<u8>> {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let mean = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        let (mut s, mut n) = (0u32, 0u32);
        for y in ys.start..ys.end.min(h) {
            for x in xs.start..xs.end.min(w) {
                s += u32::from(alpha[y * w + x]);
                n += 1;
            }
        }
        (s + n / 2) / n
    };
    let sizes = fg.format.plane_sizes(w, h);
    let packed = fg.format.packed_rgb();
    sizes
        .iter()
        .enumerate()
        .map(|(p, &(row, rows))| {
            let mut out = vec![0u8; row * rows];
            for y in 0..rows {
                for x in 0..row {
                    let a = match (fg.format, p, packed) {
                        (_, _, Some(pk)) if Some(x % pk.bytes_per_pixel) == pk.extra => {
                            out[y * row + x] = 255;
                            continue;
                        }
                        (_, _, Some(pk)) => {
                            mean(x / pk.bytes_per_pixel..x / pk.bytes_per_pixel + 1, y..y + 1)
                        }
                        (PixelFormat::Yuy2, _, _) if x % 2 == 0 => {
                            let px = (x / 4 * 2 + x % 4 / 2).min(w - 1);
                            mean(px..px + 1, y..y + 1)
                        }
                        (PixelFormat::Yuy2, _, _) => mean(x / 4 * 2..x / 4 * 2 + 2, y..y + 1),
                        (_, 0, _) => mean(x..x + 1, y..y + 1),
                        (PixelFormat::Nv12, _, _) => {
                            mean(x / 2 * 2..x / 2 * 2 + 2, 2 * y..2 * y + 2)
                        }
                        _ => mean(2 * x..2 * x + 2, 2 * y..2 * y + 2),
                    };
                    let v = (at(fg, p, x, y) * a + at(bg, p, x, y) * (255 - a) + 127) / 255;
                    out[y * row + x] = v as u8;
                }
            }
            out
        })
        .collect()
}

/// The tight planes of an output blended with padded rows.
fn blend_padded(fg: &Frame<'_>, bg: &Frame<'_>, alpha: &[u8]) -> Vec<Vec<u8>> {
    let (w, h) = (fg.width, fg.height);
    let sizes = fg.format.plane_sizes(w as usize, h as usize);
    let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|(r, n)| vec![7u8; (r + 3) * n]).collect();
    blend(
        fg,
        bg,
        alpha,
        &mut FrameMut::over(fg.format, w, h, &mut bufs, 3),
    )
    .unwrap();
    bufs.iter()
        .zip(&sizes)
        .map(|(b, (r, n))| {
            (0..*n)
                .flat_map(|y| b[y * (r + 3)..][..*r].to_vec())
                .collect()
        })
        .collect()
}

#[test]
fn mix_is_the_rounded_division_for_every_input() {
    for a in 0..=255u32 {
        for f in 0..=255u32 {
            for b in 0..=255u32 {
                let want = (f * a + b * (255 - a) + 127) / 255;
                assert_eq!(
                    u32::from(mix(f as u8, b as u8, a as u8)),
                    want,
                    "{f} {b} {a}"
                );
            }
        }
    }
}

#[test]
fn round_u8_rounds_as_round_then_clamp() {
    let reference = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    // Every float within 300 ulps of each half and whole number, and some far ones.
    let mut values: Vec<f32> = vec![f32::NAN, -1e9, 1e9, f32::INFINITY, 0.0, -0.0];
    for k in -4..=600 {
        let centre = (k as f32 / 2.0).to_bits();
        values.extend((0..600).map(|d| f32::from_bits(centre.wrapping_sub(300).wrapping_add(d))));
    }
    values.extend(
        noise(400_000, 3)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3] & 0x43])),
    );
    for v in values {
        assert_eq!(round_u8(v), reference(v), "{v:e} ({:#x})", v.to_bits());
    }
}

#[test]
fn alpha_u8_follows_the_threshold_rule() {
    let floats: Vec<f32> = noise(40_000, 5)
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / u32::MAX as f32 * 1.2 - 0.1)
        .chain([
            0.0,
            1.0,
            0.5,
            0.5 / 255.0,
            127.5 / 255.0,
            f32::NAN,
            -3.0,
            7.0,
        ])
        .collect();
    let soft: Vec<u8> = floats
        .iter()
        .map(|a| (a.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    assert_eq!(alpha_u8(&floats, 0.0), soft);
    assert_eq!(alpha_u8(&floats, 1.0), soft);
    let hard: Vec<u8> = floats
        .iter()
        .map(|&a| if f64::from(a) >= 0.3 { 255 } else { 0 })
        .collect();
    assert_eq!(alpha_u8(&floats, 0.3), hard);
}

#[test]
fn blend_equals_the_formula_on_random_frames_in_every_format() {
    for (w, h) in [(1u32, 1u32), (2, 2), (7, 5), (33, 17), (64, 36)] {
        for (k, format) in PixelFormat::INPUTS.into_iter().enumerate() {
            let seed = k as u32 * 10;
            let (fg, bg) = (
                padded(format, w, h, 5, seed),
                padded(format, w, h, 2, seed + 3),
            );
            let (fg, bg) = (view(format, w, h, &fg), view(format, w, h, &bg));
            let alpha = noise((w * h) as usize, seed + 7);
            let want = reference_blend(&fg, &bg, &alpha);
            assert_eq!(blend_padded(&fg, &bg, &alpha), want, "{format:?} {w}x{h}");
        }
    }
}

/// `with_alpha` before the row loops: per pixel, nearest chroma, rounded floats.
fn reference_rgba(fg: &Frame<'_>, alpha: &[u8]) -> Vec<[u8; 4]> {
    let (w, h) = (fg.width as usize, fg.height as usize);
    let (m, off) = fg.matrix.to_rgb_affine();
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let rgb = match (fg.format.packed_rgb(), fg.format) {
                (Some(p), _) => p.rgb.map(|c| at(fg, 0, x * p.bytes_per_pixel + c, y) as u8),
                (_, f) => {
                    let [l, u, v] = match f {
                        PixelFormat::I420 => [
                            at(fg, 0, x, y),
                            at(fg, 1, x / 2, y / 2),
                            at(fg, 2, x / 2, y / 2),
                        ],
                        PixelFormat::Nv12 => [
                            at(fg, 0, x, y),
                            at(fg, 1, x / 2 * 2, y / 2),
                            at(fg, 1, x / 2 * 2 + 1, y / 2),
                        ],
                        _ => [
                            at(fg, 0, x / 2 * 4 + x % 2 * 2, y),
                            at(fg, 0, x / 2 * 4 + 1, y),
                            at(fg, 0, x / 2 * 4 + 3, y),
                        ],
                    };
                    let d = [l as f32 - off[0], u as f32 - off[1], v as f32 - off[2]];
                    std::array::from_fn(|c| q(m[c][0] * d[0] + m[c][1] * d[1] + m[c][2] * d[2]))
                }
            };
            out.push([rgb[0], rgb[1], rgb[2], alpha[y * w + x]]);
        }
    }
    out
}

#[test]
fn straight_alpha_equals_the_per_pixel_conversion_in_every_format() {
    for (w, h) in [(1u32, 1u32), (7, 5), (33, 17)] {
        for (k, format) in PixelFormat::INPUTS.into_iter().enumerate() {
            let planes = padded(format, w, h, 4, k as u32);
            let fg = view(format, w, h, &planes);
            let alpha = noise((w * h) as usize, 77);
            let want = reference_rgba(&fg, &alpha);
            for out_format in [
                PixelFormat::Rgba,
                PixelFormat::Bgra,
                PixelFormat::Argb,
                PixelFormat::Abgr,
            ] {
                let mut out = OwnedFrame::zeroed(out_format, w, h, fg.matrix);
                with_alpha(&fg, &alpha, &mut out.as_frame_mut()).unwrap();
                let p = out_format.packed_rgb().unwrap();
                let e = p.extra.unwrap();
                for (i, px) in out.planes[0].chunks_exact(4).enumerate() {
                    let got = [px[p.rgb[0]], px[p.rgb[1]], px[p.rgb[2]], px[e]];
                    assert_eq!(
                        got, want[i],
                        "{format:?} -> {out_format:?} {w}x{h} pixel {i}"
                    );
                }
            }
        }
    }
}

/// Smooth shapes with some texture: what a camera frame looks like to a blur.
fn scene(w: u32, h: u32) -> Vec<u8> {
    let grain = noise((w * h * 3) as usize, 11);
    (0..w * h * 3)
        .map(|i| {
            let (x, y, c) = ((i / 3) % w, (i / 3) / w, i % 3);
            let base = (x * 255 / w + y * 120 / h + c * 60) % 256;
            let stripe = if (x / 13 + y / 9) % 3 == 0 { 60 } else { 0 };
            ((base + stripe) % 256) as u8 ^ (grain[i as usize] >> 5)
        })
        .collect()
}

#[test]
fn reduced_blur_keeps_size_flat_areas_and_radius_zero() {
    let (w, h) = (37u32, 22u32);
    let rgb = scene(w, h);
    for format in PixelFormat::INPUTS {
        let f = from_rgb(format, w, h, YuvMatrix::BT709, &rgb).unwrap();
        let same = blurred(&f.as_frame(), 0).unwrap();
        assert_eq!(same.planes, f.planes, "{format:?} radius 0");
        for radius in [8, 16, 40, 300] {
            let b = blurred(&f.as_frame(), radius).unwrap();
            assert_eq!((b.format, b.width, b.height), (format, w, h));
            let sizes = format.plane_sizes(w as usize, h as usize);
            let lens: Vec<usize> = sizes.iter().map(|(r, n)| r * n).collect();
            assert_eq!(b.planes.iter().map(Vec::len).collect::<Vec<_>>(), lens);
            let flat = solid(format, w, h, YuvMatrix::BT709, [200, 40, 90]);
            let fb = blurred(&flat.as_frame(), radius).unwrap();
            assert_eq!(fb.planes, flat.planes, "{format:?} radius {radius} flat");
        }
    }
}

#[test]
fn reduced_blur_stays_close_to_the_full_resolution_blur() {
    let (w, h) = (320u32, 180u32);
    let rgb = scene(w, h);
    for (format, radius) in [
        (PixelFormat::Rgb, 16u32),
        (PixelFormat::I420, 16),
        (PixelFormat::Yuy2, 24),
        (PixelFormat::Nv12, 40),
    ] {
        let f = from_rgb(format, w, h, YuvMatrix::BT709, &rgb).unwrap();
        let fast = blurred(&f.as_frame(), radius).unwrap();
        let jobs = blur_planes(format, w, h, radius);
        let (mut sum, mut n, mut max) = (0u64, 0u64, 0u8);
        for ((plane, got), (pw, ph, c, r)) in f.planes.iter().zip(&fast.planes).zip(jobs) {
            let mut full = plane.clone();
            for _ in 0..3 {
                blur::box_blur(&mut full, pw, ph, c, r);
            }
            for (a, b) in full.iter().zip(got) {
                let d = a.abs_diff(*b);
                (sum, n, max) = (sum + u64::from(d), n + 1, max.max(d));
            }
        }
        let mean = sum as f64 / n as f64;
        println!("{format:?} r {radius}: mean {mean:.3}, max {max}");
        assert!(
            mean < 1.5 && max <= 10,
            "{format:?} r {radius}: mean {mean:.2}, max {max}"
        );
    }
}
