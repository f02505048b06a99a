//! `fs`: files under one root directory the host grants.
//!
//! Confinement has two layers. Before a command is yielded, the path is
//! checked lexically: NUL bytes, absolute paths and `..` components are
//! `PERMISSION_DENIED`, and the policy's action rules (`fs.read` on
//! `data/**`, …) see the normalized relative path. The handler then resolves
//! the path with `cap-std` against a directory handle opened once on the
//! root: every component, symlinks included, is resolved beneath that handle
//! (`openat2(RESOLVE_BENEATH)` where the kernel has it), so a symlink that
//! points out of the root is refused at the moment of the open, with no
//! window between a check and the use.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata};
use troupe_dispatcher::{Command, Error, ErrorKind, Value};
use troupe_modules::types::{Decl, Field, Signature, Type, Types};
use troupe_modules::{Args, CallError, Class, FnCx, ModuleDef, Ret};

use crate::{HostModule, blocking, check_action, ids, text_or_bytes};

/// Default largest file `fs.read` returns: 16 MiB.
const DEFAULT_MAX_READ: u64 = 16 << 20;

/// The `fs` module, rooted at a directory. Cheap to clone.
///
/// ```
/// use troupe_io::{Fs, HostModule};
///
/// let dir = tempfile::tempdir()?;
/// let fs = Fs::open(dir.path())?.max_read_bytes(1 << 20);
/// assert_eq!(fs.module().name(), "fs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Fs {
    root: Arc<Dir>,
    root_path: PathBuf,
    max_read: u64,
}

impl Fs {
    /// Grants scripts the directory `root`, which must exist.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, Error> {
        let root_path = root.as_ref().to_path_buf();
        let dir = Dir::open_ambient_dir(&root_path, ambient_authority())
            .map_err(|e| io_error("fs", &root_path.display().to_string(), e).retryable(false))?;
        Ok(Self {
            root: Arc::new(dir),
            root_path,
            max_read: DEFAULT_MAX_READ,
        })
    }

    /// The largest file `fs.read` returns (default 16 MiB); a bigger one is
    /// `LIMIT_EXCEEDED`.
    #[must_use]
    pub fn max_read_bytes(mut self, bytes: u64) -> Self {
        self.max_read = bytes;
        self
    }

    /// The granted root, as given to [`Fs::open`].
    pub fn root(&self) -> &Path {
        &self.root_path
    }
}

/// A command whose only argument is a path relative to the root, already
/// checked lexically.
trait PathCommand: Command<Output = Value> {
    fn new(path: String) -> Self;
    fn into_path(self) -> String;
}

macro_rules! path_command {
    ($($ty:ident = $id:expr, $name:literal;)*) => {$(
        command! {
            #[doc = concat!("`", $name, "(path)`.")]
            $ty = $id, $name -> Value { path: String }
        }
        impl PathCommand for $ty {
            fn new(path: String) -> Self {
                Self { path }
            }
            fn into_path(self) -> String {
                self.path
            }
        }
    )*};
}

path_command! {
    ReadCmd = ids::FS_READ, "fs.read";
    ListCmd = ids::FS_LIST, "fs.list";
    StatCmd = ids::FS_STAT, "fs.stat";
    RemoveCmd = ids::FS_REMOVE, "fs.remove";
    MkdirCmd = ids::FS_MKDIR, "fs.mkdir";
}

command! {
    /// `fs.write(path, data)`.
    WriteCmd = ids::FS_WRITE, "fs.write" -> Value { path: String, data: Value }
}

/// Checks `raw` lexically and returns it normalized (`a/b`, or `.` for the
/// root). NUL bytes, absolute paths and `..` are refused, whatever the
/// policy: a script names files only inside its root.
fn confine(function: &str, raw: &str) -> Result<String, Error> {
    let denied = |why: &str| {
        Error::permission_denied(format!("{function}: {why}: {raw:?}")).retryable(false)
    };
    if raw.contains('\0') {
        return Err(denied("path contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::CurDir => {}
            Component::ParentDir => return Err(denied("`..` is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(denied("absolute paths are not allowed"));
            }
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

/// The checked path of argument `i` (the root when `optional` and absent),
/// after the policy's `module.function` rule on it.
fn path_arg(cx: &FnCx<'_>, args: &Args, i: usize, optional: bool) -> Result<String, CallError> {
    let raw = if optional {
        args.opt_string(i)?.unwrap_or_default()
    } else {
        args.string(i)?
    };
    let path = confine(args.function(), &raw)?;
    check_action(cx, args.function(), &path)?;
    Ok(path)
}

/// The module function of a path command: checks the path (the root when
/// `optional` and absent) and yields the command.
fn path_fn<C: PathCommand>(
    optional: bool,
) -> impl Fn(&FnCx<'_>, Args) -> Result<Ret, CallError> + Send + Sync + 'static {
    move |cx, args| {
        let path = path_arg(cx, &args, 0, optional)?;
        Ok(Ret::Call(C::new(path).to_call()?))
    }
}

/// Maps an IO error on `path` to the structured error a script sees.
fn io_error(op: &str, path: &str, e: io::Error) -> Error {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::PermissionDenied => ErrorKind::PermissionDenied,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::IsADirectory
        | K::NotADirectory
        | K::DirectoryNotEmpty
        | K::InvalidInput
        | K::InvalidFilename => ErrorKind::Invalid,
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => ErrorKind::LimitExceeded,
        K::Interrupted | K::WouldBlock | K::TimedOut | K::ResourceBusy => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{op} {path:?}: {e}"))
}

fn read(dir: &Dir, path: &str, max: u64) -> Result<Value, Error> {
    let err = |e| io_error("fs.read", path, e);
    let file = dir.open(path).map_err(err)?;
    if file.metadata().map_err(err)?.is_dir() {
        return Err(Error::invalid(format!(
            "fs.read {path:?}: is a directory (use fs.list)"
        )));
    }
    let mut buf = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("fs.read {path:?}: file is larger than {max} bytes"),
        ));
    }
    Ok(text_or_bytes(buf))
}

fn write(dir: &Dir, path: &str, data: &Value) -> Result<Value, Error> {
    let bytes: &[u8] = match data {
        Value::String(s) => s.as_bytes(),
        Value::Bytes(b) => b,
        other => {
            return Err(Error::invalid(format!(
                "fs.write: data must be a string, got {}",
                other.type_name()
            )));
        }
    };
    dir.write(path, bytes)
        .map_err(|e| io_error("fs.write", path, e))?;
    Ok(Value::Bool(true))
}

fn list(dir: &Dir, path: &str) -> Result<Value, Error> {
    let err = |e| io_error("fs.list", path, e);
    let mut names = Vec::new();
    for entry in dir.read_dir(path).map_err(err)? {
        let name = entry.map_err(err)?.file_name();
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Value::Array(names.into_iter().map(Value::String).collect()))
}

fn stat_value(meta: &Metadata) -> Value {
    let kind = if meta.is_dir() {
        "dir"
    } else if meta.is_file() {
        "file"
    } else {
        "other"
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Nil, |d| Value::Float(d.as_secs_f64() * 1e3));
    let mut m = BTreeMap::new();
    m.insert("type".to_owned(), Value::from(kind));
    m.insert(
        "size".to_owned(),
        Value::Int(i64::try_from(meta.len()).unwrap_or(i64::MAX)),
    );
    m.insert("modified".to_owned(), modified);
    Value::Map(m)
}

fn stat(dir: &Dir, path: &str) -> Result<Value, Error> {
    let meta = dir
        .metadata(path)
        .map_err(|e| io_error("fs.stat", path, e))?;
    Ok(stat_value(&meta))
}

fn remove(dir: &Dir, path: &str) -> Result<Value, Error> {
    if path == "." {
        return Err(Error::permission_denied("fs.remove: cannot remove the root").retryable(false));
    }
    let err = |e| io_error("fs.remove", path, e);
    let meta = dir.symlink_metadata(path).map_err(err)?;
    if meta.is_dir() {
        dir.remove_dir(path).map_err(err)?;
    } else {
        dir.remove_file(path).map_err(err)?;
    }
    Ok(Value::Bool(true))
}

fn mkdir(dir: &Dir, path: &str) -> Result<Value, Error> {
    dir.create_dir_all(path)
        .map_err(|e| io_error("fs.mkdir", path, e))?;
    Ok(Value::Bool(true))
}

/// Adds the async handler of a path command: `op` runs on a blocking
/// thread against the root.
fn handle_path<C, F>(def: ModuleDef, root: &Arc<Dir>, op: F) -> ModuleDef
where
    C: PathCommand,
    F: Fn(&Dir, &str) -> Result<Value, Error> + Copy + Send + Sync + 'static,
{
    let root = Arc::clone(root);
    def.handle_async(move |_pid, c: C| {
        let root = Arc::clone(&root);
        let path = c.into_path();
        blocking(C::NAME, move || op(&root, &path))
    })
}

/// What `fs` exports, for editors and the module reference.
fn types() -> Types {
    let path_fn = |doc: &str| Signature::new(doc).param("path", Type::String);
    Types::new()
        .function(
            "read",
            path_fn("Reads a file under the root; NOT_FOUND if missing, LIMIT_EXCEEDED past the host's size limit.")
                .returns(Type::String)
                .fallible(),
        )
        .function(
            "write",
            path_fn("Creates or replaces a file under the root (its directory must exist).")
                .param("data", Type::String)
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "list",
            Signature::new("The sorted names in a directory under the root (the root itself by default).")
                .optional("path", Type::String)
                .returns(Type::array(Type::String))
                .fallible(),
        )
        .function(
            "stat",
            path_fn("Type, size and modification time of a file or directory.")
                .returns(Type::named("Stat"))
                .fallible(),
        )
        .function(
            "remove",
            path_fn("Removes a file or an empty directory.")
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "mkdir",
            path_fn("Creates a directory and any missing parents.")
                .returns(Type::Boolean)
                .fallible(),
        )
        .decl(Decl::record(
            "Stat",
            "What `fs.stat` returns.",
            [
                Field::new("type", Type::String).doc("\"file\", \"dir\" or \"other\""),
                Field::new("size", Type::Integer).doc("in bytes"),
                Field::optional("modified", Type::Number)
                    .doc("last modification, ms since the Unix epoch"),
            ],
        ))
}

/// The `fs` module definition.
pub(crate) fn definition() -> ModuleDef {
    ModuleDef::new("fs")
        .describe("Files under the directory the host granted; paths cannot leave it")
        .class(Class::Io)
        .types(types())
        .command("read", path_fn::<ReadCmd>(false))
        .command("write", |cx, args| {
            let path = path_arg(cx, &args, 0, false)?;
            let data = match args.get(1) {
                d @ (Value::String(_) | Value::Bytes(_)) => d.clone(),
                _ => return Err(args.error(1, "string").into()),
            };
            Ok(Ret::Call(WriteCmd { path, data }.to_call()?))
        })
        .command("list", path_fn::<ListCmd>(true))
        .command("stat", path_fn::<StatCmd>(false))
        .command("remove", path_fn::<RemoveCmd>(false))
        .command("mkdir", path_fn::<MkdirCmd>(false))
}

impl HostModule for Fs {
    fn module(&self) -> ModuleDef {
        let max = self.max_read;
        let def = definition();
        let def = handle_path::<ReadCmd, _>(def, &self.root, move |dir, p| read(dir, p, max));
        let def = handle_path::<ListCmd, _>(def, &self.root, list);
        let def = handle_path::<StatCmd, _>(def, &self.root, stat);
        let def = handle_path::<RemoveCmd, _>(def, &self.root, remove);
        let def = handle_path::<MkdirCmd, _>(def, &self.root, mkdir);
        let root = Arc::clone(&self.root);
        def.handle_async(move |_pid, w: WriteCmd| {
            let root = Arc::clone(&root);
            blocking("fs.write", move || write(&root, &w.path, &w.data))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_confinement() {
        assert_eq!(confine("fs.read", "a/./b").unwrap(), "a/b");
        assert_eq!(confine("fs.read", "").unwrap(), ".");
        assert_eq!(confine("fs.read", "./").unwrap(), ".");
        for bad in ["../x", "a/../../x", "a/..", "/etc/passwd", "a\0b"] {
            let e = confine("fs.read", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{bad:?}");
        }
    }
}
