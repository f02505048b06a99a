//! The sandbox holds: an adversarial corpus of escape attempts
//! (`tests/sandbox/*.lua`, one attempt per file, its first line naming the
//! expected outcome, and a second line the lightweight one where it
//! differs) run as an isolated and as a lightweight process, each
//! beside sibling processes of the same kind that must stay unaffected;
//! preemption of spinning processes; isolation between processes that reuse
//! a pooled Lua state; policy validation and no escalation on spawn.

mod corpus;

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

use troupe::{
    Class, ErrorKind, FileSource, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value,
};

/// The two kinds of process the corpus runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A Lua state of its own, from the pool.
    Isolated,
    /// A coroutine in a Lua state shared with other lightweight processes.
    Lightweight,
}

/// The memory every attacker may use: its own state's limit when isolated,
/// the shared state's (all its processes together) when lightweight.
const ATTACKER_MEMORY: usize = 16 << 20;

impl Kind {
    /// `spawn` as a process of this kind.
    fn spawn(self, spawn: Spawn) -> Spawn {
        match self {
            Kind::Isolated => spawn,
            Kind::Lightweight => spawn.lightweight(),
        }
    }

    /// Limits every attacker gets, so each attempt ends. A lightweight
    /// process has no memory limit of its own: its shared state has one
    /// (see [`Kind::engine`]).
    fn limits(self) -> Limits {
        Limits {
            max_instructions: NonZeroU64::new(20_000_000),
            max_memory: match self {
                Kind::Isolated => NonZeroUsize::new(ATTACKER_MEMORY),
                Kind::Lightweight => None,
            },
            max_processes: NonZeroUsize::new(100),
            timeout: Some(Duration::from_secs(3)),
            ..Limits::default()
        }
    }

    /// The engine, silent, with the shared states' memory capped.
    fn engine(self) -> LuaEngine {
        let engine = LuaEngine::with_output(|_| {});
        match (self, NonZeroUsize::new(ATTACKER_MEMORY)) {
            (Kind::Lightweight, Some(cap)) => engine.lightweight_state_memory(cap),
            _ => engine,
        }
    }

    /// How many processes of this kind, spawned one after another, reach
    /// every state an attacker may share: its own for an isolated process;
    /// every one of `engine`'s shared states (placed round robin) for a
    /// lightweight one.
    fn neighbours(self, engine: &LuaEngine) -> usize {
        match self {
            Kind::Isolated => 1,
            Kind::Lightweight => engine.lightweight_states(),
        }
    }
}

/// The byte cap of every mailbox in the corpus's runtime: a flood into
/// mailboxes no memory limit covers waits there.
const MAILBOX_BYTES: NonZeroUsize = NonZeroUsize::new(4 << 20).expect("nonzero");

/// The policy attackers run under: the plugin preset plus processes and
/// `eval_runner`; the host's `vault` module (class io) stays out of reach.
fn attacker_policy() -> Policy {
    Policy::plugin()
        .allow_class(Class::Process)
        .allow_module("eval_runner")
}

/// Runs concurrently with each attacker: sleeps, computes, messages itself.
const SIBLING: &str = r#"
    local time, json, process = require("time"), require("json"), require("process")
    local sum = 0
    for i = 1, 5 do
        time.sleep(1)
        for j = 1, 1000 do sum = sum + j end
        process.send(process.pid(), "tick", {i = i})
        sum = sum + process.receive("tick").payload.i
    end
    return json.encode({sum = sum, upper = ("ok"):upper()})
"#;

/// Runs after each attacker, on the state the attacker gave back to the
/// pool (one worker, so the pool hands it out again) or shared: nothing
/// the attacker did may be visible.
const PROBE: &str = r#"
    local json = require("json")
    assert(leak == nil and rawget(_G, "leak") == nil, "a global leaked")
    assert(getmetatable(_G) == nil, "a metatable on _G leaked")
    assert(getmetatable("") == "locked", "string metatable exposed")
    assert(("abc"):upper() == "ABC" and string.format("%d", 7) == "7", "string library changed")
    assert(math.floor(1.5) == 1, "math changed")
    assert(json.encode({1}) == "[1]", "json changed")
    assert(debug == nil and os == nil and io == nil and package == nil, "dangerous globals")
    assert(type(print) == "function" and type(pcall) == "function", "base library changed")
    local ok, err = pcall(require, "vault")
    assert(not ok and err:kind() == "PERMISSION_DENIED", "vault reachable")
    return "pristine"
"#;

/// True for running out of memory (an exceeded memory limit).
fn out_of_memory(e: &troupe::Error) -> bool {
    e.kind() == ErrorKind::LimitExceeded && e.message().contains("memory")
}

/// Runs every case of the corpus as a process of `kind`, each beside
/// siblings of the same kind in every state it may share, then probes
/// those states.
fn run_corpus(kind: Kind) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox");
    let cases = corpus::attempts(&dir, "lua", "--");
    assert!(cases.len() >= 40, "only {} cases", cases.len());

    let engine = kind.engine();
    let neighbours = kind.neighbours(&engine);
    let rt = Runtime::builder()
        .workers(1)
        .source(FileSource::new(&dir))
        .engine(engine)
        .module(corpus::vault())
        .default_policy(attacker_policy())
        .mailbox_bytes(MAILBOX_BYTES)
        .build()
        .expect("runtime builds");
    let mut failures = Vec::new();
    for corpus::Attempt {
        name,
        code,
        expected,
    } in &cases
    {
        let name = name.as_str();
        // A lightweight attacker has no memory limit of its own, so what
        // a memory limit stops may be stopped by something else there
        // (`-- expect lightweight: KIND` on the second line).
        let expected = match (kind, code.lines().nth(1)) {
            (Kind::Lightweight, Some(l)) => l
                .strip_prefix("-- expect lightweight: ")
                .map_or(expected.clone(), |k| k.trim().to_owned()),
            _ => expected.clone(),
        };

        let siblings: Vec<_> = (0..neighbours)
            .map(|_| {
                rt.spawn_code(kind.spawn(Spawn::script("sibling.lua")), SIBLING)
                    .expect("sibling spawns")
            })
            .collect();
        let attacker = rt
            .spawn(kind.spawn(Spawn::script(name).limits(kind.limits())))
            .expect("attacker spawns");
        let outcome = attacker.join_blocking();
        // What it spawned goes with it (a fork bomb's copies outlive it).
        attacker.kill_tree();
        let got = match &outcome {
            Ok(Value::String(s)) if s == "contained" => "contained".to_owned(),
            Ok(v) => format!("ESCAPED with {}", v.to_json()),
            Err(e) => e.kind().as_str().to_owned(),
        };
        if got != expected {
            failures.push(format!(
                "{kind:?} {name}: expected {expected}, got {got} ({outcome:?})"
            ));
        }
        for sibling in siblings {
            match sibling.join_blocking() {
                Ok(v) if v == Value::from(r#"{"sum":2502515,"upper":"OK"}"#) => {}
                // Memory is the shared state's: an attacker filling it may
                // make a neighbour's allocation the one that fails (the
                // documented blast radius of a lightweight process).
                Err(e)
                    if kind == Kind::Lightweight
                        && out_of_memory(&e)
                        && outcome.as_ref().is_err_and(out_of_memory) => {}
                other => failures.push(format!("{kind:?} {name}: sibling affected: {other:?}")),
            }
        }
        for _ in 0..neighbours {
            let probe = rt
                .spawn_code(kind.spawn(Spawn::script("probe.lua")), PROBE)
                .and_then(|h| h.join_blocking());
            if probe != Ok(Value::from("pristine")) {
                failures.push(format!("{kind:?} {name}: next process affected: {probe:?}"));
            }
        }
    }
    assert_eq!(rt.process_count(), 0);
    rt.shutdown();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_escape_attempt_in_the_corpus_fails_and_siblings_are_unaffected() {
    run_corpus(Kind::Isolated);
}

#[test]
fn every_escape_attempt_fails_as_a_lightweight_process_too() {
    run_corpus(Kind::Lightweight);
}

fn runtime(src: MemorySource, workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(src)
        .engine(LuaEngine::new())
        .module(corpus::vault())
        .default_policy(attacker_policy())
        .build()
        .expect("runtime builds")
}

#[test]
fn spinners_share_one_worker_with_a_sleeper_that_replies() {
    let src = MemorySource::new()
        .with("spin.lua", "while true do end")
        .with(
            "spin_pcall.lua",
            "while true do pcall(function() local n = 0 while true do n = n + 1 end end) end",
        )
        .with(
            "spin_coroutine.lua",
            "coroutine.wrap(function() while true do end end)()",
        )
        .with(
            "spin_metamethod.lua",
            "local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
        )
        .with(
            "sleeper.lua",
            r#"local process = require("process")
               local parent = ...
               require("time").sleep(10)
               process.send(parent, "reply", "slept")"#,
        )
        .with(
            "main.lua",
            r#"local process = require("process")
               process.spawn("sleeper.lua", nil, process.pid())
               return process.receive("reply", 10000).payload"#,
        );
    let rt = runtime(src, 1);
    let spinners: Vec<_> = [
        "spin.lua",
        "spin_pcall.lua",
        "spin_coroutine.lua",
        "spin_metamethod.lua",
    ]
    .into_iter()
    .map(|s| rt.spawn(Spawn::script(s)).expect("spinner spawns"))
    .collect();
    let main = rt.spawn(Spawn::script("main.lua")).expect("main spawns");
    assert_eq!(main.join_blocking(), Ok(Value::from("slept")));
    // The spinners were running all along and are still running now.
    assert_eq!(rt.process_count(), spinners.len());
    for s in &spinners {
        assert!(s.kill());
        assert_eq!(s.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    }
    rt.shutdown();
}

#[test]
fn processes_reusing_a_state_see_nothing_of_each_other() {
    let src = MemorySource::new()
        .with(
            "writer.lua",
            r#"secret = "mine"
               _G.shared = {1, 2, 3}
               local json = require("json")
               pcall(rawset, json, "encode", print)
               pcall(function() string.upper = nil end)
               setmetatable(_G, {__index = function(_, k) return "from writer: " .. k end})
               return "written""#,
        )
        .with(
            "reader.lua",
            r#"return {secret == nil, shared == nil, require("json").encode({1}), ("a"):upper(), getmetatable(_G) == nil}"#,
        );
    let rt = runtime(src, 1);
    for _ in 0..3 {
        let w = rt.spawn(Spawn::script("writer.lua")).unwrap();
        assert_eq!(w.join_blocking(), Ok(Value::from("written")));
        let r = rt.spawn(Spawn::script("reader.lua")).unwrap();
        assert_eq!(
            r.join_blocking(),
            Ok(Value::Array(vec![
                Value::Bool(true),
                Value::Bool(true),
                Value::from("[1]"),
                Value::from("A"),
                Value::Bool(true),
            ]))
        );
    }
    rt.shutdown();
}

#[test]
fn policies_naming_unknown_modules_are_invalid() {
    let rt = runtime(MemorySource::new().with("a.lua", "return 1"), 1);
    for policy in [
        Policy::plugin().allow_module("jsno"),
        Policy::plugin().deny_module("no_such_module"),
        Policy::plugin().only_modules(["json", "nope"]),
    ] {
        let e = rt.spawn(Spawn::script("a.lua").policy(policy)).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::Invalid));
    }
    let ok = rt.spawn(Spawn::script("a.lua").policy(Policy::plugin().allow_module("vault")));
    assert_eq!(ok.and_then(|h| h.join_blocking()), Ok(Value::Int(1)));
    rt.shutdown();
}

#[test]
fn a_child_gets_the_intersection_of_what_it_asks_and_its_parent_has() {
    let src = MemorySource::new()
        .with(
            "parent.lua",
            r#"local process = require("process")
               process.spawn("child.lua", {allow = {"deterministic", "encoding", "process", "io", "time"}}, process.pid())
               return process.receive("report", 5000).payload"#,
        )
        .with(
            "child.lua",
            r#"local process = require("process")
               local parent = ...
               local function can(m) return (pcall(require, m)) end
               process.send(parent, "report", {json = can("json"), vault = can("vault"), time = can("time"), rand = can("rand")})"#,
        );
    let rt = runtime(src, 1);
    // The parent has json (deterministic+encoding), process and time, but
    // neither io (vault) nor, here, nondeterministic (rand).
    let parent_policy = Policy::deterministic()
        .allow_class(Class::Process)
        .allow_class(Class::Time)
        .allow_class(Class::Nondeterministic)
        .deny_module("rand");
    let v = rt
        .spawn(Spawn::script("parent.lua").policy(parent_policy))
        .unwrap()
        .join_blocking()
        .unwrap();
    let got = |k: &str| v.get(k).cloned();
    assert_eq!(got("json"), Some(Value::Bool(true)), "{v:?}");
    assert_eq!(
        got("vault"),
        Some(Value::Bool(false)),
        "io is not the parent's"
    );
    assert_eq!(
        got("time"),
        Some(Value::Bool(false)),
        "time is also nondeterministic, which the child did not ask for"
    );
    assert_eq!(
        got("rand"),
        Some(Value::Bool(false)),
        "denied to the parent"
    );
    rt.shutdown();
}
