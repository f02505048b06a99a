//! Reads of a workflow store another `troupe` process holds: redb lets one
//! OS process at a time open the store, so while `troupe workflow run` or
//! `resume` holds it, `show`, `list`, `check` and `query` from another
//! shell ask that process over a Unix socket beside the store file
//! (`workflows.redb.sock`), and print what it answers.
//!
//! The protocol is one line each way: the reading command's arguments (a
//! JSON array of strings, as typed after `troupe workflow`), then its
//! output (`{"json": …}` or `{"text": …}`) or its error (`{"error":
//! {"kind": …, "message": …}}`). The holder runs only the read commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value as Json, json};
use troupe::{Error, ErrorKind, Value};

use crate::Output;

/// The most bytes of a request or an answer line.
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// How long a reader waits for the holder's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket beside the store file `store`.
fn socket_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".sock");
    PathBuf::from(name)
}

/// The socket a holder serves while it holds the store; removed when
/// dropped.
pub struct ReadServer {
    path: PathBuf,
}

impl ReadServer {
    /// Serves the read commands of the store file `store` (which this
    /// process holds) on its socket, answering each request with `run`.
    /// `None` (logged) if the socket cannot be made: reads from other
    /// processes then fail as they did before, with `UNAVAILABLE`.
    pub fn start(
        store: &Path,
        run: impl Fn(Vec<String>) -> Result<Output, Error> + Send + 'static,
    ) -> Option<Self> {
        let path = socket_path(store);
        // A socket left by a holder that was killed: this process holds
        // the store now, so no one else serves it.
        let _ = std::fs::remove_file(&path);
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no read socket for the workflow store");
                return None;
            }
        };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        std::thread::Builder::new()
            .name("troupe-store-reads".into())
            .spawn(move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    answer(stream, &run);
                }
            })
            .ok()?;
        Some(Self { path })
    }
}

impl Drop for ReadServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One line of `stream`, at most [`MAX_LINE`] bytes.
fn read_line(stream: UnixStream) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(stream.take(MAX_LINE)).read_line(&mut line)?;
    Ok(line)
}

/// Reads one request from `stream` and writes its answer.
fn answer(stream: UnixStream, run: &impl Fn(Vec<String>) -> Result<Output, Error>) {
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let Ok(line) = stream.try_clone().and_then(read_line) else {
        return;
    };
    let reply = match serde_json::from_str::<Vec<String>>(&line) {
        Ok(args) => match run(args) {
            Ok(Output::Json(v)) => {
                json!({"json": serde_json::from_str::<Json>(&v.to_json()).unwrap_or(Json::Null)})
            }
            Ok(Output::Text(t)) => json!({"text": t}),
            Err(e) => json!({"error": {"kind": e.kind().as_str(), "message": e.message()}}),
        },
        Err(e) => json!({"error": {"kind": "INVALID", "message": format!("a bad request: {e}")}}),
    };
    let mut stream = stream;
    let _ = writeln!(stream, "{reply}");
}

/// Asks the process holding the store file `store` to run the read
/// command `args` (as typed after `troupe workflow`). `Err(None)` when no
/// process serves the store's socket (the caller reports why it could not
/// open the store); `Err(Some(e))` for the command's own error.
pub fn read_through_holder(store: &Path, args: &[String]) -> Result<Output, Option<Error>> {
    let mut stream = UnixStream::connect(socket_path(store)).map_err(|_| None)?;
    let down = |e: &dyn std::fmt::Display| {
        Some(Error::new(
            ErrorKind::Unavailable,
            format!("the troupe process holding the workflow store did not answer: {e}"),
        ))
    };
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| down(&e))?;
    let request = serde_json::to_string(args).map_err(|e| down(&e))?;
    writeln!(stream, "{request}").map_err(|e| down(&e))?;
    let line = read_line(stream).map_err(|e| down(&e))?;
    let reply: Json = serde_json::from_str(&line).map_err(|e| down(&e))?;
    if let Some(t) = reply["text"].as_str() {
        return Ok(Output::Text(t.to_owned()));
    }
    if let Some(v) = reply.get("json") {
        return Ok(Output::Json(Value::from(v.clone())));
    }
    let kind = reply["error"]["kind"]
        .as_str()
        .and_then(ErrorKind::parse)
        .unwrap_or(ErrorKind::Internal);
    let message = reply["error"]["message"].as_str().unwrap_or("no message");
    Err(Some(Error::new(kind, message.to_owned())))
}
