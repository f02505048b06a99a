//! `troupe workflow …`: run, resume, replay and inspect durable workflows
//! kept in a store directory (`--data DIR`, default `.troupe`), or in a
//! PostgreSQL database several troupe processes share (`--store
//! postgres://…`, feature `postgres`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use troupe::{
    Error, ErrorKind, FileSource, Fs, HostModule, Http, LuaEngine, ProcessHandle, Runtime, Source,
    Spawn, Value,
};
use troupe_workflow::{Child, Entry, Header, Run, WorkflowStore, outcome_value};

use crate::dashboard_cli::DashboardArgs;
use crate::progress::Progress;
use crate::source_url::{self, SourceSpec, SourceUrlParser};
use crate::store_socket::{self, ReadServer};
use crate::{Output, locate_script, parse_arg};

/// The store file inside the data directory.
const STORE_FILE: &str = "workflows.redb";

/// Arguments of `troupe workflow`.
#[derive(Args, Debug)]
pub struct WorkflowArgs {
    /// The directory holding the workflow store.
    #[arg(long, global = true, value_name = "DIR", default_value = ".troupe")]
    data: PathBuf,

    /// Keep the journals in this PostgreSQL database (`postgres://…`)
    /// instead of a file in --data: several troupe processes can then run
    /// workflows from it (each one by the process holding its lease) and
    /// `show`, `list` and `query` work from any shell at any time.
    #[arg(long, global = true, value_name = "URL", env = "TROUPE_WORKFLOW_STORE")]
    store: Option<String>,

    /// With --store: how soon, at most, `serve` takes over the workflows of
    /// a troupe process that died (default 10s).
    #[arg(long, global = true, value_name = "D", value_parser = crate::parse_duration)]
    lease_timeout: Option<Duration>,

    /// Scheduler worker threads (default: available cores).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Also allow this module in new workflows, e.g. `http` (repeatable).
    /// A workflow keeps the policy it started with: resume and replay use
    /// that one, so this flag cannot widen it.
    #[arg(long = "allow-module", global = true, value_name = "MODULE")]
    allow_modules: Vec<String>,

    /// Directory the `fs` module is confined to; also allows `fs` in new
    /// workflows. Give it again to resume a workflow that uses `fs`.
    #[arg(long, global = true, value_name = "DIR")]
    fs_root: Option<PathBuf>,

    /// Read scripts from this source (a URL, as `troupe run --source`)
    /// instead of the file system; FILE is then the script's key there.
    /// Repeatable: the first source that has a key wins. Give the same
    /// sources to `resume` and `replay`: a workflow journals its script's
    /// key, not the source.
    #[arg(long = "source", global = true, value_name = "URL", value_parser = SourceUrlParser)]
    sources: Vec<SourceSpec>,

    /// Serve the dashboard (workflows included) while a workflow runs.
    #[command(flatten)]
    dashboard: DashboardArgs,

    #[command(subcommand)]
    command: WorkflowCommand,
}

/// The workflow subcommands.
#[derive(Subcommand, Debug)]
enum WorkflowCommand {
    /// Starts FILE as the new workflow ID and prints its result as JSON.
    Run {
        /// The workflow id (must be new).
        id: String,
        /// The script (with --source, its key in the sources).
        file: PathBuf,
        /// Spawn arguments: JSON when they parse as JSON, otherwise strings.
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Resumes the unfinished workflow ID and prints its result as JSON.
    Resume {
        /// The workflow id.
        id: String,
    },
    /// Runs every unfinished workflow of the store, and with --store goes on
    /// taking over the workflows of troupe processes that die (within the
    /// lease timeout), until it is stopped.
    Serve,
    /// Replays workflow ID against its history without running anything
    /// live; fails with NONDETERMINISM if its script no longer matches.
    Replay {
        /// The workflow id.
        id: String,
    },
    /// Shows a workflow, its history, the chain of its runs (one more
    /// after each `workflow.continue_as_new`) and its child workflows.
    Show {
        /// The workflow id.
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show this past run (its header and history) instead of the
        /// current one.
        #[arg(long, value_name = "N")]
        run: Option<u32>,
    },
    /// Lists the workflows: id, status, steps, started, script.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reads every workflow back (header and each step of its history)
    /// and lists which are readable; fails with INTERNAL naming the
    /// unreadable ones, if any.
    Check {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sends the unfinished workflow ID a signal `{topic, payload}`, durably:
    /// its next `process.receive` (of TOPIC or any topic) gets it, journaled.
    /// If another troupe process holds the store (a `run` or `resume` of any
    /// workflow), the signal goes through the store's spool directory and
    /// that process delivers it; otherwise it waits in the store for the
    /// workflow's next resume.
    Signal {
        /// The workflow id.
        id: String,
        /// The message topic.
        topic: String,
        /// The payload: JSON when it parses as JSON, otherwise a string.
        #[arg(allow_negative_numbers = true)]
        payload: String,
    },
    /// Asks the unfinished workflow ID to stop, durably: its script gets an
    /// error of kind CANCELED from its next command (at once if it waits in
    /// a sleep or a receive), and its cleanup code may still run. Through
    /// the spool when another troupe process holds the store, as `signal`.
    Cancel {
        /// The workflow id.
        id: String,
    },
    /// Prints, as JSON, what workflow ID last published under KEY with
    /// `workflow.publish(KEY, value)`.
    Query {
        /// The workflow id.
        id: String,
        /// The key the workflow published under.
        key: String,
    },
    /// Deletes a workflow and its history.
    Delete {
        /// The workflow id.
        id: String,
    },
}

impl WorkflowArgs {
    /// Executes the subcommand.
    pub fn execute(self) -> Result<Output, Error> {
        let mut policy = self
            .allow_modules
            .iter()
            .fold(WorkflowStore::default_policy(), |p, m| {
                p.allow_module(m.as_str())
            });
        if self.fs_root.is_some() {
            policy = policy.allow_module("fs");
        }
        if let Some(url) = &self.store {
            let store = self.shared_store(url)?.with_policy(policy);
            return self.execute_on(store, None);
        }
        let path = self.data.join(STORE_FILE);
        let reads_only = self.command.reads_only();
        if reads_only && !path.exists() {
            // Reading must not leave an empty store (or directory) behind.
            return Err(Error::not_found(format!(
                "no workflow store at {} (nothing has run with --data {})",
                path.display(),
                self.data.display()
            )));
        }
        let store = match (WorkflowStore::open(&path), &self.command) {
            (Ok(store), _) => store.with_policy(policy),
            (Err(e), WorkflowCommand::Signal { id, topic, payload })
                if e.kind() == ErrorKind::Unavailable =>
            {
                WorkflowStore::post(&path, id, topic, parse_arg(3, payload)?)?;
                return Ok(Output::Text(format!(
                    "signal {topic:?} spooled for workflow {id}: the troupe process holding the store delivers it"
                )));
            }
            (Err(e), WorkflowCommand::Cancel { id }) if e.kind() == ErrorKind::Unavailable => {
                WorkflowStore::post_cancel(&path, id)?;
                return Ok(Output::Text(format!(
                    "cancellation spooled for workflow {id}: the troupe process holding the store delivers it"
                )));
            }
            (Err(e), _) if reads_only && e.kind() == ErrorKind::Unavailable => {
                // Another troupe process holds the store: ask it.
                let args: Vec<String> = std::env::args()
                    .skip_while(|a| a != "workflow")
                    .skip(1)
                    .collect();
                return store_socket::read_through_holder(&path, &args)
                    .map_err(|failed| failed.unwrap_or(e));
            }
            (Err(e), _) => return Err(e),
        };
        self.execute_on(store, Some(path))
    }

    /// The PostgreSQL store at `url`.
    #[cfg(feature = "postgres")]
    fn shared_store(&self, url: &str) -> Result<WorkflowStore, Error> {
        let store = WorkflowStore::postgres(url)?;
        Ok(match self.lease_timeout {
            Some(t) => store.with_lease_timeout(t),
            None => store,
        })
    }

    /// Without the `postgres` feature there is no shared store.
    #[cfg(not(feature = "postgres"))]
    fn shared_store(&self, url: &str) -> Result<WorkflowStore, Error> {
        let _ = (url, self.lease_timeout);
        Err(Error::invalid(
            "--store needs a troupe built with the `postgres` feature",
        ))
    }

    /// Executes the subcommand on the open `store` (a file `path`, or none
    /// for a shared store).
    fn execute_on(self, store: WorkflowStore, path: Option<PathBuf>) -> Result<Output, Error> {
        let host = Host {
            workers: self.workers,
            fs_root: self.fs_root,
            sources: self.sources,
            dashboard: self.dashboard,
            store_path: path,
        };
        match self.command {
            WorkflowCommand::Run { id, file, args } => {
                let key = host.script_key(&file)?;
                let args = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| parse_arg(i + 1, a))
                    .collect::<Result<Vec<_>, _>>()?;
                let spawn = Spawn::workflow(id, key).args(args);
                host.run_to_end(store, |rt| rt.spawn(spawn))
            }
            WorkflowCommand::Resume { id } => host.run_to_end(store, |rt| rt.resume(&id)),
            WorkflowCommand::Serve => host.serve(store),
            WorkflowCommand::Replay { id } => host.run_to_end(store, |rt| rt.replay(&id)),
            WorkflowCommand::Show { id, json, run } => {
                let runs = store.runs(&id)?;
                let (header, history) = match run {
                    None => (store.header(&id)?, store.history(&id)?),
                    Some(n) => {
                        let past = runs.iter().find(|r| r.header.run == n).ok_or_else(|| {
                            Error::not_found(format!(
                                "workflow {id:?} has no past run {n} (it is in run {})",
                                runs.len() + 1
                            ))
                        })?;
                        (past.header.clone(), past.history.clone())
                    }
                };
                let shown = Shown {
                    header: &header,
                    history: &history,
                    runs: &runs,
                    children: &store.children(&id)?,
                };
                Ok(if json {
                    Output::Json(shown.json())
                } else {
                    Output::Text(shown.table())
                })
            }
            WorkflowCommand::List { json } => list(&store, json),
            WorkflowCommand::Check { json } => check(&store, json),
            WorkflowCommand::Signal { id, topic, payload } => {
                store.signal(&id, &topic, parse_arg(3, &payload)?)?;
                Ok(Output::Text(if store.is_shared() {
                    format!(
                        "signal {topic:?} stored for workflow {id}: the troupe process running it delivers it, or its next resume"
                    )
                } else {
                    format!(
                        "signal {topic:?} queued for workflow {id}: delivered on its next resume"
                    )
                }))
            }
            WorkflowCommand::Cancel { id } => {
                store.cancel(&id)?;
                let when = if store.is_shared() {
                    "its next command, in the troupe process running it, or its next resume"
                } else {
                    "its next resume"
                };
                Ok(Output::Text(format!(
                    "cancellation stored for workflow {id}: its script gets CANCELED on {when}"
                )))
            }
            WorkflowCommand::Query { id, key } => Ok(Output::Json(store.query(&id, &key)?)),
            WorkflowCommand::Delete { id } => {
                store.delete(&id)?;
                Ok(Output::Text(format!("deleted workflow {id}")))
            }
        }
    }
}

impl WorkflowCommand {
    /// Whether it only reads the store (and can ask the process holding
    /// it).
    fn reads_only(&self) -> bool {
        matches!(
            self,
            WorkflowCommand::Show { .. }
                | WorkflowCommand::List { .. }
                | WorkflowCommand::Check { .. }
                | WorkflowCommand::Query { .. }
        )
    }
}

/// A read command another troupe process sent through the store's socket
/// (see [`store_socket`]).
#[derive(Parser, Debug)]
#[command(name = "troupe workflow")]
struct ReadRequest {
    #[command(flatten)]
    args: WorkflowArgs,
}

/// Runs the read command `args` (as typed after `troupe workflow`) on
/// `store`, for another process.
fn read_request(store: &WorkflowStore, args: Vec<String>) -> Result<Output, Error> {
    let argv = std::iter::once("troupe workflow".to_owned()).chain(args);
    let request = ReadRequest::try_parse_from(argv).map_err(|e| Error::invalid(e.to_string()))?;
    if !request.args.command.reads_only() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "only show, list, check and query go through the process holding the store",
        ));
    }
    let path = request.args.data.join(STORE_FILE);
    request.args.execute_on(store.clone(), Some(path))
}

/// How the runtime that runs a workflow is built.
struct Host {
    workers: Option<u16>,
    fs_root: Option<PathBuf>,
    /// `--source`: where scripts come from instead of the file system.
    sources: Vec<SourceSpec>,
    dashboard: DashboardArgs,
    /// The store file, beside which reads from other processes are
    /// served while this one holds it (none for a shared store, which
    /// other processes read themselves).
    store_path: Option<PathBuf>,
}

impl Host {
    /// The journaled key of FILE: its key in the `--source` sources, or,
    /// without any, its absolute path (the file system is then the source).
    fn script_key(&self, file: &Path) -> Result<String, Error> {
        if self.sources.is_empty() {
            absolute_key(file)
        } else {
            source_url::key(file)
        }
    }

    /// The scripts' source: the `--source` sources, or the whole file
    /// system, so a journaled script key (an absolute path) finds the
    /// script again on resume.
    fn source(&self) -> Result<Arc<dyn Source>, Error> {
        if self.sources.is_empty() {
            Ok(Arc::new(FileSource::new("/")))
        } else {
            source_url::open_all(&self.sources, false)
        }
    }

    /// Builds a runtime on `store` reading scripts from [`Host::source`],
    /// with the `http` module (and `fs` with `--fs-root`) installed;
    /// `recover` resumes the store's unfinished workflows (and takes over
    /// those of dead processes, on a shared store).
    fn runtime(&self, store: &WorkflowStore, recover: bool) -> Result<Runtime, Error> {
        let mut builder = Runtime::builder()
            .source(self.source()?)
            .engine(LuaEngine::new())
            .journal_store(store.clone())
            .recover(recover);
        if let Some(n) = self.workers {
            builder = builder.workers(usize::from(n));
        }
        builder = builder.module(Http::new()?.module());
        if let Some(dir) = &self.fs_root {
            builder = builder.module(Fs::open(dir)?.module());
        }
        builder.build()
    }

    /// Serves reads of the store file to other processes while `store` is
    /// held here (nothing for a shared store).
    fn serve_reads(&self, store: &WorkflowStore) -> Option<ReadServer> {
        let path = self.store_path.as_ref()?;
        let store = store.clone();
        ReadServer::start(path, move |args| read_request(&store, args))
    }

    /// `troupe workflow serve`: runs the store's unfinished workflows, and
    /// those it takes over, until the process is stopped.
    fn serve(&self, store: WorkflowStore) -> Result<Output, Error> {
        let rt = self.runtime(&store, true)?;
        let _dashboard = self.dashboard.serve(&rt, Some(store.clone()))?;
        let _reads = self.serve_reads(&store);
        tracing::info!(
            store = %store.path().display(),
            recovered = rt.recovered().len(),
            "serving workflows"
        );
        loop {
            std::thread::park();
        }
    }

    /// Builds a runtime on `store` (see [`Host::runtime`]), starts one
    /// workflow in it and waits for its result.
    fn run_to_end(
        &self,
        store: WorkflowStore,
        start: impl FnOnce(&Runtime) -> Result<ProcessHandle, Error>,
    ) -> Result<Output, Error> {
        let rt = self.runtime(&store, false)?;
        let dashboard = self.dashboard.serve(&rt, Some(store.clone()))?;
        let reads = self.serve_reads(&store);
        let result = start(&rt).and_then(|h| h.join_blocking());
        drop(reads);
        drop(dashboard);
        rt.shutdown();
        // The end record is queued when the result arrives: write it
        // before this process exits.
        store.flush()?;
        result.map(Output::Json)
    }
}

/// The key of FILE in a source rooted at `/`: its absolute path without the
/// leading slash.
fn absolute_key(file: &Path) -> Result<String, Error> {
    let (dir, name) = locate_script(file)?;
    let path = dir.join(name);
    let text = path.to_str().ok_or_else(|| {
        Error::invalid(format!("script path {} is not valid UTF-8", path.display()))
    })?;
    Ok(text.trim_start_matches('/').to_owned())
}

/// One line for a result: the JSON value, or `KIND: message`.
fn outcome_text(r: &Result<Value, Error>) -> String {
    match r {
        Ok(v) => v.to_json(),
        Err(e) => e.to_string(),
    }
}

/// What `troupe workflow show` prints: a run of a workflow, its past
/// runs and its children.
struct Shown<'a> {
    header: &'a Header,
    history: &'a [Entry],
    runs: &'a [Run],
    children: &'a [Child],
}

/// A child's status as `show` prints it.
fn child_status(c: &Child) -> &'static str {
    c.header
        .as_ref()
        .map_or("unreadable", |h| h.status.as_str())
}

impl Shown<'_> {
    fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .history
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_value(i + 1))
            .collect();
        let mut m = header_map(self.header);
        m.insert("history".to_owned(), Value::Array(steps));
        let runs = self
            .runs
            .iter()
            .map(|r| {
                let mut m = header_map(&r.header);
                m.insert("steps".to_owned(), Value::from(r.history.len()));
                Value::Map(m)
            })
            .collect();
        m.insert("past_runs".to_owned(), Value::Array(runs));
        let children = self
            .children
            .iter()
            .map(|c| {
                let result = c.header.as_ref().ok().and_then(|h| h.result.as_ref());
                Value::Map(
                    [
                        ("id", Value::from(c.id.as_str())),
                        ("status", Value::from(child_status(c))),
                        ("parent_close", Value::from(c.parent_close.as_str())),
                        ("result", result.map_or(Value::Nil, outcome_value)),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                )
            })
            .collect();
        m.insert("children".to_owned(), Value::Array(children));
        Value::Map(m)
    }

    fn table(&self) -> String {
        let mut out = show_table(self.header, self.history, self.runs);
        if !self.children.is_empty() {
            let rows: Vec<[String; 4]> = self
                .children
                .iter()
                .map(|c| {
                    let result = c.header.as_ref().ok().and_then(|h| h.result.as_ref());
                    [
                        c.id.clone(),
                        child_status(c).to_owned(),
                        c.parent_close.as_str().to_owned(),
                        result.map(outcome_text).unwrap_or_default(),
                    ]
                })
                .collect();
            let _ = writeln!(out, "\n\nchildren:");
            out.push_str(&table(&["ID", "STATUS", "PARENT_CLOSE", "RESULT"], &rows));
        }
        out
    }
}

fn header_map(h: &Header) -> std::collections::BTreeMap<String, Value> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("id".to_owned(), Value::from(h.id.as_str()));
    m.insert("run".to_owned(), Value::from(h.run));
    m.insert(
        "parent".to_owned(),
        h.parent.as_deref().map_or(Value::Nil, Value::from),
    );
    m.insert("status".to_owned(), Value::from(h.status.as_str()));
    m.insert("script".to_owned(), Value::from(script_path(&h.key)));
    m.insert("args".to_owned(), Value::Array(h.args.clone()));
    m.insert(
        "script_hash".to_owned(),
        Value::from(format!("{:016x}", h.script_hash)),
    );
    m.insert("started_ms".to_owned(), Value::from(h.started_ms));
    m.insert(
        "finished_ms".to_owned(),
        h.finished_ms.map_or(Value::Nil, Value::from),
    );
    m.insert(
        "result".to_owned(),
        h.result.as_ref().map_or(Value::Nil, outcome_value),
    );
    m
}

fn script_path(key: &str) -> String {
    format!("/{key}")
}

fn show_table(h: &Header, history: &[Entry], runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "workflow {}  {}", h.id, h.status.as_str());
    if h.run > 1 || !runs.is_empty() {
        let _ = writeln!(out, "run      {} of {}", h.run, runs.len() + 1);
    }
    if let Some(p) = &h.parent {
        let _ = writeln!(out, "parent   {p}");
    }
    let _ = writeln!(out, "script   {}", script_path(&h.key));
    let _ = writeln!(out, "args     {}", Value::Array(h.args.clone()).to_json());
    let _ = writeln!(out, "started  {}", utc(h.started_ms));
    if let Some(f) = h.finished_ms {
        let _ = writeln!(out, "finished {}", utc(f));
    }
    if let Some(r) = &h.result {
        let _ = writeln!(out, "result   {}", outcome_text(r));
    }
    let rows: Vec<[String; 4]> = history
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let Entry::Command {
                name, call, result, ..
            } = e;
            [
                (i + 1).to_string(),
                name.clone(),
                match call.args() {
                    args if args.is_nil() => String::new(),
                    args => args.to_json(),
                },
                outcome_text(result),
            ]
        })
        .collect();
    let _ = writeln!(out);
    out.push_str(&table(&["STEP", "COMMAND", "ARGS", "RESULT"], &rows));
    if !runs.is_empty() {
        let rows: Vec<[String; 4]> = runs
            .iter()
            .map(|r| {
                [
                    r.header.run.to_string(),
                    utc(r.header.started_ms),
                    r.history.len().to_string(),
                    Value::Array(r.header.args.clone()).to_json(),
                ]
            })
            .collect();
        let _ = writeln!(out, "\npast runs (continued as new; `--run N` shows one):");
        out.push_str(&table(&["RUN", "STARTED", "STEPS", "ARGS"], &rows));
    }
    out
}

fn list(store: &WorkflowStore, json: bool) -> Result<Output, Error> {
    let rows = store.list()?;
    if json {
        let items = rows
            .iter()
            .map(|s| match &s.header {
                Ok(h) => {
                    let mut m = header_map(h);
                    m.insert("steps".to_owned(), Value::from(s.steps));
                    Value::Map(m)
                }
                Err(e) => Value::Map(
                    [
                        ("id".to_owned(), Value::from(s.id.as_str())),
                        ("status".to_owned(), Value::from("unreadable")),
                        ("error".to_owned(), e.to_value()),
                    ]
                    .into_iter()
                    .collect(),
                ),
            })
            .collect();
        return Ok(Output::Json(Value::Array(items)));
    }
    let rows: Vec<[String; 5]> = rows
        .iter()
        .map(|s| match &s.header {
            Ok(h) => [
                s.id.clone(),
                h.status.as_str().to_owned(),
                s.steps.to_string(),
                utc(h.started_ms),
                script_path(&h.key),
            ],
            Err(e) => [
                s.id.clone(),
                "unreadable".to_owned(),
                s.steps.to_string(),
                String::new(),
                e.to_string(),
            ],
        })
        .collect();
    Ok(Output::Text(table(
        &["ID", "STATUS", "STEPS", "STARTED", "SCRIPT"],
        &rows,
    )))
}

/// `troupe workflow check`: a row per workflow, or INTERNAL naming the
/// unreadable ones.
fn check(store: &WorkflowStore, json: bool) -> Result<Output, Error> {
    let (mut readable, mut bad) = (Vec::new(), Vec::new());
    let mut progress = None;
    let list = store.check_with(&mut |n, of| {
        progress
            .get_or_insert_with(|| Progress::new("workflow check", of))
            .step(n, "workflows read back");
    })?;
    drop(progress);
    for checked in list {
        let id = checked.id;
        match checked.steps {
            Ok(steps) => readable.push((id, steps)),
            Err(e) => bad.push(format!("{id} ({})", e.message())),
        }
    }
    if !bad.is_empty() {
        return Err(Error::internal(format!(
            "{} of {} workflows are unreadable: {}",
            bad.len(),
            bad.len() + readable.len(),
            bad.join("; ")
        )));
    }
    if json {
        let rows = readable
            .into_iter()
            .map(|(id, steps)| {
                Value::Map(
                    [
                        ("id".to_owned(), Value::from(id)),
                        ("steps".to_owned(), Value::from(steps)),
                    ]
                    .into_iter()
                    .collect(),
                )
            })
            .collect();
        return Ok(Output::Json(Value::Array(rows)));
    }
    let rows: Vec<[String; 3]> = readable
        .into_iter()
        .map(|(id, steps)| [id, "readable".to_owned(), steps.to_string()])
        .collect();
    Ok(Output::Text(table(&["ID", "CHECK", "STEPS"], &rows)))
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(*head);
    for r in rows {
        line(std::array::from_fn(|i| r[i].as_str()));
    }
    out.trim_end().to_owned()
}

/// `ms` since the Unix epoch as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06:40.000 UTC");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "LONGER"],
            &[
                ["xyz".to_owned(), "1".to_owned()],
                ["q".to_owned(), "22".to_owned()],
            ],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq    22");
    }

    #[test]
    fn only_reads_are_run_for_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = WorkflowStore::open(dir.path().join(STORE_FILE)).unwrap();
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect();
        for write in [
            &["delete", "w"][..],
            &["cancel", "w"],
            &["run", "w", "x.lua"],
        ] {
            let err = read_request(&store, args(write)).err().expect("refused");
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{write:?}: {err}");
        }
        let err = read_request(&store, args(&["show"]))
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        let listed = read_request(&store, args(&["list", "--json"])).expect("a read");
        assert!(matches!(listed, Output::Json(Value::Array(ref l)) if l.is_empty()));
    }
}
