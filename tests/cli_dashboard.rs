//! `troupe run --dashboard ADDR`, `troupe ps --connect ADDR` and `troupe
//! top --connect ADDR`, end to end: a script keeps processes alive, `ps`
//! and `top` show them from another process, a token guards them, and bad
//! flags are one-line errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::Run;

mod support;

/// Spawns three named workers that wait, then waits itself.
const MAIN: &str = r#"
local process = require("process")
for i = 1, 3 do
  process.spawn("worker.lua", nil, "worker-" .. i)
end
process.receive("never")
"#;

const WORKER: &str = r#"
local process = require("process")
process.register((...))
process.receive("stop")
"#;

/// A `troupe run --dashboard` in the background, killed when dropped.
struct Serving {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Serving {
    /// Starts `troupe run MAIN` with the dashboard on a free loopback port
    /// and `extra` flags; waits for the line saying where it listens.
    fn start(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.lua"), MAIN).unwrap();
        std::fs::write(dir.path().join("worker.lua"), WORKER).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.arg("run")
            .arg(dir.path().join("main.lua"))
            .args(["--allow-module", "process", "--dashboard", "127.0.0.1:0"])
            .args(extra)
            .env_remove("TROUPE_DASHBOARD_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the troupe binary starts");
        let stderr = child.stderr.take().unwrap();
        let line = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("dashboard: "))
            .expect("troupe says where the dashboard listens");
        let addr = line
            .trim_start_matches("dashboard: http://")
            .trim_end_matches('/')
            .to_owned();
        Serving {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn troupe(args: &[&str], env: &[(&str, &str)]) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    let (out, err) = (cwd.path().join(".stdout"), cwd.path().join(".stderr"));
    let mut vars = vec![("TROUPE_DASHBOARD_TOKEN", None)];
    vars.extend(env.iter().map(|(k, v)| (*k, Some(*v))));
    let child = support::start_with_env(Path::new(cwd.path()), args, &vars, &out, &err);
    support::finish(&format!("{args:?}"), child, &out, &err)
}

/// `troupe ps` until it lists the three workers (30 s at most).
fn ps_until_workers(addr: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut args = vec!["ps", "--connect", addr];
        args.extend_from_slice(extra);
        let run = troupe(&args, env);
        assert_eq!(run.code, Some(0), "{run:?}");
        if (1..=3).all(|i| run.stdout.contains(&format!("worker-{i}"))) {
            return run.stdout;
        }
        assert!(Instant::now() < deadline, "never listed: {run:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ps_lists_the_processes_of_a_running_troupe() {
    let serving = Serving::start(&[], &[]);
    let table = ps_until_workers(&serving.addr, &[], &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("PID"), "{table}");
    assert_eq!(
        lines.len(),
        5,
        "a header, main.lua and three workers: {table}"
    );
    let worker = lines.iter().find(|l| l.contains("worker-2")).unwrap();
    assert!(worker.contains("worker.lua"), "{worker}");
    assert!(worker.contains("receive stop"), "{worker}");
    assert!(worker.contains("0/1024"), "{worker}");

    let json = troupe(&["ps", "--connect", &serving.addr, "--json"], &[]);
    let list: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(4), "{list}");
}

#[test]
fn top_prints_one_frame_when_piped() {
    let serving = Serving::start(&[], &[]);
    ps_until_workers(&serving.addr, &[], &[]);
    let run = troupe(&["top", "--connect", &serving.addr, "--sort", "pid"], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let frame = run.stdout;
    assert!(frame.starts_with("troupe top - 127.0.0.1:"), "{frame}");
    assert!(frame.contains("sorted by pid"), "{frame}");
    assert!(
        frame.contains("processes 4: "),
        "main and three workers: {frame}"
    );
    assert!(
        frame.contains("process.spawn"),
        "the commands called: {frame}"
    );
    assert!(frame.contains("processes 1-4 of 4"), "{frame}");
    let rows: Vec<&str> = frame.lines().filter(|l| l.contains("worker.lua")).collect();
    assert_eq!(rows.len(), 3, "{frame}");
    assert!(rows.iter().all(|r| r.contains("receive stop")), "{frame}");
    let main = frame.find("main.lua").expect("main.lua shown");
    let worker = frame.find("worker.lua").expect("a worker shown");
    assert!(
        main < worker,
        "by pid, main (the first) comes first: {frame}"
    );
    let no_control_codes = !frame.contains('\u{1b}');
    assert!(no_control_codes, "plain text when piped: {frame:?}");

    let bad = troupe(&["top", "--connect", &serving.addr, "--interval", "5"], &[]);
    assert_eq!(bad.code, Some(2), "an interval under 100 ms: {bad:?}");
}

#[test]
fn a_token_from_the_environment_guards_the_dashboard() {
    let token = [("TROUPE_DASHBOARD_TOKEN", "t0ken")];
    let serving = Serving::start(&[], &token);
    let refused = troupe(&["ps", "--connect", &serving.addr], &[]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.starts_with("PERMISSION_DENIED: "),
        "{refused:?}"
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
    ps_until_workers(&serving.addr, &["--token", "t0ken"], &[]);
    ps_until_workers(&serving.addr, &[], &token);
    let top = troupe(&["top", "--connect", &serving.addr], &[]);
    assert_eq!(top.code, Some(1), "{top:?}");
    assert!(top.stderr.starts_with("PERMISSION_DENIED: "), "{top:?}");
    let top = troupe(&["top", "--connect", &serving.addr], &token);
    assert_eq!(top.code, Some(0), "{top:?}");
}

#[test]
fn bad_dashboard_flags_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("x.lua");
    std::fs::write(&script, "return 1").unwrap();
    let script = script.to_str().unwrap();
    let run = troupe(&["run", script, "--dashboard", "0.0.0.0:0"], &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.starts_with("INVALID: "), "{run:?}");
    assert!(run.stderr.contains("--dashboard-token"), "{run:?}");
    let run = troupe(&["run", script, "--dashboard", "nonsense"], &[]);
    assert_eq!(run.code, Some(2), "a usage error: {run:?}");
    // Nothing listens on the discard port (the token variable unset
    // too: nothing in the environment is needed to get this error).
    let cwd = tempfile::tempdir().unwrap();
    let (out, err) = (cwd.path().join(".stdout"), cwd.path().join(".stderr"));
    let child = support::start(cwd.path(), &["ps", "--connect", "127.0.0.1:9"], &out, &err);
    let nobody = support::finish("ps", child, &out, &err);
    assert_eq!(nobody.code, Some(1), "{nobody:?}");
    assert!(nobody.stderr.starts_with("UNAVAILABLE: "), "{nobody:?}");
}
