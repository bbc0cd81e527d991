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
