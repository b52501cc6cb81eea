//! Cluster mode (feature `mpi`): the same tasks over MPI ranks, on OpenMPI
//! through the `mpi` crate.
//!
//! Every rank runs the same program (under `mpirun`) and calls [`start`].
//! Rank 0 becomes the coordinator and gets a [`Cluster`], an [`Executor`]
//! like a local [`Pool`]: it compiles each task once to check it, sends its
//! bytes to the other ranks, and hands them inputs in chunks. Every other
//! rank runs a local pool on all its cores and sends results back; [`start`]
//! returns [`Role::Worker`] there once the coordinator is done.
//!
//! Flow control is by credit: each worker rank holds, per core, the task it
//! runs and about 2 ms of work to follow (by a running average of task
//! durations: two slow tasks, up to 1,024 tiny ones), so the coordinator
//! never floods a rank and holds only the tasks in flight, and a rank that
//! finishes sooner gets more (the split is dynamic). One thread of the
//! coordinator does all its MPI calls.

mod wire;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mpi::Tag;
use mpi::Threading;
use mpi::environment::Universe;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, Process, SimpleCommunicator};

use crate::completions::{Completions, Listener};
use crate::error::{BuildError, LoadError, LoadErrorKind, SubmitError, TaskError};
use crate::executor::Executor;
use crate::handle::{Announce, ProgressBoard, Slot, TaskHandle};
use crate::ids::IdMap;
use crate::input::Input;
use crate::limits::Limits;
use crate::lock;
use crate::map::{Map, MapUnordered, RunSizer, Submit};
use crate::pool::{Pool, PoolBuilder};
use crate::stats::{Counters, Stats};
use crate::task::{LoadOptions, Task, duration_of};

use wire::{JobSpec, Reader, Writer};

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
const MAX_CHUNK: usize = 256;

/// How often a worker rank tells rank 0 the progress its running tasks
/// report, while any do: as often as a progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// How long an idle loop waits for something to do before it polls MPI
/// again.
const POLL: Duration = Duration::from_micros(200);

/// How long a send that waits for its receiver, with nothing else to do,
/// sleeps before it looks again. Spinning (even with `sched_yield`) took
/// the CPU that the receiving rank, or this rank's tasks, needed when ranks
/// share cores; a sleep costs a message at most this much more latency.
const SEND_POLL: Duration = Duration::from_micros(50);

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
    Jobs(Vec<Job>),
    Shutdown {
        cancel_pending: bool,
    },
}

struct Job {
    task: u64,
    spec: JobSpec,
    slot: Arc<Slot>,
}

/// The tasks a worker rank holds, by job id. The MPI thread locks it once
/// per chunk sent and once per batch of results.
type HeldTasks = Arc<Mutex<IdMap<u64, Held>>>;

/// A load waiting for every rank's answer: whom to tell, how many ranks
/// have not answered, the first error.
type LoadWait = (Sender<Result<(), String>>, usize, Option<String>);

/// A task on a worker rank: its slot, its seed key.
struct Held {
    slot: Arc<Slot>,
    seed_key: u64,
}

/// A worker rank as the coordinator sees it.
struct Rank {
    rank: i32,
    /// The rank's pool's workers.
    workers: usize,
    /// The rank's workers are numbered from here in results.
    first_worker: usize,
    held: HeldTasks,
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
            held,
            thread: Mutex::new(Some(thread)),
            tasks: Mutex::new(HashMap::new()),
            next_task: AtomicU64::new(0),
            next_job: AtomicU64::new(0),
            counters,
            progress,
            workers,
            // Room for the ranks' largest credit (for tiny tasks).
            window: window_hint.unwrap_or(workers * MAX_CREDIT_PER_WORKER),
            limits,
            _universe: universe,
        })
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
        let sent = self.control.send(Control::Load {
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
        self.submit_with(task, input, None, None)
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
        let _ = self.control.send(Control::Shutdown { cancel_pending });
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
                let mut keys: Vec<u64> = lock(tasks).values().map(|held| held.seed_key).collect();
                keys.sort_unstable();
                (!keys.is_empty()).then_some((*rank, keys))
            })
            .collect()
    }
}

impl Submit for Cluster {
    fn submit_with(
        &self,
        task: &Task,
        input: Input,
        position: Option<u64>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        let Some(task_id) = self.task_id(task) else {
            // Not loaded through this cluster: its bytes were never sent.
            return Err(SubmitError(input.bytes));
        };
        let (job, handle) = self.job(task_id, input, position, listener);
        match self.control.send(Control::Jobs(vec![job])) {
            Ok(()) => {
                self.counters.submitted(1);
                Ok(handle)
            }
            Err(refused) => Err(SubmitError(refused_inputs(refused.0).remove(0))),
        }
    }

    /// The whole run goes to the MPI thread as one message: one per task,
    /// each waking that thread, cost rank 0 more CPU than the tasks did.
    fn submit_run(
        &self,
        task: &Task,
        inputs: Vec<(Input, Option<u64>, Listener)>,
        handles: &mut Vec<Result<TaskHandle, SubmitError<Vec<u8>>>>,
    ) {
        let Some(task_id) = self.task_id(task) else {
            handles.extend(
                inputs
                    .into_iter()
                    .map(|(input, _, _)| Err(SubmitError(input.bytes))),
            );
            return;
        };
        let first = handles.len();
        let jobs: Vec<Job> = inputs
            .into_iter()
            .map(|(input, position, listener)| {
                let (job, handle) = self.job(task_id, input, position, Some(listener));
                handles.push(Ok(handle));
                job
            })
            .collect();
        let count = jobs.len();
        match self.control.send(Control::Jobs(jobs)) {
            Ok(()) => self.counters.submitted(count),
            Err(refused) => {
                let refused = refused_inputs(refused.0);
                for (handle, input) in handles[first..].iter_mut().zip(refused) {
                    *handle = Err(SubmitError(input));
                }
            }
        }
    }
}

impl Cluster {
    /// A job for the MPI thread, and its caller's handle.
    fn job(
        &self,
        task: u64,
        input: Input,
        position: Option<u64>,
        listener: Option<Listener>,
    ) -> (Job, TaskHandle) {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let slot = Slot::new(id, listener);
        let seed_key = input.seed_key_or(position, id);
        let Input { bytes, limits, .. } = input;
        let job = Job {
            task,
            spec: JobSpec {
                id,
                seed_key,
                limits: limits.filter(|limits| *limits != self.limits),
                input: bytes,
            },
            slot: Arc::clone(&slot),
        };
        (job, TaskHandle::new(slot))
    }
}

/// The inputs of the jobs an MPI thread that has stopped did not take.
fn refused_inputs(control: Control) -> Vec<Vec<u8>> {
    match control {
        Control::Jobs(jobs) => jobs.into_iter().map(|job| job.spec.input).collect(),
        _ => unreachable!("only jobs are handed back"),
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
    pending: VecDeque<Job>,
    loads: HashMap<u64, LoadWait>,
    counters: Arc<Counters>,
    progress: Arc<ProgressBoard>,
    shutting_down: bool,
    /// How long tasks take, for the ranks' credit.
    sizer: RunSizer,
}

impl Coordinator {
    fn new(ranks: Vec<Rank>, counters: Arc<Counters>, progress: Arc<ProgressBoard>) -> Coordinator {
        Coordinator {
            world: SimpleCommunicator::world(),
            ranks,
            pending: VecDeque::new(),
            loads: HashMap::new(),
            counters,
            progress,
            shutting_down: false,
            sizer: RunSizer::default(),
        }
    }

    fn run(mut self, orders: &Receiver<Control>) {
        loop {
            let mut busy = false;
            while let Ok(order) = orders.try_recv() {
                busy = true;
                self.take(order);
            }
            busy |= self.dispatch();
            busy |= self.receive();
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
                match orders.recv_timeout(POLL) {
                    Ok(order) => self.take(order),
                    Err(RecvTimeoutError::Timeout) => {}
                    // The cluster is gone: finish what is held, then stop.
                    Err(RecvTimeoutError::Disconnected) => self.shutting_down = true,
                }
            }
        }
        for rank in &self.ranks {
            self.world
                .process_at_rank(rank.rank)
                .send_with_tag(&[0u8][..], wire::STOP);
        }
        // A rank may still be sending (a progress report, which nothing
        // waits for): take in what comes until each says it has stopped,
        // so that no send waits for ever on a rank that left.
        let mut running = self.ranks.len();
        while running > 0 {
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
                    self.send(rank, &message, wire::LOAD);
                }
            }
            Control::Jobs(jobs) => self.pending.extend(jobs),
            Control::Shutdown { cancel_pending } => {
                self.shutting_down = true;
                if cancel_pending {
                    for job in self.pending.drain(..) {
                        if job.slot.start() {
                            job.slot.finish(Err(TaskError::cancelled()));
                        }
                        self.counters.skipped();
                    }
                }
            }
        }
    }

    /// Sends chunks of pending jobs to ranks with credit; true if it sent any.
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
            let mut held = lock(&rank.held);
            let credit = allowed.saturating_sub(held.len());
            if credit == 0 || self.pending.is_empty() {
                continue;
            }
            // Small chunks when little is pending, so every rank gets some.
            let share = self.pending.len().div_ceil(ranks);
            let size = credit.min(share.max(1)).min(MAX_CHUNK);
            let task = self.pending[0].task;
            let mut out = Writer::default();
            out.u64(task).u32(0);
            let mut count = 0u32;
            while (count as usize) < size {
                let Some(job) = self.pending.front() else {
                    break;
                };
                if job.task != task {
                    break;
                }
                let job = self.pending.pop_front().expect("checked above");
                if !job.slot.start() {
                    self.counters.skipped(); // cancelled while queued
                    continue;
                }
                self.counters.started();
                wire::write_job(&mut out, &job.spec);
                held.insert(
                    job.spec.id,
                    Held {
                        slot: job.slot,
                        seed_key: job.spec.seed_key,
                    },
                );
                count += 1;
            }
            drop(held);
            if count > 0 {
                // The count, written as 0 after the task id, now known.
                out.0[8..12].copy_from_slice(&count.to_le_bytes());
                let destination = rank.rank;
                self.send(destination, &out.0, wire::WORK);
                sent = true;
            }
        }
        sent
    }

    /// Sends `bytes` to `rank`, taking in what every rank sends meanwhile:
    /// a rank busy with its tasks holds up neither the others' results nor
    /// its own.
    fn send(&mut self, rank: i32, bytes: &[u8], tag: Tag) {
        let world = SimpleCommunicator::world();
        send_while(&world.process_at_rank(rank), bytes, tag, || self.receive());
    }

    /// Takes in what the ranks sent; true if anything came.
    fn receive(&mut self) -> bool {
        let mut got = false;
        while let Some((message, status)) = self.world.any_process().immediate_matched_probe() {
            got = true;
            let (bytes, _) = (message, status).matched_receive_vec::<u8>();
            let source = status.source_rank();
            let handled = match status.tag() {
                wire::RESULTS => self.results(source, &bytes),
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

    /// The worker rank `source`: a message from any other is malformed.
    fn rank(&self, source: i32) -> Result<&Rank, wire::Malformed> {
        self.ranks
            .iter()
            .find(|rank| rank.rank == source)
            .ok_or(wire::Malformed)
    }

    fn results(&mut self, source: i32, bytes: &[u8]) -> Result<(), wire::Malformed> {
        let rank = self.rank(source)?;
        let first_worker = rank.first_worker;
        let held_tasks = Arc::clone(&rank.held);
        let mut held_tasks = lock(&held_tasks);
        let mut input = Reader::new(bytes);
        let count = input.u32()?;
        let batched = input.u64()?;
        self.counters
            .batched(usize::try_from(batched).map_err(|_| wire::Malformed)?);
        // The map hears of the whole message at once.
        let mut announce = Announce::default();
        for _ in 0..count {
            let (job, result) = wire::read_result(&mut input, first_worker)?;
            let held = held_tasks.remove(&job).ok_or(wire::Malformed)?;
            // The task's own time on its worker, not its time in flight
            // (most of which it waits in the rank's queue).
            let busy = duration_of(&result);
            let worker = match &result {
                Ok(output) => output.worker(),
                Err(error) => error.worker().unwrap_or(first_worker),
            };
            self.counters.completed(worker, busy, &result);
            self.sizer.observe(&result);
            held.slot.finish_announcing(result, &mut announce);
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
        sizer: RunSizer::default(),
        handles: Vec::new(),
    };
    let mut finished = VecDeque::new();
    let mut batched_reported = 0;
    let mut progress_told = Instant::now();
    let mut progress_shown = false;
    loop {
        if server.running.is_empty() && server.stopping {
            // Whatever this rank sent has been taken in: rank 0 may go.
            send_while(&root, &[0u8][..], wire::STOPPED, || server.receive());
            break;
        }
        if progress_told.elapsed() >= PROGRESS_EVERY {
            progress_told = Instant::now();
            let progress = server.progress();
            let showing = progress.workers.iter().any(Option::is_some);
            // Once more after the last report ends, to clear it.
            if showing || progress_shown {
                let message = wire::progress(&progress);
                send_while(&root, &message, wire::PROGRESS, || server.receive());
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
        out.u32(finished.len() as u32)
            .u64(batched - batched_reported);
        batched_reported = batched;
        for tag in finished.drain(..) {
            let handle = server.running.remove(&tag).expect("a tag of a running job");
            let result = handle.wait();
            server.sizer.observe(&result);
            wire::write_result(&mut out, tag as u64, &result);
        }
        send_while(&root, &out.0, wire::RESULTS, || server.receive());
    }
    Ok(())
}

/// Sends `bytes` to `process` without waiting on it idle: `meanwhile` runs
/// until the send completes, and says whether it found something to do.
///
/// Past MPI's eager size (big inputs, big outputs, long chunks) a send
/// waits for the matching receive. Rank 0 and a worker rank sending to
/// each other with blocking sends would wait on each other for ever; and a
/// blocking send to a busy rank would hold up every other.
fn send_while(process: &Process<'_>, bytes: &[u8], tag: Tag, mut meanwhile: impl FnMut() -> bool) {
    mpi::request::scope(|scope| {
        let mut sending = process.immediate_send_with_tag(scope, bytes, tag);
        loop {
            match sending.test() {
                Ok(_) => break,
                Err(request) => sending = request,
            }
            if !meanwhile() {
                std::thread::sleep(SEND_POLL);
            }
        }
    });
}

/// A worker rank's state between messages.
struct Server<'r> {
    world: &'r SimpleCommunicator,
    pool: &'r Pool,
    tasks: HashMap<u64, Task>,
    completions: Arc<Completions>,
    /// By job id, which is also the completion tag.
    running: IdMap<usize, TaskHandle>,
    stopping: bool,
    sizer: RunSizer,
    handles: Vec<Result<TaskHandle, SubmitError<Vec<u8>>>>,
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
                root.send_with_tag(&reply[..], wire::LOADED);
            }),
            wire::WORK => self.work(&bytes),
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

    /// Submits a chunk of jobs to the pool.
    fn work(&mut self, bytes: &[u8]) -> Result<(), wire::Malformed> {
        let mut input = Reader::new(bytes);
        let task = input.u64()?;
        let task = self.tasks.get(&task).cloned().ok_or(wire::Malformed)?;
        let count = input.u32()? as usize;
        let mut tags = Vec::with_capacity(count);
        let mut jobs = Vec::with_capacity(count);
        for _ in 0..count {
            let spec = wire::read_job(&mut input)?;
            let mut job = Input::new(spec.input).seed_key(spec.seed_key);
            if let Some(limits) = spec.limits {
                job = job.limits(limits);
            }
            let tag = usize::try_from(spec.id).map_err(|_| wire::Malformed)?;
            tags.push(tag);
            jobs.push((job, None, (Arc::clone(&self.completions), tag)));
        }
        // Tiny tasks go to the pool in runs, as a map's do; each worker
        // gets a share of the chunk at least. One handle per job, in order.
        let length = self.sizer.length(count.div_ceil(2 * self.pool.workers()));
        let mut jobs = jobs.into_iter();
        loop {
            let run: Vec<_> = jobs.by_ref().take(length).collect();
            if run.is_empty() {
                break;
            }
            self.pool.submit_run(&task, run, &mut self.handles);
        }
        for (tag, handle) in tags.into_iter().zip(self.handles.drain(..)) {
            self.running
                .insert(tag, handle.map_err(|_| wire::Malformed)?);
        }
        Ok(())
    }

    /// What this rank's running tasks last reported.
    fn progress(&self) -> wire::Progress {
        wire::Progress {
            workers: self.pool.stats().progress,
            jobs: self
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
