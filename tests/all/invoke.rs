//! `--invoke`: typed calls of any exported function of any component, JSON
//! arguments converted to WIT types and the result back, through the real
//! binary and the library.

use serde_json::{Value, json};
use wasmpool::{ErrorKind, LoadOptions, Pool, TaskKind};

use crate::support::{assert_refused, guest, records, run, stderr};

/// Each input's record: `ok`, or the error's kind and message.
fn invoke(function: &str, inputs: Value) -> Vec<Value> {
    let output = run(
        &guest("shapes"),
        &["--invoke", function, "--inputs", &inputs.to_string()],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    records(&output.stdout)
        .into_iter()
        .map(|record| match record.get("ok") {
            Some(ok) => ok.clone(),
            None => {
                json!({"error": record["error"]["kind"], "message": record["error"]["message"]})
            }
        })
        .collect()
}

#[test]
fn records_variants_options_results_enums_and_flags_cross_as_json() {
    assert_eq!(
        invoke(
            "geometry#area",
            json!([[{"rect": [2.0, 3.5]}], ["dot"], [{"circle": 0.0}]])
        ),
        [json!(7.0), json!(0.0), json!(0.0)]
    );
    assert_eq!(
        invoke(
            "centroid",
            json!([[[{"x": 0, "y": 0}, {"x": 4, "y": 2}]], [[]]])
        ),
        [json!({"x": 2.0, "y": 1.0}), Value::Null]
    );
    assert_eq!(
        invoke("parse-unit", json!([["cm"], ["inch"]])),
        [json!({"ok": "cm"}), json!({"err": "unknown unit `inch`"})]
    );
    assert_eq!(
        invoke(
            "example:shapes/geometry@0.1.0#to-mm",
            json!([[{"x": 1.5, "y": 2}, "m"]])
        ),
        [json!({"x": 1500.0, "y": 2000.0})]
    );
    assert_eq!(
        invoke("styles", json!([[["dashed", "bold"]], [[]]])),
        [json!(["bold", "dashed"]), json!([])]
    );
    assert_eq!(
        invoke("describe", json!([["hexagon", 6]])),
        [json!("a hexagon has 6 sides")]
    );
}

#[test]
fn a_mismatch_is_invalid_input_naming_the_parameter_and_its_type() {
    let results = invoke(
        "to-mm",
        json!([
            [{"x": 1, "y": 2}, "km"],
            [{"x": "far", "y": 2}, "m"],
            [{"x": 1}, "m"],
            [{"x": 1, "y": 2}],
            {"x": 1},
            [{"x": 1, "y": 2}, "mm"]
        ]),
    );
    let message = |i: usize| {
        assert_eq!(results[i]["error"], "invalid-input", "{}", results[i]);
        results[i]["message"].as_str().unwrap().to_string()
    };
    assert_eq!(
        message(0),
        "parameter `in-unit` expects enum { mm, cm, m }, got \"km\""
    );
    assert_eq!(
        message(1),
        "parameter `p` (record { x: f64, y: f64 }): expected f64 at .x, got \"far\""
    );
    assert!(message(2).contains("expected f64 at .y, got null"));
    assert!(message(3).contains("takes 2 arguments (p: record { x: f64, y: f64 }, in-unit: enum { mm, cm, m }), the input has 1"));
    assert!(message(4).contains("must be a JSON array of the arguments"));
    // The other inputs are not affected.
    assert_eq!(results[5], json!({"x": 1.0, "y": 2.0}));
    let u8_range = invoke("describe", json!([["x", 256]]));
    assert_eq!(
        u8_range[0]["message"],
        "parameter `sides` expects u8, got 256"
    );
}

#[test]
fn an_unknown_function_is_refused_with_the_list_of_exports() {
    let output = run(
        &guest("shapes"),
        &["--invoke", "volume", "--inputs", "[[1]]"],
    );
    assert_refused(&output, "no exported function `volume`");
    assert!(stderr(&output).contains("example:shapes/geometry@0.1.0#centroid"));
    // Without --invoke, the error says how to call such a component.
    let output = run(&guest("shapes"), &["--inputs", "[1]"]);
    assert_refused(&output, "use --invoke NAME");
}

#[test]
fn the_library_invokes_a_function_and_runs_a_command() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let area = pool
        .load_with(guest("shapes"), &LoadOptions::new().invoke("area"))
        .unwrap();
    assert_eq!(area.kind(), TaskKind::Invoke);
    let results: Vec<_> = pool
        .map(&area, [r#"[{"circle": 2.0}]"#, r#"[{"oval": 1}]"#])
        .collect();
    let pi4: f64 = results[0].as_ref().unwrap().json().unwrap();
    assert!((pi4 - 4.0 * std::f64::consts::PI).abs() < 1e-12);
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!((error.attempts(), error.worker()), (0, None));

    let count = pool.load(guest("word-count")).unwrap();
    assert_eq!(count.kind(), TaskKind::Command);
    let output = pool.submit(&count, "a b\nc").unwrap().wait().unwrap();
    assert_eq!(output.value(), b"2 3 5\n");
}
