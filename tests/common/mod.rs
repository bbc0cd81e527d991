//! Paths of the files that `scripts/setup.sh` and `scripts/test.sh` make.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file made by the setup or fixture step; a clear failure when it is absent.
pub fn prepared(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test.sh` (setup, export and fixtures) first",
        p.display()
    );
    p
}

pub fn model() -> PathBuf {
    prepared("models/modnet_photographic.pt")
}

pub fn fixture(rel: &str) -> PathBuf {
    prepared(&format!("data/fixtures/{rel}"))
}

/// The test photo resized to `width` x `height`, packed RGB bytes.
pub fn photo_rgb(width: u32, height: u32) -> Vec<u8> {
    image::open(prepared("data/images/astronaut.png"))
        .expect("the test photo decodes")
        .resize_exact(width, height, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}
