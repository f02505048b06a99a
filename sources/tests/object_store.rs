//! `ObjectStoreSource` against a real S3-protocol server (`s3s-fs`, which
//! serves a directory: a bucket is a subdirectory, an object a file),
//! started on a free 127.0.0.1 port in a temporary directory, and over a
//! plain directory through object_store's `LocalFileSystem`.
//!
//! `ObjectStoreSource::s3` reads its credentials from `AWS_*` variables,
//! which are process-wide and unsound to set in a multi-threaded test
//! process: each S3 test runs its body again in a child process of this
//! test binary with the variables set ([`in_aws_env`]).
#![cfg(feature = "object-store")]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use troupe_sources::{Change, ObjectStoreSource, Source, SourceError};

const ACCESS_KEY: &str = "troupe-test-access";
const SECRET_KEY: &str = "troupe-test-s3cret-key";
const BUCKET: &str = "scripts";
const PREFIX: &str = "troupe";
/// A loose bound for events and recoveries; none is expected to take long.
const WAIT: Duration = Duration::from_secs(30);
/// How often the watches of these tests list.
const POLL: Duration = Duration::from_millis(100);
/// Set in the child process that runs a test's body.
const CHILD_VAR: &str = "TROUPE_OBJECT_STORE_TEST_CHILD";

/// True in the child process that runs `test`'s body with the AWS
/// variables of the test server's credentials set; in the parent, runs
/// that child, asserts it passed, and returns false.
fn in_aws_env(test: &str) -> bool {
    if std::env::var_os(CHILD_VAR).is_some() {
        return true;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary"));
    child.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AWS_") {
            child.env_remove(var);
        }
    }
    let out = child
        .env(CHILD_VAR, "1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its child process:\n{stdout}\n{stderr}"
    );
    false
}

/// An s3s-fs process serving a temporary directory, killed when dropped.
struct S3 {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl S3 {
    /// Starts the server with the bucket `BUCKET` (a directory).
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket directory");
        let mut s3 = S3 {
            dir,
            port: free_port(),
            child: None,
        };
        s3.launch();
        s3
    }

    fn launch(&mut self) {
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs is installed (.ci/setup installs it with cargo install)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the source names itself.
    fn name(&self) -> String {
        format!("s3://{BUCKET}/{PREFIX} ({})", self.endpoint())
    }

    /// The source under test, through the AWS variables.
    fn source(&self) -> ObjectStoreSource {
        ObjectStoreSource::s3(BUCKET, &format!("{PREFIX}/"), Some(&self.endpoint()))
            .expect("s3 source")
            .poll_interval(POLL)
    }

    /// The served file of script `key`.
    fn file(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(PREFIX).join(key)
    }

    /// A client of its own, with explicit credentials, as a writer would
    /// use.
    fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region("us-east-1")
            .build()
            .expect("S3 client")
    }

    fn block<T>(fut: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    }

    /// Puts `code` under the object path `path` (from the bucket's root).
    fn put_object(&self, path: &str, code: &[u8]) {
        let client = self.client();
        Self::block(client.put(&Path::from(path), PutPayload::from(code.to_vec()))).expect("PUT");
    }

    fn put(&self, key: &str, code: &str) {
        self.put_object(&format!("{PREFIX}/{key}"), code.as_bytes());
    }

    fn delete(&self, key: &str) {
        let client = self.client();
        Self::block(client.delete(&Path::from(format!("{PREFIX}/{key}")))).expect("DELETE");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

/// The next `n` changes, sorted (one listing reports several at once).
fn next_changes(watch: &troupe_sources::Watch, n: usize) -> Vec<Change> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match watch.recv_timeout(WAIT) {
            Some(change) => seen.push(change),
            None => panic!("only {seen:?} reported, {n} expected"),
        }
    }
    seen.sort();
    seen
}

#[test]
fn get_list_and_not_found() {
    if !in_aws_env("get_list_and_not_found") {
        return;
    }
    let s3 = S3::start();
    s3.put("main.lua", "return 1");
    s3.put("lib/util.lua", "return {}");
    s3.put_object("elsewhere/x.lua", b"not ours");
    s3.put_object("troupe-other/y.lua", b"not ours either");

    let src = s3.source();
    assert_eq!(src.name(), s3.name());
    let v1 = src.get("main.lua").unwrap();
    assert_eq!(&*v1.code, b"return 1");
    assert_eq!(v1.key, "main.lua");
    assert_eq!(src.get("main.lua").unwrap().version, v1.version);
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/util.lua", "main.lua"],
        "sorted, objects under the prefix only"
    );
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert_eq!(src.list("ma").unwrap(), vec!["main.lua"], "a partial name");
    assert_eq!(src.list("lib/u").unwrap(), vec!["lib/util.lua"]);
    assert!(src.list("nothing/").unwrap().is_empty());
    assert!(src.list("../").unwrap().is_empty());
    match src.get("missing.lua") {
        Err(SourceError::NotFound { key, source_name }) => {
            assert_eq!(key, "missing.lua");
            assert_eq!(source_name, s3.name());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    s3.put("main.lua", "return 2");
    let v2 = src.get("main.lua").unwrap();
    assert_eq!(&*v2.code, b"return 2");
    assert_ne!(v2.version, v1.version);
    // Equal content, equal version, whatever the object.
    s3.put("copy.lua", "return 2");
    assert_eq!(src.get("copy.lua").unwrap().version, v2.version);

    // The whole bucket.
    let all = ObjectStoreSource::s3(BUCKET, "", Some(&s3.endpoint())).unwrap();
    assert_eq!(
        all.list("").unwrap(),
        vec![
            "elsewhere/x.lua",
            "troupe-other/y.lua",
            "troupe/copy.lua",
            "troupe/lib/util.lua",
            "troupe/main.lua",
        ]
    );
    assert_eq!(&*all.get("elsewhere/x.lua").unwrap().code, b"not ours");
}

#[test]
fn invalid_keys_are_refused_before_asking_the_store() {
    if !in_aws_env("invalid_keys_are_refused_before_asking_the_store") {
        return;
    }
    // Nothing listens on this port: an answer can only come from the key
    // check.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let src = ObjectStoreSource::s3(BUCKET, PREFIX, Some(&endpoint)).unwrap();
    for key in [
        "",
        "../x.lua",
        "/etc/passwd",
        "a//b.lua",
        "a\\b.lua",
        "./a.lua",
        "a\0b.lua",
    ] {
        assert!(
            matches!(src.get(key), Err(SourceError::InvalidKey { .. })),
            "{key:?}"
        );
    }
    assert!(matches!(
        ObjectStoreSource::s3(BUCKET, "a/../b", Some(&endpoint)),
        Err(SourceError::InvalidKey { .. })
    ));
}

#[test]
fn watch_sees_a_put_an_overwrite_and_a_delete() {
    if !in_aws_env("watch_sees_a_put_an_overwrite_and_a_delete") {
        return;
    }
    let s3 = S3::start();
    s3.put("main.lua", "return 1");
    s3.put("lib/a.lua", "return 1");
    let src = s3.source();
    let all = src.watch("").unwrap();
    let lib = src.watch("lib/").unwrap();

    s3.put("new.lua", "return 0");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("new.lua")));
    // The same length: the listing's time tells.
    s3.put("main.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("main.lua")));
    s3.put_object("elsewhere/x.lua", b"not ours");
    s3.delete("main.lua");
    assert_eq!(all.recv_timeout(WAIT), Some(removed("main.lua")));
    s3.put("lib/b.lua", "return 2");
    assert_eq!(all.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    // The `lib/` watch saw only what is under `lib/`.
    assert_eq!(lib.recv_timeout(WAIT), Some(updated("lib/b.lua")));
    std::thread::sleep(POLL * 3);
    assert_eq!(lib.try_recv(), None);
    assert_eq!(all.try_recv(), None, "nothing reported twice");
    assert!(matches!(
        src.get("main.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[test]
fn watch_reports_what_changed_while_the_server_was_down() {
    if !in_aws_env("watch_reports_what_changed_while_the_server_was_down") {
        return;
    }
    let mut s3 = S3::start();
    s3.put("job.lua", "return 'v1'");
    s3.put("gone.lua", "return 0");
    let src = s3.source();
    let watch = src.watch("").unwrap();
    s3.put("job.lua", "return 'v2'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("job.lua")));

    s3.stop();
    // Polls fail while it is down.
    std::thread::sleep(POLL * 5);
    // Changed behind the server's back, in the directory it serves.
    std::fs::write(s3.file("job.lua"), "return 'changed while down'").unwrap();
    std::fs::remove_file(s3.file("gone.lua")).unwrap();
    assert_eq!(watch.try_recv(), None);

    s3.launch();
    s3.put("new.lua", "return 'new'");
    assert_eq!(
        next_changes(&watch, 3),
        vec![updated("job.lua"), updated("new.lua"), removed("gone.lua")]
    );
    assert_eq!(
        &*src.get("job.lua").unwrap().code,
        b"return 'changed while down'"
    );

    // Polling goes on.
    s3.put("new.lua", "return 'newer'");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("new.lua")));
}

#[test]
fn a_server_that_is_down_is_unavailable_within_the_deadline_named_without_secrets() {
    if !in_aws_env("a_server_that_is_down_is_unavailable_within_the_deadline_named_without_secrets")
    {
        return;
    }
    let mut s3 = S3::start();
    s3.put("a.lua", "return 1");
    let src = s3.source().timeout(Duration::from_secs(5));
    assert!(src.get("a.lua").is_ok());

    s3.stop();
    let started = Instant::now();
    let errors = [src.get("a.lua").unwrap_err(), src.list("").unwrap_err()];
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "two calls within their deadlines, took {:?}",
        started.elapsed()
    );
    for err in errors {
        assert!(err.is_retryable(), "{err}");
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert_eq!(err.source_name(), Some(s3.name().as_str()), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("s3://scripts/troupe "), "{text}");
        assert!(!text.contains(SECRET_KEY), "no secret: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    // A deadline shorter than the client's retries cuts them short.
    let short = s3.source().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = short.get("a.lua").unwrap_err();
    assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A watch started while the server is down starts when it is back,
    // with a resync since it may have missed changes.
    let watch = src.watch("").unwrap();
    s3.launch();
    assert_eq!(watch.recv_timeout(WAIT), Some(Change::Resync));
    s3.put("a.lua", "return 2");
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("a.lua")));
    assert_eq!(&*src.get("a.lua").unwrap().code, b"return 2");
}

#[test]
fn an_object_over_the_size_limit_is_bad_content() {
    if !in_aws_env("an_object_over_the_size_limit_is_bad_content") {
        return;
    }
    let s3 = S3::start();
    s3.put("small.lua", "return 16 bytes!");
    s3.put("big.lua", "return 17 bytes!!");
    let src = s3.source().max_script_size(16);
    assert_eq!(src.get("small.lua").unwrap().code.len(), 16);
    match src.get("big.lua") {
        Err(SourceError::BadContent {
            key,
            source_name,
            reason,
        }) => {
            assert_eq!(key, "big.lua");
            assert_eq!(source_name, s3.name());
            assert!(reason.contains("16 bytes"), "{reason}");
        }
        other => panic!("expected BadContent, got {other:?}"),
    }
    // Listed all the same: the error says why it cannot be read.
    assert_eq!(src.list("").unwrap(), vec!["big.lua", "small.lua"]);
    // The default limit (16 MiB) lets it through.
    assert!(s3.source().get("big.lua").is_ok());
}

#[test]
fn local_serves_a_plain_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(PREFIX);
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(root.join("main.lua"), "return 1").unwrap();
    std::fs::write(root.join("lib/util.lua"), "return {}").unwrap();
    std::fs::write(dir.path().join("outside.lua"), "not ours").unwrap();

    let src = ObjectStoreSource::local(dir.path(), PREFIX)
        .unwrap()
        .poll_interval(POLL);
    assert_eq!(
        src.name(),
        format!("local:{}/{PREFIX}", dir.path().display())
    );
    assert_eq!(&*src.get("main.lua").unwrap().code, b"return 1");
    assert_eq!(src.list("").unwrap(), vec!["lib/util.lua", "main.lua"]);
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert!(matches!(
        src.get("missing.lua"),
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        src.get("../outside.lua"),
        Err(SourceError::InvalidKey { .. })
    ));
    assert!(matches!(
        src.clone().max_script_size(4).get("main.lua"),
        Err(SourceError::BadContent { .. })
    ));

    let watch = src.watch("").unwrap();
    std::fs::write(root.join("lib/new.lua"), "return 2").unwrap();
    assert_eq!(watch.recv_timeout(WAIT), Some(updated("lib/new.lua")));
    std::fs::remove_file(root.join("main.lua")).unwrap();
    assert_eq!(watch.recv_timeout(WAIT), Some(removed("main.lua")));

    let missing = ObjectStoreSource::local(dir.path().join("nope"), "").unwrap_err();
    assert!(
        matches!(missing, SourceError::Unavailable { .. }),
        "{missing}"
    );
}

#[test]
fn any_object_store_through_new() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    S3::block(store.put(
        &Path::from("p/q/a.lua"),
        PutPayload::from_static(b"return 'a'"),
    ))
    .unwrap();
    let src = ObjectStoreSource::new(Arc::clone(&store), "memory:test", "p/q").unwrap();
    assert_eq!(src.name(), "memory:test");
    assert_eq!(&*src.get("a.lua").unwrap().code, b"return 'a'");
    assert_eq!(src.list("").unwrap(), vec!["a.lua"]);
    match src.get("b.lua") {
        Err(SourceError::NotFound { source_name, .. }) => assert_eq!(source_name, "memory:test"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
