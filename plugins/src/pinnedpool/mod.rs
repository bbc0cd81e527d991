//! `PinnedBufferPool`: a buffer pool whose memory is page-locked (CUDA's
//! cuMemHostAlloc), offered upstream in the ALLOCATION query when the device path
//! runs on CUDA, so a frame goes to the GPU straight from its own buffer, with no
//! copy into staging memory first. Without a CUDA device it hands out plain memory.

use gst::glib;
use gst::subclass::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PinnedBufferPool(ObjectSubclass<imp::PinnedBufferPool>)
        @extends gst::BufferPool, gst::Object;
}

impl PinnedBufferPool {
    /// A pool page-locking its memory on CUDA device `ordinal` (plain memory: `None`).
    pub fn new(ordinal: Option<usize>) -> Self {
        let pool: Self = glib::Object::new();
        pool.imp().set_ordinal(ordinal);
        pool
    }
}
