//! What a person at a terminal sees while a run goes: each finished task's
//! output, and a progress bar (done, failed, running, rate, time left) on
//! stderr. Off the terminal, or with --quiet, nothing.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use wasmpool::{Stats, TaskResult};

/// How often the bar shows the running tasks' own progress.
pub(crate) const REFRESH: Duration = Duration::from_millis(200);

pub(crate) struct Live {
    bar: Option<ProgressBar>,
    /// Whether each finished task's output is shown above the bar.
    echo: bool,
}

impl Live {
    /// `total` is the number of inputs to run when known in advance; with
    /// `echo`, each finished task's output is shown above the bar.
    pub(crate) fn new(on_terminal: bool, total: Option<u64>, echo: bool) -> Live {
        if !on_terminal {
            return Live { bar: None, echo };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} done, {msg} \
                 {rate} ETA {eta}",
            ),
            None => (
                ProgressBar::no_length(),
                "{spinner} {elapsed_precise} {pos} done, {msg} {rate}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("the template is valid")
            .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
                let _ = write!(out, "{}", rate(state.per_sec()));
            })
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message("0 failed, 0 running");
        Live {
            bar: Some(bar),
            echo,
        }
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
        if self.echo {
            bar.suspend(|| show(result));
        }
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

/// Tasks per second, to two or three significant digits: `0.42/s`,
/// `7.5/s`, `120/s`, `48200/s`.
fn rate(per_second: f64) -> String {
    let digits = match per_second {
        rate if !rate.is_finite() || rate <= 0.0 => return "0/s".to_string(),
        rate if rate < 1.0 => 2,
        rate if rate < 10.0 => 1,
        _ => 0,
    };
    let shown = if digits == 0 && per_second >= 1000.0 {
        // Three significant digits: 48213 -> 48200.
        let scale = 10f64.powi(per_second.log10().floor() as i32 - 2);
        (per_second / scale).round() * scale
    } else {
        per_second
    };
    format!("{shown:.digits$}/s")
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

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_are_rounded_to_what_a_person_reads() {
        let shown: Vec<String> = [0.0, 0.4242, 7.46, 12.6, 999.4, 48213.7, 1_234_567.0]
            .into_iter()
            .map(rate)
            .collect();
        assert_eq!(
            shown,
            [
                "0/s",
                "0.42/s",
                "7.5/s",
                "13/s",
                "999/s",
                "48200/s",
                "1230000/s"
            ]
        );
    }
}
