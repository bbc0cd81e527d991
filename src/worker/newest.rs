//! Realtime pacing: the network always works on the newest frame, and the caller (the
//! streaming thread) never waits for it longer than it chooses to.
//!
//! `Newest` is a worker with a one-job mailbox instead of a queue: a job posted while
//! another waits replaces it (the frame it carried lost its turn, and its buffer is
//! freed at once), so the network is never more than one frame behind the camera's
//! newest. Results come back in the order they finish, tagged with the frame's id;
//! `discard` (flush, new caps) drops the waiting job and the result of the running one.
//!
//! On a CPU with `num-threads` 0, the worker's OpenMP team gets all cores but one
//! (set on the worker thread alone, `worker_threads`): the streaming thread
//! composites every frame at the camera's rate on the one left (the network runs
//! faster on one thread of its own than on two shared with compositing; a lower
//! priority for the worker would starve the matte on a busy machine).
//!
//! `own_matte_wait` is the rule for how long a frame may wait for its own matte: only
//! when the network keeps up, so a fast device gives every frame its own matte and a
//! slow one never holds the stream back.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::host::openmp;
use crate::net::engine::Engine;

type Job<R> = Box<dyn FnOnce(&Engine) -> R + Send>;

struct Slot<R> {
    /// The job not started yet: (frame id, generation, job).
    waiting: Option<(u64, u64, Job<R>)>,
    /// The frame id the worker is on.
    running: Option<u64>,
    /// Finished results of the current generation, oldest first.
    done: VecDeque<(u64, R)>,
    generation: u64,
    closed: bool,
}

struct Shared<R> {
    slot: Mutex<Slot<R>>,
    /// Signalled when a job is posted, a job finishes, or the worker must stop.
    changed: Condvar,
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, Slot<R>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Newest<R: Send + 'static> {
    shared: Arc<Shared<R>>,
    worker: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> Newest<R> {
    pub fn new(engine: Arc<Engine>) -> Result<Self> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                waiting: None,
                running: None,
                done: VecDeque::new(),
                generation: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let theirs = shared.clone();
        let worker = std::thread::Builder::new()
            .name("modnetmatte-net".into())
            .spawn(move || {
                // As the ordered scheduler: the engine's CUDA stream from here on.
                let _ = engine.enter_stream();
                if let Some(n) = worker_threads(&engine) {
                    // This thread only: other streams and elements keep their count.
                    let _ = openmp::set_thread_team(n);
                }
                work(&engine, &theirs)
            })
            .map_err(|e| Error::Thread(format!("cannot start the network's worker: {e}")))?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// Posts the job for frame `id`. A job still waiting is dropped in its favour;
    /// returns that job's frame id.
    pub fn post(&self, id: u64, job: impl FnOnce(&Engine) -> R + Send + 'static) -> Option<u64> {
        let replaced = {
            let mut slot = self.shared.lock();
            let generation = slot.generation;
            slot.waiting.replace((id, generation, Box::new(job)))
        };
        self.shared.changed.notify_all();
        // The replaced job (and the frame it holds) is dropped here, outside the lock.
        replaced.map(|(id, _, _)| id)
    }

    /// Whether a job is running or waiting.
    pub fn busy(&self) -> bool {
        let slot = self.shared.lock();
        slot.running.is_some() || slot.waiting.is_some()
    }

    /// The results finished since the last call, oldest first.
    pub fn take(&self) -> Vec<(u64, R)> {
        self.shared.lock().done.drain(..).collect()
    }

    /// Waits until frame `id`'s job has finished (or was replaced or discarded), at
    /// most `timeout`; then as `take`.
    pub fn wait_for(&self, id: u64, timeout: Duration) -> Vec<(u64, R)> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.shared.lock();
        loop {
            let pending =
                slot.running == Some(id) || slot.waiting.as_ref().map(|w| w.0) == Some(id);
            let now = Instant::now();
            if !pending || now >= deadline {
                break;
            }
            slot = match self.shared.changed.wait_timeout(slot, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        slot.done.drain(..).collect()
    }

    /// Forgets every job posted so far: the waiting one is dropped, the running one's
    /// result will be (it cannot be interrupted).
    pub fn discard(&self) {
        let dropped = {
            let mut slot = self.shared.lock();
            slot.generation += 1;
            slot.done.clear();
            slot.waiting.take()
        };
        drop(dropped);
    }
}

/// The worker's loop: the waiting job, if any, else sleep; ends when closed.
fn work<R>(engine: &Engine, shared: &Shared<R>) {
    let mut slot = shared.lock();
    loop {
        if slot.closed {
            return;
        }
        let Some((id, generation, job)) = slot.waiting.take() else {
            slot = match shared.changed.wait(slot) {
                Ok(s) => s,
                Err(e) => e.into_inner(),
            };
            continue;
        };
        slot.running = Some(id);
        drop(slot);
        let r = job(engine);
        slot = shared.lock();
        slot.running = None;
        if generation == slot.generation {
            slot.done.push_back((id, r));
        }
        shared.changed.notify_all();
    }
}

impl<R: Send + 'static> Drop for Newest<R> {
    fn drop(&mut self) {
        {
            let mut slot = self.shared.lock();
            slot.closed = true;
            slot.waiting = None;
        }
        self.shared.changed.notify_all();
        // The job running now finishes first (a network run cannot be interrupted).
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The OpenMP team size for the realtime worker: all cores but one on a CPU when
/// `num-threads` is 0 (auto); `None` leaves libtorch's choice.
pub fn worker_threads(engine: &Engine) -> Option<usize> {
    let auto_on_cpu = !engine.device().is_cuda() && engine.configured_threads() == 0;
    auto_on_cpu.then(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_sub(1).max(1)
    })
}

/// How long a frame may wait for its own matte in realtime pacing: half the frame
/// interval, but only while the network (`network`: its last run) fits in that;
/// otherwise not at all, and the frame goes out with the newest matte there is.
/// Unknown frame rate: no waiting.
pub fn own_matte_wait(network: Option<Duration>, frame_interval: Option<Duration>) -> Duration {
    match (network, frame_interval) {
        (Some(n), Some(i)) if n <= i / 2 => i / 2,
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_when_the_network_keeps_up() {
        let i = Some(Duration::from_millis(40));
        assert_eq!(
            own_matte_wait(Some(Duration::from_millis(5)), i),
            Duration::from_millis(20)
        );
        assert_eq!(
            own_matte_wait(Some(Duration::from_millis(21)), i),
            Duration::ZERO
        );
        assert_eq!(own_matte_wait(None, i), Duration::ZERO);
        assert_eq!(
            own_matte_wait(Some(Duration::from_millis(1)), None),
            Duration::ZERO
        );
    }
}
