//! Video4Linux devices: which mode to open a webcam in, and where the v4l2loopback
//! virtual cameras are, as GStreamer's device monitor lists them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use gst::prelude::*;

use crate::describe::{Geometry, quote_path};

/// The `modprobe` line for a virtual camera that browsers and meeting apps list:
/// exclusive_caps=1 makes it show as a capture device once a writer is attached.
pub const MODPROBE: &str = "sudo modprobe v4l2loopback devices=1 video_nr=10 \
                            card_label=\"modnetmatte\" exclusive_caps=1";

/// The driver name v4l2loopback reports (VIDIOC_QUERYCAP).
const LOOPBACK_DRIVER: &str = "v4l2 loopback";

/// One video device, as the v4l2 device provider describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub path: PathBuf,
    pub name: String,
    /// A v4l2loopback device: a virtual camera.
    pub loopback: bool,
    /// Listed as a capture device (Video/Source); a loopback without a writer is a
    /// sink only.
    pub source: bool,
    /// What it can give (sources) or take (sinks).
    pub caps: Option<gst::Caps>,
}

/// The device from one listing, if the v4l2 provider made it: only that provider
/// names the driver, and PipeWire's copies of the same cameras are skipped.
pub fn from_listing(
    name: &str,
    class: &str,
    props: &gst::StructureRef,
    caps: Option<gst::Caps>,
) -> Option<Device> {
    let path = props.get::<&str>("device.path").ok()?;
    let driver = props.get::<&str>("v4l2.device.driver").ok()?;
    Some(Device {
        path: PathBuf::from(path),
        name: name.to_string(),
        loopback: driver == LOOPBACK_DRIVER,
        source: class.split('/').any(|c| c == "Source"),
        caps,
    })
}

/// One entry a path, in device number order.
fn in_order(mut found: Vec<Device>) -> Vec<Device> {
    let number = |d: &Device| -> u32 {
        d.path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix("video"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX)
    };
    found.sort_by(|a, b| number(a).cmp(&number(b)).then(a.path.cmp(&b.path)));
    found.dedup_by(|later, first| later.path == first.path);
    found
}

/// The video devices on this machine. The provider skips a device that is both a
/// capture and an output device, which is what v4l2loopback is without
/// exclusive_caps=1.
pub fn devices() -> Result<Vec<Device>> {
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    monitor.add_filter(Some("Video/Sink"), None);
    // PipeWire hides the v4l2 provider on desktops; its device paths are what we need.
    monitor.set_show_all_devices(true);
    monitor.start().context(
        "GStreamer's device monitor did not start (is gstreamer1.0-plugins-good installed?)",
    )?;
    let listed = monitor.devices();
    monitor.stop();
    let found = listed
        .iter()
        .filter_map(|d| {
            let props = d.properties()?;
            from_listing(&d.display_name(), &d.device_class(), &props, d.caps())
        })
        .collect();
    Ok(in_order(found))
}

/// The first virtual camera, or an error that tells how to make one.
pub fn first_loopback(devices: &[Device]) -> Result<PathBuf> {
    match devices.iter().find(|d| d.loopback) {
        Some(d) => Ok(d.path.clone()),
        None => bail!(
            "no virtual camera (v4l2loopback device) found.\n\
             Install and load the module, then run this again:\n\
             \x20   sudo apt install v4l2loopback-dkms\n\
             \x20   {MODPROBE}\n\
             (exclusive_caps=1 is what Chrome, Zoom and Teams need to list it, and \
             GStreamer skips a loopback without it), or pass --output /dev/videoN, or \
             --output null to run without one"
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

/// The mode to open `device` in, from the modes the device monitor lists for it.
pub fn probe_camera(device: &Path, want: (u32, u32, i32)) -> Result<Mode> {
    if !device.exists() {
        bail!(
            "camera {}: no such device. Cameras found: {}",
            device.display(),
            camera_list(&devices().unwrap_or_default())
        );
    }
    let all = devices()?;
    // by-id and by-path names are links to the /dev/videoN the monitor lists.
    let real = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let Some(cam) = all.iter().find(|d| d.source && d.path == real) else {
        bail!(
            "camera {}: not listed as a capture device (busy, not a camera, or no \
             permission: is your user in the `video` group?). Cameras found: {}",
            device.display(),
            camera_list(&all)
        );
    };
    let caps = cam.caps.clone().unwrap_or_else(gst::Caps::new_empty);
    pick_mode(&caps, want).with_context(|| {
        format!(
            "camera {}: no mode with raw video or MJPEG at 15 frames/s or more (it offers {caps})",
            device.display()
        )
    })
}

fn camera_list(all: &[Device]) -> String {
    let cams: Vec<String> = all
        .iter()
        .filter(|d| d.source && !d.loopback)
        .map(|d| format!("{} ({})", d.path.display(), d.name))
        .collect();
    if cams.is_empty() {
        "none".to_string()
    } else {
        cams.join(", ")
    }
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

    fn listing(path: &str, driver: &str) -> gst::Structure {
        gst::Structure::builder("v4l2deviceprovider")
            .field("device.api", "v4l2")
            .field("device.path", path)
            .field("v4l2.device.driver", driver)
            .build()
    }

    #[test]
    fn tells_cameras_from_virtual_cameras_in_the_monitors_listing() {
        init();
        let caps: gst::Caps = "video/x-raw, format=YUY2, width=640, height=480, framerate=30/1"
            .parse()
            .unwrap();
        let found = vec![
            from_listing(
                "modnetmatte",
                "Video/Sink",
                &listing("/dev/video12", "v4l2 loopback"),
                None,
            ),
            from_listing(
                "Integrated Camera",
                "Video/Source",
                &listing("/dev/video2", "uvcvideo"),
                Some(caps.clone()),
            ),
            // The same camera a second time (PipeWire and v4l2 both shown).
            from_listing(
                "Integrated Camera",
                "Video/Source",
                &listing("/dev/video2", "uvcvideo"),
                Some(caps.clone()),
            ),
            from_listing(
                "Integrated Camera",
                "Video/Source",
                &listing("/dev/video0", "uvcvideo"),
                Some(caps.clone()),
            ),
            // PipeWire's own entry names no driver: not ours to open by path.
            from_listing(
                "Integrated Camera",
                "Video/Source",
                &gst::Structure::builder("pipewire-proplist")
                    .field("device.api", "v4l2")
                    .build(),
                Some(caps),
            ),
        ];
        assert!(found[4].is_none());
        let d = in_order(found.into_iter().flatten().collect());
        assert_eq!(
            d.iter()
                .map(|d| d.path.display().to_string())
                .collect::<Vec<_>>(),
            ["/dev/video0", "/dev/video2", "/dev/video12"]
        );
        assert!(!d[0].loopback && d[0].source);
        assert!(d[2].loopback && !d[2].source);
        assert_eq!(d[2].name, "modnetmatte");
        assert_eq!(first_loopback(&d).unwrap(), PathBuf::from("/dev/video12"));
        assert_eq!(
            camera_list(&d),
            "/dev/video0 (Integrated Camera), /dev/video2 (Integrated Camera)"
        );
        let err = first_loopback(&d[..2]).unwrap_err().to_string();
        assert!(
            err.contains("exclusive_caps=1") && err.contains("modprobe v4l2loopback"),
            "{err}"
        );
    }
}
