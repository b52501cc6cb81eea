//! Probes the sandbox: each input names one thing to try, and the task
//! returns what it got, or the error the host gave it as a `guest-error`.
//!
//! ```json
//! {"op": "read", "path": "/etc/passwd"}
//! {"op": "list", "path": "/"}
//! {"op": "write", "path": "/data/out.txt", "text": "hello"}
//! {"op": "env"}
//! {"op": "args"}
//! {"op": "connect", "addr": "127.0.0.1:22"}
//! {"op": "random"}
//! {"op": "await", "path": "/data/flag"}
//! ```
//!
//! `await` waits until the path exists (another task may write it), so
//! that a test can make one task depend on another having run.

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Probe {
    Read { path: String },
    List { path: String },
    Write { path: String, text: String },
    Env,
    Args,
    Connect { addr: String },
    Random,
    Await { path: String },
}

fn probe(probe: Probe) -> Result<Value, String> {
    let shown = |error: std::io::Error| error.to_string();
    match probe {
        Probe::Read { path } => std::fs::read_to_string(path)
            .map(Value::from)
            .map_err(shown),
        Probe::List { path } => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path).map_err(shown)? {
                names.push(
                    entry
                        .map_err(shown)?
                        .file_name()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            names.sort();
            Ok(json!(names))
        }
        Probe::Write { path, text } => std::fs::write(path, text)
            .map(|()| json!("written"))
            .map_err(shown),
        Probe::Env => Ok(json!(std::env::vars().collect::<Vec<_>>())),
        Probe::Args => Ok(json!(std::env::args().collect::<Vec<_>>())),
        Probe::Connect { addr } => std::net::TcpStream::connect(addr)
            .map(|_| json!("connected"))
            .map_err(shown),
        Probe::Await { path } => {
            while !std::fs::exists(&path).map_err(shown)? {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(json!("appeared"))
        }
        Probe::Random => {
            let draws: Result<Vec<u64>, _> = (0..4).map(|_| getrandom::u64()).collect();
            draws
                .map(|draws| json!(draws))
                .map_err(|error| error.to_string())
        }
    }
}

wasmpool_guest::try_task!(probe);
