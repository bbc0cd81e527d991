//! Realtime pacing's matte follow-up (`temporal::follow`): a late matte carried to
//! where the person is now, the room picture taking away what is room, and a cut to
//! another picture forgetting both. Synthetic frames, no model.

use std::sync::Arc;

use modnetmatte::temporal::follow::{Follow, FollowConfig, Move, fit, warp};
use modnetmatte::temporal::thumb::Thumb;
use modnetmatte::{Frame, PixelFormat};

const W: u32 = 640;
const H: u32 = 360;

fn hash(x: i64, y: i64) -> f32 {
    let mut h = (x.wrapping_mul(374_761_393) ^ y.wrapping_mul(668_265_263)) as u64;
    h = (h ^ (h >> 13)).wrapping_mul(1_274_126_177);
    ((h >> 16) & 0xff) as f32 / 255.0
}

/// A textured room with a textured box (the person) whose left edge is at `x0`:
/// the RGB frame and its true alpha.
fn scene(x0: f32, room_shift: f32) -> (Vec<u8>, Vec<f32>) {
    let (w, h) = (W as usize, H as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let mut alpha = vec![0f32; w * h];
    let (bw, top, bottom) = (160.0, 60.0, 330.0);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 + room_shift, y as f32);
            let room = 120.0
                + 50.0 * (fx / 9.0).sin() * (fy / 7.0).cos()
                + 25.0 * ((fx + fy) / 5.0).sin()
                + 20.0 * hash(fx as i64 / 3, y as i64 / 3);
            let inside = (x as f32) >= x0 && (x as f32) < x0 + bw && fy >= top && fy < bottom;
            let (px, a) = if inside {
                let (u, v) = (x as f32 - x0, fy - top);
                let body = 70.0
                    + 45.0 * (u / 4.0).sin() * (v / 6.0).sin()
                    + 30.0 * hash(u as i64 / 2, v as i64 / 2);
                ([body * 0.4, body * 0.6, body + 60.0], 1.0) // a blue shirt in a warm room
            } else {
                ([room, room * 0.9 + 10.0, room * 1.05], 0.0)
            };
            let i = y * w + x;
            for c in 0..3 {
                rgb[3 * i + c] = px[c].round().clamp(0.0, 255.0) as u8;
            }
            alpha[i] = a;
        }
    }
    (rgb, alpha)
}

fn thumb(rgb: &[u8]) -> Thumb {
    Thumb::of(&Frame::packed(rgb, W, H, PixelFormat::Rgb)).unwrap()
}

/// The x of the matte's left edge along the person's middle row (first alpha >= 0.5).
fn left_edge(alpha: &[f32]) -> Option<usize> {
    let row = 200 * W as usize;
    (0..W as usize).find(|&x| alpha[row + x] >= 0.5)
}

/// Frames 0..=30 with the box moving 6 px a frame; frame 0's matte arrives at frame
/// 30 (a network run of a second); the carried matte's left edge.
fn carried_edge(config: FollowConfig) -> Option<usize> {
    let mut f = Follow::new();
    let (first, alpha0) = scene(100.0, 0.0);
    assert!(!f.frame(&config, 0, thumb(&first), true));
    for i in 1..=30u64 {
        let (rgb, _) = scene(100.0 + 6.0 * i as f32, 0.0);
        assert!(
            !f.frame(&config, i, thumb(&rgb), false),
            "frame {i} read as a cut"
        );
    }
    assert!(f.matte(&config, 0, Arc::new(alpha0), W, H));
    let (out, report) = f.apply(&config).unwrap();
    if config.motion {
        assert!(report.points > 10, "{report:?}");
    }
    left_edge(&out)
}

#[test]
fn a_late_matte_is_carried_to_where_the_person_is_now() {
    let on = FollowConfig {
        motion: true,
        room: false,
    };
    let edge = carried_edge(on).unwrap();
    // Truth: 100 + 6 * 30 = 280.
    assert!(
        edge.abs_diff(280) <= 4,
        "carried matte's edge at {edge}, the person's at 280"
    );
    // Without the motion step the matte stays at frame 0's place: the test can fail.
    let off = FollowConfig {
        motion: false,
        room: false,
    };
    assert_eq!(carried_edge(off), Some(100));
}

#[test]
fn the_room_picture_takes_away_the_stale_matte_and_never_adds() {
    let config = FollowConfig {
        motion: false,
        room: true,
    };
    let mut f = Follow::new();
    // The person stands at 400 for two network runs while the room around them is
    // learnt (one sighting is not enough)...
    let (start, a_start) = scene(400.0, 0.0);
    for id in 0..2 {
        f.frame(&config, id, thumb(&start), true);
        assert!(f.matte(&config, id, Arc::new(a_start.clone()), W, H));
    }
    // ...then at 100, matted there (the room under 400 was never seen).
    let (at100, a100) = scene(100.0, 0.0);
    f.frame(&config, 2, thumb(&at100), true);
    assert!(f.matte(&config, 2, Arc::new(a100.clone()), W, H));
    // Now they are at 400 again and the newest matte is still frame 2's.
    let (back, truth) = scene(400.0, 0.0);
    f.frame(&config, 3, thumb(&back), false);
    let (out, report) = f.apply(&config).unwrap();
    // Never above the plain matte.
    assert!(out.iter().zip(&a100).all(|(o, p)| o <= p));
    // The stale person at 100..260 is room now and was learnt as room: taken away,
    // but for a margin at the picture's resolution.
    let row = 200 * W as usize;
    let stale: Vec<f32> = (120..240).map(|x| out[row + x]).collect();
    assert!(stale.iter().all(|&a| a < 0.05), "{stale:?}");
    assert!(
        report.room.removed > 0.05 && report.room.known > 0.5,
        "{report:?}"
    );
    // Where the person is now the plain matte says room: nothing is added there.
    assert!((400..560).all(|x| out[row + x] == 0.0 && truth[row + x] == 1.0));
}

#[test]
fn the_room_never_adds_person_on_random_frames_and_mattes() {
    let config = FollowConfig {
        motion: true,
        room: true,
    };
    let mut f = Follow::new();
    let (mut id, n) = (0u64, (W * H) as usize);
    for round in 0..6 {
        let rgb: Vec<u8> = (0..n * 3)
            .map(|i| (hash(i as i64, round) * 255.0) as u8)
            .collect();
        let matte: Vec<f32> = (0..n).map(|i| hash(i as i64 / 7, round + 100)).collect();
        f.frame(&config, id, thumb(&rgb), true);
        f.matte(&config, id, Arc::new(matte.clone()), W, H);
        id += 1;
        let (noise, _) = scene(50.0 * round as f32, 0.0);
        f.frame(&config, id, thumb(&noise), false);
        id += 1;
        let Some((out, _)) = f.apply(&FollowConfig {
            motion: false,
            room: true,
        }) else {
            continue; // a cut forgot the matte: all background, even safer
        };
        assert!(out.iter().zip(&matte).all(|(o, m)| o <= m), "round {round}");
    }
}

#[test]
fn a_cut_to_another_picture_forgets_the_matte_room_and_motion() {
    let config = FollowConfig {
        motion: true,
        room: true,
    };
    let mut f = Follow::new();
    let (a, alpha) = scene(100.0, 0.0);
    assert!(!f.frame(&config, 0, thumb(&a), true));
    assert!(f.matte(&config, 0, Arc::new(alpha.clone()), W, H));
    assert!(f.has_matte());
    // Another room entirely (inverted picture): a cut.
    let other: Vec<u8> = a.iter().map(|&v| 255 - v).collect();
    f.frame(&config, 1, thumb(&other), true);
    assert!(
        f.frame(&config, 2, thumb(&a), false),
        "a cut back is a cut too"
    );
    assert!(!f.has_matte() && f.apply(&config).is_none());
    // A matte of a frame from before the cut is never applied.
    assert!(!f.matte(&config, 1, Arc::new(alpha), W, H));
    assert!(f.apply(&config).is_none());
    // A small move of the whole camera view is not a cut.
    let mut g = Follow::new();
    g.frame(&config, 0, thumb(&a), true);
    let (shifted, _) = scene(100.0, 3.0);
    assert!(!g.frame(&config, 1, thumb(&shifted), false));
}

#[test]
fn scale_and_shift_fit_ignores_the_odd_third() {
    let from: Vec<[f32; 2]> = (0..30)
        .map(|i| [(i % 6) as f32 * 10.0, (i / 6) as f32 * 10.0])
        .collect();
    let truth = Move {
        k: 1.2,
        t: [5.0, -3.0],
    };
    let mut to: Vec<[f32; 2]> = from
        .iter()
        .map(|p| [1.2 * p[0] + 5.0, 1.2 * p[1] - 3.0])
        .collect();
    for p in to.iter_mut().step_by(5) {
        p[0] += 40.0; // an arm waving its own way
    }
    let m = fit(&from, &to).unwrap();
    assert!(
        (m.k - truth.k).abs() < 0.01 && (m.t[0] - 5.0).abs() < 0.3,
        "{m:?}"
    );
    // A move by a whole pixel right puts the matte's edge one pixel right.
    let mut a = vec![0.0f32; 64 * 8];
    for y in 0..8 {
        for x in 10..64 {
            a[y * 64 + x] = 1.0;
        }
    }
    let out = warp(
        &a,
        64,
        8,
        Move {
            k: 1.0,
            t: [1.0, 0.0],
        },
    );
    assert_eq!(out[64 * 4 + 10], 0.0);
    assert_eq!(out[64 * 4 + 11], 1.0);
}

#[test]
fn the_room_is_known_only_where_two_network_runs_agree() {
    use modnetmatte::temporal::room::Room;
    let (a, _) = scene(100.0, 0.0);
    // Other content at the same pixels: 50 levels brighter.
    let b: Vec<u8> = a.iter().map(|&v| v.saturating_add(50)).collect();
    let (ta, tb) = (thumb(&a), thumb(&b));
    let n = ta.width * ta.height;
    let (room_alpha, covered) = (vec![0.0f32; n], vec![1.0f32; n]);
    let mut r = Room::default();
    r.learn(&ta, &room_alpha);
    let (keep, cut) = r.keep(&ta, &covered);
    assert!(
        keep.iter().all(|&k| k == 1.0) && cut.known == 0.0,
        "one sighting is not enough"
    );
    r.learn(&ta, &room_alpha);
    let (keep, cut) = r.keep(&ta, &covered);
    assert!(cut.known > 0.99 && keep.iter().filter(|&&k| k == 0.0).count() > n * 9 / 10);
    // The network now calls those pixels person although they look the same: the
    // picture had learnt a person the network missed twice, and forgets it.
    r.learn(&ta, &vec![1.0f32; n]);
    let (keep, cut) = r.keep(&ta, &covered);
    assert!(
        cut.known == 0.0 && keep.iter().all(|&k| k == 1.0),
        "{cut:?}"
    );
    // A pixel whose next sighting disagrees (a person the network missed, who moved)
    // starts again: after A then B nothing is known.
    let mut r = Room::default();
    r.learn(&ta, &room_alpha);
    r.learn(&tb, &room_alpha);
    let (_, cut) = r.keep(&tb, &covered);
    assert!(cut.known < 0.2, "{cut:?}");
}
