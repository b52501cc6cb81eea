//! Cluster mode (feature `mpi`): the same tasks over MPI ranks, on OpenMPI
//! through the `mpi` crate.
//!
//! Every rank runs the same program (under `mpirun`) and calls [`start`].
//! Rank 0 becomes the coordinator and gets a [`Cluster`], an [`Executor`]
//! like a local [`Pool`]: it compiles each task once to check it, sends its
//! bytes to the other ranks, and hands them a map's jobs of inputs in
//! chunks (`coordinator.rs`). Every other rank runs a local pool on all its
//! cores, each job it is sent as one job of that pool, and sends each
//! job's results back together (`serve.rs`); [`start`] returns
//! [`Role::Worker`] there once the coordinator is done.
//!
//! Flow control is by credit: each worker rank holds, per core, the task it
//! runs and about 2 ms of work to follow (by a running average of task
//! durations: two slow tasks, up to 1,024 tiny ones), so the coordinator
//! never floods a rank and holds only the tasks in flight, and a rank that
//! finishes sooner gets more (the split is dynamic). One thread of the
//! coordinator does all its MPI calls, and no send waits for its
//! receiver.

mod coordinator;
mod outbox;
mod serve;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_channel::{SendError, Sender};
use mpi::Threading;
use mpi::environment::Universe;
use mpi::point_to_point::{MatchedReceiveVec, Source};
use mpi::topology::Communicator;

use crate::data::error::{BuildError, LoadError, LoadErrorKind, SubmitError};
use crate::data::ids::IdMap;
use crate::data::input::Input;
use crate::data::limits::Limits;
use crate::data::load_options::LoadOptions;
use crate::data::lock;
use crate::data::progress::ProgressBoard;
use crate::data::wire::{self, Reader, Writer, malformed};
use crate::executor::{self, Executor, Submit};
use crate::pool::{Pool, PoolBuilder};
use crate::sched::completions::Listener;
use crate::sched::handle::TaskHandle;
use crate::sched::job::JobState;
use crate::sched::map::{Map, MapUnordered};
use crate::sched::stats::{Counters, Stats};
use crate::task::Task;
use coordinator::Coordinator;
use serve::serve;

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
             job tasks (e.g. mpirun -n 3 wasmpool job --mpi ...)",
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
    /// A job of a map's inputs, or one task.
    Job(FramedJob),
    Shutdown {
        cancel_pending: bool,
    },
}

/// Tasks queued together, sent to one rank together and finished together.
struct FramedJob {
    task: u64,
    /// The id of the job's first task, which names the job.
    id: u64,
    /// The job as a chunk carries it ([`wire::write_job`]), framed by the
    /// thread that submitted it: each input is copied once, on the thread
    /// that made it, and the MPI thread only appends jobs to a chunk.
    framed: Vec<u8>,
    seed_keys: Vec<u64>,
    state: Arc<JobState>,
}

/// The jobs a worker rank holds, by job id. The MPI thread locks it once
/// per chunk sent and once per batch of results.
type HeldTasks = Arc<Mutex<IdMap<u64, Held>>>;

/// A load waiting for every rank's answer: whom to tell, how many ranks
/// have not answered, the first error.
type LoadWait = (Sender<Result<(), String>>, usize, Option<String>);

/// A job on a worker rank: its state, its tasks' seed keys.
struct Held {
    state: Arc<JobState>,
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
    /// How many tasks its held jobs have.
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
            // much again queued on this rank: jobs ready to go out as soon
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
        self.submit_job(task, vec![(input, None)], None)
            .map_err(|mut inputs| SubmitError(inputs.swap_remove(0)))
    }

    fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        executor::map(self, task, inputs.into_iter(), self.window)
    }

    fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        executor::map_unordered(self, task, inputs.into_iter(), self.window)
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
    /// The job goes to the MPI thread as one message, and to one rank
    /// whole.
    fn submit_job(
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
        wire::write_job(&mut framed, first, limits.as_ref(), tasks);
        let state = JobState::new(first, count, listener);
        let job = FramedJob {
            task,
            id: first,
            framed: framed.0,
            seed_keys,
            state: Arc::clone(&state),
        };
        match self.order(Control::Job(job)) {
            Ok(()) => {
                self.counters.submitted(count);
                Ok(TaskHandle::new(state))
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

/// What tells tasks apart in [`Cluster::tasks`]: their compiled program.
fn program_key(task: &Task) -> usize {
    Arc::as_ptr(&task.program) as *const () as usize
}
