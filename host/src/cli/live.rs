//! What a person at a terminal sees while a run goes: each finished task's
//! output, and a progress bar (done, failed, running, rate, time left) on
//! stderr. Off the terminal, or with --quiet, nothing.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wasmpool::TaskResult;

pub(crate) struct Live {
    bar: Option<ProgressBar>,
    failed: u64,
}

impl Live {
    /// `total` is the number of inputs when known in advance.
    pub(crate) fn new(on_terminal: bool, total: Option<u64>) -> Live {
        if !on_terminal {
            return Live {
                bar: None,
                failed: 0,
            };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} done, {msg} \
                 {per_sec} ETA {eta}",
            ),
            None => (
                ProgressBar::no_length(),
                "{spinner} {elapsed_precise} {pos} done, {msg} {per_sec}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message("0 failed, 0 running");
        Live {
            bar: Some(bar),
            failed: 0,
        }
    }

    /// A task finished: show its output and move the bar on.
    pub(crate) fn task_done(&mut self, result: &TaskResult, running: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        if result.is_err() {
            self.failed += 1;
        }
        bar.suspend(|| show(result));
        bar.set_message(format!("{} failed, {running} running", self.failed));
        bar.inc(1);
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows a finished task's output on the terminal, as a local run would.
fn show(result: &TaskResult) {
    let mut stderr = std::io::stderr().lock();
    let _ = match result {
        Ok(output) => stderr.write_all(output.stdout().as_bytes()),
        Err(error) => {
            let _ = stderr.write_all(error.stdout().as_bytes());
            writeln!(stderr, "task failed: {error}")
        }
    };
}
