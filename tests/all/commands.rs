//! Unmodified WASI command programs as tasks: a Rust command component
//! (word-count, wasm32-wasip2) and a C command module (shout, built by zig
//! cc for wasm32-wasi), through the real binary.

use serde_json::Value;

use crate::support::{c_program, guest, records, run, stderr, tempdir};

fn ok(record: &Value) -> &str {
    record["ok"]
        .as_str()
        .unwrap_or_else(|| panic!("not ok: {record}"))
}

#[test]
fn a_command_component_reads_each_input_on_stdin() {
    let output = run(
        &guest("word-count"),
        &[
            "-j",
            "2",
            "--inputs",
            r#"["one two\nthree", "", {"a": [1, 2]}, 42]"#,
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    // A string is given as its text; anything else as its JSON text, as
    // written (`{"a": [1, 2]}`: one line, three words, 13 bytes).
    let counts: Vec<&str> = records.iter().map(ok).collect();
    assert_eq!(counts, ["2 3 13\n", "0 0 0\n", "1 3 13\n", "1 1 2\n"]);
    assert_eq!(records[0]["stdout"], "2 3 13\n");
    assert_eq!(records[0]["input"], "one two\nthree");
}

#[test]
fn lines_feeds_one_plain_text_line_per_task() {
    let dir = tempdir("commands-lines");
    let lines = dir.join("lines.txt");
    // Not JSON: each line is taken as it is, an empty one too.
    std::fs::write(&lines, "to be or not\n{not json\n\nend\n").unwrap();
    let output = run(
        &guest("word-count"),
        &["--lines", lines.to_str().unwrap(), "--unordered"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut records = records(&output.stdout);
    records.sort_by_key(|record| record["index"].as_u64());
    let seen: Vec<(&str, &str, u64)> = records
        .iter()
        .map(|r| {
            (
                r["input"].as_str().unwrap(),
                ok(r),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("to be or not", "1 4 12\n", 1),
            ("{not json", "1 2 9\n", 2),
            ("", "0 0 0\n", 3),
            ("end", "1 1 3\n", 4),
        ]
    );
}

#[test]
fn a_c_program_runs_unmodified_and_its_exit_code_is_kept() {
    let shout = c_program("shout");
    let output = run(&shout, &["-j", "2", "--inputs", r#"["hello", "", "wasm"]"#]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(ok(&records[0]), "HELLO");
    assert_eq!(ok(&records[2]), "WASM");
    // Exit 3 is a failure of that input alone, with its code and stderr.
    let error = &records[1]["error"];
    assert_eq!(error["kind"], "exit", "{}", records[1]);
    assert_eq!(error["exit_code"], 3);
    assert_eq!(records[1]["stderr"], "shout: nothing to shout\n");
    assert!(stderr(&output).contains("3 tasks: 2 ok, 1 failed"));
}

/// A command program runs the same with memory accesses checked in code
/// (`--explicit-bounds-checks`), its memory grown anew in every run.
#[test]
fn a_command_program_runs_with_explicit_bounds_checks() {
    let shout = c_program("shout");
    let inputs: Vec<String> = (0..200).map(|i| format!("word {i}")).collect();
    let inputs = serde_json::to_string(&inputs).unwrap();
    let output = run(
        &shout,
        &["-j", "2", "--explicit-bounds-checks", "--inputs", &inputs],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records.len(), 200);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(ok(record), format!("WORD {i}"));
    }
}

#[test]
fn an_arguments_template_and_fixed_arguments_build_each_command_line() {
    let output = run(
        &c_program("shout"),
        &[
            "--inputs",
            r#"["big cat", 7]"#,
            "--args-template",
            "say {} twice {}!",
            "--arg",
            "--loud",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    // The input fills each `{}` as one argument; --arg comes last.
    assert_eq!(ok(&records[0]), "SAY BIG CAT TWICE BIG CAT! --LOUD\n");
    assert_eq!(ok(&records[1]), "SAY 7 TWICE 7! --LOUD\n");
}

#[test]
fn a_command_sees_only_the_granted_files_and_variables() {
    let dir = tempdir("commands-grants");
    std::fs::write(dir.join("note.txt"), "quiet words").unwrap();
    let shout = c_program("shout");
    let args = [
        "--inputs",
        r#"["@/data/note.txt"]"#,
        "--args-template",
        "{}",
    ];

    let denied = run(&shout, &args);
    let record = &records(&denied.stdout)[0];
    assert_eq!(record["error"]["exit_code"], 4, "{record}");
    assert_eq!(record["stderr"], "shout: cannot read /data/note.txt\n");

    let grant = format!("{}::/data", dir.display());
    let mut granted_args = args.to_vec();
    granted_args.extend(["--dir", &grant, "--env", "SHOUT_PREFIX=>> "]);
    let granted = run(&shout, &granted_args);
    assert_eq!(granted.status.code(), Some(0), "{}", stderr(&granted));
    assert_eq!(ok(&records(&granted.stdout)[0]), ">> QUIET WORDS\n");
}

#[test]
fn arguments_are_refused_for_a_task_component() {
    let output = run(&guest("fib"), &["--inputs", "[3]", "--args-template", "{}"]);
    crate::support::assert_refused(&output, "are for WASI command programs");
}

#[test]
fn arguments_after_a_double_dash_go_to_the_program() {
    let shout = c_program("shout");
    // With a `{}`, they are the template; the input fills it.
    let templated = run(
        &shout,
        &["--inputs", r#"["big cat"]"#, "--", "-v", "{}", "--loud"],
    );
    assert_eq!(templated.status.code(), Some(0), "{}", stderr(&templated));
    assert_eq!(ok(&records(&templated.stdout)[0]), "-V BIG CAT --LOUD\n");
    // Without, every run gets them as they are.
    let fixed = run(&shout, &["--inputs", r#"["x"]"#, "--", "fixed", "words"]);
    assert_eq!(ok(&records(&fixed.stdout)[0]), "FIXED WORDS\n");
    // Not two templates at once.
    let both = run(
        &shout,
        &["--inputs", "[1]", "--args-template", "{}", "--", "{}"],
    );
    crate::support::assert_refused(&both, "two arguments templates");
}

#[test]
fn a_template_quotes_a_word_with_spaces_as_a_shell_does() {
    let dir = tempdir("commands-quoted");
    std::fs::write(dir.join("my note.txt"), "spaced out").unwrap();
    let grant = format!("{}::/data", dir.display());
    let shout = c_program("shout");
    // One argument `@/data/my note.txt`, not `@/data/my` and `note.txt`;
    // the double space inside the quotes stays.
    let quoted = run(
        &shout,
        &[
            "--inputs",
            r#"["x"]"#,
            "--dir",
            &grant,
            "--args-template",
            r#""@/data/my note.txt" "a  b" {}"#,
        ],
    );
    assert_eq!(quoted.status.code(), Some(0), "{}", stderr(&quoted));
    assert_eq!(ok(&records(&quoted.stdout)[0]), "SPACED OUT A  B X\n");
    let unclosed = run(
        &shout,
        &["--inputs", "[1]", "--args-template", "say 'oops {}"],
    );
    crate::support::assert_refused(&unclosed, "' is not closed");
}

#[test]
fn text_format_writes_each_programs_output_as_it_wrote_it_and_failures_on_stderr() {
    let dir = tempdir("commands-text");
    let lines = dir.join("lines.txt");
    let words: Vec<String> = (0..300).map(|i| format!("word {i}")).collect();
    // Line 151 is empty: shout exits 3 on it, saying so on stderr.
    let mut text = words[..150].join("\n");
    text.push_str("\n\n");
    text.push_str(&words[150..].join("\n"));
    std::fs::write(&lines, text).unwrap();
    let records_file = dir.join("records.jsonl");
    let output = run(
        &c_program("shout"),
        &[
            "-j",
            "2",
            "--format",
            "text",
            "--lines",
            lines.to_str().unwrap(),
            "--output",
            records_file.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // shout echoes its stdin, here a line without its newline: the outputs
    // follow each other in input order, with nothing of wasmpool's between.
    let expected: String = words.iter().map(|word| word.to_uppercase()).collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
    let errors = stderr(&output);
    assert!(errors.contains("shout: nothing to shout\n"), "{errors}");
    assert!(
        errors.contains(r#"wasmpool: input 150 (line 151) "": exit 3: "#),
        "{errors}"
    );
    assert!(errors.contains("301 tasks: 300 ok, 1 failed"), "{errors}");
    // The records still go to --output, one per input.
    let records = records(&std::fs::read(records_file).unwrap());
    assert_eq!(records.len(), 301);
    assert_eq!(records[150]["error"]["exit_code"], 3);
}

#[test]
fn text_format_writes_a_tasks_results_one_per_line_unordered_too() {
    let output = run(
        &guest("trap-zoo"),
        &[
            "-j",
            "2",
            "--unordered",
            "--format",
            "text",
            "--inputs",
            r#"["ok", "panic", "ok", "not json", "error"]"#,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // No records without --output: the results alone.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "\"ok\"\n\"ok\"\n");
    let errors = stderr(&output);
    for line in [
        r#"wasmpool: input 1 "panic": panic: "#,
        r#"wasmpool: input 4 "error": guest-error: "#,
    ] {
        assert!(errors.contains(line), "{line} in {errors}");
    }
}
