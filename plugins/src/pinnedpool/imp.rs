//! The pool's subclass: buffers of the configured size, each one allocation that
//! lives as long as the buffer (the pool recycles buffers, so memory is page-locked
//! once per buffer, not per frame).

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::subclass::prelude::*;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "modnetpinnedpool",
        gst::DebugColorFlags::empty(),
        Some("modnetmatte's page-locked buffer pool"),
    )
});

#[derive(Default)]
struct Settings {
    ordinal: Option<usize>,
    size: usize,
}

#[derive(Default)]
pub struct PinnedBufferPool {
    settings: Mutex<Settings>,
}

impl PinnedBufferPool {
    pub(super) fn set_ordinal(&self, ordinal: Option<usize>) {
        if let Ok(mut s) = self.settings.lock() {
            s.ordinal = ordinal;
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for PinnedBufferPool {
    const NAME: &'static str = "GstModnetPinnedBufferPool";
    type Type = super::PinnedBufferPool;
    type ParentType = gst::BufferPool;
}

impl ObjectImpl for PinnedBufferPool {}
impl GstObjectImpl for PinnedBufferPool {}

impl BufferPoolImpl for PinnedBufferPool {
    fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
        let Some((_caps, size, _min, _max)) = config.params() else {
            gst::warning!(CAT, imp = self, "configuration without parameters");
            return false;
        };
        if let Ok(mut s) = self.settings.lock() {
            s.size = size as usize;
        }
        self.parent_set_config(config)
    }

    fn alloc_buffer(
        &self,
        _params: Option<&gst::BufferPoolAcquireParams>,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let (ordinal, size) = match self.settings.lock() {
            Ok(s) => (s.ordinal, s.size),
            Err(_) => return Err(gst::FlowError::Error),
        };
        match ordinal {
            Some(i) => match modnetmatte::gpu::pinned::PinnedBuffer::new(i, size) {
                Ok(pinned) => Ok(gst::Buffer::from_mut_slice(pinned)),
                Err(e) => {
                    gst::warning!(CAT, imp = self, "{e}; plain memory instead");
                    Ok(gst::Buffer::from_mut_slice(vec![0u8; size]))
                }
            },
            None => Ok(gst::Buffer::from_mut_slice(vec![0u8; size])),
        }
    }
}
