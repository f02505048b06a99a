//! `troupe run --source URL FILE`, end to end: FILE is a key in the source
//! and the scripts it spawns come from there too; layers (the first that
//! has a key wins); zip, Git, SQLite and Redis sources (a real
//! `redis-server` started here); passwords from the environment and never
//! in messages; usage errors; `--watch` over file and Redis sources;
//! `troupe workflow --source`.

#[cfg(any(feature = "archive", feature = "redis"))]
use std::io::Write;
use std::io::{BufRead, BufReader, Read};
#[cfg(feature = "redis")]
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
#[cfg(feature = "redis")]
use std::time::Instant;

use support::Run;

mod support;

/// Spawns `child.lua` (resolved in the same source), passes it its own pid
/// and returns `{main = TAG, child = what the child answered}`.
fn main_script(tag: &str) -> String {
    format!(
        r#"local process = require("process")
assert(process.spawn("child.lua", nil, process.pid()))
local reply = assert(process.receive("answer", 10000))
return {{main = "{tag}", child = reply.payload}}
"#
    )
}

/// Answers its spawner with TAG.
fn child_script(tag: &str) -> String {
    format!(
        r#"local process = require("process")
process.send((...), "answer", "{tag}")
"#
    )
}

/// `troupe ARGS…` in `dir` with extra environment variables (and none of
/// the password variables of the test's own environment).
fn troupe_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (out_dir.path().join("stdout"), out_dir.path().join("stderr"));
    let mut vars = vec![("TROUPE_SOURCE_PASSWORD", None), ("REDIS_PASSWORD", None)];
    vars.extend(env.iter().map(|(k, v)| (*k, Some(*v))));
    let child = support::start_with_env(dir, args, &vars, &out, &err);
    support::finish(&format!("{args:?}"), child, &out, &err)
}

/// `troupe ARGS…` from an empty directory, so nothing is found beside it.
fn troupe(args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().expect("temp dir");
    let (out, err) = (cwd.path().join(".stdout"), cwd.path().join(".stderr"));
    let child = support::start(cwd.path(), args, &out, &err);
    support::finish(&format!("{args:?}"), child, &out, &err)
}

/// The JSON result of a successful run.
fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, Some(0), "expected success: {run:?}");
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

/// The only stderr line of a failed run, which exited with `code` and
/// starts with `prefix`.
fn failure(run: &Run, code: i32, prefix: &str) -> String {
    assert_eq!(run.code, Some(code), "exit code: {run:?}");
    assert!(run.stdout.is_empty(), "nothing on stdout: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {run:?}");
    assert!(lines[0].starts_with(prefix), "expected {prefix:?}: {run:?}");
    lines[0].to_owned()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, code) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, code).expect("write script");
    }
}

#[test]
fn a_file_source_runs_a_key_and_spawns_from_the_same_source() {
    let scripts = tempfile::tempdir().unwrap();
    write(
        scripts.path(),
        &[
            ("main.lua", &main_script("source")),
            ("child.lua", &child_script("source child")),
        ],
    );
    // The working directory has scripts of the same names: they must not run.
    let cwd = tempfile::tempdir().unwrap();
    write(
        cwd.path(),
        &[
            ("main.lua", "return 'local main'"),
            ("child.lua", &child_script("local child")),
        ],
    );
    let url = file_url(scripts.path());
    let run = troupe_env(cwd.path(), &["run", "--source", &url, "main.lua"], &[]);
    assert_eq!(
        json(&run),
        serde_json::json!({"main": "source", "child": "source child"})
    );
    // FILE is a key, not a path.
    let missing = troupe(&["run", "--source", &url, "nope.lua"]);
    let line = failure(&missing, 1, "NOT_FOUND: ");
    assert!(line.contains("nope.lua"), "{line}");
}

#[test]
fn a_workflow_runs_from_a_source_and_replays_only_from_it() {
    let scripts = tempfile::tempdir().unwrap();
    write(
        scripts.path(),
        &[
            ("flows/main.lua", &main_script("workflow")),
            ("flows/child.lua", &child_script("workflow child")),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let url = file_url(scripts.path());
    let expected = serde_json::json!({"main": "workflow", "child": "workflow child"});
    let workflow = |args: &[&str]| {
        let mut all = vec!["workflow", "--data", data];
        all.extend_from_slice(args);
        troupe(&all)
    };
    let run = workflow(&["run", "--source", &url, "wf-1", "flows/main.lua"]);
    assert_eq!(json(&run), expected);
    // The history holds the key, not the source: replay needs it again.
    assert_eq!(
        json(&workflow(&["replay", "wf-1", "--source", &url])),
        expected
    );
    let line = failure(&workflow(&["replay", "wf-1"]), 1, "NOT_FOUND: ");
    assert!(line.contains("flows/main.lua"), "{line}");
}

/// A zip file with `files`.
#[cfg(feature = "archive")]
fn zip_file(path: &Path, files: &[(&str, &str)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, code) in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(*name, options).unwrap();
        zip.write_all(code.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

#[cfg(feature = "archive")]
#[test]
fn a_zip_source_runs_a_script_from_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("scripts.zip");
    zip_file(
        &archive,
        &[
            ("app/main.lua", &main_script("zip")),
            ("app/child.lua", &child_script("zip child")),
        ],
    );
    let url = format!("zip://{}", archive.display());
    let run = troupe(&["run", "--source", &url, "app/main.lua"]);
    assert_eq!(
        json(&run),
        serde_json::json!({"main": "zip", "child": "zip child"})
    );
}

#[cfg(feature = "archive")]
#[test]
fn the_first_layer_with_a_key_wins_and_later_layers_fill_in() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("top.zip");
    // The top layer has main.lua and child.lua; the bottom one both too,
    // plus only_below.lua.
    zip_file(
        &archive,
        &[
            ("main.lua", &main_script("top")),
            ("child.lua", &child_script("top child")),
        ],
    );
    let below = tempfile::tempdir().unwrap();
    write(
        below.path(),
        &[
            ("main.lua", &main_script("below")),
            ("child.lua", &child_script("below child")),
            ("only_below.lua", "return 'only below'"),
        ],
    );
    let top = format!("zip://{}", archive.display());
    let bottom = file_url(below.path());
    let layers = ["run", "--source", &top, "--source", &bottom];
    let run = troupe(&[&layers[..], &["main.lua"]].concat());
    assert_eq!(
        json(&run),
        serde_json::json!({"main": "top", "child": "top child"})
    );
    let run = troupe(&[&layers[..], &["only_below.lua"]].concat());
    assert_eq!(json(&run), serde_json::json!("only below"));
    // In the other order the file layer wins.
    let run = troupe(&["run", "--source", &bottom, "--source", &top, "main.lua"]);
    assert_eq!(
        json(&run),
        serde_json::json!({"main": "below", "child": "below child"})
    );
}

/// Runs `git ARGS` in `dir` with a fixed identity and no user or system
/// configuration; returns stdout.
#[cfg(feature = "git")]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(["-c", "tag.gpgSign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Troupe Test")
        .env("GIT_AUTHOR_EMAIL", "test@troupe.invalid")
        .env("GIT_COMMITTER_NAME", "Troupe Test")
        .env("GIT_COMMITTER_EMAIL", "test@troupe.invalid")
        .output()
        .expect("runs git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[cfg(feature = "git")]
#[test]
fn a_git_source_reads_a_reference_and_a_subdirectory() {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    write(
        repo.path(),
        &[
            ("scripts/main.lua", &main_script("v1")),
            ("scripts/child.lua", &child_script("v1 child")),
            ("main.lua", "return 'outside the subdirectory'"),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "v1"]);
    git(repo.path(), &["tag", "v1"]);
    write(
        repo.path(),
        &[("scripts/child.lua", &child_script("v2 child"))],
    );
    git(repo.path(), &["commit", "-q", "-a", "-m", "v2"]);
    // An uncommitted edit is not served.
    write(
        repo.path(),
        &[("scripts/child.lua", &child_script("dirty"))],
    );

    let at = |reference: &str| {
        let url = format!(
            "git+file://{}?ref={reference}&path=scripts",
            repo.path().display()
        );
        json(&troupe(&["run", "--source", &url, "main.lua"]))
    };
    assert_eq!(
        at("main"),
        serde_json::json!({"main": "v1", "child": "v2 child"})
    );
    assert_eq!(
        at("v1"),
        serde_json::json!({"main": "v1", "child": "v1 child"})
    );
    let missing = format!("git+file://{}?ref=nope", repo.path().display());
    let line = failure(
        &troupe(&["run", "--source", &missing, "main.lua"]),
        1,
        "UNAVAILABLE: git:",
    );
    assert!(line.contains("nope"), "{line}");
}

#[cfg(feature = "sql")]
#[test]
fn an_sqlite_source_reads_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scripts.db");
    let sql = format!(
        "CREATE TABLE scripts (key TEXT PRIMARY KEY, code BLOB NOT NULL, version BIGINT NOT NULL);\
         INSERT INTO scripts VALUES ('main.lua', CAST('{}' AS BLOB), 1), ('child.lua', CAST('{}' AS BLOB), 1);",
        main_script("sql").replace('\'', "''"),
        child_script("sql child").replace('\'', "''")
    );
    let status = Command::new("sqlite3")
        .arg(&db)
        .arg(sql)
        .status()
        .expect("sqlite3 is installed");
    assert!(status.success());
    let url = format!("sqlite://{}?table=scripts", db.display());
    assert_eq!(
        json(&troupe(&["run", "--source", &url, "main.lua"])),
        serde_json::json!({"main": "sql", "child": "sql child"})
    );
}

#[test]
fn bad_source_urls_are_one_line_usage_errors() {
    let run = |url: &str| troupe(&["run", "--source", url, "main.lua"]);
    let line = failure(&run("ftp://host/x"), 2, "INVALID: ");
    assert!(line.contains("unknown source scheme \"ftp\""), "{line}");
    assert!(
        line.contains("git+file") && line.contains("redis"),
        "{line}"
    );
    // Credentials of an object store come from the environment only.
    #[cfg(feature = "object-store")]
    {
        let line = failure(&run("s3://key:secret@bucket/scripts/"), 2, "INVALID: ");
        assert!(
            line.contains("AWS_ACCESS_KEY_ID") && !line.contains("secret@"),
            "{line}"
        );
    }
    #[cfg(not(feature = "object-store"))]
    {
        let line = failure(&run("s3://bucket/scripts/"), 2, "INVALID: ");
        assert!(line.contains("--features object-store"), "{line}");
    }
    let line = failure(&run("scripts/"), 2, "INVALID: ");
    assert!(line.contains("file:///"), "{line}");
    // A scheme whose cargo feature is not compiled in names the feature.
    for (url, feature, compiled_in) in [
        ("etcd://127.0.0.1/p/", "etcd", cfg!(feature = "etcd")),
        ("redis://127.0.0.1/p/", "redis", cfg!(feature = "redis")),
        ("sqlite:///x.db?table=t", "sql", cfg!(feature = "sql")),
        ("git+file:///repo", "git", cfg!(feature = "git")),
        ("zip:///a.zip", "archive", cfg!(feature = "archive")),
    ] {
        if !compiled_in {
            let line = failure(&run(url), 2, "INVALID: ");
            assert!(line.contains(&format!("--features {feature}")), "{line}");
        }
    }
    #[cfg(feature = "sql")]
    {
        let line = failure(&run("postgres://127.0.0.1:5432/app"), 2, "INVALID: ");
        assert!(line.contains("?table="), "{line}");
        failure(&run("sqlite:///x.db?table=a;b"), 2, "INVALID: ");
    }
    #[cfg(feature = "redis")]
    {
        let line = failure(&run("redis://:s3cret@127.0.0.1:99999/p/"), 2, "INVALID: ");
        assert!(line.contains("invalid port"), "{line}");
        assert!(!line.contains("s3cret"), "{line}");
    }
}

/// A free TCP port on 127.0.0.1 (nothing listens once this returns).
#[cfg(feature = "redis")]
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` on a free 127.0.0.1 port, killed when dropped.
#[cfg(feature = "redis")]
struct Redis {
    _dir: tempfile::TempDir,
    port: u16,
    password: Option<String>,
    child: Child,
}

#[cfg(feature = "redis")]
impl Redis {
    fn start(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server is installed (.ci/setup installs it)");
        let redis = Redis {
            _dir: dir,
            port,
            password: password.map(str::to_owned),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while redis.command(&["PING"]).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Sends one command (after `AUTH`) and returns the simple reply line.
    fn command(&self, args: &[&str]) -> Result<String, String> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut send = |args: &[&str]| -> Result<String, String> {
            let mut req = format!("*{}\r\n", args.len());
            for a in args {
                req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            (&stream)
                .write_all(req.as_bytes())
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            match line.trim_end() {
                l if l.starts_with('-') || l.is_empty() => Err(l.to_owned()),
                l => Ok(l.to_owned()),
            }
        };
        if let Some(p) = &self.password {
            send(&["AUTH", p])?;
        }
        send(args)
    }

    fn set(&self, key: &str, code: &str) {
        let reply = self.command(&["SET", key, code]).expect("SET");
        assert_eq!(reply, "+OK");
    }
}

#[cfg(feature = "redis")]
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "redis")]
#[test]
fn a_redis_source_takes_its_password_from_the_environment() {
    let redis = Redis::start(Some("s3cret-pw"));
    redis.set("troupe/main.lua", &main_script("redis"));
    redis.set("troupe/child.lua", &child_script("redis child"));
    let url = format!("redis://127.0.0.1:{}/troupe/", redis.port);
    let cwd = tempfile::tempdir().unwrap();
    let args = ["run", "--source", &url, "main.lua"];
    let expected = serde_json::json!({"main": "redis", "child": "redis child"});
    for var in ["REDIS_PASSWORD", "TROUPE_SOURCE_PASSWORD"] {
        let run = troupe_env(cwd.path(), &args, &[(var, "s3cret-pw")]);
        assert_eq!(json(&run), expected, "{var}");
        assert!(run.stderr.is_empty(), "{run:?}");
    }
    // TROUPE_SOURCE_PASSWORD comes first.
    let run = troupe_env(
        cwd.path(),
        &args,
        &[
            ("TROUPE_SOURCE_PASSWORD", "s3cret-pw"),
            ("REDIS_PASSWORD", "wrong"),
        ],
    );
    assert_eq!(json(&run), expected);
    // Without it the server refuses, and the one line names the source.
    let line = failure(&troupe_env(cwd.path(), &args, &[]), 1, "UNAVAILABLE: ");
    assert!(line.contains(&url), "{line}");
    // A password in the URL works, with a warning to use the environment.
    let with_pw = format!("redis://:s3cret-pw@127.0.0.1:{}/troupe/", redis.port);
    let run = troupe_env(cwd.path(), &["run", "--source", &with_pw, "main.lua"], &[]);
    assert_eq!(json(&run), expected);
    assert!(
        run.stderr.contains("TROUPE_SOURCE_PASSWORD") && !run.stderr.contains("s3cret-pw"),
        "{run:?}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn a_redis_source_that_is_down_is_one_line_without_the_password() {
    let port = free_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/troupe/");
    let run = troupe(&["run", "--source", &url, "main.lua"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
    // The warning about the password in the URL, then the error line.
    let errors: Vec<&str> = run.stderr.lines().filter(|l| !l.contains("WARN")).collect();
    assert_eq!(errors.len(), 1, "one error line: {run:?}");
    assert!(
        errors[0].starts_with(&format!(
            "UNAVAILABLE: redis://127.0.0.1:{port}/troupe/ is unavailable"
        )),
        "{run:?}"
    );
    // Without a password in the URL, the error is the only line.
    let url = format!("redis://127.0.0.1:{port}/troupe/");
    let line = failure(
        &troupe_env(
            tempfile::tempdir().unwrap().path(),
            &["run", "--source", &url, "main.lua"],
            &[("REDIS_PASSWORD", "hunter2")],
        ),
        1,
        "UNAVAILABLE: ",
    );
    assert!(line.contains(&url) && !line.contains("hunter2"), "{line}");
}

/// `troupe ARGS…` with piped output, killed when dropped.
struct Watching {
    child: Child,
    out: std::sync::mpsc::Receiver<String>,
    err: std::sync::mpsc::Receiver<String>,
}

/// The lines of `stream`, read on a thread.
fn lines(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Watching {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the troupe binary starts");
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Watching { child, out, err }
    }

    /// The next result line; fails with what went to stderr if none comes.
    fn next(&self) -> String {
        self.out
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let err: Vec<String> = self.err.try_iter().collect();
                panic!("no result line; stderr: {err:?}")
            })
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves like an editor does: a temporary file renamed over the script.
fn save(dir: &Path, name: &str, code: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, code).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn watch_reruns_after_a_change_in_a_file_source() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("main.lua", &main_script("v1")),
            ("child.lua", &child_script("c1")),
        ],
    );
    let url = file_url(dir.path());
    let run = Watching::start(&["run", "--source", &url, "--watch", "main.lua"]);
    assert_eq!(run.next(), r#"{"child":"c1","main":"v1"}"#);
    save(dir.path(), "child.lua", &child_script("c2"));
    assert_eq!(run.next(), r#"{"child":"c2","main":"v1"}"#);
    save(dir.path(), "main.lua", &main_script("v2"));
    assert_eq!(run.next(), r#"{"child":"c2","main":"v2"}"#);
}

#[cfg(feature = "redis")]
#[test]
fn watch_reruns_after_a_change_in_a_redis_source() {
    let redis = Redis::start(None);
    redis.set("w/main.lua", &main_script("v1"));
    redis.set("w/child.lua", &child_script("c1"));
    let url = format!("redis://127.0.0.1:{}/w/", redis.port);
    let run = Watching::start(&["run", "--source", &url, "--watch", "main.lua"]);
    assert_eq!(run.next(), r#"{"child":"c1","main":"v1"}"#);
    // The spawned child is read through the same (cached) source: the
    // change must reach it too.
    redis.set("w/child.lua", &child_script("c2"));
    assert_eq!(run.next(), r#"{"child":"c2","main":"v1"}"#);
    redis.set("w/main.lua", &main_script("v2"));
    assert_eq!(run.next(), r#"{"child":"c2","main":"v2"}"#);
}
