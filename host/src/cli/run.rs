//! `wasmpool run`: one record per input, in input order or as tasks finish,
//! with the tasks' output shown live on a terminal and a summary at the end.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;
use wasmpool::{Pool, TaskResult};

use super::inputs::{self, Input};
use super::record::Record;
use super::{EXIT_OK, EXIT_TASK_FAILED, RunArgs, build};

/// What the input reader hands to the record writer: where each queued
/// input came from, and the inputs that could not be used.
#[derive(Default)]
struct Ledger {
    /// By the position among the inputs given to the pool.
    queued: HashMap<usize, (usize, Option<usize>, Value)>,
    /// Inputs that never reach the pool, in input order.
    invalid: VecDeque<Record>,
    next_queued: usize,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<u8> {
    let task_path = if args.task.is_dir() {
        build::build_guest(&args.task)?
    } else {
        args.task.clone()
    };
    let inputs = match (&args.inputs, &args.input_file) {
        (Some(array), _) => inputs::from_json_array(array)?,
        (None, Some(path)) => inputs::from_jsonl(path)?,
        (None, None) => unreachable!("clap requires one input source"),
    };
    let mut builder = Pool::builder();
    if let Some(workers) = args.workers {
        builder = builder.workers(usize::try_from(workers)?);
    }
    let pool = builder.build()?;
    let task = pool.load(&task_path)?;
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(File::create(path).with_context(|| {
            format!("cannot create the output file {}", path.display())
        })?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let echo = !args.quiet && io::stderr().is_terminal();
    let started = Instant::now();

    let ledger = RefCell::new(Ledger::default());
    let queue = inputs.filter_map(|input| ledger.borrow_mut().admit(input));
    let mut writer = RecordWriter::new(&mut *sink);
    if args.unordered {
        for (position, result) in pool.map_unordered(&task, queue) {
            if echo {
                show(&result);
            }
            writer.write_invalid(&mut ledger.borrow_mut(), usize::MAX)?;
            let record = ledger.borrow_mut().record(position, &result);
            writer.write(&record)?;
        }
    } else {
        let results = pool.map(&task, queue).on_complete(|_, result| {
            if echo {
                show(result);
            }
        });
        for (position, result) in results.enumerate() {
            let record = ledger.borrow_mut().record(position, &result);
            writer.write_invalid(&mut ledger.borrow_mut(), record.index)?;
            writer.write(&record)?;
        }
    }
    writer.write_invalid(&mut ledger.borrow_mut(), usize::MAX)?;
    let summary = writer.summary(started, pool.workers());
    drop(writer);
    sink.flush().context("cannot write the records")?;
    if !args.quiet {
        eprintln!("{summary}");
    }
    Ok(if summary.failed > 0 {
        EXIT_TASK_FAILED
    } else {
        EXIT_OK
    })
}

impl Ledger {
    /// Takes an input: a valid one goes on to the pool as its JSON text, an
    /// invalid one waits for its record.
    fn admit(&mut self, input: Input) -> Option<Vec<u8>> {
        match input.value {
            Ok(value) => {
                let bytes = serde_json::to_vec(&value).expect("a JSON value serialises");
                self.queued
                    .insert(self.next_queued, (input.index, input.line, value));
                self.next_queued += 1;
                Some(bytes)
            }
            Err(invalid) => {
                let record =
                    Record::invalid_input(input.index, input.line, invalid.text, invalid.reason);
                self.invalid.push_back(record);
                None
            }
        }
    }

    fn record(&mut self, position: usize, result: &TaskResult) -> Record {
        let (index, line, input) = self
            .queued
            .remove(&position)
            .expect("every result comes from a queued input");
        Record::of_result(index, line, input, result)
    }
}

/// Writes records as whole lines and counts the outcomes.
struct RecordWriter<'w> {
    sink: &'w mut dyn Write,
    ok: usize,
    failed_by_kind: BTreeMap<String, usize>,
}

impl<'w> RecordWriter<'w> {
    fn new(sink: &'w mut dyn Write) -> Self {
        RecordWriter {
            sink,
            ok: 0,
            failed_by_kind: BTreeMap::new(),
        }
    }

    fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        match record.error_kind() {
            None => self.ok += 1,
            Some(kind) => *self.failed_by_kind.entry(kind.to_string()).or_default() += 1,
        }
        let mut line = serde_json::to_vec(record).expect("a record serialises");
        line.push(b'\n');
        // One write and a flush per record: a reader of the file never sees
        // half a line, and sees each record as soon as its task is done.
        self.sink
            .write_all(&line)
            .and_then(|()| self.sink.flush())
            .context("cannot write the records")
    }

    /// Writes the records of invalid inputs numbered below `before`.
    fn write_invalid(&mut self, ledger: &mut Ledger, before: usize) -> anyhow::Result<()> {
        while ledger
            .invalid
            .front()
            .is_some_and(|record| record.index < before)
        {
            let record = ledger.invalid.pop_front().expect("checked above");
            self.write(&record)?;
        }
        Ok(())
    }

    fn summary(&self, started: Instant, workers: usize) -> Summary {
        Summary {
            ok: self.ok,
            failed: self.failed_by_kind.values().sum(),
            failed_by_kind: self.failed_by_kind.clone(),
            seconds: started.elapsed().as_secs_f64(),
            workers,
        }
    }
}

struct Summary {
    ok: usize,
    failed: usize,
    failed_by_kind: BTreeMap<String, usize>,
    seconds: f64,
    workers: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wasmpool: {} tasks: {} ok, {} failed in {:.2} s on {} workers",
            self.ok + self.failed,
            self.ok,
            self.failed,
            self.seconds,
            self.workers
        )?;
        if !self.failed_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .failed_by_kind
                .iter()
                .map(|(kind, count)| format!("{kind}: {count}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        Ok(())
    }
}

/// Shows a finished task's output on the terminal, as a local run would.
fn show(result: &TaskResult) {
    let mut stderr = io::stderr().lock();
    let _ = match result {
        Ok(output) => stderr.write_all(output.stdout().as_bytes()),
        Err(error) => {
            let _ = stderr.write_all(error.stdout().as_bytes());
            writeln!(stderr, "task failed: {error}")
        }
    };
}
