//! `kv`: a persistent, transactional key-value store on redb.
//!
//! Keys are strings kept in byte order; values are any [`Value`], stored as
//! MessagePack (`rmp-serde`). Each `put` and `delete` is one redb write
//! transaction, durable when it returns; reads see the last committed state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, TableDefinition};
use troupe_dispatcher::{Command, Error, ErrorKind, Value};
use troupe_modules::types::{Decl, Field, Signature, Type, Types};
use troupe_modules::{CallError, Class, ModuleDef, Ret};

use crate::{HostModule, blocking, check_action, ids};

/// The one table every key lives in.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// The database file inside the data directory.
const FILE: &str = "kv.redb";

/// Entries `kv.scan` returns when no limit is given.
const DEFAULT_SCAN_LIMIT: i64 = 1000;

/// The most entries one `kv.scan` may ask for.
const MAX_SCAN_LIMIT: i64 = 100_000;

/// A key-value store in a directory. Cheap to clone; clones share the open
/// database. The host may use it directly (the methods block on disk IO) and
/// give it to scripts as the `kv` module. The file stays open until
/// [`Kv::close`] or until the last clone is dropped.
///
/// ```
/// use troupe_dispatcher::Value;
/// use troupe_io::Kv;
///
/// let dir = tempfile::tempdir()?;
/// let kv = Kv::open(dir.path())?;
/// kv.put("users/ada", &Value::from("Ada"))?;
/// assert_eq!(kv.get("users/ada")?, Some(Value::from("Ada")));
/// assert_eq!(kv.scan("users/", 10)?.len(), 1);
/// assert!(kv.delete("users/ada")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Kv {
    db: Arc<RwLock<Option<Database>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").field("path", &self.path).finish()
    }
}

/// Maps a redb error to the structured error a script sees.
fn store_error(e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::DatabaseAlreadyOpen => ErrorKind::Unavailable,
        redb::Error::Io(_) => ErrorKind::Unavailable,
        redb::Error::ValueTooLarge(_) => ErrorKind::LimitExceeded,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("kv: {e}"))
}

fn decode(key: &str, bytes: &[u8]) -> Result<Value, Error> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        Error::internal(format!(
            "kv: value of {key:?} is not valid MessagePack: {e}"
        ))
    })
}

impl Kv {
    /// Opens (creating if needed) the store in directory `dir`, in the file
    /// `kv.redb`. A store another `Kv` in any process has open is
    /// `UNAVAILABLE`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("kv: cannot create {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(FILE);
        let db = Database::create(&path).map_err(store_error)?;
        // Create the table once, so read transactions always find it.
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(TABLE).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        Ok(Self {
            db: Arc::new(RwLock::new(Some(db))),
            path,
        })
    }

    /// Closes the store for every clone, after the operations in flight;
    /// later operations are `UNAVAILABLE`. A host restarting on the same
    /// directory closes first: the runtime's handlers hold clones that may
    /// outlive [`Runtime::shutdown`](troupe_runtime::Runtime::shutdown) by a
    /// moment.
    pub fn close(&self) {
        self.db.write().take();
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, Error>) -> Result<T, Error> {
        let db = self.db.read();
        let db = db.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!("kv: store {} is closed", self.path.display()),
            )
            .retryable(false)
        })?;
        f(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(store_error)?;
            let table = txn.open_table(TABLE).map_err(store_error)?;
            match table.get(key).map_err(store_error)? {
                Some(bytes) => decode(key, bytes.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Stores `value` under `key`, durably.
    pub fn put(&self, key: &str, value: &Value) -> Result<(), Error> {
        let bytes = rmp_serde::to_vec(value)
            .map_err(|e| Error::invalid(format!("kv: cannot encode value of {key:?}: {e}")))?;
        self.with_db(|db| {
            let txn = db.begin_write().map_err(store_error)?;
            txn.open_table(TABLE)
                .map_err(store_error)?
                .insert(key, bytes.as_slice())
                .map_err(store_error)?;
            txn.commit().map_err(store_error)
        })
    }

    /// Removes `key`; whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        self.with_db(|db| {
            let txn = db.begin_write().map_err(store_error)?;
            let existed = txn
                .open_table(TABLE)
                .map_err(store_error)?
                .remove(key)
                .map_err(store_error)?
                .is_some();
            txn.commit().map_err(store_error)?;
            Ok(existed)
        })
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Value)>, Error> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(store_error)?;
            let table = txn.open_table(TABLE).map_err(store_error)?;
            let mut out = Vec::new();
            for entry in table.range(prefix..).map_err(store_error)? {
                let (k, v) = entry.map_err(store_error)?;
                let key = k.value();
                if !key.starts_with(prefix) || out.len() == limit {
                    break;
                }
                out.push((key.to_owned(), decode(key, v.value())?));
            }
            Ok(out)
        })
    }
}

command! {
    /// `kv.get(key)`.
    GetCmd = ids::KV_GET, "kv.get" -> Value { key: String }
}
command! {
    /// `kv.put(key, value)`.
    PutCmd = ids::KV_PUT, "kv.put" -> bool { key: String, value: Value }
}
command! {
    /// `kv.delete(key)`.
    DeleteCmd = ids::KV_DELETE, "kv.delete" -> bool { key: String }
}
command! {
    /// `kv.scan(prefix, limit?)`.
    ScanCmd = ids::KV_SCAN, "kv.scan" -> Value { prefix: String, limit: usize }
}

fn yield_call<C: Command>(c: &C) -> Result<Ret, CallError> {
    Ok(Ret::Call(c.to_call()?))
}

/// What `kv` exports, for editors and the module reference.
fn types() -> Types {
    let key = |doc: &str| Signature::new(doc).param("key", Type::String);
    Types::new()
        .function(
            "get",
            key("The value under `key`, or nil if there is none.")
                .returns(Type::optional(Type::Any))
                .fallible(),
        )
        .function(
            "put",
            key("Stores a value (not nil) under `key`, durably.")
                .param("value", Type::Any)
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "delete",
            key("Removes `key`; true if it existed.")
                .returns(Type::Boolean)
                .fallible(),
        )
        .function(
            "scan",
            Signature::new("Entries whose key starts with `prefix`, in key order (at most `limit`, default 1000).")
                .optional("prefix", Type::String)
                .optional("limit", Type::Integer)
                .returns(Type::array(Type::named("Entry")))
                .fallible(),
        )
        .decl(Decl::record(
            "Entry",
            "One entry of `kv.scan`.",
            [Field::new("key", Type::String), Field::new("value", Type::Any)],
        ))
}

/// The `kv` module definition.
pub(crate) fn definition() -> ModuleDef {
    ModuleDef::new("kv")
        .describe("A persistent key-value store")
        .class(Class::Storage)
        .types(types())
        .command("get", |cx, args| {
            let key = args.string(0)?;
            check_action(cx, args.function(), &key)?;
            yield_call(&GetCmd { key })
        })
        .command("put", |cx, mut args| {
            let key = args.string(0)?;
            check_action(cx, args.function(), &key)?;
            if args.get(1).is_nil() {
                return Err(args
                    .error(1, "a value (use kv.delete to remove a key)")
                    .into());
            }
            let value = args.take(1);
            yield_call(&PutCmd { key, value })
        })
        .command("delete", |cx, args| {
            let key = args.string(0)?;
            check_action(cx, args.function(), &key)?;
            yield_call(&DeleteCmd { key })
        })
        .command("scan", |cx, args| {
            let prefix = args.opt_string(0)?.unwrap_or_default();
            check_action(cx, args.function(), &prefix)?;
            let limit = args.opt_int(1)?.unwrap_or(DEFAULT_SCAN_LIMIT);
            if !(1..=MAX_SCAN_LIMIT).contains(&limit) {
                return Err(args.error(1, "a limit from 1 to 100000").into());
            }
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            yield_call(&ScanCmd { prefix, limit })
        })
}

impl HostModule for Kv {
    fn module(&self) -> ModuleDef {
        // A point read is served from redb's cache in about a microsecond:
        // it runs on the IO pool thread itself, since a hop to the blocking
        // pool costs ten times more than the read (see benches/kv.rs). Scans
        // and writes (which fsync) go to the blocking pool.
        let kv = self.clone();
        let def = definition().handle_async(move |_pid, c: GetCmd| {
            std::future::ready(kv.get(&c.key).map(Option::unwrap_or_default))
        });
        let kv = self.clone();
        let def = def.handle_async(move |_pid, c: PutCmd| {
            let kv = kv.clone();
            blocking("kv.put", move || kv.put(&c.key, &c.value).map(|()| true))
        });
        let kv = self.clone();
        let def = def.handle_async(move |_pid, c: DeleteCmd| {
            let kv = kv.clone();
            blocking("kv.delete", move || kv.delete(&c.key))
        });
        let kv = self.clone();
        def.handle_async(move |_pid, c: ScanCmd| {
            let kv = kv.clone();
            blocking("kv.scan", move || {
                let entries = kv.scan(&c.prefix, c.limit)?;
                Ok(Value::Array(
                    entries
                        .into_iter()
                        .map(|(k, v)| {
                            Value::Map(BTreeMap::from([
                                ("key".to_owned(), Value::String(k)),
                                ("value".to_owned(), v),
                            ]))
                        })
                        .collect(),
                ))
            })
        })
    }
}
