//! Running the `troupe` binary from end-to-end tests: output captured in
//! files (so a killed run still leaves what it printed) and a deadline, so a
//! hung run fails its test instead of hanging the suite.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one run or wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// What one finished run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` when a signal ended the run.
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Starts `troupe ARGS…` in `dir` with logging at its default level, stdout
/// and stderr going to the files `out` and `err`.
pub fn start(dir: &Path, args: &[&str], out: &Path, err: &Path) -> Child {
    start_with_env(dir, args, &[], out, err)
}

/// [`start`] with environment variables set (`Some`) or removed (`None`).
pub fn start_with_env(
    dir: &Path,
    args: &[&str],
    env: &[(&str, Option<&str>)],
    out: &Path,
    err: &Path,
) -> Child {
    let file = |p: &Path| std::fs::File::create(p).expect("capture file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(file(out))
        .stderr(file(err));
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.spawn().expect("the troupe binary runs")
}

/// Waits for a started run to end (killing it and failing the test after
/// [`DEADLINE`]) and reads what it printed.
pub fn finish(label: &str, mut child: Child, out: &Path, err: &Path) -> Run {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for troupe") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read(err).unwrap_or_default();
            let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(4000)..]);
            panic!("troupe {label} still running after {DEADLINE:?}; the end of its log:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).expect("read capture")).into_owned();
    Run {
        code: status.code(),
        stdout: read(out),
        stderr: read(err),
    }
}
