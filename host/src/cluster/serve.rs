//! A worker rank: runs what rank 0 sends on a local pool, a job per job
//! it was sent, and sends each job's results back, until told to stop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::data::error::BuildError;
use crate::data::ids::IdMap;
use crate::data::input::Input;
use crate::executor::Submit;
use crate::pool::{Pool, PoolBuilder};
use crate::sched::completions::Completions;
use crate::sched::handle::TaskHandle;
use crate::task::Task;

use super::outbox::Outbox;
use super::{MAX_CHUNK, POLL, PROGRESS_EVERY};
use crate::data::wire::{self, Reader, Writer, malformed};

/// A worker rank: runs what rank 0 sends on a local pool until told to stop.
pub(super) fn serve(world: &SimpleCommunicator, builder: PoolBuilder) -> Result<(), BuildError> {
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
            let handle = server.running.remove(&tag).expect("a tag of a running job");
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
    /// By job id, which is also the completion tag.
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

    /// Submits a chunk's jobs to the pool, a job each.
    fn work(&mut self, bytes: &Bytes) -> Result<(), wire::Malformed> {
        let mut input = Reader::new(bytes);
        let task = input.u64()?;
        let task = self.tasks.get(&task).cloned().ok_or(wire::Malformed)?;
        for _ in 0..input.u32()? {
            let job = wire::read_job(&mut input, bytes)?;
            let tag = usize::try_from(job.id).map_err(|_| wire::Malformed)?;
            let mut inputs: Vec<(Input, Option<u64>)> = job
                .tasks
                .into_iter()
                .map(|task| (Input::shared(task.input).seed_key(task.seed_key), None))
                .collect();
            if let (Some(limits), Some((first, _))) = (job.limits, inputs.first_mut()) {
                first.limits = Some(limits);
            }
            let listener = (Arc::clone(&self.completions), tag);
            let handle = self
                .pool
                .submit_job(&task, inputs, Some(listener))
                .map_err(|_| wire::Malformed)?;
            self.running.insert(tag, handle);
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
