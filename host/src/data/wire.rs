//! What crosses the wire between ranks: a small binary framing (lengths and
//! little-endian integers), so that inputs and outputs, which are bytes,
//! travel as they are.

// Built without cluster mode for the fuzz targets, which only decode.
#![cfg_attr(not(feature = "mpi"), allow(dead_code))]

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::data::captured::Captured;
use crate::data::error::{ErrorKind, TaskError};
use crate::data::limits::Limits;
use crate::data::load_options::LoadOptions;
use crate::data::metrics::Metrics;
use crate::data::output::{Streams, TaskOutput, TaskResult};

/// Message tags.
pub(crate) const READY: i32 = 1;
pub(crate) const LOAD: i32 = 2;
pub(crate) const LOADED: i32 = 3;
pub(crate) const WORK: i32 = 4;
pub(crate) const RESULTS: i32 = 5;
pub(crate) const STOP: i32 = 6;
pub(crate) const PROGRESS: i32 = 7;
pub(crate) const STOPPED: i32 = 8;

/// A message that does not parse: a wasmpool of another version on some
/// rank, or a bug.
#[derive(Debug)]
pub(crate) struct Malformed;

#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.u64(value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    fn opt_u64(&mut self, value: Option<u64>) -> &mut Self {
        match value {
            Some(value) => self.u8(1).u64(value),
            None => self.u8(0),
        }
    }

    fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.u8(1).str(value),
            None => self.u8(0),
        }
    }

    fn duration(&mut self, value: Duration) -> &mut Self {
        self.u64(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX))
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < count {
            return Err(Malformed);
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    /// How many bytes are left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| Malformed)?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| Malformed)?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let length = usize::try_from(self.u64()?).map_err(|_| Malformed)?;
        self.take(length)
    }

    pub(crate) fn string(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Malformed)
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, Malformed> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.u64()?),
        })
    }

    fn opt_string(&mut self) -> Result<Option<String>, Malformed> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.string()?),
        })
    }

    fn duration(&mut self) -> Result<Duration, Malformed> {
        Ok(Duration::from_nanos(self.u64()?))
    }
}

/// `LOAD`: a task's bytes and how to load them.
pub(crate) fn load(task: u64, bytes: &[u8], name: &str, options: &LoadOptions) -> Vec<u8> {
    let mut out = Writer::default();
    out.u64(task).bytes(bytes).str(name);
    out.opt_str(options.invoke.as_deref());
    out.u32(options.args.len() as u32);
    for arg in &options.args {
        out.str(arg);
    }
    match &options.args_template {
        Some(words) => {
            out.u8(1).u32(words.len() as u32);
            for word in words {
                out.str(word);
            }
        }
        None => {
            out.u8(0);
        }
    }
    out.0
}

pub(crate) struct Load<'a> {
    pub(crate) task: u64,
    pub(crate) bytes: &'a [u8],
    pub(crate) name: String,
    pub(crate) options: LoadOptions,
}

pub(crate) fn read_load(bytes: &[u8]) -> Result<Load<'_>, Malformed> {
    let mut input = Reader::new(bytes);
    let task = input.u64()?;
    let wasm = input.bytes()?;
    let name = input.string()?;
    let mut options = LoadOptions::new();
    if let Some(function) = input.opt_string()? {
        options = options.invoke(function);
    }
    for _ in 0..input.u32()? {
        options = options.arg(input.string()?);
    }
    if input.u8()? != 0 {
        let count = input.u32()?;
        let words = (0..count)
            .map(|_| input.string())
            .collect::<Result<Vec<_>, _>>()?;
        options = options.args_template(words);
    }
    Ok(Load {
        task,
        bytes: wasm,
        name,
        options,
    })
}

/// What a rank's running tasks reported with `report_progress`.
#[derive(Debug, PartialEq)]
pub(crate) struct Progress {
    /// By worker of the rank: its running task's last report.
    pub(crate) workers: Vec<Option<f64>>,
    /// By job id, for the jobs with a report.
    pub(crate) jobs: Vec<(u64, f64)>,
}

/// `PROGRESS`: a rank's [`Progress`].
pub(crate) fn progress(progress: &Progress) -> Vec<u8> {
    let mut out = Writer::default();
    out.u32(progress.workers.len() as u32);
    for fraction in &progress.workers {
        out.opt_u64(fraction.map(f64::to_bits));
    }
    out.u32(progress.jobs.len() as u32);
    for (job, fraction) in &progress.jobs {
        out.u64(*job).u64(fraction.to_bits());
    }
    out.0
}

pub(crate) fn read_progress(bytes: &[u8]) -> Result<Progress, Malformed> {
    let mut input = Reader::new(bytes);
    let workers = (0..input.u32()?)
        .map(|_| Ok(input.opt_u64()?.map(f64::from_bits)))
        .collect::<Result<_, Malformed>>()?;
    let jobs = (0..input.u32()?)
        .map(|_| Ok((input.u64()?, f64::from_bits(input.u64()?))))
        .collect::<Result<_, Malformed>>()?;
    Ok(Progress { workers, jobs })
}

/// One job of a `WORK` chunk: tasks of one map queued together, which the
/// worker rank runs as one job and sends back together.
pub(crate) struct JobSpec {
    /// The id of the job's first task, which names the job.
    pub(crate) id: u64,
    /// Limits of the job's own, if not the cluster's.
    pub(crate) limits: Option<Limits>,
    pub(crate) tasks: Vec<TaskSpec>,
}

/// One task of a job: the key of its seed and its input.
pub(crate) struct TaskSpec {
    pub(crate) seed_key: u64,
    pub(crate) input: Bytes,
}

/// Frames a job: its id, its limits of its own if any, and each task's
/// seed key and input.
pub(crate) fn write_job<'a>(
    out: &mut Writer,
    id: u64,
    limits: Option<&Limits>,
    tasks: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
) {
    out.u64(id);
    match limits {
        Some(limits) => {
            out.u8(1)
                .opt_u64(limits.timeout.map(|t| t.as_nanos() as u64))
                .opt_u64(limits.max_memory.map(|m| m as u64))
                .opt_u64(limits.fuel)
                .u32(limits.retries);
        }
        None => {
            out.u8(0);
        }
    }
    out.u32(tasks.len() as u32);
    for (seed_key, input) in tasks {
        out.u64(seed_key).bytes(input);
    }
}

/// A job as a worker rank reads it from `message`, which `input` reads:
/// the inputs are slices of it, not copies.
pub(crate) fn read_job(input: &mut Reader<'_>, message: &Bytes) -> Result<JobSpec, Malformed> {
    let id = input.u64()?;
    let limits = if input.u8()? != 0 {
        let mut limits = Limits::new();
        limits.timeout = input.opt_u64()?.map(Duration::from_nanos);
        limits.max_memory = input
            .opt_u64()?
            .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        limits.fuel = input.opt_u64()?;
        limits.retries = input.u32()?;
        Some(limits)
    } else {
        None
    };
    let count = input.u32()?;
    let tasks = (0..count)
        .map(|_| {
            Ok(TaskSpec {
                seed_key: input.u64()?,
                input: message.slice_ref(input.bytes()?),
            })
        })
        .collect::<Result<_, Malformed>>()?;
    Ok(JobSpec { id, limits, tasks })
}

/// A finished job, as a worker rank sends it back: its id, then one result
/// per task in order.
pub(crate) fn write_results(out: &mut Writer, job: u64, results: &[TaskResult]) {
    out.u64(job).u32(results.len() as u32);
    for result in results {
        write_result(out, result);
    }
}

/// A finished job as the coordinator rebuilds it: its id and results.
/// `message` is what `input` reads: the outputs are slices of it, not
/// copies (one allocation per message rather than one per task, on the
/// thread that receives). Clocks differ between machines: a remote job is
/// placed as ending at `arrived`, its length as measured where it ran.
pub(crate) fn read_results(
    input: &mut Reader<'_>,
    message: &Bytes,
    first_worker: usize,
    arrived: Instant,
) -> Result<(u64, Vec<TaskResult>), Malformed> {
    let job = input.u64()?;
    let count = input.u32()?;
    // The count is the sender's word: room for no more results than the
    // message has the bytes for.
    let mut results =
        Vec::with_capacity((count as usize).min(input.remaining() / MIN_RESULT_BYTES));
    for _ in 0..count {
        results.push(read_result(input, message, first_worker, arrived)?);
    }
    Ok((job, results))
}

/// The fewest bytes a result takes on the wire: an output of no bytes,
/// with no streams, worker or fuel (`write_result`).
const MIN_RESULT_BYTES: usize = 1 + 8 + (8 + 1) * 2 + 8 + 1 + 4 + 1 + 8 * 3 + 1;

fn write_result(out: &mut Writer, result: &TaskResult) {
    let (stdout, stderr, duration, worker, attempts, metrics) = match result {
        Ok(output) => {
            out.u8(1).bytes(output.value());
            (
                output.stdout(),
                output.stderr(),
                output.duration(),
                Some(output.worker()),
                output.attempts(),
                output.metrics(),
            )
        }
        Err(error) => {
            out.u8(0)
                .str(error.kind().as_str())
                .str(error.message())
                .opt_u64(error.exit_code().map(|code| code as u32 as u64))
                .opt_str(error.wasm_backtrace())
                .opt_str(error.traceback());
            (
                error.stdout(),
                error.stderr(),
                error.duration(),
                error.worker(),
                error.attempts(),
                error.metrics(),
            )
        }
    };
    out.bytes(stdout.as_bytes())
        .u8(u8::from(stdout.is_truncated()))
        .bytes(stderr.as_bytes())
        .u8(u8::from(stderr.is_truncated()))
        .duration(duration)
        .opt_u64(worker.map(|w| w as u64))
        .u32(attempts)
        .u8(u8::from(metrics.started.is_some()))
        .duration(metrics.instantiate)
        .duration(metrics.run)
        .u64(metrics.peak_memory as u64)
        .opt_u64(metrics.fuel_consumed);
}

/// A finished task as the coordinator rebuilds it; `worker` is the global
/// worker number (`first_worker` is where the sending rank's workers start).
fn read_result(
    input: &mut Reader<'_>,
    message: &Bytes,
    first_worker: usize,
    arrived: Instant,
) -> Result<TaskResult, Malformed> {
    let ok = input.u8()? != 0;
    let outcome = if ok {
        Ok(message.slice_ref(input.bytes()?))
    } else {
        let kind = ErrorKind::from_name(&input.string()?).ok_or(Malformed)?;
        let message = input.string()?;
        let exit_code = input.opt_u64()?.map(|code| code as u32 as i32);
        let backtrace = input.opt_string()?;
        let traceback = input.opt_string()?;
        Err((kind, message, exit_code, backtrace, traceback))
    };
    let stdout = Captured::new(input.bytes()?.to_vec(), input.u8()? != 0);
    let stderr = Captured::new(input.bytes()?.to_vec(), input.u8()? != 0);
    let duration = input.duration()?;
    let worker = input
        .opt_u64()?
        .map(|w| {
            usize::try_from(w)
                .ok()
                .and_then(|w| first_worker.checked_add(w))
                .ok_or(Malformed)
        })
        .transpose()?;
    let attempts = input.u32()?;
    let ran = input.u8()? != 0;
    let metrics = Metrics {
        started: if ran {
            arrived.checked_sub(duration)
        } else {
            None
        },
        instantiate: input.duration()?,
        run: input.duration()?,
        peak_memory: usize::try_from(input.u64()?).unwrap_or(usize::MAX),
        fuel_consumed: input.opt_u64()?,
    };
    let result = match outcome {
        Ok(value) => Ok(TaskOutput {
            value,
            streams: Streams::kept(stdout, stderr),
            worker: worker.unwrap_or(first_worker),
            attempts,
            metrics,
        }),
        Err((kind, message, exit_code, backtrace, traceback)) => {
            let mut error = TaskError::new(kind, message);
            let details = error.details_mut();
            details.exit_code = exit_code;
            details.backtrace = backtrace;
            details.traceback = traceback;
            details.stdout = stdout;
            details.stderr = stderr;
            details.duration = duration;
            details.worker = worker;
            details.attempts = attempts;
            details.metrics = metrics;
            Err(error)
        }
    };
    Ok(result)
}

pub(crate) fn malformed(rank: i32) -> String {
    format!(
        "rank {rank} sent a message this wasmpool cannot read: job the same wasmpool \
         build on every rank"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_crosses_as_it_was() {
        let sent = Progress {
            workers: vec![None, Some(0.25), Some(1.0)],
            jobs: vec![(7, 0.25), (u64::MAX, 1.0)],
        };
        assert_eq!(read_progress(&progress(&sent)).unwrap(), sent);
        assert!(read_progress(&progress(&sent)[..10]).is_err());
    }

    #[test]
    fn a_failure_crosses_with_its_exit_code_backtrace_and_traceback() {
        let mut error = TaskError::new(ErrorKind::GuestError, "ValueError: bad value 42");
        let details = error.details_mut();
        details.exit_code = Some(-3);
        details.backtrace = Some("0: f".to_string());
        details.traceback = Some("Traceback (most recent call last):\n...".to_string());
        details.stderr = Captured::new(b"oops\n".to_vec(), true);
        let mut out = Writer::default();
        write_results(&mut out, 9, &[Err(error)]);
        let message = Bytes::from(out.0);
        let (job, results) =
            read_results(&mut Reader::new(&message), &message, 0, Instant::now()).unwrap();
        assert_eq!((job, results.len()), (9, 1));
        let error = results[0].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::GuestError);
        assert_eq!(error.message(), "ValueError: bad value 42");
        assert_eq!(error.exit_code(), Some(-3));
        assert_eq!(error.wasm_backtrace(), Some("0: f"));
        assert_eq!(
            error.traceback(),
            Some("Traceback (most recent call last):\n...")
        );
        assert!(error.stderr().is_truncated());
    }

    fn read(message: Vec<u8>, first_worker: usize) -> Result<(u64, Vec<TaskResult>), Malformed> {
        let message = Bytes::from(message);
        read_results(
            &mut Reader::new(&message),
            &message,
            first_worker,
            Instant::now(),
        )
    }

    // Found by the `cluster_wire` fuzz target: twelve bytes that announced
    // millions of results had the coordinator reserve room for them all.
    #[test]
    fn a_count_of_results_beyond_the_message_reserves_nothing() {
        let mut out = Writer::default();
        out.u64(9).u32(u32::MAX).u8(1);
        assert!(read(out.0, 0).is_err());
    }

    #[test]
    fn the_fewest_bytes_of_a_result_are_no_more_than_any_result_takes() {
        let output = TaskOutput {
            value: Bytes::new(),
            streams: Streams::kept(Captured::default(), Captured::default()),
            worker: 0,
            attempts: 1,
            metrics: Metrics::default(),
        };
        let mut out = Writer::default();
        write_result(&mut out, &Ok(output));
        assert!(out.0.len() >= MIN_RESULT_BYTES);
    }

    // Beside that finding: a worker number past the end of `usize`
    // overflowed the coordinator's sum.
    #[test]
    fn a_worker_number_that_overflows_is_malformed() {
        let mut error = TaskError::new(ErrorKind::Trap, "unreachable");
        error.details_mut().worker = Some(usize::MAX);
        let mut out = Writer::default();
        write_results(&mut out, 9, &[Err(error)]);
        assert!(read(out.0.clone(), 1).is_err());
        assert!(read(out.0, 0).is_ok());
    }
}
