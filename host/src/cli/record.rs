//! The JSON record written for each input.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use wasmpool::{Captured, TaskResult};

use super::inputs::raw;

/// One line of `wasmpool run`'s output.
#[derive(Serialize)]
pub(crate) struct Record {
    pub(crate) index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) line: Option<usize>,
    pub(crate) input: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ok: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ErrorRecord>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) stdout_truncated: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) stderr_truncated: bool,
    pub(crate) duration_ms: Millis,
    pub(crate) worker: Option<usize>,
    /// How many runs the task took (0 for one that never ran).
    pub(crate) attempts: u32,
    /// When the task's (last) run started and ended, from the run's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_ms: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end_ms: Option<Millis>,
    pub(crate) instantiate_ms: Millis,
    pub(crate) run_ms: Millis,
    pub(crate) peak_memory: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fuel_consumed: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct ErrorRecord {
    pub(crate) kind: String,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backtrace: Option<String>,
    /// The guest's own account: a Python task's traceback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) traceback: Option<String>,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl Record {
    pub(crate) fn of_result(
        index: usize,
        line: Option<usize>,
        input: Box<RawValue>,
        result: &TaskResult,
        run_started: Instant,
        text_output: bool,
    ) -> Record {
        let (ok, error, stdout, stderr, duration, worker, attempts, metrics) = match result {
            Ok(output) => (
                Some(if text_output {
                    raw(&String::from_utf8_lossy(output.value()))
                } else {
                    output_value(output.value())
                }),
                None,
                output.stdout(),
                output.stderr(),
                output.duration(),
                Some(output.worker()),
                output.attempts(),
                output.metrics(),
            ),
            Err(failure) => (
                None,
                Some(ErrorRecord {
                    kind: failure.kind().as_str().to_string(),
                    message: failure.message().to_string(),
                    exit_code: failure.exit_code(),
                    backtrace: failure.wasm_backtrace().map(str::to_string),
                    traceback: failure.traceback().map(str::to_string),
                }),
                failure.stdout(),
                failure.stderr(),
                failure.duration(),
                failure.worker(),
                failure.attempts(),
                failure.metrics(),
            ),
        };
        Record {
            index,
            line,
            input,
            ok,
            error,
            stdout: text(stdout),
            stderr: text(stderr),
            stdout_truncated: stdout.is_truncated(),
            stderr_truncated: stderr.is_truncated(),
            duration_ms: Millis::of(duration),
            worker,
            attempts,
            start_ms: metrics
                .started
                .map(|started| Millis::of(started.saturating_duration_since(run_started))),
            end_ms: metrics.started.map(|started| {
                Millis::of(started.saturating_duration_since(run_started) + duration)
            }),
            instantiate_ms: Millis::of(metrics.instantiate),
            run_ms: Millis::of(metrics.run),
            peak_memory: metrics.peak_memory,
            fuel_consumed: metrics.fuel_consumed,
        }
    }

    /// The record of an input that could not be used and never ran.
    pub(crate) fn invalid_input(
        index: usize,
        line: Option<usize>,
        text: String,
        reason: String,
    ) -> Record {
        Record {
            index,
            line,
            input: raw(&text),
            ok: None,
            error: Some(ErrorRecord {
                kind: "invalid-input".to_string(),
                message: reason,
                exit_code: None,
                backtrace: None,
                traceback: None,
            }),
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration_ms: Millis::ZERO,
            worker: None,
            attempts: 0,
            start_ms: None,
            end_ms: None,
            instantiate_ms: Millis::ZERO,
            run_ms: Millis::ZERO,
            peak_memory: 0,
            fuel_consumed: None,
        }
    }

    /// Appends the record's JSON, as `serde_json::to_vec` writes it, to
    /// `out`. One record per task makes this a run's busiest code: written
    /// field by field, it skips serde's escaping of names known to need
    /// none.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        let mut fields = Fields { out, first: true };
        fields.value("index", &self.index);
        if let Some(line) = self.line {
            fields.value("line", &line);
        }
        fields.raw("input", &self.input);
        if let Some(ok) = &self.ok {
            fields.raw("ok", ok);
        }
        if let Some(error) = &self.error {
            fields.value("error", error);
        }
        fields.value("stdout", &self.stdout);
        fields.value("stderr", &self.stderr);
        if self.stdout_truncated {
            fields.value("stdout_truncated", &true);
        }
        if self.stderr_truncated {
            fields.value("stderr_truncated", &true);
        }
        fields.millis("duration_ms", self.duration_ms);
        fields.value("worker", &self.worker);
        fields.value("attempts", &self.attempts);
        if let Some(start) = self.start_ms {
            fields.millis("start_ms", start);
        }
        if let Some(end) = self.end_ms {
            fields.millis("end_ms", end);
        }
        fields.millis("instantiate_ms", self.instantiate_ms);
        fields.millis("run_ms", self.run_ms);
        fields.value("peak_memory", &self.peak_memory);
        if let Some(fuel) = self.fuel_consumed {
            fields.value("fuel_consumed", &fuel);
        }
        fields.out.push(b'}');
    }

    pub(crate) fn error_kind(&self) -> Option<&str> {
        self.error.as_ref().map(|error| error.kind.as_str())
    }
}

/// A JSON object being written, one field at a time.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Fields<'_> {
    /// `name` is one of the record's own, which JSON needs no escapes for.
    fn name(&mut self, name: &str) {
        self.out.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn value(&mut self, name: &str, value: &impl Serialize) {
        self.name(name);
        serde_json::to_writer(&mut *self.out, value).expect("a record's field serialises");
    }

    fn millis(&mut self, name: &str, value: Millis) {
        self.name(name);
        value.write(self.out);
    }

    fn raw(&mut self, name: &str, value: &RawValue) {
        self.name(name);
        self.out.extend_from_slice(value.get().as_bytes());
    }
}

/// SDK tasks return JSON, copied into the record as it is when it fits on
/// the record's line; JSON spread over lines is re-encoded on one, and a
/// task that returns other bytes gets them as a string.
fn output_value(bytes: &[u8]) -> Box<RawValue> {
    if let Ok(value) = serde_json::from_slice::<&RawValue>(bytes)
        && !value.get().contains(['\n', '\r'])
    {
        return value.to_owned();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => raw(&value),
        Err(_) => raw(&String::from_utf8_lossy(bytes)),
    }
}

/// A duration in a record: milliseconds, to the microsecond. JSON has it
/// as the number serde writes for the `f64` of those milliseconds
/// (`12.345`, `3.0`); written from the integer, it is the same text at a
/// fraction of the cost, five times a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Millis {
    micros: u64,
}

impl Millis {
    pub(crate) const ZERO: Millis = Millis { micros: 0 };

    pub(crate) fn of(duration: Duration) -> Millis {
        let micros = duration.as_nanos().saturating_add(500) / 1000;
        Millis {
            micros: u64::try_from(micros).unwrap_or(u64::MAX),
        }
    }

    fn as_f64(self) -> f64 {
        self.micros as f64 / 1e3
    }

    /// Appends what serde writes for [`Millis::as_f64`]: the shortest
    /// decimal that reads back as that number, which for up to 15 digits
    /// (below 10^12 milliseconds, 31 years) is the exact one, trailing
    /// zeros dropped, a whole number ending in `.0`.
    fn write(self, out: &mut Vec<u8>) {
        if self.micros >= 1_000_000_000_000_000 {
            // Beyond: as serde has it.
            serde_json::to_writer(out, &self.as_f64()).expect("a number serialises");
            return;
        }
        let (whole, fraction) = (self.micros / 1000, self.micros % 1000);
        out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        out.push(b'.');
        let digits = [
            b'0' + (fraction / 100) as u8,
            b'0' + (fraction / 10 % 10) as u8,
            b'0' + (fraction % 10) as u8,
        ];
        let kept = match fraction {
            _ if fraction % 100 == 0 => 1,
            _ if fraction % 10 == 0 => 2,
            _ => 3,
        };
        out.extend_from_slice(&digits[..kept]);
    }
}

impl Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

fn text(captured: &Captured) -> String {
    captured.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Every field the hand-written line may carry, against serde's.
    #[test]
    fn written_lines_match_serde() {
        let mut trapped = Record::invalid_input(0, None, "[1, 2]".to_string(), String::new());
        trapped.error = Some(ErrorRecord {
            kind: "trap".to_string(),
            message: "unreachable \"code\"\n".to_string(),
            exit_code: Some(3),
            backtrace: Some("0: f\n1: g".to_string()),
            traceback: None,
        });
        let records = [
            Record::invalid_input(4, Some(5), "{oops".to_string(), "not JSON".to_string()),
            trapped,
        ];
        let mut full = Record::invalid_input(1, None, "x".to_string(), String::new());
        full.error = None;
        full.ok = Some(output_value(b"{\"a\": [1, 2.5e3, \"\\u00e9\"]}"));
        full.stdout = "tab\there \u{1f600}".to_string();
        full.stdout_truncated = true;
        full.stderr_truncated = true;
        full.duration_ms = Millis::of(Duration::from_nanos(1_234_567));
        full.worker = Some(7);
        full.start_ms = Some(Millis::of(Duration::from_micros(500)));
        full.end_ms = Some(Millis::of(Duration::from_secs(3)));
        full.fuel_consumed = Some(u64::MAX);
        for record in records.iter().chain([&full]) {
            let mut line = Vec::new();
            record.write_json(&mut line);
            let expected = serde_json::to_vec(record).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    /// Durations written from their integer read as serde's `f64`, byte
    /// for byte, from a microsecond to centuries.
    #[test]
    fn durations_are_written_as_serde_writes_them() {
        let mut micros: Vec<u64> = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, 1001, 1010];
        micros.extend([1100, 12_345, 123_450, 999_999, 1_000_000, 86_400_000_000]);
        micros.extend([
            123_456_789_012_345,
            999_999_999_999_999,
            999_999_999_999_999_999,
        ]);
        micros.extend([1_000_000_000_000_000_000, u64::MAX]);
        // A spread of ordinary values besides the edges.
        micros.extend((0..2000).map(|n: u64| n.wrapping_mul(2_654_435_761) % 10_000_000_000));
        for micros in micros {
            let millis = Millis { micros };
            let mut written = Vec::new();
            millis.write(&mut written);
            let expected = serde_json::to_vec(&millis).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{micros} us"
            );
        }
        assert_eq!(Millis::of(Duration::from_nanos(1_234_567)).micros, 1235);
        assert_eq!(Millis::of(Duration::from_nanos(1_234_499)).micros, 1234);
    }

    #[test]
    fn outputs_keep_their_text_on_one_line() {
        assert_eq!(
            output_value(b"{\"big\": 123456789012345678901234567890}").get(),
            "{\"big\": 123456789012345678901234567890}"
        );
        assert_eq!(output_value(b"[1,\n 2]").get(), "[1,2]");
        assert_eq!(output_value(b"7\n").get(), "7");
        assert_eq!(output_value(b"not json").get(), "\"not json\"");
        assert_eq!(output_value(b"\xff").get(), "\"\u{fffd}\"");
    }
}
