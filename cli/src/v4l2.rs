//! Video4Linux devices: which mode to open a webcam in, and where the v4l2loopback
//! virtual cameras are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use gst::prelude::*;

use crate::describe::{Geometry, quote_path};

/// The `modprobe` line for a virtual camera that browsers and meeting apps list:
/// exclusive_caps=1 makes it show as a capture device once a writer is attached.
pub const MODPROBE: &str = "sudo modprobe v4l2loopback devices=1 video_nr=10 \
                            card_label=\"modnetmatte\" exclusive_caps=1";

/// One video device from sysfs.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub path: PathBuf,
    pub name: String,
    /// A v4l2loopback device (it lives under /sys/devices/virtual).
    pub loopback: bool,
}

/// The video devices listed under `sys_class` (normally /sys/class/video4linux), in
/// number order.
pub fn devices(sys_class: &Path) -> Vec<Device> {
    let Ok(dir) = std::fs::read_dir(sys_class) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, Device)> = dir
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().to_string();
            let n: u32 = file.strip_prefix("video")?.parse().ok()?;
            let name = std::fs::read_to_string(e.path().join("name"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let real = std::fs::canonicalize(e.path()).unwrap_or_else(|_| e.path());
            let loopback = real.to_string_lossy().contains("/devices/virtual/");
            let path = PathBuf::from("/dev").join(&file);
            Some((
                n,
                Device {
                    path,
                    name,
                    loopback,
                },
            ))
        })
        .collect();
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, d)| d).collect()
}

pub const SYS_CLASS: &str = "/sys/class/video4linux";

/// The first virtual camera, or an error that tells how to make one.
pub fn first_loopback(sys_class: &Path) -> Result<PathBuf> {
    match devices(sys_class).into_iter().find(|d| d.loopback) {
        Some(d) => Ok(d.path),
        None => bail!(
            "no virtual camera (v4l2loopback device) found under {}.\n\
             Install and load the module, then run this again:\n\
             \x20   sudo apt install v4l2loopback-dkms\n\
             \x20   {MODPROBE}\n\
             (exclusive_caps=1 is what Chrome, Zoom and Teams need to list it), or pass \
             --output /dev/videoN, or --output null to run without one",
            sys_class.display()
        ),
    }
}

/// A way to open a camera: caps after v4l2src, and whether they need decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    pub caps: String,
    pub jpeg: bool,
    pub geometry: Geometry,
}

fn fractions(v: Option<&gst::glib::SendValue>) -> Vec<gst::Fraction> {
    let Some(v) = v else { return Vec::new() };
    if let Ok(f) = v.get::<gst::Fraction>() {
        return vec![f];
    }
    if let Ok(list) = v.get::<gst::List>() {
        return list
            .iter()
            .filter_map(|x| x.get::<gst::Fraction>().ok())
            .collect();
    }
    if let Ok(r) = v.get::<gst::FractionRange>() {
        return vec![r.max()];
    }
    Vec::new()
}

/// The camera mode closest to `want` (size, then frame rate at least 15/s), raw
/// formats before MJPEG at equal merit (no decoding), from the caps v4l2src reports.
pub fn pick_mode(caps: &gst::CapsRef, want: (u32, u32, i32)) -> Option<Mode> {
    let (ww, wh, wfps) = want;
    let mut best: Option<((u64, u64, u8), Mode)> = None;
    for s in caps.iter() {
        let jpeg = s.name() == "image/jpeg";
        let format = if jpeg {
            None
        } else if s.name() == "video/x-raw" {
            match s.get::<&str>("format") {
                Ok(f) => Some(f.to_string()),
                Err(_) => continue,
            }
        } else {
            continue;
        };
        let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) else {
            continue;
        };
        for f in fractions(s.value("framerate").ok()) {
            if f.denom() <= 0 || f.numer() <= 0 {
                continue;
            }
            let fps = f.numer() as f64 / f.denom() as f64;
            // Merit, lower is better: size distance, shortfall below the wanted rate
            // (below 15/s is a slideshow), then decoding.
            let size_cost =
                (w as i64 - ww as i64).unsigned_abs() + (h as i64 - wh as i64).unsigned_abs();
            let rate_cost = if fps < 15.0 {
                u64::MAX / 4
            } else {
                ((wfps as f64 - fps).max(0.0) * 100.0) as u64
                    + ((fps - wfps as f64).max(0.0)) as u64
            };
            let merit = (
                rate_cost.min(u64::MAX / 4) + size_cost * 10,
                size_cost,
                jpeg as u8,
            );
            let caps = match &format {
                Some(fmt) => format!(
                    "video/x-raw,format={fmt},width={w},height={h},framerate={}/{}",
                    f.numer(),
                    f.denom()
                ),
                None => format!(
                    "image/jpeg,width={w},height={h},framerate={}/{}",
                    f.numer(),
                    f.denom()
                ),
            };
            let mode = Mode {
                caps,
                jpeg,
                geometry: Geometry {
                    width: w as u32,
                    height: h as u32,
                    fps: (f.numer(), f.denom()),
                },
            };
            if best.as_ref().is_none_or(|(m, _)| merit < *m) {
                best = Some((merit, mode));
            }
        }
    }
    best.map(|(_, m)| m)
}

/// Opens the camera just long enough to read its modes, and picks one.
pub fn probe_camera(device: &Path, want: (u32, u32, i32)) -> Result<Mode> {
    if !device.exists() {
        let cams: Vec<String> = devices(Path::new(SYS_CLASS))
            .into_iter()
            .filter(|d| !d.loopback)
            .map(|d| format!("{} ({})", d.path.display(), d.name))
            .collect();
        bail!(
            "camera {}: no such device. Cameras found: {}",
            device.display(),
            if cams.is_empty() {
                "none".to_string()
            } else {
                cams.join(", ")
            }
        );
    }
    let src = gst::ElementFactory::make("v4l2src")
        .property("device", device.to_string_lossy().to_string())
        .build()
        .context("the v4l2src element is missing (install gstreamer1.0-plugins-good)")?;
    let opened = src.set_state(gst::State::Ready);
    let caps = src.static_pad("src").map(|p| p.query_caps(None));
    let _ = src.set_state(gst::State::Null);
    if opened.is_err() {
        bail!(
            "camera {}: cannot be opened (busy, not a capture device, or no permission: is \
             your user in the `video` group?)",
            device.display()
        );
    }
    let caps = caps.context("v4l2src has no src pad")?;
    pick_mode(&caps, want).with_context(|| {
        format!(
            "camera {}: no mode with raw video or MJPEG at 15 frames/s or more (it offers {caps})",
            device.display()
        )
    })
}

/// The source fragment for a camera in `mode`.
pub fn camera_source(device: &Path, mode: &Mode) -> String {
    let decode = if mode.jpeg { " ! jpegdec" } else { "" };
    format!(
        "v4l2src device={} ! {}{decode}",
        quote_path(device),
        mode.caps
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    #[test]
    fn prefers_mjpeg_when_raw_is_too_slow_at_the_size() {
        init();
        // A typical USB2 webcam: YUY2 720p only at 10/s, MJPEG 720p at 30/s.
        let caps: gst::Caps =
            "video/x-raw, format=YUY2, width=1280, height=720, framerate={ 10/1, 5/1 }; \
             video/x-raw, format=YUY2, width=640, height=480, framerate={ 30/1, 15/1 }; \
             image/jpeg, width=1280, height=720, framerate={ 30/1, 15/1 }; \
             image/jpeg, width=1920, height=1080, framerate=30/1"
                .parse()
                .unwrap();
        let m = pick_mode(&caps, (1280, 720, 30)).unwrap();
        assert_eq!(m.caps, "image/jpeg,width=1280,height=720,framerate=30/1");
        assert!(m.jpeg);
        assert_eq!(
            camera_source(Path::new("/dev/video0"), &m),
            "v4l2src device=\"/dev/video0\" ! image/jpeg,width=1280,height=720,framerate=30/1 ! jpegdec"
        );
        // Raw wins at equal size and rate.
        let caps: gst::Caps = "image/jpeg, width=1280, height=720, framerate=30/1; \
             video/x-raw, format=NV12, width=1280, height=720, framerate=30/1"
            .parse()
            .unwrap();
        let m = pick_mode(&caps, (1280, 720, 30)).unwrap();
        assert_eq!(
            m.caps,
            "video/x-raw,format=NV12,width=1280,height=720,framerate=30/1"
        );
        // Nothing at 15/s or more: still the best there is.
        let caps: gst::Caps = "video/x-raw, format=YUY2, width=640, height=480, framerate=5/1"
            .parse()
            .unwrap();
        assert_eq!(
            pick_mode(&caps, (1280, 720, 30)).unwrap().geometry.fps,
            (5, 1)
        );
        let caps: gst::Caps = "video/x-bayer, width=640, height=480, framerate=30/1"
            .parse()
            .unwrap();
        assert!(pick_mode(&caps, (1280, 720, 30)).is_none());
    }

    #[test]
    fn finds_loopback_devices_in_sysfs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let class = root.join("class/video4linux");
        std::fs::create_dir_all(&class).unwrap();
        for (n, parent, name) in [
            (0, "pci0000:00/usb1/1-1", "Integrated Camera"),
            (12, "virtual/video4linux", "modnetmatte"),
            (2, "pci0000:00/usb1/1-1", "Integrated Camera meta"),
        ] {
            let real = root.join("devices").join(parent).join(format!("video{n}"));
            std::fs::create_dir_all(&real).unwrap();
            std::fs::write(real.join("name"), format!("{name}\n")).unwrap();
            std::os::unix::fs::symlink(&real, class.join(format!("video{n}"))).unwrap();
        }
        let d = devices(&class);
        assert_eq!(
            d.iter()
                .map(|d| d.path.display().to_string())
                .collect::<Vec<_>>(),
            ["/dev/video0", "/dev/video2", "/dev/video12"]
        );
        assert!(!d[0].loopback && d[2].loopback);
        assert_eq!(d[2].name, "modnetmatte");
        assert_eq!(
            first_loopback(&class).unwrap(),
            PathBuf::from("/dev/video12")
        );
        std::fs::remove_file(class.join("video12")).unwrap();
        let err = first_loopback(&class).unwrap_err().to_string();
        assert!(
            err.contains("exclusive_caps=1") && err.contains("modprobe v4l2loopback"),
            "{err}"
        );
    }
}
