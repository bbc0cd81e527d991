//! Frames onto the network's device and results back.
//!
//! On a CPU both directions are plain tensor copies. On CUDA (through cudarc's
//! driver API, loaded at run time and entered only after `is_culib_present`):
//!
//! - two upload slots, each a page-locked staging buffer and a device buffer, used in
//!   turn: frame N+1 goes host -> device on our upload stream while frame N is still
//!   in the network;
//! - events order the work: libtorch's stream (the calling thread's current one: the
//!   engine's pool stream on the device path, see `cuda`) waits for a slot's upload;
//!   our upload stream waits until libtorch has read the slot before writing it again;
//!   our download stream waits for the frame's result and copies it device -> host
//!   into a page-locked buffer;
//! - the host waits on one frame's download event only, never on the whole device.
//!
//! All these streams are non-blocking, so nothing synchronises with another except
//! through those events.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMut, planes};
use crate::gpu::driver::{cuda_context, cuda_err};
use crate::gpu::pinned::{PinnedBuffer, is_pinned};

/// Where a frame's bytes stand, for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Page-locked host memory held for transfers.
    pub pinned_bytes: usize,
    /// Device memory held for transfers (upload slots).
    pub device_bytes: usize,
}

/// Moves frames up and results down; one per running stream (element), reused
/// frame after frame.
pub struct Transfer {
    device: Device,
    cuda: Option<CudaLink>,
    /// Wait for each stage before the next (to time each alone); off in normal running.
    sync_stages: bool,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("device", &self.device)
            .field("memory", &self.memory())
            .finish()
    }
}

impl Transfer {
    pub fn new(device: Device) -> Result<Self> {
        let cuda = match device {
            Device::Cuda(i) => Some(CudaLink::new(i)?),
            _ => None,
        };
        Ok(Self {
            device,
            cuda,
            sync_stages: false,
        })
    }

    /// With `true`, each transfer is waited for as it is issued (stage timing).
    pub fn set_sync_stages(&mut self, sync: bool) {
        self.sync_stages = sync;
    }

    pub fn sync_stages(&self) -> bool {
        self.sync_stages
    }

    pub fn memory(&self) -> MemoryUse {
        self.cuda.as_ref().map(CudaLink::memory).unwrap_or_default()
    }

    /// The frame's planes on the device, uint8 [rows, row_bytes] each, padding
    /// dropped; on CUDA ordered after the copy on libtorch's stream.
    pub fn upload(&mut self, frame: &Frame<'_>) -> Result<Vec<Tensor>> {
        frame.validate()?;
        match &mut self.cuda {
            None => Ok(planes::frame_planes(frame)?
                .into_iter()
                .map(|p| p.f_to_device(self.device))
                .collect::<std::result::Result<Vec<_>, _>>()?),
            Some(link) => link.upload(frame, self.sync_stages),
        }
    }

    /// Says that everything reading the frame uploaded last has been issued on
    /// libtorch's stream (the device path copied it out, say): its slot may be
    /// written again once that work is done. `download` does this too.
    pub fn release(&mut self) -> Result<()> {
        match &mut self.cuda {
            None => Ok(()),
            Some(link) => link.release(),
        }
    }

    /// Starts bringing `planes` (uint8 [rows, row_bytes] each) back to the host.
    /// Call after everything that reads the uploaded planes has been issued.
    pub fn download(&mut self, planes: Vec<Tensor>) -> Result<Download> {
        let flat = planes
            .iter()
            .map(|p| p.f_reshape([-1]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let sizes: Vec<(i64, i64)> = planes.iter().map(|p| (p.size()[0], p.size()[1])).collect();
        let all = Tensor::f_cat(&flat, 0)?;
        match &mut self.cuda {
            None => Ok(Download {
                sizes,
                kind: DownloadKind::Host(all.f_to_device(Device::Cpu)?.f_contiguous()?),
            }),
            Some(link) => link.download(all, sizes, self.sync_stages),
        }
    }
}

/// A result on its way to the host.
pub struct Download {
    sizes: Vec<(i64, i64)>,
    kind: DownloadKind,
}

enum DownloadKind {
    Host(Tensor),
    Cuda {
        /// Kept alive until the copy is done (libtorch may reuse its memory after).
        _source: Tensor,
        buffer: Option<PinnedBuffer>,
        event: cudarc::driver::sys::CUevent,
        pool: Arc<Mutex<Vec<PinnedBuffer>>>,
        ctx: Arc<cudarc::driver::CudaContext>,
        ordinal: usize,
    },
}

// SAFETY: the event handle is used from one thread at a time (the owner's).
unsafe impl Send for Download {}

impl Download {
    /// Waits for this result (only) and writes it into `out`, whose planes must have
    /// the sizes given to `Transfer::download`.
    pub fn wait_into(mut self, out: &mut FrameMut<'_>) -> Result<()> {
        if out.planes.len() != self.sizes.len() {
            return Err(Error::InvalidFrame(format!(
                "the output has {} planes, the result {}",
                out.planes.len(),
                self.sizes.len()
            )));
        }
        let bytes: &[u8] = match &mut self.kind {
            DownloadKind::Host(t) => {
                // SAFETY: a contiguous CPU uint8 tensor of numel bytes, alive in self.
                unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, t.numel()) }
            }
            DownloadKind::Cuda {
                buffer,
                event,
                ctx,
                ordinal,
                ..
            } => {
                let ordinal = *ordinal;
                ctx.bind_to_thread()
                    .map_err(cuda_err(ordinal, "bind the context"))?;
                // SAFETY: the event is alive until Drop.
                unsafe { cudarc::driver::result::event::synchronize(*event) }
                    .map_err(cuda_err(ordinal, "wait for the download"))?;
                buffer.as_ref().map(|b| b.as_ref()).unwrap_or(&[])
            }
        };
        let mut at = 0usize;
        for (plane, &(rows, row)) in out.planes.iter_mut().zip(&self.sizes) {
            let (rows, row) = (rows as usize, row as usize);
            let src = bytes.get(at..at + rows * row).ok_or_else(|| {
                Error::InvalidFrame("the result is shorter than its planes".into())
            })?;
            for (y, line) in src.chunks_exact(row).enumerate() {
                let dst = plane
                    .data
                    .get_mut(y * plane.stride..y * plane.stride + row)
                    .ok_or_else(|| {
                        Error::InvalidFrame("the output plane is smaller than the result".into())
                    })?;
                dst.copy_from_slice(line);
            }
            at += rows * row;
        }
        Ok(())
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if let DownloadKind::Cuda {
            buffer,
            event,
            pool,
            ctx,
            ..
        } = &mut self.kind
        {
            let _ = ctx.bind_to_thread();
            // SAFETY: created in CudaLink::download, destroyed once; a pending copy
            // still completes (the driver defers the release). The buffer goes back
            // to the pool only once the copy into it is done.
            unsafe {
                let _ = cudarc::driver::result::event::synchronize(*event);
                let _ = cudarc::driver::result::event::destroy(*event);
            }
            if let (Some(b), Ok(mut p)) = (buffer.take(), pool.lock()) {
                p.push(b);
            }
        }
    }
}

/// One upload slot: staging memory, its device copy, and the two events that guard
/// their reuse.
struct Slot {
    staging: Option<PinnedBuffer>,
    device: Option<Tensor>,
    /// Recorded on our upload stream after the copy into `device`.
    uploaded: cudarc::driver::sys::CUevent,
    /// Recorded on libtorch's stream after the last work that reads `device`.
    consumed: cudarc::driver::sys::CUevent,
    used: bool,
}

struct CudaLink {
    ordinal: usize,
    ctx: Arc<cudarc::driver::CudaContext>,
    upload_stream: cudarc::driver::sys::CUstream,
    download_stream: cudarc::driver::sys::CUstream,
    slots: [Slot; 2],
    next: usize,
    /// The slot the last upload used (its `consumed` is recorded at download).
    current: Option<usize>,
    out_pool: Arc<Mutex<Vec<PinnedBuffer>>>,
}

// SAFETY: raw CUDA handles, used from one thread at a time (the owner's).
unsafe impl Send for CudaLink {}

const WAIT_DEFAULT: cudarc::driver::sys::CUevent_wait_flags =
    cudarc::driver::sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT;

impl CudaLink {
    fn new(ordinal: usize) -> Result<Self> {
        use cudarc::driver::result::{event, stream};
        use cudarc::driver::sys::CUevent_flags::CU_EVENT_DISABLE_TIMING;
        let ctx = cuda_context(ordinal)?;
        ctx.bind_to_thread()
            .map_err(cuda_err(ordinal, "bind the context"))?;
        let ev =
            || event::create(CU_EVENT_DISABLE_TIMING).map_err(cuda_err(ordinal, "create an event"));
        let slot = || -> Result<Slot> {
            Ok(Slot {
                staging: None,
                device: None,
                uploaded: ev()?,
                consumed: ev()?,
                used: false,
            })
        };
        let new_stream = || {
            stream::create(stream::StreamKind::NonBlocking)
                .map_err(cuda_err(ordinal, "create a stream"))
        };
        Ok(Self {
            ordinal,
            upload_stream: new_stream()?,
            download_stream: new_stream()?,
            slots: [slot()?, slot()?],
            next: 0,
            current: None,
            out_pool: Arc::new(Mutex::new(Vec::new())),
            ctx,
        })
    }

    /// libtorch's stream on this thread: where the work reading our uploads and
    /// writing our results is issued (tch's operations follow the current stream).
    fn torch_stream(&self) -> cudarc::driver::sys::CUstream {
        crate::gpu::shim::current_stream(self.ordinal)
    }

    fn release(&mut self) -> Result<()> {
        use cudarc::driver::result::event;
        self.ctx
            .bind_to_thread()
            .map_err(cuda_err(self.ordinal, "bind the context"))?;
        let k = self.current.unwrap_or(0);
        // SAFETY: handles alive as long as self.
        unsafe { event::record(self.slots[k].consumed, self.torch_stream()) }
            .map_err(cuda_err(self.ordinal, "record an event"))
    }

    fn memory(&self) -> MemoryUse {
        let mut m = MemoryUse::default();
        for s in &self.slots {
            m.pinned_bytes += s.staging.as_ref().map_or(0, PinnedBuffer::len);
            m.device_bytes += s.device.as_ref().map_or(0, |t| t.numel());
        }
        if let Ok(pool) = self.out_pool.lock() {
            m.pinned_bytes += pool.iter().map(PinnedBuffer::len).sum::<usize>();
        }
        m
    }

    fn upload(&mut self, frame: &Frame<'_>, sync: bool) -> Result<Vec<Tensor>> {
        self.ctx
            .bind_to_thread()
            .map_err(cuda_err(self.ordinal, "bind the context"))?;
        let layout = frame
            .format
            .plane_sizes(frame.width as usize, frame.height as usize);
        let total: usize = layout.iter().map(|(row, rows)| row * rows).sum();
        let (k, device) = self.next_slot(total)?;
        if !frame.planes.iter().all(|p| is_pinned(p.data)) {
            return self.upload_staged(frame, sync);
        }
        // Already page-locked (our buffer pool): copy each plane as it lies, padding
        // included, and drop the padding on the device.
        let base = device.data_ptr() as u64;
        let mut planes = Vec::with_capacity(layout.len());
        let mut at = 0usize;
        for ((row, rows), plane) in layout.iter().zip(&frame.planes) {
            let span = plane.stride * (rows - 1) + row;
            let src = plane
                .data
                .get(..span)
                .ok_or_else(|| Error::InvalidFrame("plane shorter than its rows".into()))?;
            if at + span > device.numel() {
                // Padding made it larger than the tight layout: restage instead.
                return self.upload_staged(frame, sync);
            }
            // SAFETY: `src` is page-locked and outlives the copy (the caller keeps the
            // frame's buffer until its result is back); the destination lies inside
            // the slot's device buffer, alive in the slot.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(base + at as u64, src, self.upload_stream)
            }
            .map_err(cuda_err(self.ordinal, "copy a frame to the device"))?;
            let t = device.f_as_strided(
                [*rows as i64, *row as i64],
                [plane.stride as i64, 1],
                Some(at as i64),
            )?;
            planes.push(t);
            at += span;
        }
        self.finish_upload(k, sync)?;
        planes
            .into_iter()
            .map(|t| t.f_contiguous().map_err(Into::into))
            .collect()
    }

    /// The next upload slot, with a device buffer of at least `total` bytes, once the
    /// work that last used it allows writing it again.
    fn next_slot(&mut self, total: usize) -> Result<(usize, Tensor)> {
        use cudarc::driver::result::{event, stream};
        let k = self.next;
        self.next = 1 - k;
        self.current = Some(k);
        let ordinal = self.ordinal;
        let torch = self.torch_stream();
        let slot = &mut self.slots[k];
        if slot.device.as_ref().is_none_or(|t| (t.numel()) < total) {
            slot.device = Some(Tensor::f_empty(
                [total as i64],
                (Kind::Uint8, Device::Cuda(ordinal)),
            )?);
            // libtorch's allocator may hand out a block its stream is still using
            // (freed by queued work): our stream must not write it before that work
            // is done.
            // SAFETY: handles alive as long as self.
            unsafe {
                event::record(slot.consumed, torch)
                    .map_err(cuda_err(self.ordinal, "record an event"))?;
                stream::wait_event(self.upload_stream, slot.consumed, WAIT_DEFAULT)
                    .map_err(cuda_err(self.ordinal, "order the upload"))?;
            }
        }
        let device = slot
            .device
            .as_ref()
            .map(Tensor::shallow_clone)
            .ok_or_else(|| Error::InvalidFrame("no device buffer".into()))?;
        // The staging buffer last fed the copy two frames ago: wait for that copy
        // (normally long done) before overwriting it.
        if slot.used {
            // SAFETY: events live as long as the slot.
            unsafe { event::synchronize(slot.uploaded) }
                .map_err(cuda_err(self.ordinal, "wait for an upload"))?;
            // Do not overwrite the device buffer before libtorch has read it.
            unsafe { stream::wait_event(self.upload_stream, slot.consumed, WAIT_DEFAULT) }
                .map_err(cuda_err(self.ordinal, "order the upload"))?;
        }
        Ok((k, device))
    }

    fn upload_staged(&mut self, frame: &Frame<'_>, sync: bool) -> Result<Vec<Tensor>> {
        use cudarc::driver::result::memcpy_htod_async;
        let layout = frame
            .format
            .plane_sizes(frame.width as usize, frame.height as usize);
        let total: usize = layout.iter().map(|(row, rows)| row * rows).sum();
        let k = self.current.unwrap_or(0);
        let ordinal = self.ordinal;
        let slot = &mut self.slots[k];
        if slot.staging.as_ref().is_none_or(|b| b.len() < total) {
            slot.staging = Some(PinnedBuffer::new(ordinal, total)?);
        }
        let (Some(staging), Some(device)) = (slot.staging.as_mut(), slot.device.as_ref()) else {
            return Err(Error::InvalidFrame("no staging buffer".into()));
        };
        let dst = staging.as_mut();
        let mut at = 0usize;
        let mut planes = Vec::with_capacity(layout.len());
        for ((row, rows), plane) in layout.iter().zip(&frame.planes) {
            for y in 0..*rows {
                let line = plane
                    .data
                    .get(y * plane.stride..y * plane.stride + row)
                    .ok_or_else(|| Error::InvalidFrame("plane shorter than its rows".into()))?;
                dst[at + y * row..at + (y + 1) * row].copy_from_slice(line);
            }
            planes.push(
                device
                    .f_narrow(0, at as i64, (row * rows) as i64)?
                    .f_view([*rows as i64, *row as i64])?,
            );
            at += row * rows;
        }
        // SAFETY: the staging buffer is page-locked and is not written again before
        // `uploaded` has passed; the destination is the slot's device buffer.
        unsafe {
            memcpy_htod_async(
                device.data_ptr() as u64,
                &staging.as_ref()[..total],
                self.upload_stream,
            )
        }
        .map_err(cuda_err(self.ordinal, "copy a frame to the device"))?;
        self.finish_upload(k, sync)?;
        Ok(planes)
    }

    /// Marks the upload into slot `k` done and makes libtorch's stream wait for it.
    fn finish_upload(&mut self, k: usize, sync: bool) -> Result<()> {
        use cudarc::driver::result::{event, stream};
        let torch = self.torch_stream();
        let slot = &mut self.slots[k];
        slot.used = true;
        // SAFETY: handles alive as long as self.
        unsafe {
            event::record(slot.uploaded, self.upload_stream)
                .map_err(cuda_err(self.ordinal, "record an event"))?;
            stream::wait_event(torch, slot.uploaded, WAIT_DEFAULT)
                .map_err(cuda_err(self.ordinal, "order the network after the upload"))?;
            if sync {
                event::synchronize(slot.uploaded)
                    .map_err(cuda_err(self.ordinal, "wait for an upload"))?;
            }
        }
        Ok(())
    }

    fn download(&mut self, all: Tensor, sizes: Vec<(i64, i64)>, sync: bool) -> Result<Download> {
        use cudarc::driver::result::{event, memcpy_dtoh_async, stream};
        use cudarc::driver::sys::CUevent_flags::CU_EVENT_DISABLE_TIMING;
        self.ctx
            .bind_to_thread()
            .map_err(cuda_err(self.ordinal, "bind the context"))?;
        let all = all.f_contiguous()?;
        let n = all.numel();
        let k = self.current.unwrap_or(0);
        // Everything reading slot k and producing `all` is issued on libtorch's
        // stream by now: one event marks both.
        let ready = self.slots[k].consumed;
        // SAFETY: handles alive as long as self.
        unsafe {
            event::record(ready, self.torch_stream())
                .map_err(cuda_err(self.ordinal, "record an event"))?;
            stream::wait_event(self.download_stream, ready, WAIT_DEFAULT)
                .map_err(cuda_err(self.ordinal, "order the download"))?;
        }
        let reused = self.out_pool.lock().ok().and_then(|mut p| {
            let i = p.iter().position(|b| b.len() >= n)?;
            Some(p.swap_remove(i))
        });
        let mut buffer = match reused {
            Some(b) => b,
            None => PinnedBuffer::new(self.ordinal, n)?,
        };
        let done = event::create(CU_EVENT_DISABLE_TIMING)
            .map_err(cuda_err(self.ordinal, "create an event"))?;
        // SAFETY: the source tensor stays alive in the Download until the event has
        // passed, and the pinned destination is not touched before then either.
        unsafe {
            memcpy_dtoh_async(
                &mut buffer.as_mut()[..n],
                all.data_ptr() as u64,
                self.download_stream,
            )
            .map_err(cuda_err(self.ordinal, "copy the result to the host"))?;
            event::record(done, self.download_stream)
                .map_err(cuda_err(self.ordinal, "record an event"))?;
            if sync {
                event::synchronize(done)
                    .map_err(cuda_err(self.ordinal, "wait for the download"))?;
            }
        }
        Ok(Download {
            sizes,
            kind: DownloadKind::Cuda {
                _source: all,
                buffer: Some(buffer),
                event: done,
                pool: self.out_pool.clone(),
                ctx: self.ctx.clone(),
                ordinal: self.ordinal,
            },
        })
    }
}

impl Drop for CudaLink {
    fn drop(&mut self) {
        use cudarc::driver::result::{event, stream};
        let _ = self.ctx.bind_to_thread();
        // SAFETY: every handle was created in `new` and is destroyed once, after the
        // streams' work is done (the buffers they touch are freed after this).
        unsafe {
            let _ = stream::synchronize(self.upload_stream);
            let _ = stream::synchronize(self.download_stream);
            for s in &self.slots {
                let _ = event::synchronize(s.consumed);
                let _ = event::destroy(s.uploaded);
                let _ = event::destroy(s.consumed);
            }
            let _ = stream::destroy(self.upload_stream);
            let _ = stream::destroy(self.download_stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;
    use crate::gpu::driver::device_memory;
    use crate::gpu::pinned::is_pinned;

    #[test]
    fn cpu_round_trip_keeps_planes_and_strides() {
        // A 3x2 I420 frame whose Y rows carry 2 bytes of padding.
        let (w, h) = (3u32, 2u32);
        let y: Vec<u8> = (0..10).collect();
        let u = [100u8, 101];
        let v = [200u8, 201];
        let frame = Frame {
            format: PixelFormat::I420,
            width: w,
            height: h,
            planes: vec![
                crate::frame::Plane {
                    data: &y,
                    stride: 5,
                },
                crate::frame::Plane {
                    data: &u,
                    stride: 2,
                },
                crate::frame::Plane {
                    data: &v,
                    stride: 2,
                },
            ],
            matrix: crate::YuvMatrix::BT601,
        };
        let mut t = Transfer::new(Device::Cpu).unwrap();
        let planes = t.upload(&frame).unwrap();
        assert_eq!(planes[0].size(), [2, 3]);
        let d = t.download(planes).unwrap();
        let (mut oy, mut ou, mut ov) = (vec![0u8; 8], vec![0u8; 2], vec![0u8; 2]);
        let mut out = FrameMut {
            format: PixelFormat::I420,
            width: w,
            height: h,
            planes: vec![
                crate::frame::PlaneMut {
                    data: &mut oy,
                    stride: 4,
                },
                crate::frame::PlaneMut {
                    data: &mut ou,
                    stride: 2,
                },
                crate::frame::PlaneMut {
                    data: &mut ov,
                    stride: 2,
                },
            ],
            matrix: crate::YuvMatrix::BT601,
        };
        d.wait_into(&mut out).unwrap();
        assert_eq!(oy, [0, 1, 2, 0, 5, 6, 7, 0]);
        assert_eq!((ou, ov), (vec![100, 101], vec![200, 201]));
        assert_eq!(t.memory(), MemoryUse::default());
    }

    #[test]
    fn cuda_without_a_driver_is_an_error_not_a_panic() {
        if crate::gpu::driver::skips_with_a_driver() {
            return;
        }
        let err = Transfer::new(Device::Cuda(0)).unwrap_err().to_string();
        assert!(
            err.contains("cuda:0") && err.contains("no NVIDIA driver"),
            "{err}"
        );
        assert!(PinnedBuffer::new(0, 16).is_err());
        assert!(device_memory(0).is_none());
        assert!(!is_pinned(&[1, 2, 3]));
    }
}
