//! What a person at a terminal sees while a run goes: each finished task's
//! output, and a progress bar (done, failed, running, rate, time left) on
//! stderr. Off the terminal, or with --quiet, nothing.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wasmpool::{Stats, TaskResult};

/// How often the bar shows the running tasks' own progress.
pub(crate) const REFRESH: Duration = Duration::from_millis(200);

pub(crate) struct Live {
    bar: Option<ProgressBar>,
}

impl Live {
    /// `total` is the number of inputs when known in advance.
    pub(crate) fn new(on_terminal: bool, total: Option<u64>) -> Live {
        if !on_terminal {
            return Live { bar: None };
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
        Live { bar: Some(bar) }
    }

    /// The bar, for a thread that refreshes it with [`Live::status`].
    pub(crate) fn bar(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    /// A task finished: show its output and move the bar on (the counts
    /// in its message are refreshed by [`Live::status`]).
    pub(crate) fn task_done(&mut self, result: &TaskResult) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.suspend(|| show(result));
        bar.inc(1);
    }

    /// Failed and running counts, and the progress long tasks report:
    /// `1 failed, 2 running (40% 75%)`.
    pub(crate) fn status(bar: &ProgressBar, stats: &Stats) {
        let failed: u64 = stats.failed.values().sum();
        let mut message = format!("{failed} failed, {} running", stats.running);
        let reported: Vec<String> = stats
            .progress
            .iter()
            .flatten()
            .map(|fraction| format!("{:.0}%", fraction * 100.0))
            .collect();
        if !reported.is_empty() {
            message.push_str(&format!(" ({})", reported.join(" ")));
        }
        bar.set_message(message);
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
