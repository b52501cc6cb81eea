//! `wasmpool report`: one self-contained HTML page from a run's records: a
//! timeline with a lane per worker, a histogram of durations, the errors by
//! kind and the run's summary. Inline SVG and CSS only, so it opens anywhere,
//! offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

/// Past this many tasks the timeline draws an even sample, and says so.
const MAX_BARS: usize = 4000;
const HISTOGRAM_BINS: usize = 30;

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
    let workers = lanes(rows).len().max(1);
    let (first, last) = span(rows);
    let wall_ms = (last - first).max(0.0);
    let busy_ms: f64 = rows.iter().map(|row| row.duration_ms).sum();
    let rate = if wall_ms > 0.0 {
        rows.len() as f64 / (wall_ms / 1e3)
    } else {
        0.0
    };
    let utilisation = if wall_ms > 0.0 {
        100.0 * busy_ms / (wall_ms * workers as f64)
    } else {
        0.0
    };
    let _ = write!(
        page,
        "<h2>Summary</h2><dl class=\"summary\" id=\"summary\">\
         <dt>tasks</dt><dd id=\"tasks\">{}</dd><dt>ok</dt><dd id=\"ok\">{}</dd>\
         <dt>failed</dt><dd id=\"failed\">{failed}</dd>\
         <dt>wall time</dt><dd>{:.3} s</dd><dt>tasks per second</dt><dd>{rate:.1}</dd>\
         <dt>workers</dt><dd>{workers}</dd>\
         <dt>utilisation</dt><dd>{utilisation:.1}% of the workers' time</dd></dl>",
        rows.len(),
        rows.len() - failed,
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
    let stride = timed.len().div_ceil(MAX_BARS);
    if stride > 1 {
        let _ = write!(
            page,
            "<p class=\"note\" id=\"sampled\">{} tasks: the timeline shows every {stride}th, \
             {} bars. The summary, histogram and error table count every task.</p>",
            timed.len(),
            timed.len().div_ceil(stride)
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
    for row in timed.iter().step_by(stride) {
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

fn histogram(page: &mut String, rows: &[Row]) {
    page.push_str("<h2>Task durations</h2>");
    let longest = rows.iter().map(|row| row.duration_ms).fold(0.0, f64::max);
    if rows.is_empty() || longest <= 0.0 {
        page.push_str("<p class=\"note\">No durations to show.</p>");
        return;
    }
    let mut bins = [0usize; HISTOGRAM_BINS];
    for row in rows {
        let bin = ((row.duration_ms / longest) * HISTOGRAM_BINS as f64) as usize;
        bins[bin.min(HISTOGRAM_BINS - 1)] += 1;
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
        let tall = height * count as f64 / tallest;
        let low = longest * bin as f64 / HISTOGRAM_BINS as f64;
        let high = longest * (bin + 1) as f64 / HISTOGRAM_BINS as f64;
        let _ = write!(
            page,
            "<rect class=\"bin\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{tall:.1}\">\
             <title>{count} tasks of {low:.3} to {high:.3} ms</title></rect>",
            bin as f64 * bar + 10.0,
            height - tall,
            bar - 2.0
        );
    }
    let _ = write!(
        page,
        "<text x=\"10\" y=\"{:.0}\">0 ms</text><text x=\"{:.0}\" y=\"{:.0}\" \
         text-anchor=\"end\">{longest:.3} ms</text></svg>",
        height + 16.0,
        HISTOGRAM_BINS as f64 * bar + 10.0,
        height + 16.0
    );
}

fn errors(page: &mut String, rows: &[Row]) {
    page.push_str("<h2>Errors</h2>");
    let mut kinds: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for row in rows {
        if let Some(kind) = &row.kind {
            kinds.entry(kind).or_insert((0, &row.message)).0 += 1;
        }
    }
    if kinds.is_empty() {
        page.push_str("<p class=\"note\" id=\"no-errors\">Every task succeeded.</p>");
        return;
    }
    page.push_str(
        "<table id=\"errors\"><tr><th>kind</th><th>count</th><th>example message</th></tr>",
    );
    for (kind, (count, example)) in kinds {
        let _ = write!(
            page,
            "<tr class=\"error-kind\" data-kind=\"{kind}\"><td>{kind}</td>\
             <td class=\"count\">{count}</td><td>{}</td></tr>",
            escape(&shorten(example, 200))
        );
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
    fn samples_past_the_bar_limit_and_says_so() {
        let rows: Vec<Row> = (0..10_000).map(|i| row(i, i % 2, i as f64, None)).collect();
        let page = render(&rows, "t", &[]);
        assert!(page.contains("id=\"sampled\""));
        assert!(page.matches("class=\"bar ").count() <= MAX_BARS);
    }
}
