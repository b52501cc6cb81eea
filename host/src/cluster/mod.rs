//! Cluster mode (feature `mpi`): the same tasks over MPI ranks, on OpenMPI
//! through the `mpi` crate.
//!
//! Every rank runs the same program (under `mpirun`) and calls [`start`].
//! Rank 0 becomes the coordinator and gets a [`Cluster`], an [`Executor`]
//! like a local [`Pool`]: it compiles each task once to check it, sends its
//! bytes to the other ranks, and hands them a map's runs of inputs in
//! chunks. Every other rank runs a local pool on all its cores, a run as
//! one job, and sends each run's results back together; [`start`] returns
//! [`Role::Worker`] there once the coordinator is done.
//!
//! Flow control is by credit: each worker rank holds, per core, the task it
//! runs and about 2 ms of work to follow (by a running average of task
//! durations: two slow tasks, up to 1,024 tiny ones), so the coordinator
//! never floods a rank and holds only the tasks in flight, and a rank that
//! finishes sooner gets more (the split is dynamic). One thread of the
//! coordinator does all its MPI calls, and no send waits for its
//! receiver.

mod outbox;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, SendError, Sender, TryRecvError};
use mpi::Tag;
use mpi::Threading;
use mpi::environment::Universe;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::completions::{Completions, Listener};
use crate::error::{BuildError, LoadError, LoadErrorKind, SubmitError};
use crate::executor::Executor;
use crate::handle::{ProgressBoard, Slot, TaskHandle};
use crate::ids::IdMap;
use crate::input::Input;
use crate::limits::Limits;
use crate::lock;
use crate::map::{Map, MapUnordered, RunSizer, Submit};
use crate::pool::{Pool, PoolBuilder};

use crate::stats::{Counters, Stats};
use crate::task::{LoadOptions, Task, duration_of};
use outbox::Outbox;

use wire::{Reader, Writer};

/// Tasks a worker rank may hold per core of its pool when tasks are tiny:
/// enough for [`IN_FLIGHT`] of work each.
const MAX_CREDIT_PER_WORKER: usize = 1024;

/// About how much work each core of a worker rank holds, besides the task
/// it runs: more than a round trip to rank 0 and back, so that no rank runs
/// dry while its results travel and its next chunk is sent. Slow tasks
/// make that one task ready per core, no more: work a rank holds is work a
/// faster rank cannot take.
const IN_FLIGHT: Duration = Duration::from_millis(2);

/// Most tasks in one `WORK` message.
const MAX_CHUNK: usize = 1024;

/// How often a worker rank tells rank 0 the progress its running tasks
/// report, while any do: as often as a progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// How long an idle loop waits for something to do before it polls MPI
/// again.
const POLL: Duration = Duration::from_micros(200);

/// What [`start`] made of this rank.
pub enum Role {
    /// Rank 0: submit tasks here.
    Coordinator(Box<Cluster>),
    /// Any other rank: it ran tasks until the coordinator finished, and has
    /// nothing more to do.
    Worker,
}

/// Initialises MPI and gives this rank its role. Every rank must call it
/// with the same builder: worker ranks build their pools from it, the
/// coordinator checks tasks with it.
///
/// Call it before anything else that uses MPI or wasmtime, so that
/// wasmtime's signal handlers are installed after MPI's.
pub fn start(builder: PoolBuilder) -> Result<Role, BuildError> {
    let Some((universe, threading)) = mpi::initialize_with_threading(Threading::Multiple) else {
        return Err(BuildError::new(
            "MPI is already initialised in this process: call wasmpool::cluster::start once",
        ));
    };
    if threading < Threading::Serialized {
        return Err(BuildError::new(format!(
            "this MPI library provides only {threading:?} threading; wasmpool needs \
             Serialized or better (OpenMPI does)"
        )));
    }
    let world = universe.world();
    if world.size() < 2 {
        return Err(BuildError::new(
            "cluster mode needs at least 2 MPI ranks: rank 0 coordinates, the others \
             run tasks (e.g. mpirun -n 3 wasmpool run --mpi ...)",
        ));
    }
    if world.rank() == 0 {
        Cluster::new(universe, builder).map(|cluster| Role::Coordinator(Box::new(cluster)))
    } else {
        let served = serve(&world, builder);
        drop(universe);
        served.map(|()| Role::Worker)
    }
}

/// A pool spread over MPI ranks, seen from rank 0.
pub struct Cluster {
    /// Compiles tasks on rank 0 to check them before they are sent.
    checker: Pool,
    control: Sender<Control>,
    /// The MPI thread, woken by each order sent on `control`.
    mpi_thread: Thread,
    /// What each rank holds, by rank: read here, without a round trip
    /// through the MPI thread, which may be busy or inside an MPI call when
    /// a signal (often a rank's death) asks, with mpirun about to kill this
    /// rank too.
    held: Vec<(i32, HeldTasks)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Task ids by the address of their compiled program.
    tasks: Mutex<HashMap<usize, u64>>,
    next_task: AtomicU64,
    next_job: AtomicU64,
    counters: Arc<Counters>,
    /// What the ranks last said their workers' running tasks reported.
    progress: Arc<ProgressBoard>,
    workers: usize,
    window: usize,
    limits: Limits,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

/// What the coordinator's MPI thread is asked to do.
enum Control {
    Load {
        task: u64,
        message: Vec<u8>,
        reply: Sender<Result<(), String>>,
    },
    /// A run of a map's inputs, or one task.
    Run(Run),
    Shutdown {
        cancel_pending: bool,
    },
}

/// Tasks queued together, sent to one rank together and finished together.
struct Run {
    task: u64,
    /// The id of the run's first task, which names the run.
    id: u64,
    /// The run as a chunk carries it ([`wire::write_run`]), framed by the
    /// thread that submitted it: each input is copied once, on the thread
    /// that made it, and the MPI thread only appends runs to a chunk.
    framed: Vec<u8>,
    seed_keys: Vec<u64>,
    slot: Arc<Slot>,
}

/// The runs a worker rank holds, by run id. The MPI thread locks it once
/// per chunk sent and once per batch of results.
type HeldTasks = Arc<Mutex<IdMap<u64, Held>>>;

/// A load waiting for every rank's answer: whom to tell, how many ranks
/// have not answered, the first error.
type LoadWait = (Sender<Result<(), String>>, usize, Option<String>);

/// A run on a worker rank: its slot, its tasks' seed keys.
struct Held {
    slot: Arc<Slot>,
    seed_keys: Vec<u64>,
}

/// A worker rank as the coordinator sees it.
struct Rank {
    rank: i32,
    /// The rank's pool's workers.
    workers: usize,
    /// The rank's workers are numbered from here in results.
    first_worker: usize,
    held: HeldTasks,
    /// How many tasks its held runs have.
    holding: usize,
}

impl Cluster {
    fn new(universe: Universe, builder: PoolBuilder) -> Result<Cluster, BuildError> {
        let limits = builder.default_limits();
        let window_hint = builder.window_hint();
        let checker = builder.workers(1).build()?;
        let world = universe.world();
        // Each rank says how many workers its pool has.
        let mut ranks = Vec::new();
        for _ in 1..world.size() {
            let (message, status) = world.any_process().matched_probe_with_tag(wire::READY);
            let (bytes, _) = (message, status).matched_receive_vec::<u8>();
            let mut input = Reader::new(&bytes);
            let Ok(rank_workers) = input.u64() else {
                return Err(BuildError::new(malformed(status.source_rank())));
            };
            ranks.push(Rank {
                rank: status.source_rank(),
                workers: rank_workers as usize,
                first_worker: 0,
                held: HeldTasks::default(),
                holding: 0,
            });
        }
        // Workers are numbered by rank, whichever rank was ready first.
        ranks.sort_by_key(|rank| rank.rank);
        let mut workers = 0;
        for rank in &mut ranks {
            rank.first_worker = workers;
            workers += rank.workers;
        }
        let counters = Arc::new(Counters::new(workers));
        let progress = Arc::new(ProgressBoard::new(workers));
        let (control, orders) = crossbeam_channel::unbounded();
        let held = ranks
            .iter()
            .map(|rank| (rank.rank, Arc::clone(&rank.held)))
            .collect();
        let thread = {
            let counters = Arc::clone(&counters);
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name("wasmpool-mpi".to_string())
                .spawn(move || Coordinator::new(ranks, counters, progress).run(&orders))
                .map_err(|error| BuildError::new(format!("cannot start the MPI thread: {error}")))?
        };
        Ok(Cluster {
            checker,
            control,
            mpi_thread: thread.thread().clone(),
            held,
            thread: Mutex::new(Some(thread)),
            tasks: Mutex::new(HashMap::new()),
            next_task: AtomicU64::new(0),
            next_job: AtomicU64::new(0),
            counters,
            progress,
            workers,
            // Room for the ranks' largest credit (for tiny tasks), and as
            // much again queued on this rank: runs ready to go out as soon
            // as results free credit, rather than once the map has taken
            // those results in and read more inputs.
            window: window_hint.unwrap_or(2 * workers * MAX_CREDIT_PER_WORKER),
            limits,
            _universe: universe,
        })
    }

    /// Hands `order` to the MPI thread and wakes it if it waits.
    fn order(&self, order: Control) -> Result<(), SendError<Control>> {
        self.control.send(order)?;
        self.mpi_thread.unpark();
        Ok(())
    }

    /// The id the ranks know `task` by.
    fn task_id(&self, task: &Task) -> Option<u64> {
        lock(&self.tasks).get(&program_key(task)).copied()
    }
}

impl Executor for Cluster {
    fn load_with(&self, path: &Path, options: &LoadOptions) -> Result<Task, LoadError> {
        let task = self.checker.load_with(path, options)?;
        let bytes = std::fs::read(path)
            .map_err(|error| LoadError::new(LoadErrorKind::Io, error.to_string()).at(path))?;
        let id = self.next_task.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = crossbeam_channel::bounded(1);
        let message = wire::load(id, &bytes, task.name(), options);
        let sent = self.order(Control::Load {
            task: id,
            message,
            reply,
        });
        let answer = sent
            .ok()
            .and_then(|()| answer.recv().ok())
            .unwrap_or_else(|| Err("the cluster is shut down".to_string()));
        answer.map_err(|why| LoadError::new(LoadErrorKind::Invalid, why).at(path))?;
        lock(&self.tasks).insert(program_key(&task), id);
        Ok(task)
    }

    fn submit_input(&self, task: &Task, input: Input) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        self.submit_run(task, vec![(input, None)], None)
            .map_err(|mut inputs| SubmitError(inputs.swap_remove(0)))
    }

    fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        Map::new(self, task.clone(), inputs.into_iter(), self.window)
    }

    fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        MapUnordered::new(self, task.clone(), inputs.into_iter(), self.window)
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn stats(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        stats.progress = self.progress.snapshot();
        stats
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        let _ = self.order(Control::Shutdown { cancel_pending });
        if wait && let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }

    /// Cancels the queued tasks; tasks already on a worker rank finish
    /// there (MPI has no way to stop them early).
    fn shutdown_now(&self) {
        self.shutdown(true, true);
    }

    /// What was sent to each rank and has no result yet.
    fn held(&self) -> Vec<(i32, Vec<u64>)> {
        self.held
            .iter()
            .filter_map(|(rank, tasks)| {
                let mut keys: Vec<u64> = lock(tasks)
                    .values()
                    .flat_map(|held| held.seed_keys.iter().copied())
                    .collect();
                keys.sort_unstable();
                (!keys.is_empty()).then_some((*rank, keys))
            })
            .collect()
    }
}

impl Submit for Cluster {
    /// The run goes to the MPI thread as one message, and to one rank as
    /// one job.
    fn submit_run(
        &self,
        task: &Task,
        mut inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>> {
        let Some(task) = self.task_id(task) else {
            // Not loaded through this cluster: its bytes were never sent.
            return Err(inputs
                .into_iter()
                .map(|(input, _)| Vec::from(input.bytes))
                .collect());
        };
        let count = inputs.len();
        let first = self.next_job.fetch_add(count as u64, Ordering::Relaxed);
        let limits = inputs
            .first_mut()
            .and_then(|(input, _)| input.limits.take())
            .filter(|limits| *limits != self.limits);
        let seed_keys: Vec<u64> = inputs
            .iter()
            .zip(first..)
            .map(|((input, position), id)| input.seed_key_or(*position, id))
            .collect();
        let mut framed = Writer::default();
        let tasks = seed_keys
            .iter()
            .zip(&inputs)
            .map(|(&seed_key, (input, _))| (seed_key, input.bytes()));
        wire::write_run(&mut framed, first, limits.as_ref(), tasks);
        let slot = Slot::new(first, count, listener);
        let run = Run {
            task,
            id: first,
            framed: framed.0,
            seed_keys,
            slot: Arc::clone(&slot),
        };
        match self.order(Control::Run(run)) {
            Ok(()) => {
                self.counters.submitted(count);
                Ok(TaskHandle::new(slot))
            }
            // The MPI thread is gone: the inputs are still here.
            Err(_) => Err(inputs
                .into_iter()
                .map(|(input, _)| Vec::from(input.bytes))
                .collect()),
        }
    }

    fn workers(&self) -> usize {
        self.workers
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // As for a pool: a panic cancels what waits rather than run it.
        self.shutdown(true, std::thread::panicking());
    }
}

/// The coordinator's MPI thread.
struct Coordinator {
    world: SimpleCommunicator,
    ranks: Vec<Rank>,
    pending: VecDeque<Run>,
    /// How many tasks the pending runs have.
    pending_tasks: usize,
    loads: HashMap<u64, LoadWait>,
    counters: Arc<Counters>,
    progress: Arc<ProgressBoard>,
    shutting_down: bool,
    /// How long tasks take, for the ranks' credit.
    sizer: RunSizer,
    outbox: Outbox,
}

impl Coordinator {
    fn new(ranks: Vec<Rank>, counters: Arc<Counters>, progress: Arc<ProgressBoard>) -> Coordinator {
        Coordinator {
            world: SimpleCommunicator::world(),
            ranks,
            pending: VecDeque::new(),
            pending_tasks: 0,
            loads: HashMap::new(),
            counters,
            progress,
            shutting_down: false,
            sizer: RunSizer::default(),
            outbox: Outbox::default(),
        }
    }

    fn run(mut self, orders: &Receiver<Control>) {
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
            Control::Run(run) => {
                self.pending_tasks += run.slot.tasks();
                self.pending.push_back(run);
            }
            Control::Shutdown { cancel_pending } => {
                self.shutting_down = true;
                if cancel_pending {
                    self.pending_tasks = 0;
                    for run in self.pending.drain(..) {
                        run.slot.cancel();
                        self.counters.skipped(run.slot.tasks());
                    }
                }
            }
        }
    }

    /// Sends chunks of pending runs to ranks with credit; true if it sent
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
            let mut runs = 0u32;
            let mut tasks = 0;
            let mut held = lock(&rank.held);
            while let Some(run) = self.pending.front() {
                let length = run.slot.tasks();
                // A run is not split: one that would pass the chunk's size
                // goes in the next, unless it is alone.
                if run.task != task || (tasks > 0 && tasks + length > size) {
                    break;
                }
                let run = self.pending.pop_front().expect("checked above");
                self.pending_tasks -= length;
                if !run.slot.start() {
                    self.counters.skipped(length); // cancelled while queued
                    continue;
                }
                self.counters.started(length);
                out.0.extend_from_slice(&run.framed);
                held.insert(
                    run.id,
                    Held {
                        slot: run.slot,
                        seed_keys: run.seed_keys,
                    },
                );
                rank.holding += length;
                tasks += length;
                runs += 1;
            }
            drop(held);
            if runs > 0 {
                // The count, written as 0 after the task id, now known.
                out.0[8..12].copy_from_slice(&runs.to_le_bytes());
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
            let (run, results) = wire::read_results(&mut input, &bytes, first_worker, arrived)?;
            let held = held_runs.remove(&run).ok_or(wire::Malformed)?;
            if results.len() != held.slot.tasks() {
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
            held.slot.finish(results);
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
        // A run that finished since its rank wrote this has no place left.
        for (run, fraction) in reported.runs {
            if let Some(held) = held.get(&run) {
                held.slot.set_progress(fraction);
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

/// A worker rank: runs what rank 0 sends on a local pool until told to stop.
fn serve(world: &SimpleCommunicator, builder: PoolBuilder) -> Result<(), BuildError> {
    let pool = builder.build()?;
    let root = world.process_at_rank(0);
    let mut ready = Writer::default();
    ready.u64(pool.workers() as u64);
    root.send_with_tag(&ready.0[..], wire::READY);

    let mut server = Server {
        world,
        pool: &pool,
        tasks: HashMap::new(),
        completions: Completions::new(),
        running: IdMap::default(),
        stopping: false,
        outbox: Outbox::default(),
    };
    let mut finished = VecDeque::new();
    let mut batched_reported = 0;
    let mut progress_told = Instant::now();
    let mut progress_shown = false;
    loop {
        server.outbox.poll();
        if server.running.is_empty() && server.stopping {
            // Everything this rank sends arrives before this: rank 0 may
            // go once it has it.
            server.outbox.send(&root, vec![0], wire::STOPPED);
            server.outbox.flush();
            break;
        }
        if progress_told.elapsed() >= PROGRESS_EVERY {
            progress_told = Instant::now();
            let progress = server.progress();
            let showing = progress.workers.iter().any(Option::is_some);
            // Once more after the last report ends, to clear it.
            if showing || progress_shown {
                server
                    .outbox
                    .send(&root, wire::progress(&progress), wire::PROGRESS);
            }
            progress_shown = showing;
        }
        if server.receive() {
            continue;
        }
        if server.running.is_empty() {
            // Idle. MPI's blocking probe spins on a core, which the
            // pools of ranks sharing this machine need: sleep instead.
            std::thread::sleep(POLL);
            continue;
        }
        // Gather what finished (briefly, so that rank 0 is heard again soon).
        let batch = server.running.len().min(MAX_CHUNK);
        server
            .completions
            .gather(batch, Some(Instant::now() + POLL), &mut finished);
        if finished.is_empty() {
            continue;
        }
        // How many tasks ran in batches since the last results: rank 0's
        // stats count them for the whole cluster.
        let batched = pool.stats().batched;
        let mut out = Writer::default();
        out.u64(batched - batched_reported)
            .u32(finished.len() as u32);
        batched_reported = batched;
        for tag in finished.drain(..) {
            let handle = server.running.remove(&tag).expect("a tag of a running run");
            wire::write_results(&mut out, tag as u64, &handle.wait_all());
        }
        server.outbox.send(&root, out.0, wire::RESULTS);
    }
    Ok(())
}

/// A worker rank's state between messages.
struct Server<'r> {
    world: &'r SimpleCommunicator,
    pool: &'r Pool,
    tasks: HashMap<u64, Task>,
    completions: Arc<Completions>,
    /// By run id, which is also the completion tag.
    running: IdMap<usize, TaskHandle>,
    stopping: bool,
    outbox: Outbox,
}

impl Server<'_> {
    /// Takes in one message from rank 0, if one has come; true if it had.
    fn receive(&mut self) -> bool {
        let root = self.world.process_at_rank(0);
        let Some((message, status)) = root.immediate_matched_probe() else {
            return false;
        };
        let (bytes, _) = (message, status).matched_receive_vec::<u8>();
        let handled = match status.tag() {
            wire::LOAD => load(self.pool, &bytes, &mut self.tasks).map(|reply| {
                self.outbox.send(&root, reply, wire::LOADED);
            }),
            wire::WORK => self.work(&Bytes::from(bytes)),
            wire::STOP => {
                self.stopping = true;
                Ok(())
            }
            _ => Err(wire::Malformed),
        };
        if handled.is_err() {
            eprintln!("wasmpool: rank {}: {}", self.world.rank(), malformed(0));
            self.world.abort(2);
        }
        true
    }

    /// Submits a chunk's runs to the pool, a job each.
    fn work(&mut self, bytes: &Bytes) -> Result<(), wire::Malformed> {
        let mut input = Reader::new(bytes);
        let task = input.u64()?;
        let task = self.tasks.get(&task).cloned().ok_or(wire::Malformed)?;
        for _ in 0..input.u32()? {
            let run = wire::read_run(&mut input, bytes)?;
            let tag = usize::try_from(run.id).map_err(|_| wire::Malformed)?;
            let mut inputs: Vec<(Input, Option<u64>)> = run
                .tasks
                .into_iter()
                .map(|task| (Input::shared(task.input).seed_key(task.seed_key), None))
                .collect();
            if let (Some(limits), Some((first, _))) = (run.limits, inputs.first_mut()) {
                first.limits = Some(limits);
            }
            let listener = (Arc::clone(&self.completions), tag);
            let handle = self
                .pool
                .submit_run(&task, inputs, Some(listener))
                .map_err(|_| wire::Malformed)?;
            self.running.insert(tag, handle);
        }
        Ok(())
    }

    /// What this rank's running tasks last reported.
    fn progress(&self) -> wire::Progress {
        wire::Progress {
            workers: self.pool.stats().progress,
            runs: self
                .running
                .iter()
                .filter_map(|(&tag, handle)| Some((tag as u64, handle.progress()?)))
                .collect(),
        }
    }
}

/// Loads a task rank 0 sent; the reply says whether it loaded here.
fn load(
    pool: &Pool,
    bytes: &[u8],
    tasks: &mut HashMap<u64, Task>,
) -> Result<Vec<u8>, wire::Malformed> {
    let load = wire::read_load(bytes)?;
    let mut reply = Writer::default();
    reply.u64(load.task);
    match pool.load_named(load.bytes, &load.name, &load.options) {
        Ok(task) => {
            tasks.insert(load.task, task);
            reply.u8(0);
        }
        Err(error) => {
            reply.u8(1).str(&format!("{error}"));
        }
    }
    Ok(reply.0)
}

/// What tells tasks apart in [`Cluster::tasks`]: their compiled program.
fn program_key(task: &Task) -> usize {
    Arc::as_ptr(&task.program) as *const () as usize
}

fn malformed(rank: i32) -> String {
    format!(
        "rank {rank} sent a message this wasmpool cannot read: run the same wasmpool \
         build on every rank"
    )
}
