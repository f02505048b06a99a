//! `troupe`: the command-line front end of the Troupe runtime.
//!
//! ```text
//! troupe run FILE [ARGS…] [--allow CLASS,…] [--allow-module M]… [--deny-module M]…
//!            [--workers N] [--timeout D] [--max-memory B] [--max-instructions N]
//!            [--data DIR] [--fs-root DIR] [--watch] [--lightweight] [--source URL]…
//! troupe types --out DIR [--allow CLASS,…] [--allow-module M]… [--deny-module M]…
//! troupe docs
//! troupe eval [--lang expr|cel|evalexpr|lua|starlark|js|python] 'SRC' [--var NAME=VALUE]… [--timeout D]
//!            [--max-memory B] [--max-instructions N]
//! troupe workflow run ID FILE [ARGS…] | resume ID | replay ID | show ID [--json]
//!                 | list [--json] | check [--json] | signal ID TOPIC PAYLOAD | query ID KEY
//!                 | delete ID   [--data DIR]
//! troupe ps --connect ADDR [--token T] [--json]
//! troupe top --connect ADDR [--token T] [--interval MS] [--sort mailbox|memory|instructions|pid]
//! troupe bench [--quick] [--no-erlang] [--workers N] [--cluster]
//! ```
//!
//! On success the result is printed as JSON on stdout (exit 0). A failure is
//! one line `KIND: message` on stderr (exit 1); a usage error is one line
//! `INVALID: …` on stderr (exit 2).

#[cfg(feature = "cluster")]
mod cluster_cli;
mod dashboard_cli;
mod progress;
mod source_url;
mod store_socket;
mod top;
mod workflow_cli;

/// Counts each thread's bytes so Python and TCL processes can honour
/// `max_memory`.
#[cfg(feature = "python")]
#[global_allocator]
static ALLOC: troupe_engines::python::CountingAllocator = troupe_engines::python::CountingAllocator;

/// Counts each thread's bytes so TCL processes can honour `max_memory`.
#[cfg(all(feature = "tcl", not(feature = "python")))]
#[global_allocator]
static ALLOC: troupe_engines::tcl::CountingAllocator = troupe_engines::tcl::CountingAllocator;

/// mimalloc: glibc's allocator is slower where one thread frees what another
/// allocated (every message, every Lua state a worker drops). It made spawns
/// 1.8x and a stream of messages between nodes 10% faster (benches/RESULTS.md).
#[cfg(not(any(feature = "python", feature = "tcl")))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::Write;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::error::ErrorKind as ClapErrorKind;
use clap::{Args, Parser, Subcommand};
use troupe::types::{lua_definitions, markdown, shared_definitions};
use troupe::{
    Change, Class, ClassSet, Engine, EngineFactory, Error, ErrorKind, FileSource, Fs, HostModule,
    Http, Kv, Limits, LuaEngine, MemorySource, ModuleRegistry, Policy, Runtime, Source, Spawn,
    Value,
};

use crate::source_url::{SourceSpec, SourceUrlParser};

/// Exit code of a failed script or runtime error.
const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error (clap's convention).
const EXIT_USAGE: u8 = 2;

/// Runs sandboxed scripts as lightweight processes.
#[derive(Parser, Debug)]
#[command(name = "troupe", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a script as a process and prints its result as JSON.
    Run(RunArgs),
    /// Runs a node of a cluster until interrupted (SIGINT or SIGTERM):
    /// FILE runs as its first process (the services it offers; its
    /// result is printed when it ends), and other nodes' processes send
    /// to it and spawn on it within the policy flags. Takes `run`'s flags;
    /// --cluster and --node are required.
    #[cfg(feature = "cluster")]
    Node(RunArgs),
    /// Writes lua-language-server definition files (one per module the
    /// policy allows, plus `troupe.lua`) so editors and `emmylua_check`
    /// autocomplete and type-check scripts.
    Types(TypesArgs),
    /// Prints a Markdown reference of every module.
    Docs,
    /// Evaluates an expression (or a Lua chunk) and prints its value as JSON.
    Eval(EvalArgs),
    /// Durable workflows: run, resume, replay, show, list, delete.
    Workflow(workflow_cli::WorkflowArgs),
    /// Lists the live processes of a runtime serving a dashboard
    /// (`troupe run --dashboard ADDR`).
    Ps(dashboard_cli::PsArgs),
    /// A live terminal view of a runtime serving a dashboard: totals,
    /// rates, the busiest commands and the processes (one plain-text frame
    /// when stdout is not a terminal).
    Top(top::TopArgs),
    /// Runs the side-by-side benchmark (Erlang/OTP when `erl` is installed,
    /// raw mlua, Troupe) and prints one Markdown table with the ratios.
    Bench(troupe_bench::BenchArgs),
}

/// What a subcommand prints on success.
enum Output {
    /// A script result, printed as one line of JSON.
    Json(Value),
    /// Text, printed as is.
    Text(String),
}

impl Command {
    /// Executes the subcommand and returns what to print.
    fn execute(self) -> Result<Output, Error> {
        match self {
            Command::Run(args) => run(args, Stay::Run).map(Output::Json),
            #[cfg(feature = "cluster")]
            Command::Node(args) => run(args, Stay::Node).map(|_| Output::Text(String::new())),
            Command::Types(args) => write_types(&args).map(Output::Text),
            Command::Docs => Ok(Output::Text(markdown(cli_modules().iter().map(|m| &**m)))),
            Command::Eval(args) => eval(args).map(Output::Json),
            Command::Workflow(args) => args.execute(),
            Command::Ps(args) => args.execute(),
            Command::Top(args) => args.execute(),
            Command::Bench(args) => {
                if args.cluster() && !cfg!(feature = "cluster") {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "`troupe bench --cluster` needs a troupe built with the `cluster` \
                         feature: cargo build --release --features cluster",
                    ));
                }
                let progress = progress::Progress::new("bench", args.steps());
                troupe_bench::bench(&args, &mut |n, what| progress.step(n, what)).map(Output::Text)
            }
        }
    }
}

/// The languages `troupe eval` takes: `expr` (the `expr` module's
/// language, always there) and every engine compiled in.
fn eval_langs() -> Vec<String> {
    let mut langs = vec!["expr".to_owned()];
    for name in EngineFactory::builtin().names() {
        if !langs.iter().any(|l| l == name) {
            langs.push(name.to_owned());
        }
    }
    langs
}

/// Checks `--lang` against [`eval_langs`].
fn parse_lang(s: &str) -> Result<String, String> {
    let langs = eval_langs();
    if langs.iter().any(|l| l == s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "unknown language (compiled in: {})",
            langs.join(", ")
        ))
    }
}

/// Arguments of `troupe eval`.
#[derive(Args, Debug)]
struct EvalArgs {
    /// The expression (or chunk) to evaluate.
    source: String,

    /// The language of SOURCE: expr, or an engine compiled in (lua, and
    /// with their features cel, evalexpr, starlark, js, python, …).
    #[arg(long, default_value = "expr", value_parser = parse_lang)]
    lang: String,

    /// A variable, `NAME=VALUE`; VALUE is JSON when it parses, otherwise a
    /// string (repeatable). Lua sees the variables as the table `...`; the
    /// other engines as globals.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,

    /// Limits of a Lua chunk (an expression needs none: it has no loops).
    #[command(flatten)]
    limits: LimitArgs,
}

/// `troupe eval`: evaluates SOURCE with the variables.
fn eval(args: EvalArgs) -> Result<Value, Error> {
    let mut vars = BTreeMap::new();
    for (i, var) in args.vars.iter().enumerate() {
        let (name, text) = var
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--var {var:?} must look like NAME=VALUE")))?;
        if name.is_empty() {
            return Err(Error::invalid(format!("--var {var:?} has no name")));
        }
        vars.insert(name.to_owned(), parse_arg(i + 1, text)?);
    }
    let factory = EngineFactory::builtin();
    match args.lang.as_str() {
        // The module, whether or not the `expr` engine is compiled in: one
        // language, one set of messages.
        "expr" => troupe_modules::builtin::expr::eval(&args.source, &vars),
        "lua" => {
            let rt = Runtime::builder()
                .workers(1)
                .source(MemorySource::new())
                .engine(LuaEngine::new())
                .build()?;
            let spawn = Spawn::script("eval.lua")
                .args([Value::Map(vars)])
                .policy(Policy::deterministic())
                .limits(args.limits.limits());
            let result = rt
                .spawn_code(spawn, args.source.as_bytes())
                .and_then(|h| h.join_blocking());
            rt.shutdown();
            result
        }
        lang if factory.names().contains(&lang) => {
            let mut engine = factory.create(lang)?;
            engine.init()?;
            engine.set_policy(
                Arc::new(Policy::deterministic()),
                Arc::new(ModuleRegistry::with_builtins()),
            )?;
            engine.set_limits(args.limits.limits())?;
            let globals = engine.as_globals()?;
            for (name, value) in vars {
                globals.set_global(&name, value)?;
            }
            let result = engine.as_executor()?.execute_string(&args.source);
            engine.close()?;
            result
        }
        other => Err(Error::invalid(format!("unknown language {other:?}"))),
    }
}

/// The modules the CLI's runtimes offer (what `types` and `docs` describe).
fn cli_modules() -> ModuleRegistry {
    let mut modules = ModuleRegistry::with_builtins();
    for io in troupe_io::definitions() {
        modules.insert(io);
    }
    for m in LuaEngine::new().modules() {
        modules.insert(m);
    }
    modules
}

/// The policy flags shared by `run` and `types`.
#[derive(Args, Debug)]
struct PolicyArgs {
    /// Module classes to allow, comma-separated, replacing the default
    /// (plugin preset + process); `all` allows everything.
    #[arg(long, value_name = "CLASS,…")]
    allow: Option<String>,

    /// Also allow this module by name (repeatable).
    #[arg(long = "allow-module", value_name = "MODULE")]
    allow_modules: Vec<String>,

    /// Deny this module by name; deny wins over any allow (repeatable).
    #[arg(long = "deny-module", value_name = "MODULE")]
    deny_modules: Vec<String>,
}

/// Arguments of `troupe types`.
#[derive(Args, Debug)]
struct TypesArgs {
    /// The directory to write the definition files to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    #[command(flatten)]
    policy: PolicyArgs,
}

/// `troupe types`: one `NAME.lua` per allowed module plus `troupe.lua`;
/// returns the list of files written, one per line.
fn write_types(args: &TypesArgs) -> Result<String, Error> {
    let policy = args.policy.policy()?;
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        Ok::<_, Error>(format!("{}\n", path.display()))
    };
    std::fs::create_dir_all(&args.out).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot create {}: {e}", args.out.display()),
        )
    })?;
    let mut written = write("troupe.lua", shared_definitions())?;
    for m in cli_modules().iter().filter(|m| policy.allows(m)) {
        written.push_str(&write(&format!("{}.lua", m.name()), lua_definitions(m))?);
    }
    Ok(written)
}

/// Arguments of `troupe run`.
#[derive(Args, Debug)]
struct RunArgs {
    /// The script to run; its directory is the source other scripts are
    /// spawned from. With --source, the script's key in that source.
    file: PathBuf,

    /// Spawn arguments (`...` in Lua): JSON when they parse as JSON,
    /// otherwise strings. An argument starting with `{` or `[` must be valid JSON.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,

    #[command(flatten)]
    policy: PolicyArgs,

    /// Scheduler worker threads (default: available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    dashboard: dashboard_cli::DashboardArgs,

    /// Directory of the persistent `kv` store (created if missing); also
    /// allows the `kv` module.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Directory the `fs` module is confined to; also allows the `fs` module.
    #[arg(long = "fs-root", value_name = "DIR")]
    fs_root: Option<PathBuf>,

    /// Rerun whenever a file under FILE's directory (or a script of a
    /// --source) changes (a run still going is killed); prints each run's
    /// result or error line. Runs until interrupted.
    #[arg(long)]
    watch: bool,

    /// Read FILE, and every script it spawns or imports, from this source
    /// instead of FILE's directory: file:///DIR, http(s)://…,
    /// etcd://HOST:PORT/PREFIX, redis://HOST:PORT/PREFIX[?db=N],
    /// sqlite:///PATH?table=T, postgres://HOST:PORT/DB?table=T,
    /// git+file:///REPO?ref=REF&path=DIR, zip:///PATH, tar+gz:///PATH.
    /// Repeatable: the first source that has a key wins. Passwords come
    /// from TROUPE_SOURCE_PASSWORD (or REDIS_PASSWORD, PGPASSWORD).
    #[arg(long = "source", value_name = "URL", value_parser = SourceUrlParser)]
    sources: Vec<SourceSpec>,

    /// Run the script as a lightweight process (a coroutine in a shared
    /// Lua state; cannot be combined with --max-memory). See "Process
    /// kinds" in docs/sandbox.md.
    #[arg(long)]
    lightweight: bool,

    #[cfg(feature = "cluster")]
    #[command(flatten)]
    cluster: cluster_cli::ClusterArgs,
}

impl PolicyArgs {
    /// The sandbox policy: plugin + process by default; `--allow` replaces
    /// the classes; the module allow and deny lists apply on top.
    fn policy(&self) -> Result<Policy, Error> {
        let base = match self.allow.as_deref() {
            None => Policy::plugin().allow_class(Class::Process),
            Some(list) => {
                let classes = ClassSet::parse_list(list)?;
                if classes == ClassSet::all() {
                    Policy::trusted()
                } else {
                    Policy::deny_all().allow_classes(classes)
                }
            }
        };
        let allowed = self
            .allow_modules
            .iter()
            .fold(base, |p, m| p.allow_module(m.as_str()));
        Ok(self
            .deny_modules
            .iter()
            .fold(allowed, |p, m| p.deny_module(m.as_str())))
    }
}

impl RunArgs {
    /// The policy flags, plus the modules whose directory was granted
    /// (`--data` allows `kv`, `--fs-root` allows `fs`); a denied module
    /// stays denied.
    fn policy(&self) -> Result<Policy, Error> {
        let mut policy = self.policy.policy()?;
        if self.data.is_some() {
            policy = policy.allow_module("kv");
        }
        if self.fs_root.is_some() {
            policy = policy.allow_module("fs");
        }
        Ok(policy)
    }
}

/// The per-process limit flags of `run` and `eval`.
#[derive(Args, Debug)]
struct LimitArgs {
    /// Wall-clock limit, e.g. `10s`, `500ms`, `2m` (plain numbers are ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Memory limit of the process and every process it spawns, together,
    /// e.g. `10MB`, `512KiB`, `1GiB` (plain numbers are bytes; default:
    /// half the machine's memory, for the whole runtime).
    #[arg(long, value_name = "BYTES", value_parser = troupe_modules::parse_size)]
    max_memory: Option<NonZeroUsize>,

    /// The most processes the script and its descendants may have alive at
    /// once (default: the runtime's cap, one per 8 KiB of memory).
    #[arg(long, value_name = "N")]
    max_processes: Option<NonZeroUsize>,

    /// Total VM instruction limit of the process.
    #[arg(long, value_name = "N")]
    max_instructions: Option<NonZeroU64>,
}

impl LimitArgs {
    /// Per-process limits from the flags, defaults elsewhere.
    fn limits(&self) -> Limits {
        Limits {
            max_instructions: self.max_instructions,
            max_memory: self.max_memory,
            max_processes: self.max_processes,
            timeout: self.timeout,
            ..Limits::default()
        }
    }
}

/// How long a runtime the CLI starts stays up.
#[derive(Clone, Copy, PartialEq)]
enum Stay {
    /// Until FILE ends (`troupe run`).
    Run,
    /// Until interrupted, as a node of a cluster (`troupe node`).
    #[cfg(feature = "cluster")]
    Node,
}

/// `troupe run`: spawns FILE as a process, waits for its result, shuts
/// down. `troupe node`: the same, as a node of a cluster that stays up
/// until interrupted (`Value::Nil` then).
fn run(args: RunArgs, stay: Stay) -> Result<Value, Error> {
    let (source, key): (Arc<dyn Source>, String) = if args.sources.is_empty() {
        let (dir, key) = locate_script(&args.file)?;
        (Arc::new(FileSource::new(dir)), key)
    } else {
        (
            source_url::open_all(&args.sources, args.watch)?,
            source_url::key(&args.file)?,
        )
    };
    let spawn_args = args
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| parse_arg(i + 1, a))
        .collect::<Result<Vec<_>, _>>()?;
    let (policy, limits) = (args.policy()?, args.limits.limits());
    let mut spawn = Spawn::script(key)
        .args(spawn_args)
        .policy(policy.clone())
        .limits(limits);
    if args.lightweight {
        spawn = spawn.lightweight();
    }

    // The flags' policy and limits are also the defaults: what a process
    // another node of a cluster spawns here gets at most.
    let mut builder = Runtime::builder()
        .source(Arc::clone(&source))
        .default_policy(policy)
        .default_limits(limits)
        .hot_reload(args.watch);
    for engine in EngineFactory::builtin().process_engines() {
        builder = builder.engine(engine);
    }
    if let Some(n) = args.workers {
        builder = builder.workers(usize::from(n));
    }
    builder = builder.module(Http::new()?.module());
    if let Some(dir) = &args.data {
        builder = builder.module(Kv::open(dir)?.module());
    }
    if let Some(dir) = &args.fs_root {
        builder = builder.module(Fs::open(dir)?.module());
    }
    #[cfg(feature = "cluster")]
    if stay == Stay::Node && (args.cluster.is_empty() || args.watch) {
        return Err(Error::invalid(
            "troupe node needs --cluster URL and --node NAME, and takes no --watch",
        ));
    }
    #[cfg(feature = "cluster")]
    let cluster = args.cluster.join()?;
    #[cfg(feature = "cluster")]
    if let Some(c) = &cluster {
        builder = builder.cluster(c.clone());
    }
    let rt = builder.build()?;
    let _dashboard = args.dashboard.serve(&rt, None)?;
    if args.watch {
        return run_watching(&rt, &*source, &spawn);
    }
    let result = match stay {
        Stay::Run => rt.spawn(spawn).and_then(|handle| handle.join_blocking()),
        #[cfg(feature = "cluster")]
        Stay::Node => serve(&rt, spawn).map(|()| Value::Nil),
    };
    rt.shutdown();
    #[cfg(feature = "cluster")]
    if let Some(c) = cluster {
        c.leave();
    }
    result
}

/// `troupe run --watch`: runs `spawn`, prints its result (stdout) or error
/// line (stderr), and runs it again after every change the source reports
/// (hidden files such as editors' temporaries excepted); a run still going
/// when a change arrives is killed first. Returns only if the source
/// cannot be watched.
fn run_watching(rt: &Runtime, source: &dyn Source, spawn: &Spawn) -> Result<Value, Error> {
    let watch = source.watch("").map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot watch {}: {e}", source.name()),
        )
    })?;
    let relevant = |change: &Change| {
        change
            .key()
            .is_none_or(|k| !k.rsplit('/').next().unwrap_or(k).starts_with('.'))
    };
    loop {
        let finished = match rt.spawn(spawn.clone()) {
            Ok(h) => rt.io().block_on(async {
                loop {
                    tokio::select! {
                        result = h.join() => break Some(result),
                        change = watch.next() => match change {
                            Some(c) if relevant(&c) => {
                                h.kill();
                                break None;
                            }
                            Some(_) => {}
                            None => break Some(h.join().await),
                        },
                    }
                }
            }),
            Err(e) => Some(Err(e)),
        };
        if let Some(result) = finished {
            show(result);
            loop {
                match watch.recv() {
                    Some(c) if relevant(&c) => break,
                    Some(_) => {}
                    None => return Err(Error::new(ErrorKind::Unavailable, "the watch ended")),
                }
            }
        }
        // One rerun for a burst of changes.
        while watch.try_recv().is_some() {}
    }
}

/// Prints a run's result as a JSON line on stdout, or its error line on
/// stderr, and goes on.
fn show(result: Result<Value, Error>) {
    match result {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", value.to_json()).and_then(|()| out.flush());
        }
        Err(e) => report(&e),
    }
}

/// `troupe node`: runs `spawn` (its result or error line printed when it
/// ends) while the node serves the cluster, until SIGINT or SIGTERM.
#[cfg(feature = "cluster")]
fn serve(rt: &Runtime, spawn: Spawn) -> Result<(), Error> {
    let handle = rt.spawn(spawn)?;
    rt.io().block_on(async {
        tokio::select! {
            result = handle.join() => {
                show(result);
                interrupted().await;
            }
            () = interrupted() => {}
        }
    });
    Ok(())
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
#[cfg(feature = "cluster")]
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; stop the node with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Splits FILE into the directory that becomes the script source and the
/// script's key (its file name). A missing file is `NOT_FOUND`.
fn locate_script(file: &Path) -> Result<(PathBuf, String), Error> {
    let shown = file.display();
    let real = std::fs::canonicalize(file)
        .map_err(|e| Error::not_found(format!("cannot open script {shown}: {e}")))?;
    if !real.is_file() {
        return Err(Error::not_found(format!("{shown} is not a file")));
    }
    let key = real
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("script name {shown} is not valid UTF-8")))?
        .to_owned();
    let dir = real
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Ok((dir, key))
}

/// Parses the `n`th (1-based) command-line argument: JSON when it parses,
/// otherwise the string itself. Text that starts like a JSON object or array
/// must be valid JSON, so a typo there is reported instead of silently
/// becoming a string.
fn parse_arg(n: usize, text: &str) -> Result<Value, Error> {
    match Value::from_json(text) {
        Ok(v) => Ok(v),
        Err(e) if text.trim_start().starts_with(['{', '[']) => {
            let why = e
                .message()
                .strip_prefix("bad JSON: ")
                .unwrap_or(e.message());
            Err(Error::invalid(format!(
                "argument {n} is not valid JSON: {why}"
            )))
        }
        Err(_) => Ok(Value::String(text.to_owned())),
    }
}

/// Parses a duration flag: `10s`, `500ms`, `1.5s`, `2m`; a plain number is ms.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let ms = troupe_modules::builtin::parse_duration_ms(&Value::String(text.to_owned()))
        .map_err(|e| e.message().to_owned())?;
    if ms <= 0.0 {
        return Err("must be greater than zero".to_owned());
    }
    Duration::try_from_secs_f64(ms / 1e3).map_err(|e| e.to_string())
}

/// Logs to stderr, filtered by `RUST_LOG` (default: `warn`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only if a subscriber is already set, which cannot happen here.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The first non-empty line of `text`, trimmed.
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// The first paragraph of `text` (up to the first blank line) as one line.
fn first_paragraph(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

/// Prints `err` as the single line `KIND: message`. A multi-line message (a
/// traceback) is cut to its first line; the whole error is logged at debug
/// level (`RUST_LOG=debug`).
fn report(err: &Error) {
    tracing::debug!(target: "troupe::cli", "{err}");
    eprintln!("{}: {}", err.kind(), first_line(err.message()));
}

/// Handles a command-line parse failure: help and version are printed as
/// usual; a usage error becomes one line `INVALID: …` and exit code 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ClapErrorKind::DisplayHelp
        | ClapErrorKind::DisplayVersion
        | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Printing help only fails when stdout/stderr is closed.
            let _ = err.print();
            ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 })
        }
        _ => {
            let rendered = err.render().to_string();
            let paragraph = first_paragraph(&rendered);
            let line = paragraph.strip_prefix("error: ").unwrap_or(&paragraph);
            eprintln!("INVALID: {line} (see 'troupe --help')");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing();
    match cli.command.execute() {
        Ok(output) => {
            let mut out = std::io::stdout().lock();
            let written = match output {
                Output::Json(value) => writeln!(out, "{}", value.to_json()),
                // Every text ends its last line, whatever made it.
                Output::Text(text) if text.ends_with('\n') || text.is_empty() => {
                    write!(out, "{text}")
                }
                Output::Text(text) => writeln!(out, "{text}"),
            };
            // A closed stdout (`troupe run x.lua | head -0`) is not worth a panic.
            if written.and_then(|()| out.flush()).is_err() {
                return ExitCode::from(EXIT_FAILURE);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1e300s").is_err());
    }

    #[test]
    fn eval_takes_expr_and_every_compiled_in_engine() {
        let langs = eval_langs();
        for lang in ["expr", "lua"] {
            assert!(langs.iter().any(|l| l == lang), "{lang}");
        }
        for name in EngineFactory::builtin().names() {
            assert_eq!(parse_lang(name), Ok(name.to_owned()));
        }
        assert!(parse_lang("cobol").is_err());
    }

    #[test]
    fn args_are_json_or_strings() {
        assert_eq!(parse_arg(1, "42"), Ok(Value::Int(42)));
        assert_eq!(parse_arg(1, "hello"), Ok(Value::String("hello".into())));
        assert_eq!(
            parse_arg(1, "\"quoted\""),
            Ok(Value::String("quoted".into()))
        );
        assert!(matches!(parse_arg(1, "[1, 2]"), Ok(Value::Array(a)) if a.len() == 2));
        let err = parse_arg(2, "{\"a\":").unwrap_err();
        assert_eq!(err.kind(), troupe::ErrorKind::Invalid);
        assert!(err.message().starts_with("argument 2"));
    }

    #[test]
    fn policy_flags() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Run(a),
            }) => a,
            Ok(other) => panic!("not a run: {other:?}"),
            Err(e) => panic!("{e}"),
        };
        let a = parse(&["troupe", "run", "x.lua"]);
        let p = a.policy.policy().unwrap();
        assert!(p.classes().contains(Class::Process) && p.classes().contains(Class::Time));
        let a = parse(&["troupe", "run", "x.lua", "--allow", "deterministic"]);
        assert!(!a.policy.policy().unwrap().classes().contains(Class::Time));
        let a = parse(&["troupe", "run", "x.lua", "--allow", "all"]);
        assert_eq!(a.policy.policy().unwrap().classes(), ClassSet::all());
        let a = parse(&["troupe", "run", "x.lua", "--allow", "bogus"]);
        assert_eq!(
            a.policy.policy().unwrap_err().kind(),
            troupe::ErrorKind::Invalid
        );
        let a = parse(&["troupe", "run", "x.lua", "-3", "x", "--timeout", "1s"]);
        assert_eq!(a.args, ["-3", "x"]);
        assert_eq!(a.limits.timeout, Some(Duration::from_secs(1)));
        assert!(Cli::try_parse_from(["troupe", "eval", "1", "--lang", "cobol"]).is_err());
    }
}
