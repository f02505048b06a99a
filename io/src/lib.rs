//! Troupe's IO modules, each a [`HostModule`] a host adds to its
//! [`RuntimeBuilder`](troupe_runtime::RuntimeBuilder):
//!
//! - [`Fs`] (`fs`, class `io`): files under one root directory the host
//!   grants; no path can leave it (`..`, absolute paths, symlinks pointing
//!   out, NUL bytes are `PERMISSION_DENIED`).
//! - [`Http`] (`http`, class `network`): an HTTP client on reqwest (rustls).
//! - [`Kv`] (`kv`, class `storage`): a persistent key-value store on redb,
//!   values kept as MessagePack.
//!
//! Every operation is a command: the script yields, the handler runs on the
//! runtime's tokio IO pool (file IO and database writes on its blocking
//! threads; `kv.get`, a cached point read, on the IO thread itself), and the
//! result resumes the script. The scheduler's workers never block on IO.
//! Action-level policy rules (`fs.read` on `data/**`, `http.get` on
//! `https://api.example.com/*`, `kv.put` on `users/*`) are checked before the
//! command is yielded.
//!
//! ```no_run
//! use troupe_io::{Fs, HostModule, Http, Kv};
//! use troupe_runtime::Runtime;
//!
//! let builder = Runtime::builder()
//!     .module(Fs::open("data/files")?.module())
//!     .module(Kv::open("data/kv")?.module())
//!     .module(Http::new()?.module());
//! # let _ = builder;
//! # Ok::<(), troupe_dispatcher::Error>(())
//! ```
//!
//! This crate knows the module and dispatcher contracts and the runtime
//! builder; it knows nothing of engines or the scheduler.

/// Defines a command: a serde struct with its id, name and output type.
macro_rules! command {
    ($(#[$doc:meta])* $ty:ident = $id:expr, $name:literal -> $out:ty { $($field:ident: $fty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(serde::Serialize, serde::Deserialize)]
        struct $ty {
            $($field: $fty),*
        }
        impl troupe_dispatcher::Command for $ty {
            const ID: troupe_dispatcher::CommandId = $id;
            const NAME: &'static str = $name;
            type Output = $out;
        }
    };
}

mod fs;
mod http;
mod kv;

pub use fs::Fs;
pub use http::Http;
pub use kv::Kv;

pub use troupe_runtime::HostModule;

use troupe_dispatcher::Error;
use troupe_modules::{CallError, FnCx, ModuleDef};

/// Command ids of the IO modules (300–399 is reserved for this crate).
pub mod ids {
    use troupe_dispatcher::CommandId;

    /// `fs.read(path)`.
    pub const FS_READ: CommandId = CommandId(300);
    /// `fs.write(path, data)`.
    pub const FS_WRITE: CommandId = CommandId(301);
    /// `fs.list(path?)`.
    pub const FS_LIST: CommandId = CommandId(302);
    /// `fs.stat(path)`.
    pub const FS_STAT: CommandId = CommandId(303);
    /// `fs.remove(path)`.
    pub const FS_REMOVE: CommandId = CommandId(304);
    /// `fs.mkdir(path)`.
    pub const FS_MKDIR: CommandId = CommandId(305);
    /// `http.get` and `http.request`.
    pub const HTTP_REQUEST: CommandId = CommandId(310);
    /// `kv.get(key)`.
    pub const KV_GET: CommandId = CommandId(320);
    /// `kv.put(key, value)`.
    pub const KV_PUT: CommandId = CommandId(321);
    /// `kv.delete(key)`.
    pub const KV_DELETE: CommandId = CommandId(322);
    /// `kv.scan(prefix, limit?)`.
    pub const KV_SCAN: CommandId = CommandId(323);
}

/// The definitions of `fs`, `http` and `kv` (functions, classes, type
/// manifests), for tools that describe modules without granting them.
pub fn definitions() -> Vec<ModuleDef> {
    vec![fs::definition(), http::definition(), kv::definition()]
}

/// Refuses the call unless the caller's policy allows `action` on
/// `resource`; the action is the called function's qualified name.
fn check_action(cx: &FnCx<'_>, action: &str, resource: &str) -> Result<(), CallError> {
    if cx.is_allowed(action, resource) {
        Ok(())
    } else {
        Err(CallError::Fail(Error::permission_denied(format!(
            "{action} on {resource:?} is denied by policy"
        ))))
    }
}

/// Runs blocking work (file or database IO) on the IO pool's blocking
/// threads, so neither the scheduler's workers nor the async threads stall.
async fn blocking<T, F>(what: &'static str, f: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("{what}: blocking task failed: {e}")))?
}

/// Text when `bytes` is UTF-8, binary otherwise.
fn text_or_bytes(bytes: Vec<u8>) -> troupe_dispatcher::Value {
    use troupe_dispatcher::Value;
    match String::from_utf8(bytes) {
        Ok(s) => Value::String(s),
        Err(e) => Value::Bytes(e.into_bytes()),
    }
}
