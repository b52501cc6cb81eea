//! `wasmpool run`: one record per input, in input order or as tasks finish,
//! with the tasks' output shown live on a terminal and a summary at the end.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::RecvTimeoutError;
use indicatif::ProgressBar;
use serde_json::value::RawValue;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wasmpool::{
    DEFAULT_ORDER_BUFFER, ErrorKind, Executor, LoadOptions, MapStop, Pool, PoolBuilder, TaskKind,
    TaskResult,
};

use super::block_writer::{BlockWriter, FLUSH_EVERY};
use super::inputs::{self, Input};
use super::live::{Live, REFRESH};
use super::record::Record;
use super::summary::{DirGrant, Grants, Summary};
use super::{EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, Format, RunArgs, report, resume};
use wasmpool::python::PythonBuild;

/// How long running tasks may go on after SIGINT or SIGTERM before they
/// are stopped.
const GRACE: Duration = Duration::from_secs(2);

/// What the input reader hands to the record writer: where each queued
/// input came from, and the inputs that could not be used.
struct Ledger {
    /// The run's start, which records' times count from.
    started: Instant,
    /// By the position among the inputs given to the pool (positions in
    /// sequence: a multiplicative hash, not SipHash, which was a tenth of
    /// this thread's time on a cluster).
    queued: FxHashMap<usize, (usize, Option<usize>, Box<RawValue>)>,
    /// Inputs that never reach the pool, in input order.
    invalid: VecDeque<Record>,
    next_queued: usize,
    /// How many results have their record: in input order, the position
    /// of the next.
    next_recorded: usize,
    /// Indices that already have a record (`--resume`): not run again.
    recorded: resume::Recorded,
    /// The first input that is not the one its index's record holds
    /// (index and line): the records are another run's, and the run stops.
    differs: Option<(usize, Option<usize>)>,
    skipped: usize,
    seen: usize,
    /// Inputs and outputs are text (a command program's stdin and stdout).
    text_io: bool,
}

impl Ledger {
    fn new(started: Instant, recorded: resume::Recorded, text_io: bool) -> Ledger {
        Ledger {
            started,
            queued: FxHashMap::default(),
            invalid: VecDeque::new(),
            next_queued: 0,
            next_recorded: 0,
            recorded,
            differs: None,
            skipped: 0,
            seen: 0,
            text_io,
        }
    }
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<u8> {
    wasmpool::keep_to_small_pages();
    if args.args_template.is_some() && args.program_args.iter().any(|arg| arg.contains("{}")) {
        anyhow::bail!(
            "two arguments templates: give it with --args-template or after --, not both"
        );
    }
    let builder = builder(&args)?;
    if args.mpi {
        return run_on_cluster(args, builder);
    }
    run_on(&args, builder.build()?)
}

/// Under `mpirun`: rank 0 runs the job, the other ranks serve it.
#[cfg(feature = "mpi")]
fn run_on_cluster(args: RunArgs, builder: wasmpool::PoolBuilder) -> anyhow::Result<u8> {
    match wasmpool::cluster::start(builder)? {
        wasmpool::cluster::Role::Coordinator(cluster) => run_on(&args, *cluster),
        wasmpool::cluster::Role::Worker => Ok(EXIT_OK),
    }
}

#[cfg(not(feature = "mpi"))]
fn run_on_cluster(_: RunArgs, _: wasmpool::PoolBuilder) -> anyhow::Result<u8> {
    anyhow::bail!(
        "this wasmpool was built without cluster mode: build it with \
         `cargo build --release --features mpi` (needs OpenMPI and libclang)"
    )
}

/// The run on a local pool or a cluster: inputs in, records out, a
/// summary and an exit code at the end.
fn run_on<E: Executor + Sync>(args: &RunArgs, pool: E) -> anyhow::Result<u8> {
    let python = PythonBuild {
        paths: args.python_path.clone(),
        cache: cache_dir(args),
    };
    let task_path = super::task_file(&args.task, &python)?;
    let inputs = read_inputs(args)?;
    if let (Some(path), Some(kinds)) = (&args.output, &args.retry_failed) {
        let taken = resume::take_failed(path, |kind| kinds.cover(kind))?;
        if !args.quiet {
            eprintln!("wasmpool: retrying {taken} failed inputs, and any without a record");
        }
    }
    let recorded = match &args.output {
        Some(path) if args.appends() => resume::recorded_inputs(path)?,
        _ => resume::Recorded::default(),
    };
    let task = pool.load_with(&task_path, &load_options(args))?;
    let output = BlockWriter::new(open_output(args)?);
    // --format text: the tasks' own output on stdout, the records (if
    // anywhere) in --output.
    let text = (args.format == Format::Text)
        .then(|| BlockWriter::new(Box::new(BufWriter::new(io::stdout()))));
    let outboxes: Vec<&BlockWriter> = std::iter::once(&output).chain(&text).collect();
    let total = match inputs.size_hint() {
        (known, Some(most)) if known == most => Some(known as u64),
        _ => None,
    };
    // Text on the terminal's stdout would tear the bar on its stderr.
    let on_terminal = !args.quiet
        && io::stderr().is_terminal()
        && !(text.is_some() && io::stdout().is_terminal());
    // A file's inputs are counted up front for the bar; a pipe's cannot be.
    let counted = match (total, &args.input_file, &args.lines) {
        (None, Some(path), _) if on_terminal => inputs::count(path, false),
        (None, _, Some(path)) if on_terminal => inputs::count(path, true),
        _ => total,
    };
    // Inputs with a record already (--resume) are not run again.
    let to_run = counted.map(|count| count.saturating_sub(recorded.len() as u64));
    // Text shows the tasks' output on stdout already: no echo on stderr.
    let echo = !args.no_echo && text.is_none();
    let live = RefCell::new(Live::new(on_terminal, to_run, echo));
    let started = Instant::now();
    // A command program reads text: a string input is given as its text.
    let text_io = task.kind() == TaskKind::Command;
    // Shared with the thread that reads inputs from a pipe (see
    // `write_records`), which admits them as they come.
    let ledger = Arc::new(Mutex::new(Ledger::new(started, recorded, text_io)));
    let interrupted = Arc::new(AtomicBool::new(false));
    // The map's stop, once it runs: a signal ends a map that waits for an
    // input from a quiet pipe.
    let map_stop: Arc<Mutex<Option<MapStop>>> = Arc::default();
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("cannot listen for SIGINT and SIGTERM")?;
    let signals_handle = signals.handle();

    let (run_over, helpers_stop) = crossbeam_channel::bounded::<()>(0);
    let bar = live.borrow().bar();
    let written = std::thread::scope(|scope| {
        if let Some(bar) = bar {
            // The bar's counts, and the progress the running tasks report,
            // refreshed a few times a second rather than per finished task.
            let (pool, stop) = (&pool, helpers_stop.clone());
            scope.spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(REFRESH) {
                    Live::status(&bar, &pool.stats());
                }
            });
        }
        let outboxes = &outboxes;
        scope.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = helpers_stop.recv_timeout(FLUSH_EVERY) {
                for outbox in outboxes {
                    outbox.flush_in_background();
                }
            }
        });
        scope.spawn(|| {
            if signals.forever().next().is_some() {
                interrupted.store(true, Ordering::SeqCst);
                if let Some(stop) = lock(&map_stop).as_ref() {
                    stop.stop();
                }
                interrupt(args, &pool, &mut signals, outboxes);
            }
        });
        let records = (text.is_none() || args.output.is_some()).then_some(&output);
        let mut writer = RecordWriter::new(records, args.report.is_some(), live.borrow().bar());
        writer.text = text.as_ref().map(|text| (text, text_io));
        let written = write_records(
            inputs,
            args,
            &pool,
            &task,
            &ledger,
            &interrupted,
            &map_stop,
            &live,
            &mut writer,
        );
        signals_handle.close();
        drop(run_over);
        written.map(|()| writer)
    });
    let written = match written {
        // `wasmpool run ... | head`: the reader has all it wanted.
        Err(error) if reader_gone(&error) => return Ok(EXIT_OK),
        written => written?,
    };
    live.borrow().finish();
    let mut summary = written.summary(started, pool.workers());
    let unrecorded = written.dropped;
    if let (Some(path), Some(rows)) = (&args.report, &written.report) {
        let notes: Vec<String> = summary.order_note().into_iter().collect();
        report::write(rows, &args.task.display().to_string(), &notes, path)?;
    }
    drop(written);
    for outbox in &outboxes {
        match outbox.flush().context("cannot write the records") {
            Err(error) if reader_gone(&error) => return Ok(EXIT_OK),
            flushed => flushed?,
        }
    }
    let ledger = lock(&ledger);
    if let (Some((index, line)), Some(path)) = (ledger.differs, &args.output) {
        let line = line.map_or(String::new(), |line| format!(" (line {line})"));
        anyhow::bail!(
            "--resume: input {index}{line} is not the input recorded for index {index} in {}: \
             its records are another run's; resume with that run's inputs, or write to a new --output",
            path.display()
        );
    }
    summary.resumed_skipped = ledger.skipped;
    summary.grants = grants(args);
    summary.interrupted = interrupted.load(Ordering::SeqCst);
    conclude(args, &summary, &ledger, total, unrecorded)
}

/// What the arguments grant the tasks, for the summary.
fn grants(args: &RunArgs) -> Grants {
    let dir = |(host, guest): &(std::path::PathBuf, String), writable| DirGrant {
        host: std::path::absolute(host)
            .unwrap_or_else(|_| host.clone())
            .display()
            .to_string(),
        guest: guest.clone(),
        writable,
    };
    Grants {
        dirs: (args.dir.iter().map(|grant| dir(grant, false)))
            .chain(args.dir_rw.iter().map(|grant| dir(grant, true)))
            .collect(),
        env: args.env.iter().map(|(key, _)| key.clone()).collect(),
    }
}

/// The inputs, from whichever source the arguments name.
fn read_inputs(args: &RunArgs) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
    match (&args.inputs, &args.input_file, &args.lines) {
        (Some(array), _, _) => inputs::from_json_array(array),
        (None, Some(path), _) => inputs::from_jsonl(path),
        (None, None, Some(path)) => inputs::from_lines(path),
        (None, None, None) => unreachable!("clap requires one input source"),
    }
}

/// Where the records go: the output file (appended to with `--resume`),
/// else stdout, else (--format text, whose stdout is the tasks') nowhere.
fn open_output(args: &RunArgs) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match &args.output {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(args.appends())
                .truncate(!args.appends())
                .open(path)
                .with_context(|| format!("cannot open the output file {}", path.display()))?;
            Box::new(BufWriter::new(file))
        }
        None if args.format == Format::Text => Box::new(io::sink()),
        None => Box::new(BufWriter::new(io::stdout())),
    })
}

/// After SIGINT or SIGTERM: says what happens, then stops the running
/// tasks after a grace, or (with `--no-interrupt`, where they cannot be
/// stopped) waits for them unless a second signal comes.
fn interrupt<E: Executor>(
    args: &RunArgs,
    pool: &E,
    signals: &mut Signals,
    outboxes: &[&BlockWriter],
) {
    // On a cluster, a signal often means that a rank died and mpirun is
    // ending the job, with little time left: say at once, in one write,
    // what each rank held.
    let mut message = String::new();
    for (rank, keys) in pool.held() {
        let keys: Vec<String> = keys.iter().map(u64::to_string).collect();
        message.push_str(&format!(
            "wasmpool: rank {rank} held inputs {}: --resume runs them again\n",
            keys.join(", ")
        ));
    }
    if args.no_interrupt {
        message.push_str(
            "wasmpool: interrupted: queued tasks cancelled; running ones cannot be \
             stopped (--no-interrupt): waiting for them, interrupt again to quit \
             without their records\n",
        );
    } else {
        message.push_str(&format!(
            "wasmpool: interrupted: queued tasks cancelled; running ones get \
             {GRACE:?} to finish\n"
        ));
    }
    let _ = io::stderr().write_all(message.as_bytes());
    if !args.no_interrupt {
        stop_after_grace(pool, &signals.handle());
        return;
    }
    // Without epoch checks a task running wasm cannot be stopped: the run
    // waits for it, unless asked again. The records written so far are
    // whole lines; --resume runs the rest.
    pool.shutdown(false, true);
    if signals.forever().next().is_some() {
        for outbox in outboxes {
            let _ = outbox.flush();
        }
        let _ = io::stderr()
            .write_all(b"wasmpool: interrupted again: not waiting for the running tasks\n");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

/// The end of a run: the summary (printed, and as JSON if asked) and the
/// exit code.
fn conclude(
    args: &RunArgs,
    summary: &Summary,
    ledger: &Ledger,
    total: Option<u64>,
    unrecorded: usize,
) -> anyhow::Result<u8> {
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_vec_pretty(summary).expect("a summary serialises");
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the summary {}", path.display()))?;
    }
    if !args.quiet {
        if ledger.skipped > 0 {
            eprintln!(
                "wasmpool: resumed: {} inputs already had a record",
                ledger.skipped
            );
        }
        eprintln!("{summary}");
    }
    if summary.interrupted {
        // What --resume will run: inputs read without a record (tasks
        // stopped, queued or not yet queued), and those not read.
        let recorded = ledger.skipped + summary.ok + summary.failed;
        let without = match total {
            Some(total) => format!(
                "{} of the {total} inputs have no record",
                (total as usize).saturating_sub(recorded)
            ),
            None => format!(
                "{} inputs read have no record, nor have those after input {}",
                ledger.seen.saturating_sub(recorded),
                ledger.seen.saturating_sub(1)
            ),
        };
        eprintln!(
            "wasmpool: interrupted: {without} ({unrecorded} tasks stopped unfinished); \
             run again with --resume to finish"
        );
        return Ok(EXIT_INTERRUPTED);
    }
    if ledger.seen == 0 {
        eprintln!("wasmpool: no inputs: nothing to run");
    }
    Ok(if summary.failed > 0 {
        EXIT_TASK_FAILED
    } else {
        EXIT_OK
    })
}

/// Whether the records' reader went away (a closed pipe): the run then
/// stops quietly, as Unix filters do, rather than fail.
fn reader_gone(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn load_options(args: &RunArgs) -> LoadOptions {
    let mut options = LoadOptions::new();
    if let Some(name) = &args.invoke {
        options = options.invoke(name);
    }
    let templated = args.program_args.iter().any(|arg| arg.contains("{}"));
    if let Some(template) = &args.args_template {
        options = options.args_template(template.0.iter().cloned());
    } else if templated {
        options = options.args_template(args.program_args.iter().cloned());
    }
    let fixed = if templated {
        &[][..]
    } else {
        &args.program_args[..]
    };
    for arg in fixed.iter().chain(&args.args) {
        options = options.arg(arg);
    }
    options
}

fn builder(args: &RunArgs) -> anyhow::Result<PoolBuilder> {
    let mut builder = Pool::builder()
        .retries(args.retries)
        .reuse_instances(args.reuse_instances)
        .interruptible(!args.no_interrupt)
        .explicit_bounds_checks(args.explicit_bounds_checks);
    if let Some(workers) = args.workers {
        builder = builder.workers(usize::try_from(workers)?);
    }
    if let Some(timeout) = args.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(bytes) = args.max_memory {
        builder = builder.max_memory(bytes);
    }
    if let Some(fuel) = args.fuel {
        builder = builder.fuel(fuel);
    }
    if let Some(bytes) = args.max_output {
        builder = builder.max_output(bytes);
    }
    if let Some(bytes) = args.max_result {
        builder = builder.max_result(bytes);
    }
    if let Some(bytes) = args.max_message {
        builder = builder.max_message(bytes);
    }
    if let Some(bytes) = args.max_stack {
        builder = builder.max_stack(bytes);
    }
    for (host, guest) in &args.dir {
        builder = builder.dir(host, guest, false);
    }
    for (host, guest) in &args.dir_rw {
        builder = builder.dir(host, guest, true);
    }
    for (key, value) in &args.env {
        builder = builder.env(key, value);
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if let Some(dir) = cache_dir(args) {
        builder = builder.cache_dir(dir);
    }
    Ok(builder)
}

/// Where compiled code is cached: --cache-dir, else the user's cache
/// directory, else nowhere.
fn cache_dir(args: &RunArgs) -> Option<std::path::PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache_dir {
        return Some(dir.clone());
    }
    super::default_cache_dir()
}

/// After a signal: cancel the queued tasks at once, let running ones finish
/// for [`GRACE`] (or until the run ends), then stop them.
fn stop_after_grace(pool: &impl Executor, signals: &signal_hook::iterator::Handle) {
    pool.shutdown(false, true);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && !signals.is_closed() {
        std::thread::sleep(Duration::from_millis(10));
    }
    pool.shutdown_now();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[allow(clippy::too_many_arguments)] // the run's parts, each used once
fn write_records(
    inputs: Box<dyn Iterator<Item = Input> + Send>,
    args: &RunArgs,
    pool: &impl Executor,
    task: &wasmpool::Task,
    ledger: &Arc<Mutex<Ledger>>,
    interrupted: &Arc<AtomicBool>,
    map_stop: &Arc<Mutex<Option<MapStop>>>,
    live: &RefCell<Live>,
    writer: &mut RecordWriter<'_>,
) -> anyhow::Result<()> {
    // After a signal no new input is read; what was read and not run has no
    // record, so that --resume runs it.
    // An input refused (invalid JSON, say) has no task to wait for: the
    // map is woken to write its record now, not with the next result.
    // An input that is not the one recorded for its index (--resume) ends
    // the inputs.
    let queue = {
        let (ledger, interrupted) = (Arc::clone(ledger), Arc::clone(interrupted));
        let map_stop = Arc::clone(map_stop);
        inputs
            .take_while(move |_| !interrupted.load(Ordering::SeqCst))
            .map_while(move |input| {
                let mut ledger = lock(&ledger);
                let admitted = ledger.admit(input);
                if ledger.differs.is_some() {
                    return None;
                }
                drop(ledger);
                if admitted.is_none()
                    && let Some(stop) = lock(&map_stop).as_ref()
                {
                    stop.wake();
                }
                Some(admitted)
            })
            .flatten()
    };
    let writer = RefCell::new(writer);
    // The first failure to write in `on_wake`, which cannot return it.
    let wake_failed = RefCell::new(None);
    let on_wake = || {
        let mut ledger = lock(ledger);
        let before = if args.unordered {
            usize::MAX
        } else {
            ledger.next_to_record()
        };
        if let Err(error) = writer.borrow_mut().write_invalid(&mut ledger, before) {
            wake_failed.borrow_mut().get_or_insert(error);
        }
    };
    let wake_failure = || wake_failed.borrow_mut().take().map_or(Ok(()), Err);
    let keep = |result: &TaskResult| {
        !(interrupted.load(Ordering::SeqCst)
            && matches!(result, Err(error) if error.kind() == ErrorKind::Cancelled))
    };
    // A file's lines are at hand; a pipe's, a FIFO's or a terminal's may
    // come one at a time, and are read on a thread of their own, so that
    // a finished task's record never waits for the next input.
    let at_hand = args.inputs.is_some()
        || [&args.input_file, &args.lines]
            .into_iter()
            .flatten()
            .any(|path| {
                path.as_os_str() != "-" && std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
            });
    let started = |stop: MapStop| {
        *lock(map_stop) = Some(stop.clone());
        // A signal before the map ran found no map to stop, an input
        // refused none to wake.
        if interrupted.load(Ordering::SeqCst) {
            stop.stop();
        }
        stop.wake();
    };
    let cannot_read = "cannot start the thread that reads the inputs";
    if args.unordered {
        let mut results = pool.map_unordered(task, queue).on_wake(on_wake);
        if at_hand {
            results = results.read_ahead();
        } else {
            results = results.background().context(cannot_read)?;
        }
        started(results.stopper());
        for (position, result) in results {
            wake_failure()?;
            live.borrow_mut().task_done(&result);
            let mut writer = writer.borrow_mut();
            writer.write_invalid(&mut lock(ledger), usize::MAX)?;
            let record = lock(ledger).record(position, &result);
            writer.write_if(keep(&result), &record, &result)?;
        }
    } else {
        let mut results = pool
            .map(task, queue)
            .order_buffer(args.order_buffer.unwrap_or(DEFAULT_ORDER_BUFFER))
            .on_complete(|_, result| {
                live.borrow_mut().task_done(result);
            })
            .on_wake(on_wake);
        if at_hand {
            results = results.read_ahead();
        } else {
            results = results.background().context(cannot_read)?;
        }
        started(results.stopper());
        for (position, result) in results.by_ref().enumerate() {
            wake_failure()?;
            let record = lock(ledger).record(position, &result);
            let mut writer = writer.borrow_mut();
            writer.write_invalid(&mut lock(ledger), record.index)?;
            writer.write_if(keep(&result), &record, &result)?;
        }
        writer.borrow_mut().order_buffer_filled = results.order_buffer_filled();
    }
    wake_failure()?;
    writer
        .borrow_mut()
        .write_invalid(&mut lock(ledger), usize::MAX)
}

impl Ledger {
    /// Takes an input: a valid one goes on to the pool as its JSON text, an
    /// invalid one waits for its record, a recorded one is skipped.
    fn admit(&mut self, input: Input) -> Option<wasmpool::Input> {
        self.seen += 1;
        if let Some(&digest) = self.recorded.get(&(input.index as u64)) {
            // The text its record would hold.
            let text = match &input.value {
                Ok(value) => resume::input_digest(value.get()),
                Err(invalid) => resume::input_digest(inputs::raw(&invalid.text).get()),
            };
            if digest != resume::NO_INPUT && digest != text {
                self.differs.get_or_insert((input.index, input.line));
            } else {
                self.skipped += 1;
            }
            return None;
        }
        match input.value {
            Ok(value) => {
                // A text program gets a string input's characters.
                let text = value.get();
                let string = (self.text_io && text.starts_with('"'))
                    .then(|| serde_json::from_str::<String>(text).ok())
                    .flatten();
                let bytes = match string {
                    Some(string) => string.into_bytes(),
                    None => text.as_bytes().to_vec(),
                };
                self.queued
                    .insert(self.next_queued, (input.index, input.line, value));
                self.next_queued += 1;
                // Seeded by the input's index, not its turn: a resumed or
                // reordered run draws the same numbers.
                Some(wasmpool::Input::new(bytes).seed_key(input.index as u64))
            }
            Err(invalid) => {
                let record =
                    Record::invalid_input(input.index, input.line, invalid.text, invalid.reason);
                self.invalid.push_back(record);
                None
            }
        }
    }

    /// In input order, the index of the next input whose record is to be
    /// written, if it is queued: no invalid input's record may come
    /// before that one's.
    fn next_to_record(&self) -> usize {
        self.queued
            .get(&self.next_recorded)
            .map_or(usize::MAX, |&(index, _, _)| index)
    }

    fn record(&mut self, position: usize, result: &TaskResult) -> Record {
        self.next_recorded += 1;
        let (index, line, input) = self
            .queued
            .remove(&position)
            .expect("every result comes from a queued input");
        Record::of_result(index, line, input, result, self.started, self.text_io)
    }
}

/// Writes records as whole lines and counts the outcomes.
struct RecordWriter<'w> {
    /// Where the records go; none with --format text and no --output.
    outbox: Option<&'w BlockWriter>,
    /// What the report needs of each record written, with --report.
    report: Option<Vec<report::Row>>,
    ok: usize,
    failed_by_kind: BTreeMap<String, usize>,
    /// Records not written: tasks stopped by an interruption.
    dropped: usize,
    /// How many times the order buffer filled (`Map::order_buffer_filled`).
    order_buffer_filled: usize,
    /// The progress bar, which an invalid input's record moves on too.
    bar: Option<ProgressBar>,
    /// With --format text: where the tasks' output goes, and whether the
    /// task is a command program.
    text: Option<(&'w BlockWriter, bool)>,
}

impl<'w> RecordWriter<'w> {
    fn new(outbox: Option<&'w BlockWriter>, report: bool, bar: Option<ProgressBar>) -> Self {
        RecordWriter {
            outbox,
            report: report.then(Vec::new),
            ok: 0,
            failed_by_kind: BTreeMap::new(),
            dropped: 0,
            order_buffer_filled: 0,
            bar,
            text: None,
        }
    }

    fn write_if(&mut self, keep: bool, record: &Record, result: &TaskResult) -> anyhow::Result<()> {
        if keep {
            self.write(record, Some(result))
        } else {
            self.dropped += 1;
            Ok(())
        }
    }

    fn write(&mut self, record: &Record, result: Option<&TaskResult>) -> anyhow::Result<()> {
        if let Some((text, text_io)) = self.text {
            if let Some(result) = result {
                text.push_bytes_with(|out| super::text::stdout_of(result, text_io, out))
                    .context("cannot write the tasks' output")?;
            }
            let errors = super::text::stderr_of(record, result, text_io);
            if !errors.is_empty() {
                let write = || io::stderr().lock().write_all(&errors);
                let _ = match &self.bar {
                    Some(bar) => bar.suspend(write),
                    None => write(),
                };
            }
        }
        match record.error_kind() {
            None => self.ok += 1,
            Some(kind) => *self.failed_by_kind.entry(kind.to_string()).or_default() += 1,
        }
        if let Some(rows) = self.report.as_mut() {
            let value = serde_json::to_value(record).expect("a record serialises");
            rows.extend(report::Row::of_record(&value));
        }
        // Whole lines, in blocks: a reader of the file never sees half a
        // line, and sees each record within FLUSH_EVERY of its task's end.
        match self.outbox {
            Some(outbox) => outbox
                .push_with(|out| record.write_json(out))
                .context("cannot write the records"),
            None => Ok(()),
        }
    }

    /// Writes the records of invalid inputs numbered below `before`.
    fn write_invalid(&mut self, ledger: &mut Ledger, before: usize) -> anyhow::Result<()> {
        while ledger
            .invalid
            .front()
            .is_some_and(|record| record.index < before)
        {
            let record = ledger.invalid.pop_front().expect("checked above");
            self.write(&record, None)?;
            if let Some(bar) = &self.bar {
                bar.inc(1);
            }
        }
        Ok(())
    }

    fn summary(&self, started: Instant, workers: usize) -> Summary {
        let mut summary = Summary::new(
            self.ok,
            self.failed_by_kind.clone(),
            started.elapsed().as_secs_f64(),
            workers,
        );
        summary.order_buffer_filled = self.order_buffer_filled;
        summary
    }
}
