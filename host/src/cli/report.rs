//! `wasmpool report`: one self-contained HTML page from a run's records: a
//! timeline with a lane per worker, a log-scale histogram of durations with
//! percentiles, the errors by kind and message, and the run's summary. Inline SVG and CSS only, so it opens anywhere,
//! offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

/// Past this many tasks the timeline draws a sample, and says so.
const MAX_BARS: usize = 4000;
/// The longest tasks, which the timeline draws whatever it samples.
const LONGEST_BARS: usize = 100;
/// Failed tasks the timeline draws at most: past it, an even sample.
const MAX_FAILED_BARS: usize = 20_000;
const HISTOGRAM_BINS: usize = 30;
/// Distinct messages the error table shows of a kind, the most frequent.
const MESSAGES_PER_KIND: usize = 10;
/// Inputs shown with each message.
const EXAMPLE_INPUTS: usize = 3;

/// What the report needs of one record.
pub(crate) struct Row {
    pub(crate) index: u64,
    pub(crate) worker: Option<u64>,
    pub(crate) start_ms: Option<f64>,
    pub(crate) duration_ms: f64,
    /// The error kind, `None` for a task that succeeded.
    pub(crate) kind: Option<String>,
    pub(crate) message: String,
    pub(crate) input: String,
}

impl Row {
    pub(crate) fn of_record(record: &Value) -> Option<Row> {
        let input = record["input"].to_string();
        Some(Row {
            index: record["index"].as_u64()?,
            worker: record["worker"].as_u64(),
            start_ms: record["start_ms"].as_f64(),
            duration_ms: record["duration_ms"].as_f64().unwrap_or(0.0),
            kind: record["error"]["kind"].as_str().map(str::to_string),
            message: record["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            input: shorten(&input, 80),
        })
    }
}

/// Reads the rows of a JSONL results file.
pub(crate) fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the results file {}", path.display()))?;
    let mut rows = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str::<Value>(&line)
            .ok()
            .as_ref()
            .and_then(Row::of_record);
        match row {
            Some(row) => rows.push(row),
            None => bail!(
                "line {} of {} is not a wasmpool record",
                number + 1,
                path.display()
            ),
        }
    }
    Ok(rows)
}

/// Writes the report of `rows` to `path`.
/// Writes the report of `rows` to `path`, with `notes` about the run (what
/// the records alone do not tell) under its summary.
pub(crate) fn write(
    rows: &[Row],
    title: &str,
    notes: &[String],
    path: &Path,
) -> anyhow::Result<()> {
    std::fs::write(path, render(rows, title, notes))
        .with_context(|| format!("cannot write the report {}", path.display()))
}

fn render(rows: &[Row], title: &str, notes: &[String]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>wasmpool report: {title}</title><style>{STYLE}</style></head><body>\
         <h1>wasmpool report: {title}</h1>",
        title = escape(title)
    );
    summary(&mut page, rows);
    for note in notes {
        let _ = write!(page, "<p class=\"note run-note\">{}</p>", escape(note));
    }
    timeline(&mut page, rows);
    histogram(&mut page, rows);
    errors(&mut page, rows);
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
    h2{margin-top:1.6em}table{border-collapse:collapse}\
    td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
    .ok{fill:#3a9d5d}.failed{fill:#d9534f}.bin{fill:#4a7ab7}\
    .lane-label{font-size:12px}.note{color:#666}\
    dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}";

fn summary(page: &mut String, rows: &[Row]) {
    let failed = rows.iter().filter(|row| row.kind.is_some()).count();
    let ran = rows.iter().filter(|row| row.worker.is_some()).count();
    let workers = lanes(rows).len().max(1);
    let (first, last) = span(rows);
    let wall_ms = (last - first).max(0.0);
    let busy_ms: f64 = rows.iter().map(|row| row.duration_ms).sum();
    let rate = if wall_ms > 0.0 {
        ran as f64 / (wall_ms / 1e3)
    } else {
        0.0
    };
    let utilisation = if wall_ms > 0.0 {
        100.0 * busy_ms / (wall_ms * workers as f64)
    } else {
        0.0
    };
    // Inputs refused before running (invalid-input), or cancelled first:
    // records without a run, counted by kind.
    let mut never: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.worker.is_none()) {
        *never
            .entry(row.kind.as_deref().unwrap_or("ok"))
            .or_default() += 1;
    }
    let never_ran = if never.is_empty() {
        "0".to_string()
    } else {
        let kinds: Vec<String> = never
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        format!("{} ({})", rows.len() - ran, kinds.join(", "))
    };
    let _ = write!(
        page,
        "<h2>Summary</h2><dl class=\"summary\" id=\"summary\">\
         <dt>tasks</dt><dd id=\"tasks\">{}</dd><dt>ok</dt><dd id=\"ok\">{}</dd>\
         <dt>failed</dt><dd id=\"failed\">{failed}</dd>\
         <dt>ran</dt><dd id=\"ran\">{ran}</dd>\
         <dt>never ran</dt><dd id=\"never-ran\">{}</dd>\
         <dt>wall time</dt><dd>{:.3} s</dd><dt>tasks per second</dt><dd>{rate:.1}</dd>\
         <dt>workers</dt><dd>{workers}</dd>\
         <dt>utilisation</dt><dd>{utilisation:.1}% of the workers' time</dd></dl>",
        rows.len(),
        rows.len() - failed,
        escape(&never_ran),
        wall_ms / 1e3,
    );
}

/// The workers that ran something, in order.
fn lanes(rows: &[Row]) -> Vec<u64> {
    let mut lanes: Vec<u64> = rows.iter().filter_map(|row| row.worker).collect();
    lanes.sort_unstable();
    lanes.dedup();
    lanes
}

/// The first start and the last end among the tasks that ran.
fn span(rows: &[Row]) -> (f64, f64) {
    let timed = rows
        .iter()
        .filter_map(|row| row.start_ms.map(|start| (start, start + row.duration_ms)));
    timed.fold((f64::INFINITY, 0.0), |(first, last), (start, end)| {
        (first.min(start), last.max(end))
    })
}

fn timeline(page: &mut String, rows: &[Row]) {
    let lanes = lanes(rows);
    let timed: Vec<&Row> = rows
        .iter()
        .filter(|row| row.worker.is_some() && row.start_ms.is_some())
        .collect();
    page.push_str("<h2>Timeline</h2>");
    if timed.is_empty() {
        page.push_str("<p class=\"note\">No task ran.</p>");
        return;
    }
    let (drawn, sampled) = sample(&timed);
    if let Some(note) = sampled {
        let _ = write!(
            page,
            "<p class=\"note\" id=\"sampled\">{}</p>",
            escape(&note)
        );
    }
    let (first, last) = span(rows);
    let width = 1000.0;
    let label = 90.0;
    let lane_height = 28.0;
    let scale = (width - label) / (last - first).max(1e-3);
    let height = lane_height * lanes.len() as f64 + 24.0;
    let _ = write!(
        page,
        "<svg id=\"timeline\" width=\"{width}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (lane, worker) in lanes.iter().enumerate() {
        let y = lane as f64 * lane_height;
        let _ = write!(
            page,
            "<g class=\"lane\" data-worker=\"{worker}\"><text class=\"lane-label\" x=\"0\" \
             y=\"{:.1}\">worker {worker}</text></g>",
            y + 18.0
        );
    }
    for row in drawn {
        let lane = lanes
            .iter()
            .position(|&worker| Some(worker) == row.worker)
            .expect("every timed row has a lane");
        let x = label + (row.start_ms.unwrap_or_default() - first) * scale;
        let bar = (row.duration_ms * scale).max(1.0);
        let outcome = if row.kind.is_some() { "failed" } else { "ok" };
        let mut tip = format!(
            "task {}: input {}, {:.3} ms",
            row.index, row.input, row.duration_ms
        );
        if let Some(kind) = &row.kind {
            let _ = write!(tip, ", {kind}: {}", shorten(&row.message, 120));
        }
        let _ = write!(
            page,
            "<rect class=\"bar {outcome}\" x=\"{x:.2}\" y=\"{:.1}\" width=\"{bar:.2}\" \
             height=\"{:.1}\"><title>{}</title></rect>",
            lane as f64 * lane_height + 4.0,
            lane_height - 8.0,
            escape(&tip)
        );
    }
    let _ = write!(
        page,
        "<text x=\"{label}\" y=\"{:.1}\">0 ms</text><text x=\"{:.1}\" y=\"{:.1}\" \
         text-anchor=\"end\">{:.1} ms</text></svg>",
        height - 4.0,
        width - 2.0,
        height - 4.0,
        last - first
    );
}

/// Which of the tasks that ran the timeline draws: all when they fit in
/// [`MAX_BARS`]; else every failed one (an even sample of them past
/// [`MAX_FAILED_BARS`]), the [`LONGEST_BARS`] longest, and an even sample
/// of the others, with a note that says so. Never a sample that hides
/// what explains the run: the failures and the tasks that held it up.
fn sample<'r>(timed: &[&'r Row]) -> (Vec<&'r Row>, Option<String>) {
    if timed.len() <= MAX_BARS {
        return (timed.to_vec(), None);
    }
    let mut by_duration: Vec<usize> = (0..timed.len()).collect();
    let longest = LONGEST_BARS.min(timed.len());
    by_duration.select_nth_unstable_by(longest - 1, |&a, &b| {
        timed[b].duration_ms.total_cmp(&timed[a].duration_ms)
    });
    let mut drawn = vec![false; timed.len()];
    for &index in &by_duration[..longest] {
        drawn[index] = true;
    }
    let failed: Vec<usize> = (0..timed.len())
        .filter(|&index| timed[index].kind.is_some())
        .collect();
    let failed_stride = failed.len().div_ceil(MAX_FAILED_BARS).max(1);
    for &index in failed.iter().step_by(failed_stride) {
        drawn[index] = true;
    }
    let others: Vec<usize> = (0..timed.len()).filter(|&index| !drawn[index]).collect();
    let room = MAX_BARS.saturating_sub(timed.len() - others.len()).max(1);
    let stride = others.len().div_ceil(room).max(1);
    for &index in others.iter().step_by(stride) {
        drawn[index] = true;
    }
    let rows: Vec<&Row> = (0..timed.len())
        .filter(|&index| drawn[index])
        .map(|index| timed[index])
        .collect();
    let failures = if failed_stride == 1 {
        format!("every failed one ({})", failed.len())
    } else {
        format!("one in {failed_stride} of the {} failed", failed.len())
    };
    let note = format!(
        "{} tasks ran: the timeline draws {failures}, the {longest} longest, and one in \
         {stride} of the others: {} bars. The summary, histogram and error table count \
         every task.",
        timed.len(),
        rows.len(),
    );
    (rows, Some(note))
}

/// The value below which `fraction` of the sorted `values` lie (nearest
/// rank).
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Durations of the tasks that ran, on a log scale: tiny tasks and the one
/// that took a thousand times longer both show. Percentiles above it.
fn histogram(page: &mut String, rows: &[Row]) {
    page.push_str("<h2>Task durations</h2>");
    let mut durations: Vec<f64> = rows
        .iter()
        .filter(|row| row.worker.is_some())
        .map(|row| row.duration_ms.max(0.0))
        .collect();
    durations.sort_by(f64::total_cmp);
    let Some(&longest) = durations.last().filter(|&&longest| longest > 0.0) else {
        page.push_str("<p class=\"note\">No durations to show.</p>");
        return;
    };
    page.push_str("<dl class=\"summary\" id=\"percentiles\">");
    for (name, fraction) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        let _ = write!(
            page,
            "<dt>{name}</dt><dd id=\"{name}\">{:.3} ms</dd>",
            percentile(&durations, fraction)
        );
    }
    page.push_str("</dl>");
    let shortest = durations
        .iter()
        .copied()
        .find(|&duration| duration > 0.0)
        .unwrap_or(longest);
    // Equal widths in log(duration); a task of 0 ms goes in the first bin.
    let span = (longest / shortest).ln().max(f64::EPSILON);
    let edge = |bin: usize| shortest * (span * bin as f64 / HISTOGRAM_BINS as f64).exp();
    let mut bins = [0usize; HISTOGRAM_BINS];
    for &duration in &durations {
        let position = (duration.max(shortest) / shortest).ln() / span;
        bins[((position * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1)] += 1;
    }
    let tallest = *bins.iter().max().unwrap_or(&1) as f64;
    let (width, height, bar) = (620.0, 160.0, 20.0);
    let _ = write!(
        page,
        "<svg id=\"histogram\" width=\"{width}\" height=\"{:.0}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        height + 20.0
    );
    for (bin, &count) in bins.iter().enumerate() {
        // A bin with a few tasks among thousands still shows.
        let tall = if count == 0 {
            0.0
        } else {
            (height * count as f64 / tallest).max(2.0)
        };
        let _ = write!(
            page,
            "<rect class=\"bin\" data-count=\"{count}\" x=\"{:.1}\" y=\"{:.1}\" \
             width=\"{:.1}\" height=\"{tall:.1}\"><title>{count} tasks of {:.3} to {:.3} ms\
             </title></rect>",
            bin as f64 * bar + 10.0,
            height - tall,
            bar - 2.0,
            edge(bin),
            edge(bin + 1),
        );
    }
    let right = HISTOGRAM_BINS as f64 * bar + 10.0;
    let _ = write!(
        page,
        "<text x=\"10\" y=\"{y:.0}\">{shortest:.3} ms</text>\
         <text x=\"{:.0}\" y=\"{y:.0}\" text-anchor=\"middle\">{:.3} ms (log scale)</text>\
         <text x=\"{right:.0}\" y=\"{y:.0}\" text-anchor=\"end\">{longest:.3} ms</text></svg>",
        (right + 10.0) / 2.0,
        edge(HISTOGRAM_BINS / 2),
        y = height + 16.0,
    );
}

/// The failures by kind, and within a kind by distinct message, the most
/// frequent first, each with a few of its inputs: a kind hides no message.
fn errors(page: &mut String, rows: &[Row]) {
    page.push_str("<h2>Errors</h2>");
    let mut kinds: BTreeMap<&str, BTreeMap<&str, (usize, Vec<&str>)>> = BTreeMap::new();
    for row in rows {
        if let Some(kind) = &row.kind {
            let (count, inputs) = kinds
                .entry(kind)
                .or_default()
                .entry(&row.message)
                .or_default();
            *count += 1;
            if inputs.len() < EXAMPLE_INPUTS {
                inputs.push(&row.input);
            }
        }
    }
    if kinds.is_empty() {
        page.push_str("<p class=\"note\" id=\"no-errors\">Every task succeeded.</p>");
        return;
    }
    page.push_str(
        "<table id=\"errors\"><tr><th>kind</th><th>count</th><th>message</th>\
         <th>inputs, for example</th></tr>",
    );
    for (kind, messages) in kinds {
        let total: usize = messages.values().map(|(count, _)| count).sum();
        let distinct = match messages.len() {
            1 => "1 message".to_string(),
            n => format!("{n} distinct messages"),
        };
        let _ = write!(
            page,
            "<tr class=\"error-kind\" data-kind=\"{kind}\"><td>{kind}</td>\
             <td class=\"count\">{total}</td><td colspan=\"2\">{distinct}</td></tr>"
        );
        let mut messages: Vec<(&str, (usize, Vec<&str>))> = messages.into_iter().collect();
        messages.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
        for (message, (count, inputs)) in messages.iter().take(MESSAGES_PER_KIND) {
            let _ = write!(
                page,
                "<tr class=\"error-message\" data-kind=\"{kind}\"><td></td>\
                 <td class=\"count\">{count}</td><td class=\"message\">{}</td><td>{}</td></tr>",
                escape(&shorten(message, 200)),
                escape(&inputs.join(", "))
            );
        }
        if messages.len() > MESSAGES_PER_KIND {
            let rest = &messages[MESSAGES_PER_KIND..];
            let tasks: usize = rest.iter().map(|(_, (count, _))| count).sum();
            let _ = write!(
                page,
                "<tr class=\"note\"><td></td><td class=\"count\">{tasks}</td>\
                 <td colspan=\"2\">and {} other messages</td></tr>",
                rest.len()
            );
        }
    }
    page.push_str("</table>");
}

fn shorten(text: &str, at: usize) -> String {
    match text.char_indices().nth(at) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u64, worker: u64, start: f64, kind: Option<&str>) -> Row {
        Row {
            index,
            worker: Some(worker),
            start_ms: Some(start),
            duration_ms: 2.0,
            kind: kind.map(str::to_string),
            message: "boom <b>".to_string(),
            input: "\"x\"".to_string(),
        }
    }

    #[test]
    fn draws_a_lane_per_worker_and_a_bar_per_task() {
        let rows = [
            row(0, 0, 0.0, None),
            row(1, 1, 0.0, Some("panic")),
            row(2, 0, 2.0, None),
        ];
        let page = render(&rows, "t", &[]);
        assert_eq!(page.matches("class=\"lane\"").count(), 2);
        assert_eq!(page.matches("class=\"bar ").count(), 3);
        assert!(page.contains("boom &lt;b&gt;"));
        assert!(!page.contains("id=\"sampled\""));
    }

    #[test]
    fn samples_past_the_bar_limit_keeping_the_failed_and_the_longest_and_says_so() {
        let mut rows: Vec<Row> = (0..10_000).map(|i| row(i, i % 2, i as f64, None)).collect();
        for index in [1, 7_777, 9_999] {
            rows[index].kind = Some("timeout".to_string());
        }
        rows[4_243].duration_ms = 2_000.0;
        let page = render(&rows, "t", &[]);
        assert!(page.contains("id=\"sampled\""));
        assert!(page.contains("the timeline draws every failed one (3), the 100 longest"));
        assert!(page.matches("class=\"bar ").count() <= MAX_BARS);
        assert_eq!(page.matches("class=\"bar failed\"").count(), 3);
        assert!(page.contains("task 4243: input"));
    }

    #[test]
    fn durations_show_on_a_log_scale_with_percentiles() {
        let mut rows: Vec<Row> = (0..1000).map(|i| row(i, 0, i as f64, None)).collect();
        for (i, row) in rows.iter_mut().enumerate() {
            row.duration_ms = 0.01 * (1 + i % 10) as f64;
        }
        rows[500].duration_ms = 2_000.0;
        let page = render(&rows, "t", &[]);
        // Linear bins would put 999 tasks in the first; log bins spread them.
        let filled = page.matches("class=\"bin\" data-count=\"").count()
            - page.matches("class=\"bin\" data-count=\"0\"").count();
        assert!(filled >= 5, "{filled} bins hold tasks");
        assert!(page.contains("<dd id=\"p50\">0.060 ms</dd>"));
        assert!(page.contains("<dd id=\"p90\">0.100 ms</dd>"));
        assert!(page.contains("<dd id=\"max\">2000.000 ms</dd>"));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
    }

    #[test]
    fn errors_are_grouped_by_kind_and_by_message() {
        let mut rows = vec![
            row(0, 0, 0.0, Some("guest-error")),
            row(1, 0, 1.0, Some("guest-error")),
            row(2, 0, 2.0, Some("guest-error")),
        ];
        rows[0].message = "missing field `lang`".to_string();
        rows[1].message = "missing field `lang`".to_string();
        rows[2].message = "unsupported language".to_string();
        let page = render(&rows, "t", &[]);
        assert!(page.contains("<td class=\"count\">3</td><td colspan=\"2\">2 distinct messages"));
        assert!(
            page.contains("<td class=\"count\">2</td><td class=\"message\">missing field `lang`")
        );
        assert!(
            page.contains("<td class=\"count\">1</td><td class=\"message\">unsupported language")
        );
    }
}
