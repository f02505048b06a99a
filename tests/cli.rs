//! End-to-end tests of the `troupe` binary: exit codes, JSON output and the
//! one-line structured error on stderr.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use support::Run;

mod support;

impl Run {
    /// Asserts a successful run and returns its stdout parsed as JSON.
    fn json(&self) -> Json {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one line of JSON expected: {self:?}"
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts a failure with exit `code` and exactly one stderr line starting
    /// with `prefix`; returns that line.
    fn failure(&self, code: i32, prefix: &str) -> String {
        assert_eq!(self.code, Some(code), "exit code: {self:?}");
        assert!(
            self.stdout.is_empty(),
            "nothing on stdout on failure: {self:?}"
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one stderr line expected: {self:?}");
        assert!(
            lines[0].starts_with(prefix),
            "expected {prefix:?}: {self:?}"
        );
        lines[0].to_owned()
    }
}

/// Runs `troupe ARGS…` in `dir`; see [`support::finish`] for the deadline.
fn troupe(dir: &Path, args: &[&str]) -> Run {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (out_dir.path().join("stdout"), out_dir.path().join("stderr"));
    let child = support::start(dir, args, &out, &err);
    support::finish(&format!("{args:?}"), child, &out, &err)
}

fn with_script(name: &str, code: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(name), code).expect("write script");
    dir
}

/// `troupe run SCRIPT ARGS…` on a one-off script `main.lua`.
fn run_script(code: &str, args: &[&str]) -> Run {
    let dir = with_script("main.lua", code);
    let mut argv = vec!["run", "main.lua"];
    argv.extend_from_slice(args);
    troupe(dir.path(), &argv)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Runs an example script by absolute path, from an unrelated directory.
fn run_example(name: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = examples().join(name);
    let mut argv = vec!["run", script.to_str().expect("UTF-8 path")];
    argv.extend_from_slice(args);
    troupe(dir.path(), &argv)
}

#[test]
fn hello_prints_json_and_exits_zero() {
    let out = run_example("hello.lua", &[]).json();
    assert_eq!(out["greeting"], "hello, world");
    assert_eq!(out["roundtrip"], json!([1, 2, 3]));
    assert!(out["slept_ms"].as_i64().is_some_and(|ms| ms >= 9), "{out}");
    assert_eq!(
        run_example("hello.lua", &["Ada"]).json()["greeting"],
        "hello, Ada"
    );
}

#[test]
fn relative_path_from_the_scripts_parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("scripts")).expect("mkdir");
    std::fs::write(dir.path().join("scripts/child.lua"), "return 'from child'").expect("write");
    std::fs::write(
        dir.path().join("scripts/main.lua"),
        "local process = require('process')\n\
         process.spawn('child.lua')\n\
         return process.pid() ~= nil",
    )
    .expect("write");
    assert_eq!(
        troupe(dir.path(), &["run", "scripts/main.lua"]).json(),
        json!(true)
    );
}

#[test]
fn args_are_parsed_as_json_else_strings() {
    let code = "local a, b, c, d, e = ...\n\
                return {n = select('#', ...), a = a, b = b, c = c, d = d, e = e}";
    let out = run_script(
        code,
        &["42", r#"{"k":[1,2.5,true]}"#, "hello world", r#""7""#, "-3"],
    )
    .json();
    assert_eq!(
        out,
        json!({"n": 5, "a": 42, "b": {"k": [1, 2.5, true]}, "c": "hello world", "d": "7", "e": -3})
    );
}

#[test]
fn malformed_json_arg_is_invalid() {
    let line = run_script("return 1", &[r#"{"k": "#]).failure(1, "INVALID: ");
    assert!(line.contains("argument 1"), "{line}");
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = troupe(dir.path(), &["run", "nope.lua"]).failure(1, "NOT_FOUND: ");
    assert!(line.contains("nope.lua"), "{line}");
}

#[test]
fn syntax_error_is_invalid_with_file_and_line() {
    let line = run_script("local x = 1\n\nlocal = 3\n", &[]).failure(1, "INVALID: ");
    assert!(line.contains("main.lua:3"), "{line}");
}

#[test]
fn runtime_error_is_internal_one_line() {
    let line = run_script("local t = {}\nerror('boom')\n", &[]).failure(1, "INTERNAL: ");
    assert!(
        line.contains("boom") && line.contains("main.lua:2"),
        "{line}"
    );
    let line = run_script("local t = nil\nreturn t.x\n", &[]).failure(1, "INTERNAL: ");
    assert!(line.contains("main.lua:2"), "{line}");
}

#[test]
fn script_raised_errors_keep_their_kind() {
    let code = "local errors = require('errors')\n\
                error(errors.new{kind = errors.CONFLICT, message = 'taken'})";
    assert_eq!(
        run_script(code, &[]).failure(1, "CONFLICT: "),
        "CONFLICT: taken"
    );
}

#[test]
fn usage_errors_exit_two_with_one_line() {
    let dir = with_script("main.lua", "return 1");
    troupe(dir.path(), &["run", "main.lua", "--bogus"]).failure(2, "INVALID: ");
    troupe(dir.path(), &["run"]).failure(2, "INVALID: ");
    troupe(dir.path(), &["frobnicate"]).failure(2, "INVALID: ");
    troupe(dir.path(), &["run", "main.lua", "--timeout", "soon"]).failure(2, "INVALID: ");
    troupe(dir.path(), &["run", "main.lua", "--max-memory", "10XB"]).failure(2, "INVALID: ");
    troupe(dir.path(), &["run", "main.lua", "--workers", "0"]).failure(2, "INVALID: ");
}

#[test]
fn unknown_class_is_invalid() {
    let line = run_script("return 1", &["--allow", "time,telepathy"]).failure(1, "INVALID: ");
    assert!(line.contains("telepathy"), "{line}");
}

#[test]
fn default_policy_is_plugin_plus_process() {
    let code = "local process = require('process')\n\
                local time = require('time')\n\
                local json = require('json')\n\
                return type(process.pid()) == 'string'";
    assert_eq!(run_script(code, &[]).json(), json!(true));
}

#[test]
fn allow_replaces_the_default_classes() {
    let line = run_script("require('time')", &["--allow", "deterministic"])
        .failure(1, "PERMISSION_DENIED: ");
    assert!(line.contains("time"), "{line}");
    run_script(
        "require('process')",
        &["--allow", "deterministic,encoding,time"],
    )
    .failure(1, "PERMISSION_DENIED: ");
    assert_eq!(
        run_script(
            "require('json') return 1",
            &["--allow", "deterministic,encoding"]
        )
        .json(),
        json!(1)
    );
    assert_eq!(
        run_script("require('process') return 1", &["--allow", "all"]).json(),
        json!(1)
    );
}

#[test]
fn module_flags_apply_on_top() {
    let code = "require('time') return 'ok'";
    assert_eq!(
        run_script(
            code,
            &["--allow", "deterministic", "--allow-module", "time"]
        )
        .json(),
        json!("ok")
    );
    run_script(code, &["--deny-module", "time"]).failure(1, "PERMISSION_DENIED: ");
    run_script(code, &["--allow", "all", "--deny-module", "time"])
        .failure(1, "PERMISSION_DENIED: ");
}

#[test]
fn unknown_module_is_not_found() {
    run_script("require('no_such_module')", &[]).failure(1, "NOT_FOUND: ");
}

#[test]
fn timeout_stops_a_busy_loop() {
    let started = Instant::now();
    run_script("while true do end", &["--timeout", "200ms"]).failure(1, "TIMEOUT: ");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn instruction_limit_is_enforced() {
    run_script(
        "local n = 0 while true do n = n + 1 end",
        &["--max-instructions", "100000"],
    )
    .failure(1, "LIMIT_EXCEEDED: ");
}

#[test]
fn memory_limit_is_enforced() {
    let code = "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end";
    run_script(code, &["--max-memory", "4MiB"]).failure(1, "LIMIT_EXCEEDED: ");
}

#[test]
fn ping_pong_exchanges_n_messages() {
    let out = run_example("ping_pong.lua", &["500"]).json();
    assert_eq!(out["round_trips"], 500, "{out}");
}

#[test]
fn fan_out_completes_with_ten_thousand_processes() {
    let out = run_example("fan_out.lua", &["10000"]).json();
    assert_eq!(out["processes"], 10_000, "{out}");
    assert_eq!(out["replies"], 10_000, "{out}");
}

#[test]
fn data_and_fs_root_grant_kv_and_fs_and_persist_across_runs() {
    let dir = with_script(
        "main.lua",
        r#"
        local kv = require("kv")
        local fs = require("fs")
        local n = (kv.get("runs") or 0) + 1
        assert(kv.put("runs", n))
        assert(fs.write("log.txt", "run " .. n))
        return {runs = n, log = fs.read("log.txt")}
        "#,
    );
    std::fs::create_dir(dir.path().join("files")).expect("mkdir");
    let args = ["run", "main.lua", "--data", "data", "--fs-root", "files"];
    assert_eq!(
        troupe(dir.path(), &args).json(),
        json!({"runs": 1, "log": "run 1"})
    );
    assert_eq!(
        troupe(dir.path(), &args).json(),
        json!({"runs": 2, "log": "run 2"})
    );
    assert!(dir.path().join("data/kv.redb").is_file());
    // Without the flags the modules are not there, even with every class allowed.
    troupe(dir.path(), &["run", "main.lua", "--allow", "all"]).failure(1, "NOT_FOUND: ");
    // A denied module stays denied although its directory was granted.
    troupe(
        dir.path(),
        &["run", "main.lua", "--data", "data", "--deny-module", "kv"],
    )
    .failure(1, "PERMISSION_DENIED: ");
}

#[test]
fn a_string_bomb_under_max_memory_is_limit_exceeded() {
    let dir = with_script("bomb.lua", "local s = 'x' while true do s = s .. s end");
    let line = troupe(dir.path(), &["run", "--max-memory", "10MB", "bomb.lua"])
        .failure(1, "LIMIT_EXCEEDED: ");
    assert!(line.contains("memory"), "{line}");
}

#[test]
fn eval_expr_with_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = troupe(
        dir.path(),
        &["eval", "--lang", "expr", "2 + x", "--var", "x=3"],
    );
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "5\n"), "{out:?}");
    let out = troupe(
        dir.path(),
        &["eval", "x > 0 ? 'positive' : 'negative'", "--var", "x=5"],
    )
    .json();
    assert_eq!(out, json!("positive"));
    let out = troupe(
        dir.path(),
        &[
            "eval",
            "--lang",
            "cel",
            "len(xs) + max(1, n)",
            "--var",
            "xs=[1,2]",
            "--var",
            "n=4",
        ],
    )
    .json();
    assert_eq!(out, json!(6));
}

#[test]
fn eval_errors_are_one_line_with_the_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let line = troupe(dir.path(), &["eval", "1 +"]).failure(1, "INVALID: expr: 1:4: ");
    assert!(line.contains("syntax error"), "{line}");
    troupe(dir.path(), &["eval", "nope + 1"]).failure(1, "INVALID: ");
    troupe(dir.path(), &["eval", "1", "--var", "novalue"]).failure(1, "INVALID: ");
    troupe(dir.path(), &["eval", "1", "--lang", "cobol"]).failure(2, "INVALID: ");
}

#[test]
fn eval_lua_runs_sandboxed_with_the_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = troupe(
        dir.path(),
        &[
            "eval",
            "--lang",
            "lua",
            "local v = ... return v.x * 2",
            "--var",
            "x=21",
        ],
    )
    .json();
    assert_eq!(out, json!(42));
    troupe(dir.path(), &["eval", "--lang", "lua", "return os.exit(1)"]).failure(1, "INTERNAL: ");
    troupe(
        dir.path(),
        &[
            "eval",
            "--lang",
            "lua",
            "while true do end",
            "--max-instructions",
            "100000",
        ],
    )
    .failure(1, "LIMIT_EXCEEDED: ");
}

#[test]
fn the_polyglot_job_runs_in_every_compiled_in_engine() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/polyglot");
    let factory = troupe::EngineFactory::builtin();
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/polyglot") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("job.") || factory.name_for_path(&path).is_err() {
            continue;
        }
        let out = troupe(&dir, &["run", name, "1", "2", "3"]).json();
        assert_eq!(out["sum"], json!(6), "{name}: {out}");
        assert!(
            out["greeting"]
                .as_str()
                .is_some_and(|g| g.starts_with("hello")),
            "{name}: {out}"
        );
        ran.push(name.to_owned());
    }
    assert!(ran.iter().any(|n| n == "job.lua"), "{ran:?}");
}
