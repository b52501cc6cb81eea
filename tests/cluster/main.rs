//! Cluster mode: the real binary under OpenMPI's `mpirun -n 3` on loopback,
//! its records compared with a local run of the same inputs, faulty tasks
//! included; and the library's `Executor` API on a `Cluster` (`embedded`).
//! Needs `--features mpi` and OpenMPI (`.ci/run` installs it).

#[path = "../all/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "../all/pipeline.rs"]
mod pipeline;

mod embedded;
mod mpirun;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use pipeline::{Pipeline, answers_each_input_before_the_next};
use support::{guest, records, run, stderr, tempdir};

/// `mpirun -n RANKS wasmpool run --mpi TASK ARGS...` on this machine alone.
fn mpirun(ranks: u32, task: &Path, args: &[&str]) -> Output {
    mpirun_command(ranks, task, args)
        .output()
        .expect("run mpirun (apt-get install openmpi-bin)")
}

fn mpirun_command(ranks: u32, task: &Path, args: &[&str]) -> Command {
    let mut command = mpirun::mpirun(ranks);
    command
        .arg(env!("CARGO_BIN_EXE_wasmpool"))
        .args(["run", "--mpi"])
        .arg(task)
        .args(args);
    command
}

/// The process of rank `rank` among mpirun's children.
fn rank_pid(mpirun: u32, rank: u32) -> Option<u32> {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The parent pid is the second field after the parenthesised name.
            let parent: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let is_rank = environ
                .split(|&byte| byte == 0)
                .any(|var| var == wanted.as_bytes());
            (parent == mpirun && is_rank).then_some(pid)
        })
}

/// What must not differ between a local and a cluster run: everything but
/// timings and worker numbers.
fn outcome(record: &Value) -> Value {
    let mut kept = serde_json::Map::new();
    for key in [
        "index", "line", "input", "ok", "stdout", "stderr", "attempts",
    ] {
        if let Some(value) = record.get(key) {
            kept.insert(key.to_string(), value.clone());
        }
    }
    if let Some(error) = record.get("error") {
        let mut error = error.clone();
        // Backtraces name code addresses of this build alike; keep them.
        error.as_object_mut().unwrap().remove("backtrace");
        kept.insert("error".to_string(), error);
    }
    Value::Object(kept)
}

fn same_as_local(task: &Path, args: &[&str]) -> Vec<Value> {
    same_outcomes(&run(task, args), &mpirun(3, task, args))
}

/// The records of a local and a cluster run, which must not differ.
fn same_outcomes(local: &Output, cluster: &Output) -> Vec<Value> {
    assert_eq!(
        local.status.code(),
        cluster.status.code(),
        "{}",
        stderr(cluster)
    );
    // With --unordered the order differs from run to run; the records not.
    let sorted = |stdout: &[u8]| {
        let mut records: Vec<Value> = records(stdout).iter().map(outcome).collect();
        records.sort_by_key(|record| record["index"].as_u64());
        records
    };
    let (local, remote) = (sorted(&local.stdout), sorted(&cluster.stdout));
    assert_eq!(local, remote);
    local
}

#[test]
fn a_cluster_run_writes_what_a_local_run_writes_faults_included() {
    let zoo = guest("trap-zoo");
    let mut inputs: Vec<String> = Vec::new();
    for round in 0..6 {
        for fault in [
            "ok",
            "panic",
            "unreachable",
            "oob",
            "abort",
            "stack-overflow",
            "exit",
            "error",
            "loop",
            "memory-bomb",
        ] {
            if round == 0 || !matches!(fault, "loop" | "memory-bomb") {
                inputs.push(format!("\"{fault}\""));
            }
        }
    }
    let inputs = format!("[{}]", inputs.join(","));
    let records = same_as_local(
        &zoo,
        &[
            "--inputs",
            &inputs,
            "-j",
            "1",
            "--timeout",
            "300ms",
            "--max-memory",
            "16MiB",
        ],
    );
    let kinds: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|record| record["error"]["kind"].as_str())
        .collect();
    for kind in [
        "panic",
        "trap",
        "stack-overflow",
        "exit",
        "guest-error",
        "timeout",
        "memory-limit",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
}

#[test]
fn seeded_runs_draw_the_same_numbers_locally_and_on_the_cluster() {
    let probe = guest("sandbox-probe");
    let inputs: Vec<&str> = vec![r#"{"op": "random"}"#; 40];
    let inputs = format!("[{}]", inputs.join(","));
    let records = same_as_local(&probe, &["--inputs", &inputs, "--seed", "7", "--unordered"]);
    assert_eq!(records.len(), 40);
}

#[test]
fn many_inputs_in_order_with_commands_and_invoked_functions() {
    let fib = guest("fib");
    let inputs: Vec<String> = (0..2000).map(|n| (n % 25).to_string()).collect();
    let dir = tempdir("cluster-many");
    let file = dir.join("inputs.jsonl");
    std::fs::write(&file, inputs.join("\n")).unwrap();
    let records = same_as_local(&fib, &["--input-file", file.to_str().unwrap()]);
    assert_eq!(records.len(), 2000);
    assert_eq!(records[1999]["ok"], support::fib(1999 % 25));

    same_as_local(
        &guest("word-count"),
        &["--inputs", r#"["a b", "c\nd e", ""]"#],
    );
    same_as_local(
        &guest("shapes"),
        &[
            "--invoke",
            "area",
            "--inputs",
            r#"[[{"circle": 1}], [{"oval": 2}]]"#,
        ],
    );
}

#[test]
fn big_inputs_and_big_outputs_cross_both_ways_at_once() {
    // Chunks of 200 KB inputs go out while results carrying 1 MiB of
    // captured stdout come back: messages past MPI's eager size, whose
    // sends wait for the matching receive. A rank blocked in sending its
    // results while rank 0 is blocked in sending it a chunk would hang.
    let zoo = guest("trap-zoo");
    let big = format!("\"{}\"", "x".repeat(200_000));
    let inputs: Vec<&str> = (0..24)
        .map(|n| {
            if n % 2 == 0 {
                "\"chatty\""
            } else {
                big.as_str()
            }
        })
        .collect();
    let dir = tempdir("cluster-big");
    let file = dir.join("inputs.jsonl");
    std::fs::write(&file, inputs.join("\n")).unwrap();
    let args = ["--input-file", file.to_str().unwrap()];
    let local = run(&zoo, &args);
    // mpirun's own time limit: a hang fails the test instead of stalling
    // the suite.
    let cluster = mpirun::mpirun(3)
        .args(["--timeout", "300"])
        .arg(env!("CARGO_BIN_EXE_wasmpool"))
        .args(["run", "--mpi"])
        .arg(&zoo)
        .args(args)
        .output()
        .unwrap();
    let records = same_outcomes(&local, &cluster);
    assert_eq!(records.len(), 24);
    assert_eq!(records[0]["ok"], "ok");
    assert_eq!(records[1]["error"]["kind"], "guest-error");
}

/// The split is by credit, not static: a rank holds the task each of its
/// workers runs and little more, so a rank with more workers takes more of
/// the work. mpirun's MPMD form gives rank 1 one worker and rank 2 three;
/// of eight two-second tasks, an even split would give each rank four and
/// keep rank 1 busy twice as long as rank 2.
#[test]
fn a_rank_with_more_workers_takes_more_of_the_work() {
    let task = guest("really-hard-task");
    let binary = env!("CARGO_BIN_EXE_wasmpool");
    let run: Vec<&str> = vec![
        "run",
        "--mpi",
        task.to_str().unwrap(),
        "--inputs",
        "[1, 2, 3, 4, 5, 6, 7, 8]",
        "--seed",
        "1",
    ];
    let mut command = mpirun::mpirun(1);
    command.arg(binary).args(&run);
    for workers in ["1", "3"] {
        command
            .args([":", "-n", "1", binary])
            .args(&run)
            .args(["-j", workers]);
    }
    let output = command.output().expect("run mpirun");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records.len(), 8);
    // Workers are numbered by rank: rank 1's is 0, rank 2's are 1 to 3.
    let on_rank_1 = records
        .iter()
        .filter(|record| record["worker"] == 0)
        .count();
    let on_rank_2 = records.len() - on_rank_1;
    assert!(
        on_rank_2 >= 2 * on_rank_1,
        "rank 1 (one worker) ran {on_rank_1} tasks, rank 2 (three) {on_rank_2}"
    );
}

#[test]
fn resume_finishes_a_cluster_run() {
    let fib = guest("fib");
    let out = tempdir("cluster-resume").join("records.jsonl");
    let out = out.to_str().unwrap();
    // The first two records exist already: only the rest run.
    let all = r#"[1, 2, 3, 4, 5, 6]"#;
    let first = run(&fib, &["--inputs", "[1, 2]", "-o", out]);
    assert_eq!(first.status.code(), Some(0));
    let resumed = mpirun(3, &fib, &["--inputs", all, "-o", out, "--resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("2 inputs already had a record"));
    let text = std::fs::read_to_string(out).unwrap();
    let mut values: Vec<(u64, u64)> = records(text.as_bytes())
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["ok"].as_u64().unwrap()))
        .collect();
    values.sort();
    assert_eq!(values, [(0, 1), (1, 1), (2, 2), (3, 3), (4, 5), (5, 8)]);
}

#[test]
fn one_rank_alone_is_refused_with_what_to_do() {
    let output = mpirun(1, &guest("fib"), &["--inputs", "[1]"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("cluster mode needs at least 2 MPI ranks"));
}

#[test]
fn a_rank_that_dies_ends_the_run_saying_what_it_held_and_resume_finishes() {
    let task = guest("really-hard-task");
    let out = tempdir("cluster-death").join("records.jsonl");
    let out_arg = out.to_str().unwrap();
    // Eight two-second tasks; with one worker per rank, each rank holds two.
    let inputs = "[1, 2, 3, 4, 5, 6, 7, 8]";
    let mut run_args = vec!["--inputs", inputs, "-j", "1", "-o", out_arg, "--seed", "3"];
    let child = mpirun_command(3, &task, &run_args)
        // mpirun ends the other ranks with SIGTERM and, a second later by
        // default, SIGKILL: on a loaded machine (the other cluster tests
        // run beside this one) rank 0 could be killed before it had said
        // what the dead rank held. Ten seconds leave it time to speak.
        .env("OMPI_MCA_odls_base_sigkill_timeout", "10")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first record is written, rank 2 dies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&out).map_or(true, |text| !text.contains('\n')) {
        assert!(std::time::Instant::now() < deadline, "no record came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let victim = rank_pid(child.id(), 2).expect("rank 2 runs");
    Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    let ended = child.wait_with_output().unwrap();
    assert_ne!(ended.status.code(), Some(0));
    let said = stderr(&ended);
    assert!(
        said.contains("process rank 2"),
        "mpirun names the rank: {said}"
    );
    assert!(said.contains("rank 2 held inputs"), "{said}");

    // Every record written is whole, and --resume runs the rest.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    let before = records(text.as_bytes()).len();
    assert!((1..8).contains(&before), "{before} records");
    run_args.extend(["--resume"]);
    let resumed = mpirun(3, &task, &run_args);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut indices: Vec<u64> = records(text.as_bytes())
        .iter()
        .map(|record| record["index"].as_u64().unwrap())
        .collect();
    indices.sort();
    assert_eq!(indices, (0..8).collect::<Vec<_>>());
}

#[test]
fn a_python_task_runs_on_a_cluster_as_it_runs_here() {
    let zoo = support::python_task("trap_zoo");
    let inputs = r#"[1, "raise", 2, "exit-3", "random", "recursion", 3, "random", "memory", 4]"#;
    let records = same_as_local(
        &zoo,
        &["--inputs", inputs, "--seed", "11", "--max-memory", "64MiB"],
    );
    assert_eq!(records[0]["ok"], 2);
    assert_eq!(records[1]["error"]["message"], "ValueError: bad value 42");
    assert!(records[1]["error"]["traceback"].is_string());
    assert_eq!(records[3]["error"]["exit_code"], 3);
    assert_eq!(records[8]["error"]["kind"], "memory-limit");
}

/// Inputs that trickle in through a pipe to `mpirun`, which hands its
/// stdin to rank 0: each record comes back before the next input is
/// written, ordered or not, and the end of the input ends the run.
#[test]
fn records_flow_out_of_a_cluster_while_the_inputs_trickle_in() {
    for order in [None, Some("--unordered")] {
        let mut args = vec!["-q", "--input-file", "-"];
        args.extend(order);
        let run = Pipeline::start(mpirun_command(3, &guest("fib"), &args));
        answers_each_input_before_the_next(run);
    }
}

#[test]
fn a_command_programs_lines_trickle_through_a_cluster_too() {
    let mut run = Pipeline::start(mpirun_command(
        3,
        &guest("word-count"),
        &["-q", "--lines", "-"],
    ));
    for (index, (line, counts)) in [("one two", "1 2 7\n"), ("three", "1 1 5\n")]
        .into_iter()
        .enumerate()
    {
        run.write(line);
        let record = run.record();
        assert_eq!(record["index"], index);
        assert_eq!(record["ok"], counts, "{record}");
    }
    assert_eq!(run.close().code(), Some(0));
}

/// Ctrl-C while the pipe is quiet goes to `mpirun`, which ends every rank
/// (OpenMPI does not forward SIGINT) and exits 1: the run ends at once,
/// with the records of the tasks that finished.
#[test]
fn an_interrupt_while_the_pipe_is_quiet_ends_a_cluster_run_at_once() {
    let args = ["-q", "--input-file", "-"];
    let mut run = Pipeline::start(mpirun_command(3, &guest("fib"), &args));
    run.write("10");
    assert_eq!(run.record()["ok"], 55);
    let status = Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(run.exit().code(), Some(1));
}
