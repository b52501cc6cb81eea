//! `wasmpool._native`: a wasmpool [`Pool`] driven from Python.
//!
//! The Python package's executor keeps its `concurrent.futures.Future`s on
//! the Python side and hands this module bytes in and a token per task.
//! Finished tasks come back through one queue, many at a time
//! ([`NativePool::next_completed`]), to the executor's one thread that
//! resolves the futures: no Python thread per task, and no call into
//! Python from a worker thread.

mod marshal;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use wasmpool::python::PythonBuild;
use wasmpool::{Pool, Task, TaskHandle, TaskKind, TaskResult};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tokens of tasks that finished and wait to be collected.
#[derive(Default)]
struct Inbox {
    ready: Mutex<Ready>,
    arrived: Condvar,
}

#[derive(Default)]
struct Ready {
    tokens: VecDeque<u64>,
    /// A wake asked for and not yet seen by a collector: kept, so that a
    /// wake before the collector waits is not lost.
    poked: bool,
    /// Whether a collector is waiting: only then is a notification (a
    /// system call) worth making.
    waiting: bool,
}

impl Inbox {
    fn push(&self, token: u64) {
        let mut ready = lock(&self.ready);
        ready.tokens.push_back(token);
        if ready.waiting {
            self.arrived.notify_one();
        }
    }
}

/// The waker a task's handle calls when the task finishes: it puts the
/// task's token in the inbox.
struct Wakeup {
    token: u64,
    inbox: Arc<Inbox>,
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.inbox.push(self.token);
    }
}

/// A task loaded into a pool: a component, a core module or a command.
#[pyclass(frozen, module = "wasmpool._native")]
struct NativeTask {
    task: Task,
}

#[pymethods]
impl NativeTask {
    /// The task's name (its file's stem).
    #[getter]
    fn name(&self) -> &str {
        self.task.name()
    }

    /// Whether it is a command program: its stdout is its output.
    #[getter]
    fn is_command(&self) -> bool {
        self.task.kind() == TaskKind::Command
    }
}

/// A pool of workers and the tasks in flight on it, by token.
#[pyclass(frozen, module = "wasmpool._native")]
struct NativePool {
    pool: Pool,
    inbox: Arc<Inbox>,
    /// The handles of tasks not collected yet; a finished task's result is
    /// taken from its handle when it is collected.
    handles: Mutex<HashMap<u64, TaskHandle>>,
    /// Results that were ready at submission.
    done: Mutex<Vec<(u64, TaskResult)>>,
}

/// Seconds, as Python gives them, to a duration; `None` for none.
fn seconds(value: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    value
        .map(|secs| {
            Duration::try_from_secs_f64(secs).map_err(|_| {
                PyValueError::new_err(format!(
                    "{what} must be a number of seconds >= 0, not {secs}"
                ))
            })
        })
        .transpose()
}

#[pymethods]
impl NativePool {
    #[new]
    #[pyo3(signature = (workers, *, timeout=None, max_memory=None, fuel=None, retries=0, dirs=Vec::new(), env=Vec::new(), seed=None, reuse_instances=1, cache_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        workers: usize,
        timeout: Option<f64>,
        max_memory: Option<usize>,
        fuel: Option<u64>,
        retries: u32,
        dirs: Vec<(String, String, bool)>,
        env: Vec<(String, String)>,
        seed: Option<u64>,
        reuse_instances: u32,
        cache_dir: Option<String>,
    ) -> PyResult<NativePool> {
        let mut builder = Pool::builder()
            .workers(workers)
            .retries(retries)
            .reuse_instances(reuse_instances);
        if let Some(timeout) = seconds(timeout, "timeout")? {
            builder = builder.timeout(timeout);
        }
        if let Some(bytes) = max_memory {
            builder = builder.max_memory(bytes);
        }
        if let Some(fuel) = fuel {
            builder = builder.fuel(fuel);
        }
        for (host, guest, writable) in dirs {
            builder = builder.dir(host, guest, writable);
        }
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        if let Some(dir) = cache_dir {
            builder = builder.cache_dir(dir);
        }
        let pool = builder
            .build()
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
        Ok(NativePool {
            pool,
            inbox: Arc::default(),
            handles: Mutex::default(),
            done: Mutex::default(),
        })
    }

    /// Loads (compiling, or mapping from the cache) the program at `path`.
    fn load(&self, py: Python<'_>, path: String) -> PyResult<NativeTask> {
        py.detach(|| self.pool.load(&path))
            .map(|task| NativeTask { task })
            .map_err(|error| PyValueError::new_err(error.to_string()))
    }

    /// Queues one run of `task` on `input`; its completion will carry
    /// `token`.
    fn submit(&self, task: &NativeTask, input: &[u8], token: u64) -> PyResult<()> {
        let mut handle = self
            .pool
            .submit(&task.task, input)
            .map_err(|_| PyRuntimeError::new_err("cannot schedule new futures after shutdown"))?;
        let waker = Waker::from(Arc::new(Wakeup {
            token,
            inbox: Arc::clone(&self.inbox),
        }));
        // The first poll registers the waker; a task that is done already
        // (cancelled by a shutdown in between) is collected as it is.
        match Pin::new(&mut handle).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(result) => {
                lock(&self.done).push((token, result));
                self.inbox.push(token);
            }
            Poll::Pending => {
                lock(&self.handles).insert(token, handle);
            }
        }
        Ok(())
    }

    /// Finished tasks, as many as are ready: waits up to `timeout` seconds
    /// (forever with `None`) for the first. Each is `(token, value, error,
    /// stdout, stderr)`: `value` is the output bytes on success, else
    /// `error` is `(kind, message, exit_code, traceback, text)`.
    #[pyo3(signature = (timeout=None))]
    fn next_completed<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let deadline = seconds(timeout, "timeout")?.and_then(|t| Instant::now().checked_add(t));
        let finished = py.detach(|| self.collect(deadline));
        finished
            .into_iter()
            .map(|(token, result)| completion(py, token, result))
            .collect()
    }

    /// Wakes a thread waiting in `next_completed`, which then returns
    /// what is ready (perhaps nothing).
    fn wake(&self) {
        lock(&self.inbox.ready).poked = true;
        self.inbox.arrived.notify_all();
    }

    /// Cancels the task of `token` if it has not started: returns whether
    /// it will finish as cancelled. With `running`, stops it even if it
    /// has.
    #[pyo3(signature = (token, running=false))]
    fn cancel(&self, token: u64, running: bool) -> bool {
        match lock(&self.handles).get(&token) {
            Some(handle) if running || !handle.is_running() => handle.cancel(),
            _ => false,
        }
    }

    /// Whether the task of `token` is running now.
    fn is_running(&self, token: u64) -> bool {
        lock(&self.handles)
            .get(&token)
            .is_some_and(TaskHandle::is_running)
    }

    /// Takes no more tasks; cancels the queued ones with `cancel_pending`;
    /// with `wait`, returns once the workers have finished.
    fn shutdown(&self, py: Python<'_>, wait: bool, cancel_pending: bool) {
        py.detach(|| self.pool.shutdown(wait, cancel_pending));
    }

    /// Takes no more tasks, cancels the queued ones, stops the running
    /// ones, and waits for the workers to end.
    fn shutdown_now(&self, py: Python<'_>) {
        py.detach(|| self.pool.shutdown_now());
    }

    /// The number of worker threads.
    #[getter]
    fn workers(&self) -> usize {
        self.pool.workers()
    }
}

impl NativePool {
    /// Waits until a task finished (or `deadline`, or a wake) and takes
    /// the results of all that have.
    fn collect(&self, deadline: Option<Instant>) -> Vec<(u64, TaskResult)> {
        let tokens: Vec<u64> = {
            let mut ready = lock(&self.inbox.ready);
            ready.waiting = true;
            while ready.tokens.is_empty() && !ready.poked {
                ready = match deadline {
                    None => self
                        .inbox
                        .arrived
                        .wait(ready)
                        .unwrap_or_else(PoisonError::into_inner),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        self.inbox
                            .arrived
                            .wait_timeout(ready, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                };
            }
            ready.poked = false;
            ready.waiting = false;
            ready.tokens.drain(..).collect()
        };
        let mut finished = std::mem::take(&mut *lock(&self.done));
        let noop = Waker::noop();
        let mut handles = lock(&self.handles);
        for token in tokens {
            let Some(mut handle) = handles.remove(&token) else {
                continue;
            };
            match Pin::new(&mut handle).poll(&mut Context::from_waker(noop)) {
                Poll::Ready(result) => finished.push((token, result)),
                // Woken before the result was in place: the waker
                // registered first still fires.
                Poll::Pending => {
                    handles.insert(token, handle);
                }
            }
        }
        finished
    }
}

/// One finished task as the Python side takes it.
fn completion<'py>(
    py: Python<'py>,
    token: u64,
    result: TaskResult,
) -> PyResult<Bound<'py, PyTuple>> {
    match result {
        Ok(output) => (
            token,
            PyBytes::new(py, output.value()),
            py.None(),
            PyBytes::new(py, output.stdout().as_bytes()),
            PyBytes::new(py, output.stderr().as_bytes()),
        )
            .into_pyobject(py),
        Err(error) => {
            let about = (
                error.kind().as_str(),
                error.message(),
                error.exit_code(),
                error.traceback(),
                error.to_string(),
            );
            (
                token,
                py.None(),
                about,
                PyBytes::new(py, error.stdout().as_bytes()),
                PyBytes::new(py, error.stderr().as_bytes()),
            )
                .into_pyobject(py)
        }
    }
}

/// Builds (or finds in the cache) the component of the Python task at
/// `path`, bundling the directories of `paths`, and returns its path.
#[pyfunction]
#[pyo3(signature = (path, *, paths=Vec::new(), cache_dir=None))]
fn build_python(
    py: Python<'_>,
    path: String,
    paths: Vec<String>,
    cache_dir: Option<String>,
) -> PyResult<String> {
    let options = PythonBuild {
        paths: paths.into_iter().map(Into::into).collect(),
        cache: cache_dir.map(Into::into),
    };
    py.detach(|| wasmpool::python::build(path.as_ref(), &options))
        .map(|built| built.display().to_string())
        .map_err(|error| PyRuntimeError::new_err(error.to_string()))
}

/// The component `build_python` would return without building, if it is
/// in the cache.
#[pyfunction]
#[pyo3(signature = (path, *, paths=Vec::new(), cache_dir=None))]
fn cached_python(
    path: String,
    paths: Vec<String>,
    cache_dir: Option<String>,
) -> PyResult<Option<String>> {
    let options = PythonBuild {
        paths: paths.into_iter().map(Into::into).collect(),
        cache: cache_dir.map(Into::into),
    };
    wasmpool::python::cached(path.as_ref(), &options)
        .map(|built| built.map(|path| path.display().to_string()))
        .map_err(|error| PyRuntimeError::new_err(error.to_string()))
}

/// Where wasmpool keeps what it can reuse, if the environment says.
#[pyfunction]
fn default_cache_dir() -> Option<String> {
    wasmpool::default_cache_dir().map(|dir| dir.display().to_string())
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativePool>()?;
    module.add_class::<NativeTask>()?;
    module.add_function(wrap_pyfunction!(build_python, module)?)?;
    module.add_function(wrap_pyfunction!(cached_python, module)?)?;
    module.add_function(wrap_pyfunction!(default_cache_dir, module)?)?;
    module.add_function(wrap_pyfunction!(wire::wire_dumps, module)?)?;
    module.add_function(wrap_pyfunction!(wire::wire_loads, module)?)?;
    module.add_function(wrap_pyfunction!(marshal::pack, module)?)?;
    module.add_function(wrap_pyfunction!(marshal::unpack, module)?)?;
    module.add("COMPONENTIZE_PY", wasmpool::python::COMPONENTIZE_PY)?;
    Ok(())
}
