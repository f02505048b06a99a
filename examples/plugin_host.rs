//! A plugin host: loads every `*.lua` in a plugins directory as a process with
//! its own policy, gives the plugins a host-defined async `store` module
//! (`get`/`put` on a redb-backed [`Kv`], namespaced by policy rules), routes
//! events to them by message and prints their replies. A plugin that
//! misbehaves — `require("fs")` without the `io` class, a crash on bad input
//! — ends alone; the host reports it and keeps going.
//!
//! ```text
//! cargo run --release --example plugin_host [PLUGINS_DIR [DATA_DIR]]
//! ```
//!
//! Defaults: `examples/plugins`, and a fresh temporary data directory.
//!
//! The protocol: the host registers its mailbox as `host` and spawns each
//! plugin with its name as `...`. A plugin sends `subscribe` with the topics
//! it handles to `host`, then loops on `process.receive()`: each event is a
//! message on its topic with payload `{id, …}`, answered by a `reply`
//! message `{id, text}` to the sender; `stop` ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe::{
    CallError, Class, Command, CommandId, Error, ErrorKind, FileSource, FnCx, Fs, HostMailbox,
    HostModule, Kv, LuaEngine, Message, ModuleCommand, ModuleDef, Pid, Policy, ProcessHandle,
    RuleEffect, Runtime, Spawn, Value, value,
};

/// `store.get(key)`: the value, or nil.
#[derive(Clone, Serialize, Deserialize)]
struct Get {
    key: String,
}

impl Command for Get {
    const ID: CommandId = CommandId(5000);
    const NAME: &'static str = "store.get";
    type Output = Value;
}

impl ModuleCommand for Get {}

/// `store.put(key, value)`.
#[derive(Clone, Serialize, Deserialize)]
struct Put {
    key: String,
    value: Value,
}

impl Command for Put {
    const ID: CommandId = CommandId(5001);
    const NAME: &'static str = "store.put";
    type Output = bool;
}

impl ModuleCommand for Put {}

/// How long the host waits for a plugin before giving up on it.
const PATIENCE: Duration = Duration::from_secs(10);

/// The events the host routes, in order: `(topic, payload)`.
fn events() -> Vec<(&'static str, Value)> {
    vec![
        ("greet", value!({"name": "Ada"})),
        ("count", value!({"text": "the quick brown fox"})),
        ("greet", value!({"name": "Grace"})),
        ("greet", value!({"name": "Ada"})),
        ("dance", value!({"style": "tango"})),
        ("count", value!({"words": "no text field"})),
        ("count", value!({"text": "anyone left?"})),
    ]
}

/// The `store` module: a key-value store shared by all plugins, where each
/// plugin's policy confines it to keys under `NAME/`. The handlers run on
/// the runtime's IO pool, so a plugin waiting on the disk never holds a
/// worker.
struct Store(Kv);

/// Refuses `action` on `key` unless the plugin's policy allows it.
fn check(cx: &FnCx<'_>, action: &str, key: &str) -> Result<(), CallError> {
    if cx.is_allowed(action, key) {
        Ok(())
    } else {
        Err(CallError::Fail(Error::new(
            ErrorKind::PermissionDenied,
            format!("{action} on {key:?} is not this plugin's"),
        )))
    }
}

impl HostModule for Store {
    fn module(&self) -> ModuleDef {
        let (get, put) = (self.0.clone(), self.0.clone());
        ModuleDef::new("store")
            .describe("The plugin host's key-value store")
            .class(Class::Storage)
            .async_command(
                "get",
                |cx, (key,): (String,)| {
                    check(cx, "store.get", &key)?;
                    Ok(Get { key })
                },
                move |_pid, Get { key }| {
                    let kv = get.clone();
                    blocking(move || kv.get(&key).map(Option::unwrap_or_default))
                },
            )
            .async_command(
                "put",
                |cx, (key, value): (String, Value)| {
                    check(cx, "store.put", &key)?;
                    Ok(Put { key, value })
                },
                move |_pid, Put { key, value }| {
                    let kv = put.clone();
                    blocking(move || kv.put(&key, &value).map(|()| true))
                },
            )
    }
}

/// Runs redb work on a blocking thread of the IO pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("store task failed: {e}")))?
}

/// Each plugin's policy: the plugin preset plus messaging and the `store`
/// module, with store keys confined to `NAME/`. `journal` also gets `fs`,
/// for one file only.
fn policy_for(name: &str) -> Policy {
    let own = format!("{name}/**");
    let base = Policy::plugin()
        .allow_class(Class::Process)
        .allow_module("store")
        .rule("store.get", &own, RuleEffect::Allow)
        .rule("store.put", &own, RuleEffect::Allow);
    match name {
        "journal" => base
            .allow_module("fs")
            .rule("fs.read", "journal.log", RuleEffect::Allow)
            .rule("fs.write", "journal.log", RuleEffect::Allow),
        _ => base,
    }
}

/// A loaded plugin.
struct Plugin {
    name: String,
    handle: ProcessHandle,
    topics: BTreeSet<String>,
}

/// How a plugin that sent `DOWN` ended: its process result, which (unlike
/// the `DOWN` reason, `"noproc"` for one that ended before the monitor was
/// set) is always there.
async fn ending(plugin: &Plugin) -> String {
    match plugin.handle.join().await {
        Ok(v) => format!("ended with {}", v.to_json()),
        Err(e) => e.to_string().lines().next().unwrap_or_default().to_owned(),
    }
}

fn down_pid(msg: &Message) -> Option<Pid> {
    msg.payload.get("pid")?.as_str()?.parse().ok()
}

/// Waits for the next message, or `None` after [`PATIENCE`].
async fn next(mailbox: &HostMailbox) -> Option<Message> {
    tokio::time::timeout(PATIENCE, mailbox.recv()).await.ok()
}

/// Loads the plugins in `plugins`, routes [`events`] to them, stops them,
/// and reports each step through `emit`. `data` holds the store and the
/// files `journal` may write.
pub async fn run(plugins: &Path, data: &Path, emit: &mut dyn FnMut(String)) -> Result<(), Error> {
    let kv = Kv::open(data.join("store"))?;
    let files = data.join("files");
    std::fs::create_dir_all(&files)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", files.display())))?;
    std::fs::write(files.join("secrets.txt"), "the host's secret")
        .map_err(|e| Error::internal(format!("cannot write secrets.txt: {e}")))?;

    let builder = Runtime::builder()
        .workers(2)
        .source(FileSource::new(plugins))
        .engine(LuaEngine::new());
    let rt = builder
        .module(Store(kv.clone()).module())
        .module(Fs::open(&files)?.module())
        .build()?;
    let mailbox = rt.mailbox();
    mailbox.register("host")?;

    // Load: spawn every plugin, then wait for each to subscribe or end.
    let mut names: Vec<String> = std::fs::read_dir(plugins)
        .map_err(|e| Error::not_found(format!("cannot list {}: {e}", plugins.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    names.sort();
    let mut loading: BTreeMap<Pid, Plugin> = BTreeMap::new();
    for file in names {
        let name = file.trim_end_matches(".lua").to_owned();
        let handle = rt.spawn(
            Spawn::script(&file)
                .args([name.as_str()])
                .policy(policy_for(&name)),
        )?;
        mailbox.monitor(handle.pid())?;
        loading.insert(
            handle.pid(),
            Plugin {
                name,
                handle,
                topics: BTreeSet::new(),
            },
        );
    }
    let mut live: BTreeMap<String, Plugin> = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    while !loading.is_empty() {
        let Some(msg) = next(&mailbox).await else {
            for p in loading.values() {
                outcomes.insert(p.name.clone(), "did not subscribe in time".to_owned());
                p.handle.kill();
            }
            break;
        };
        let from = if msg.topic == "DOWN" {
            down_pid(&msg)
        } else {
            msg.from
        };
        let Some(mut plugin) = from.and_then(|pid| loading.remove(&pid)) else {
            continue;
        };
        if msg.topic == "subscribe" {
            let topics = msg.payload.as_array().unwrap_or_default();
            plugin.topics = topics
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            let list: Vec<&str> = plugin.topics.iter().map(String::as_str).collect();
            outcomes.insert(
                plugin.name.clone(),
                format!("loaded (topics: {})", list.join(", ")),
            );
            live.insert(plugin.name.clone(), plugin);
        } else {
            outcomes.insert(
                plugin.name.clone(),
                format!("failed to load: {}", ending(&plugin).await),
            );
        }
    }
    for (name, outcome) in &outcomes {
        emit(format!("{name}: {outcome}"));
    }

    // Route each event to the plugins subscribed to its topic; collect one
    // reply per plugin, or notice that it crashed.
    for (id, (topic, mut payload)) in events().into_iter().enumerate() {
        let id = id as i64 + 1;
        if let Value::Map(m) = &mut payload {
            m.insert("id".to_owned(), Value::Int(id));
        }
        emit(format!("event {id} {topic} {}", payload.to_json()));
        let targets: Vec<String> = live
            .values()
            .filter(|p| p.topics.contains(topic))
            .map(|p| p.name.clone())
            .collect();
        if targets.is_empty() {
            emit("  (no plugin handles it)".to_owned());
            continue;
        }
        let mut waiting: BTreeMap<Pid, String> = BTreeMap::new();
        for name in &targets {
            let pid = live[name].handle.pid();
            mailbox.try_send(pid, topic, payload.clone())?;
            waiting.insert(pid, name.clone());
        }
        let mut answers = BTreeMap::new();
        while !waiting.is_empty() {
            let Some(msg) = next(&mailbox).await else {
                for name in waiting.values() {
                    answers.insert(name.clone(), "no answer in time".to_owned());
                }
                break;
            };
            match msg.topic.as_str() {
                "reply" if msg.payload.get("id") == Some(&Value::Int(id)) => {
                    if let Some(name) = msg.from.and_then(|pid| waiting.remove(&pid)) {
                        let text = msg
                            .payload
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        answers.insert(name, text.to_owned());
                    }
                }
                "DOWN" => {
                    let gone = down_pid(&msg).and_then(|pid| waiting.remove(&pid));
                    if let Some(plugin) = gone.and_then(|name| live.remove(&name)) {
                        let why = ending(&plugin).await;
                        answers.insert(plugin.name, format!("crashed: {why}"));
                    }
                }
                _ => {}
            }
        }
        for (name, answer) in answers {
            emit(format!("  {name} -> {answer}"));
        }
    }

    // Stop the survivors and show what each returned.
    for plugin in live.values() {
        mailbox.try_send(plugin.handle.pid(), "stop", Value::Nil)?;
    }
    for (name, plugin) in &live {
        let result = tokio::time::timeout(PATIENCE, plugin.handle.join())
            .await
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Timeout, "did not stop in time")));
        match result {
            Ok(v) => emit(format!("{name} stopped: {}", v.to_json())),
            Err(e) => emit(format!("{name} failed to stop: {e}")),
        }
    }
    let journal = std::fs::read_to_string(files.join("journal.log")).unwrap_or_default();
    emit(format!("journal.log has {} lines", journal.lines().count()));
    drop(mailbox);
    rt.shutdown();
    kv.close();
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let plugins = args
        .next()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins"));
    let temp = tempfile::tempdir().map_err(|e| Error::internal(format!("temp dir: {e}")))?;
    let data = args.next().unwrap_or_else(|| temp.path().to_path_buf());
    run(&plugins, &data, &mut |line| println!("{line}")).await
}
