//! Runs frame jobs on a worker thread that owns the network's time, so that the
//! caller (GStreamer's streaming thread) prepares frame N+1 and renders frame N-1
//! while frame N is in the network.
//!
//! Jobs complete in submission order (one worker, FIFO channels). At most
//! `max_in_flight` jobs are outstanding: `submit` waits for the oldest result when
//! that many are, so 1 is plain synchronous processing. `discard` (flush) drops the
//! results of every job submitted before it. Dropping the scheduler stops and joins
//! the worker: no thread outlives it.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{Error, Result};
use crate::net::engine::Engine;

/// What a job gives back: its result, or (the device path) work issued to the GPU
/// and the rest to run once the worker has issued the next job, so that frame N+1
/// goes up while frame N is in the network.
pub enum Step<R> {
    Done(R),
    Later(Box<dyn FnOnce() -> R + Send>),
}

type Job<R> = (u64, Box<dyn FnOnce(&Engine) -> Step<R> + Send>);

pub struct Scheduler<R: Send + 'static> {
    jobs: Option<Sender<Job<R>>>,
    results: Receiver<(u64, R)>,
    worker: Option<JoinHandle<()>>,
    outstanding: usize,
    generation: u64,
    max_in_flight: usize,
}

impl<R: Send + 'static> Scheduler<R> {
    pub fn new(engine: Arc<Engine>, max_in_flight: usize) -> Result<Self> {
        let max_in_flight = max_in_flight.max(1);
        let (job_tx, job_rx) = bounded::<Job<R>>(max_in_flight);
        let (res_tx, res_rx) = bounded::<(u64, R)>(max_in_flight);
        let worker = std::thread::Builder::new()
            .name("modnetmatte-net".into())
            .spawn(move || {
                // The network's work goes to the engine's own CUDA stream from here on
                // (the device path sets it again per call; a failure shows there).
                let _ = engine.enter_stream();
                work(&engine, &job_rx, &res_tx, max_in_flight)
            })
            .map_err(|e| Error::Thread(format!("cannot start the network's worker: {e}")))?;
        Ok(Self {
            jobs: Some(job_tx),
            results: res_rx,
            worker: Some(worker),
            outstanding: 0,
            generation: 0,
            max_in_flight,
        })
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Queues a job and returns the results complete by now, oldest first. When
    /// that makes `max_in_flight` jobs outstanding, it first waits for the oldest: so
    /// at most `max_in_flight - 1` jobs stay behind between calls (1: synchronous).
    pub fn submit(&mut self, job: impl FnOnce(&Engine) -> R + Send + 'static) -> Result<Vec<R>> {
        self.submit_staged(move |engine: &Engine| Step::Done(job(engine)))
    }

    /// As `submit`, for a job that may finish in two steps (`Step::Later`).
    pub fn submit_staged(
        &mut self,
        job: impl FnOnce(&Engine) -> Step<R> + Send + 'static,
    ) -> Result<Vec<R>> {
        let mut done = Vec::new();
        let tx = self.jobs.as_ref().ok_or_else(stopped)?;
        tx.send((self.generation, Box::new(job)))
            .map_err(|_| stopped())?;
        self.outstanding += 1;
        while self.outstanding >= self.max_in_flight {
            done.extend(self.wait_one()?);
        }
        while let Ok((generation, r)) = self.results.try_recv() {
            self.outstanding -= 1;
            if generation == self.generation {
                done.push(r);
            }
        }
        Ok(done)
    }

    /// Waits for every outstanding job (EOS, new caps); results oldest first.
    pub fn finish(&mut self) -> Result<Vec<R>> {
        let mut done = Vec::new();
        while self.outstanding > 0 {
            done.extend(self.wait_one()?);
        }
        Ok(done)
    }

    /// Forgets every job submitted so far (flush): their results are dropped when
    /// they arrive; the job running now cannot be interrupted.
    pub fn discard(&mut self) {
        self.generation += 1;
    }

    /// Jobs submitted and not yet returned (including discarded ones).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    fn wait_one(&mut self) -> Result<Option<R>> {
        let (generation, r) = self.results.recv().map_err(|_| stopped())?;
        self.outstanding -= 1;
        Ok((generation == self.generation).then_some(r))
    }
}

/// The worker's loop. Finished results go out at once, in order; a job's `Later`
/// part waits until the next job has been issued, or until `depth` are waiting, or
/// until no job is queued. Ends when the scheduler drops its sender (or stops
/// reading results).
fn work<R: Send + 'static>(
    engine: &Engine,
    jobs: &Receiver<Job<R>>,
    results: &Sender<(u64, R)>,
    depth: usize,
) {
    type Waiting<R> = std::collections::VecDeque<(u64, Step<R>)>;
    let finish = |(generation, step): (u64, Step<R>)| {
        let r = match step {
            Step::Done(r) => r,
            Step::Later(rest) => rest(),
        };
        results.send((generation, r)).is_ok()
    };
    let mut waiting: Waiting<R> = Waiting::new();
    loop {
        let next = if waiting.is_empty() {
            jobs.recv().ok()
        } else if waiting.len() >= depth {
            None
        } else {
            jobs.try_recv().ok()
        };
        match next {
            Some((generation, job)) => match job(engine) {
                Step::Done(r) if waiting.is_empty() => {
                    if results.send((generation, r)).is_err() {
                        return;
                    }
                }
                step => waiting.push_back((generation, step)),
            },
            None => match waiting.pop_front() {
                Some(w) => {
                    if !finish(w) {
                        return;
                    }
                }
                None => return, // the scheduler has gone
            },
        }
    }
}

fn stopped() -> Error {
    Error::Thread("the network's worker stopped".into())
}

impl<R: Send + 'static> Drop for Scheduler<R> {
    fn drop(&mut self) {
        // Closing the job channel ends the worker's loop after its current job.
        self.jobs = None;
        while self.results.try_recv().is_ok() {}
        if let Some(worker) = self.worker.take() {
            // Keep taking results so a worker blocked on handing one over can finish.
            while !worker.is_finished() {
                let _ = self
                    .results
                    .recv_timeout(std::time::Duration::from_millis(5));
            }
            let _ = worker.join();
        }
    }
}
