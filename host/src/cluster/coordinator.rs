//! Rank 0's MPI thread: it sends task bytes and chunks of jobs to the
//! worker ranks with credit, sized by how long tasks take, finishes each
//! job's state from its results, and shows the progress ranks pass on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, TryRecvError};
use mpi::Tag;
use mpi::point_to_point::{MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::data::lock;
use crate::data::output::duration_of;
use crate::data::progress::{JobControl, ProgressBoard};
use crate::sched::sizer::JobSizer;
use crate::sched::stats::Counters;

use super::outbox::Outbox;
use super::{
    Control, FramedJob, Held, IN_FLIGHT, LoadWait, MAX_CHUNK, MAX_CREDIT_PER_WORKER, POLL, Rank,
};
use crate::data::wire::{self, Reader, Writer, malformed};

/// The coordinator's MPI thread.
pub(super) struct Coordinator {
    world: SimpleCommunicator,
    ranks: Vec<Rank>,
    pending: VecDeque<FramedJob>,
    /// How many tasks the pending jobs have.
    pending_tasks: usize,
    loads: HashMap<u64, LoadWait>,
    counters: Arc<Counters>,
    progress: Arc<ProgressBoard>,
    shutting_down: bool,
    /// How long tasks take, for the ranks' credit.
    sizer: JobSizer,
    outbox: Outbox,
}

impl Coordinator {
    pub(super) fn new(
        ranks: Vec<Rank>,
        counters: Arc<Counters>,
        progress: Arc<ProgressBoard>,
    ) -> Coordinator {
        Coordinator {
            world: SimpleCommunicator::world(),
            ranks,
            pending: VecDeque::new(),
            pending_tasks: 0,
            loads: HashMap::new(),
            counters,
            progress,
            shutting_down: false,
            sizer: JobSizer::default(),
            outbox: Outbox::default(),
        }
    }

    pub(super) fn run(mut self, orders: &Receiver<Control>) {
        loop {
            let mut busy = false;
            loop {
                match orders.try_recv() {
                    Ok(order) => self.take(order),
                    Err(TryRecvError::Empty) => break,
                    // The cluster is gone: finish what is held, then stop.
                    Err(TryRecvError::Disconnected) => {
                        self.shutting_down = true;
                        break;
                    }
                }
                busy = true;
            }
            busy |= self.dispatch();
            busy |= self.receive();
            self.outbox.poll();
            // Each rank's held tasks are locked only once there is nothing
            // else to wait for.
            if self.shutting_down
                && self.pending.is_empty()
                && self.loads.is_empty()
                && self.ranks.iter().all(|rank| lock(&rank.held).is_empty())
            {
                break;
            }
            if !busy {
                // Until an order comes (its sender unparks this thread) or
                // it is time to poll MPI again. Parking does not spin, as a
                // channel's blocking receive does before it sleeps: on a
                // machine whose cores all run tasks, spinning takes a share
                // of theirs.
                std::thread::park_timeout(POLL);
            }
        }
        for rank in 0..self.ranks.len() {
            self.send(self.ranks[rank].rank, vec![0], wire::STOP);
        }
        // A rank may still be sending (a progress report, which nothing
        // waits for): take in what comes until each says it has stopped,
        // so that no send waits for ever on a rank that left.
        let mut running = self.ranks.len();
        while running > 0 {
            self.outbox.poll();
            match self.world.any_process().immediate_matched_probe() {
                Some((message, status)) => {
                    let _ = (message, status).matched_receive_vec::<u8>();
                    if status.tag() == wire::STOPPED {
                        running -= 1;
                    }
                }
                None => std::thread::sleep(POLL),
            }
        }
        // Each rank took in all it was sent before it stopped.
        self.outbox.flush();
    }

    fn take(&mut self, order: Control) {
        match order {
            Control::Load {
                task,
                message,
                reply,
            } => {
                self.loads.insert(task, (reply, self.ranks.len(), None));
                let ranks: Vec<i32> = self.ranks.iter().map(|rank| rank.rank).collect();
                for rank in ranks {
                    self.send(rank, message.clone(), wire::LOAD);
                }
            }
            Control::Job(job) => {
                self.pending_tasks += job.state.tasks();
                self.pending.push_back(job);
            }
            Control::Shutdown { cancel_pending } => {
                self.shutting_down = true;
                if cancel_pending {
                    self.pending_tasks = 0;
                    for job in self.pending.drain(..) {
                        job.state.cancel();
                        self.counters.skipped(job.state.tasks());
                    }
                }
            }
        }
    }

    /// Sends chunks of pending jobs to ranks with credit; true if it sent
    /// any.
    fn dispatch(&mut self) -> bool {
        let mut sent = false;
        let ranks = self.ranks.len().max(1);
        for index in 0..self.ranks.len() {
            let rank = &mut self.ranks[index];
            // Per core, the task it runs and IN_FLIGHT of work to follow:
            // thousands of tiny tasks, one slow one; two a core until the
            // first results say how long tasks take.
            let per_worker = (self.sizer.tasks_in(IN_FLIGHT, MAX_CREDIT_PER_WORKER) + 1)
                .min(MAX_CREDIT_PER_WORKER);
            let allowed = rank.workers * per_worker;
            let credit = allowed.saturating_sub(rank.holding);
            if credit == 0 || self.pending.is_empty() {
                continue;
            }
            // Small chunks when little is pending, so every rank gets some.
            let share = self.pending_tasks.div_ceil(ranks);
            let size = credit.min(share.max(1)).min(MAX_CHUNK);
            let task = self.pending[0].task;
            let mut out = Writer::default();
            out.u64(task).u32(0);
            let mut jobs = 0u32;
            let mut tasks = 0;
            let mut held = lock(&rank.held);
            while let Some(job) = self.pending.front() {
                let length = job.state.tasks();
                // A job is not split: one that would pass the chunk's size
                // goes in the next, unless it is alone.
                if job.task != task || (tasks > 0 && tasks + length > size) {
                    break;
                }
                let job = self.pending.pop_front().expect("checked above");
                self.pending_tasks -= length;
                if !job.state.start() {
                    self.counters.skipped(length); // cancelled while queued
                    continue;
                }
                self.counters.started(length);
                out.0.extend_from_slice(&job.framed);
                held.insert(
                    job.id,
                    Held {
                        state: job.state,
                        seed_keys: job.seed_keys,
                    },
                );
                rank.holding += length;
                tasks += length;
                jobs += 1;
            }
            drop(held);
            if jobs > 0 {
                // The count, written as 0 after the task id, now known.
                out.0[8..12].copy_from_slice(&jobs.to_le_bytes());
                let destination = rank.rank;
                self.send(destination, out.0, wire::WORK);
                sent = true;
            }
        }
        sent
    }

    /// Starts sending `bytes` to `rank`: a rank busy with its tasks holds
    /// up neither the others' chunks nor their results.
    fn send(&mut self, rank: i32, bytes: Vec<u8>, tag: Tag) {
        self.outbox
            .send(&self.world.process_at_rank(rank), bytes, tag);
    }

    /// Takes in what the ranks sent; true if anything came.
    fn receive(&mut self) -> bool {
        let mut got = false;
        while let Some((message, status)) = self.world.any_process().immediate_matched_probe() {
            got = true;
            let (bytes, _) = (message, status).matched_receive_vec::<u8>();
            let source = status.source_rank();
            let handled = match status.tag() {
                wire::RESULTS => self.results(source, bytes.into()),
                wire::PROGRESS => self.progress(source, &bytes),
                wire::LOADED => self.loaded(&bytes),
                _ => Err(wire::Malformed),
            };
            if handled.is_err() {
                // A rank of another wasmpool version, or a bug: nothing can
                // be trusted any more.
                eprintln!("wasmpool: {}", malformed(source));
                self.world.abort(2);
            }
        }
        got
    }

    /// Where the worker rank `source` is in `ranks`: a message from any
    /// other is malformed.
    fn rank_index(&self, source: i32) -> Result<usize, wire::Malformed> {
        self.ranks
            .iter()
            .position(|rank| rank.rank == source)
            .ok_or(wire::Malformed)
    }

    /// The worker rank `source`.
    fn rank(&self, source: i32) -> Result<&Rank, wire::Malformed> {
        Ok(&self.ranks[self.rank_index(source)?])
    }

    fn results(&mut self, source: i32, bytes: Bytes) -> Result<(), wire::Malformed> {
        let index = self.rank_index(source)?;
        let first_worker = self.ranks[index].first_worker;
        let held_runs = Arc::clone(&self.ranks[index].held);
        let mut held_runs = lock(&held_runs);
        let mut input = Reader::new(&bytes);
        let batched = input.u64()?;
        self.counters
            .batched(usize::try_from(batched).map_err(|_| wire::Malformed)?);
        let count = input.u32()?;
        let arrived = Instant::now();
        for _ in 0..count {
            let (job, results) = wire::read_results(&mut input, &bytes, first_worker, arrived)?;
            let held = held_runs.remove(&job).ok_or(wire::Malformed)?;
            if results.len() != held.state.tasks() {
                return Err(wire::Malformed);
            }
            self.ranks[index].holding -= results.len();
            self.sizer.observe(&results);
            for result in &results {
                // The task's own time on its worker, not its time in
                // flight (most of which it waits in the rank's queue).
                let busy = duration_of(result);
                let worker = match result {
                    Ok(output) => output.worker(),
                    Err(error) => error.worker().unwrap_or(first_worker),
                };
                self.counters.completed(worker, busy, result);
            }
            held.state.finish(results);
        }
        Ok(())
    }

    /// Shows what a rank's running tasks reported, on their handles and in
    /// the cluster's stats.
    fn progress(&self, source: i32, bytes: &[u8]) -> Result<(), wire::Malformed> {
        let rank = self.rank(source)?;
        let reported = wire::read_progress(bytes)?;
        for (offset, fraction) in reported.workers.iter().take(rank.workers).enumerate() {
            match fraction {
                Some(fraction) => self.progress.set(rank.first_worker + offset, *fraction),
                None => self.progress.clear(rank.first_worker + offset),
            }
        }
        let held = lock(&rank.held);
        // A job that finished since its rank wrote this has no place left.
        for (job, fraction) in reported.jobs {
            if let Some(held) = held.get(&job) {
                held.state.set_progress(fraction);
            }
        }
        Ok(())
    }

    fn loaded(&mut self, bytes: &[u8]) -> Result<(), wire::Malformed> {
        let mut input = Reader::new(bytes);
        let task = input.u64()?;
        let error = match input.u8()? {
            0 => None,
            _ => Some(input.string()?),
        };
        let Some((_, waiting, first_error)) = self.loads.get_mut(&task) else {
            return Err(wire::Malformed);
        };
        *waiting -= 1;
        if first_error.is_none() {
            *first_error = error;
        }
        if *waiting == 0 {
            let (reply, _, error) = self.loads.remove(&task).expect("present");
            let _ = reply.send(error.map_or(Ok(()), Err));
        }
        Ok(())
    }
}
