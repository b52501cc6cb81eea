//! Deny by default: no files, environment, arguments or network unless
//! granted; granted directories work; seeded runs repeat exactly.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{guest, wasmpool};

/// Runs the sandbox probe on `probes` through the real CLI.
fn probe(flags: &[&str], probes: &[Value]) -> Vec<Value> {
    let output = wasmpool()
        .arg("run")
        .arg(guest("sandbox-probe"))
        .args(flags)
        .args(["--inputs", &serde_json::to_string(probes).unwrap()])
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn refused(record: &Value) -> bool {
    record["error"]["kind"] == "guest-error"
}

#[test]
fn a_task_sees_nothing_of_the_host_by_default() {
    // The host has variables: an empty list below means none reached the task.
    assert!(std::env::vars().next().is_some());
    let records = probe(
        &[],
        &[
            json!({"op": "read", "path": "/etc/passwd"}),
            json!({"op": "list", "path": "/"}),
            json!({"op": "write", "path": "/tmp/wasmpool-escape.txt", "text": "x"}),
            json!({"op": "env"}),
            json!({"op": "args"}),
            json!({"op": "connect", "addr": "127.0.0.1:22"}),
        ],
    );
    assert_eq!(records.len(), 6);
    for record in &records[..3] {
        assert!(refused(record), "{record}");
    }
    assert!(!Path::new("/tmp/wasmpool-escape.txt").exists());
    assert_eq!(records[3]["ok"], json!([]), "no environment");
    assert_eq!(records[4]["ok"], json!([]), "no arguments");
    assert!(refused(&records[5]), "no network: {}", records[5]);
}

#[test]
fn granted_directories_and_variables_are_all_a_task_sees() {
    let root =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("grants-{}", std::process::id()));
    let (readable, writable) = (root.join("in"), root.join("out"));
    std::fs::create_dir_all(&readable).unwrap();
    std::fs::create_dir_all(&writable).unwrap();
    std::fs::write(readable.join("a.txt"), "hello from the host").unwrap();
    std::fs::write(root.join("secret.txt"), "not for tasks").unwrap();

    let dir = format!("{}::/in", readable.display());
    let dir_rw = format!("{}::/out", writable.display());
    let records = probe(
        &["--dir", &dir, "--dir-rw", &dir_rw, "--env", "GREETING=hi"],
        &[
            json!({"op": "read", "path": "/in/a.txt"}),
            json!({"op": "list", "path": "/in"}),
            json!({"op": "write", "path": "/in/b.txt", "text": "x"}),
            json!({"op": "write", "path": "/out/c.txt", "text": "written by a task"}),
            json!({"op": "read", "path": "/in/../secret.txt"}),
            json!({"op": "read", "path": "/etc/passwd"}),
            json!({"op": "env"}),
        ],
    );
    assert_eq!(records[0]["ok"], "hello from the host");
    assert_eq!(records[1]["ok"], json!(["a.txt"]));
    assert!(refused(&records[2]), "read-only: {}", records[2]);
    assert!(!readable.join("b.txt").exists());
    assert_eq!(records[3]["ok"], "written");
    assert_eq!(
        std::fs::read_to_string(writable.join("c.txt")).unwrap(),
        "written by a task"
    );
    assert!(refused(&records[4]), "no escape with ..: {}", records[4]);
    assert!(refused(&records[5]));
    assert_eq!(records[6]["ok"], json!([["GREETING", "hi"]]));
}

/// A symlink inside a granted directory leads nowhere outside it, however
/// it points (relative, absolute, to a directory above), for reads and for
/// writes; one that stays inside works.
#[test]
fn symlinks_do_not_lead_out_of_a_granted_directory() {
    use std::os::unix::fs::symlink;
    let root =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("symlinks-{}", std::process::id()));
    let (readable, writable) = (root.join("in"), root.join("out"));
    std::fs::create_dir_all(&readable).unwrap();
    std::fs::create_dir_all(&writable).unwrap();
    std::fs::write(readable.join("a.txt"), "inside").unwrap();
    std::fs::write(root.join("secret.txt"), "not for tasks").unwrap();
    symlink("a.txt", readable.join("inner")).unwrap();
    symlink("../secret.txt", readable.join("relative")).unwrap();
    symlink(root.join("secret.txt"), readable.join("absolute")).unwrap();
    symlink("..", readable.join("up")).unwrap();
    symlink("../secret.txt", writable.join("overwrite")).unwrap();

    let dir = format!("{}::/in", readable.display());
    let dir_rw = format!("{}::/out", writable.display());
    let records = probe(
        &["--dir", &dir, "--dir-rw", &dir_rw],
        &[
            json!({"op": "read", "path": "/in/inner"}),
            json!({"op": "read", "path": "/in/relative"}),
            json!({"op": "read", "path": "/in/absolute"}),
            json!({"op": "read", "path": "/in/up/secret.txt"}),
            json!({"op": "list", "path": "/in/up"}),
            json!({"op": "write", "path": "/out/overwrite", "text": "overwritten"}),
        ],
    );
    assert_eq!(records.len(), 6);
    assert_eq!(records[0]["ok"], "inside");
    for record in &records[1..] {
        assert!(refused(record), "{record}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("secret.txt")).unwrap(),
        "not for tasks"
    );
}

#[test]
fn a_seeded_run_repeats_exactly_whatever_the_workers() {
    let draws: Vec<Value> = (0..12).map(|_| json!({"op": "random"})).collect();
    let oks = |records: Vec<Value>| -> Vec<(u64, Value)> {
        let mut oks: Vec<(u64, Value)> = records
            .into_iter()
            .map(|record| (record["index"].as_u64().unwrap(), record["ok"].clone()))
            .collect();
        oks.sort_by_key(|(index, _)| *index);
        oks
    };
    let one = oks(probe(&["--seed", "42", "-j", "1"], &draws));
    let two = oks(probe(&["--seed", "42", "-j", "2", "--unordered"], &draws));
    assert_eq!(one.len(), 12);
    assert_eq!(one, two);
    // Each task draws its own numbers.
    assert_ne!(one[0].1, one[1].1);
    // Another seed, or none, draws others.
    assert_ne!(oks(probe(&["--seed", "43"], &draws)), one);
    assert_ne!(oks(probe(&[], &draws)), oks(probe(&[], &draws)));
}
