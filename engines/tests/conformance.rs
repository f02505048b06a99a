//! The engine conformance suite: ONE table of cases ([`CASES`]) run for
//! every compiled-in engine ([`ENGINES`]), as processes through a `Runtime`
//! and, where the case applies, through the engine's [`ScriptEngine`].
//!
//! Adding an engine: one line in [`ENGINES`] and a file
//! `conformance/<lang>.rs` with `pub fn case(name: &str) -> Option<&'static str>`
//! giving the script for each case (`None`: the language cannot express it,
//! with the reason in a comment there). Every script's contract is written
//! beside its case below.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::{EngineFactory, ScriptEngine};
use troupe_modules::{ModuleRegistry, Policy};
use troupe_runtime::{Limits, Runtime, Spawn};
use troupe_sources::MemorySource;

/// Lets the Python and TCL engines enforce `max_memory` (see
/// `CountingAllocator`).
#[cfg(feature = "python")]
#[global_allocator]
static ALLOC: troupe_engines::python::CountingAllocator = troupe_engines::python::CountingAllocator;

/// Lets the TCL engine enforce `max_memory` (see `CountingAllocator`).
#[cfg(all(feature = "tcl", not(feature = "python")))]
#[global_allocator]
static ALLOC: troupe_engines::tcl::CountingAllocator = troupe_engines::tcl::CountingAllocator;

#[cfg(feature = "cel")]
#[path = "conformance/cel.rs"]
mod cel;
#[cfg(feature = "evalexpr")]
#[path = "conformance/evalexpr.rs"]
mod evalexpr;
#[cfg(feature = "expr")]
#[path = "conformance/expr.rs"]
mod expr;
#[cfg(feature = "js")]
#[path = "conformance/js.rs"]
mod js;
#[cfg(feature = "lua")]
#[path = "conformance/lua.rs"]
mod lua;
#[cfg(feature = "python")]
#[path = "conformance/python.rs"]
mod python;
#[cfg(feature = "starlark")]
#[path = "conformance/starlark.rs"]
mod starlark;
#[cfg(feature = "tcl")]
#[path = "conformance/tcl.rs"]
mod tcl;
#[cfg(feature = "wasm")]
#[path = "conformance/wasm.rs"]
mod wasm;

/// An engine under test: its factory name, its scripts, and how many
/// processes the `sleep` case puts to sleep at once.
struct Lang {
    name: &'static str,
    case: fn(&str) -> Option<&'static str>,
    sleepers: usize,
}

/// Every compiled-in engine: one line each.
const ENGINES: &[Lang] = &[
    #[cfg(feature = "lua")]
    Lang {
        name: "lua",
        case: lua::case,
        sleepers: 1_000,
    },
    #[cfg(feature = "js")]
    Lang {
        name: "js",
        case: js::case,
        sleepers: 10_000,
    },
    #[cfg(feature = "wasm")]
    Lang {
        name: "wasm",
        case: wasm::case,
        sleepers: 1_000,
    },
    #[cfg(feature = "python")]
    Lang {
        name: "python",
        case: python::case,
        sleepers: 100,
    },
    #[cfg(feature = "cel")]
    Lang {
        name: "cel",
        case: cel::case,
        sleepers: 0,
    },
    #[cfg(feature = "expr")]
    Lang {
        name: "expr",
        case: expr::case,
        sleepers: 0,
    },
    #[cfg(feature = "evalexpr")]
    Lang {
        name: "evalexpr",
        case: evalexpr::case,
        sleepers: 0,
    },
    #[cfg(feature = "starlark")]
    Lang {
        name: "starlark",
        case: starlark::case,
        sleepers: 0,
    },
    #[cfg(feature = "tcl")]
    Lang {
        name: "tcl",
        case: tcl::case,
        sleepers: 0,
    },
];

/// One way of running a case: `Err` says what went wrong.
type Run = fn(&Ctx) -> Result<(), String>;

/// What a case checks, given the engine and its script for the case.
struct Case {
    name: &'static str,
    /// Runs the script as a process (through a `Runtime`).
    process: Run,
    /// Runs it through the engine's `ScriptEngine`, where that applies.
    interpreter: Option<Run>,
}

/// The cases. Each script's contract is in the comment above its row.
const CASES: &[Case] = &[
    // Returns the string "hello".
    Case {
        name: "hello",
        process: hello_process,
        interpreter: Some(hello_interpreter),
    },
    // Returns the sum of its two integer arguments.
    Case {
        name: "args_to_result",
        process: args_process,
        interpreter: None,
    },
    // Returns its first argument unchanged (run once per `Value` variant);
    // through the interpreter, globals round-trip every variant (no script).
    Case {
        name: "value_roundtrip",
        process: roundtrip_process,
        interpreter: Some(roundtrip_interpreter),
    },
    // Raises an error with the message "boom" on line 2.
    Case {
        name: "runtime_error",
        process: error_process,
        interpreter: Some(error_interpreter),
    },
    // Loads the module `no_such_module` (`NOT_FOUND`).
    Case {
        name: "unknown_module",
        process: unknown_process,
        interpreter: Some(unknown_interpreter),
    },
    // Loads the module `json` under a deny-all policy (`PERMISSION_DENIED`).
    Case {
        name: "denied_module",
        process: denied_process,
        interpreter: Some(denied_interpreter),
    },
    // Loops forever (`LIMIT_EXCEEDED` under an instruction limit).
    Case {
        name: "infinite_loop",
        process: loop_process,
        interpreter: Some(loop_interpreter),
    },
    // Allocates without bound (`LIMIT_EXCEEDED` under a memory limit).
    Case {
        name: "memory_bomb",
        process: bomb_process,
        interpreter: Some(bomb_interpreter),
    },
    // Receives one message and returns its payload (the host sends "ping").
    Case {
        name: "send_receive",
        process: send_receive_process,
        interpreter: None,
    },
    // Sleeps 10 ms with the `time` module, then returns "slept"; through the
    // interpreter the command fails `UNAVAILABLE` (it needs a process).
    Case {
        name: "sleep",
        process: sleep_process,
        interpreter: Some(sleep_interpreter),
    },
];

/// One engine's view of one case.
struct Ctx<'a> {
    lang: &'a Lang,
    factory: &'a EngineFactory,
    case: &'static str,
    code: &'static str,
}

impl Ctx<'_> {
    /// The script's key, with the engine's first extension.
    fn key(&self) -> String {
        let ext = self
            .factory
            .process_engine(self.lang.name)
            .and_then(|e| e.extensions().first().map(|x| (*x).to_owned()))
            .unwrap_or_default();
        format!("{}.{ext}", self.case)
    }

    /// A runtime with only this engine and the case's script.
    fn runtime(&self) -> Result<Runtime, String> {
        let engine = self
            .factory
            .process_engine(self.lang.name)
            .ok_or("no process engine")?;
        Runtime::builder()
            .workers(2)
            .source(MemorySource::new().with(&self.key(), self.code))
            .engine(engine)
            .build()
            .map_err(|e| format!("runtime: {e}"))
    }

    /// Spawns the script once with `args`, `policy` and `limits`; its result.
    fn spawn(
        &self,
        args: Vec<Value>,
        policy: Policy,
        limits: Limits,
    ) -> Result<Result<Value, Error>, String> {
        let rt = self.runtime()?;
        let h = rt
            .spawn(
                Spawn::script(self.key())
                    .args(args)
                    .policy(policy)
                    .limits(limits),
            )
            .map_err(|e| format!("spawn: {e}"))?;
        Ok(h.join_blocking())
    }

    /// A fresh interpreter with `policy` and `limits`.
    fn interpreter(&self, policy: Policy, limits: Limits) -> Result<Box<dyn ScriptEngine>, String> {
        let mut e = self
            .factory
            .create(self.lang.name)
            .map_err(|e| e.to_string())?;
        e.init().map_err(|e| format!("init: {e}"))?;
        e.set_policy(Arc::new(policy), Arc::new(ModuleRegistry::with_builtins()))
            .map_err(|e| format!("set_policy: {e}"))?;
        e.set_limits(limits)
            .map_err(|e| format!("set_limits: {e}"))?;
        Ok(e)
    }

    /// Runs the script in a fresh interpreter: loaded under its key and
    /// executed where the engine can load, else as a string.
    fn interpret(&self, policy: Policy, limits: Limits) -> Result<Result<Value, Error>, String> {
        let mut e = self.interpreter(policy, limits)?;
        let key = self.key();
        let loaded = match e.as_loader() {
            Ok(l) => Some(l.load_string(&key, self.code)),
            Err(_) => None,
        };
        let ex = e.as_executor().map_err(|e| e.to_string())?;
        Ok(match loaded {
            Some(Err(err)) => Err(err),
            Some(Ok(())) => ex.execute(&key),
            None => ex.execute_string(self.code),
        })
    }
}

fn expect_value(r: Result<Value, Error>, want: &Value) -> Result<(), String> {
    match r {
        Ok(v) if &v == want => Ok(()),
        Ok(v) => Err(format!("got {v:?}, want {want:?}")),
        Err(e) => Err(format!("failed: {e}, want {want:?}")),
    }
}

fn expect_kind(r: Result<Value, Error>, kind: ErrorKind) -> Result<Error, String> {
    match r {
        Err(e) if e.kind() == kind => Ok(e),
        Err(e) => Err(format!("got error {e}, want kind {kind:?}")),
        Ok(v) => Err(format!("got {v:?}, want an error of kind {kind:?}")),
    }
}

fn trusted() -> Policy {
    Policy::trusted()
}

fn instruction_limit() -> Limits {
    Limits {
        max_instructions: NonZeroU64::new(10_000_000),
        ..Limits::default()
    }
}

fn memory_limit() -> Limits {
    Limits {
        max_memory: NonZeroUsize::new(16 << 20),
        ..Limits::default()
    }
}

fn hello_process(c: &Ctx) -> Result<(), String> {
    expect_value(
        c.spawn(vec![], trusted(), Limits::default())?,
        &Value::from("hello"),
    )
}

fn hello_interpreter(c: &Ctx) -> Result<(), String> {
    expect_value(
        c.interpret(trusted(), Limits::default())?,
        &Value::from("hello"),
    )
}

fn args_process(c: &Ctx) -> Result<(), String> {
    let r = c.spawn(
        vec![Value::Int(40), Value::Int(2)],
        trusted(),
        Limits::default(),
    )?;
    expect_value(r, &Value::Int(42))
}

/// One value of every variant.
fn variants() -> Vec<Value> {
    vec![
        Value::Nil,
        Value::Bool(true),
        Value::Int(-7),
        Value::Float(2.5),
        Value::from("héllo"),
        Value::Bytes(vec![0xff, 0x00, 0xfe]),
        Value::Array(vec![Value::Int(1), Value::from("two"), Value::Float(3.5)]),
        Value::from_iter([
            ("a".to_owned(), Value::Int(1)),
            ("b".to_owned(), Value::Array(vec![Value::Bool(false)])),
        ]),
    ]
}

fn roundtrip_process(c: &Ctx) -> Result<(), String> {
    for v in variants() {
        let r = c.spawn(vec![v.clone()], trusted(), Limits::default())?;
        expect_value(r, &v).map_err(|e| format!("{}: {e}", v.type_name()))?;
    }
    Ok(())
}

fn roundtrip_interpreter(c: &Ctx) -> Result<(), String> {
    let mut e = c.interpreter(trusted(), Limits::default())?;
    let g = match e.as_globals() {
        Ok(g) => g,
        // An engine without globals (wasm: they hold only numbers).
        Err(err) if err.kind() == ErrorKind::Unavailable => return Ok(()),
        Err(err) => return Err(err.to_string()),
    };
    for v in variants() {
        g.set_global("v", v.clone()).map_err(|e| e.to_string())?;
        expect_value(g.get_global("v"), &v).map_err(|e| format!("{}: {e}", v.type_name()))?;
    }
    Ok(())
}

/// The error has a kind, says "boom" and names the script and line 2.
fn check_location(c: &Ctx, r: Result<Value, Error>) -> Result<(), String> {
    let e = match r {
        Ok(v) => return Err(format!("got {v:?}, want an error")),
        Err(e) => e,
    };
    let text = format!("{e} {:?}", e.details());
    let key = c.key();
    let located =
        text.contains(&format!("{key}:2")) || (text.contains(&key) && text.contains("line 2"));
    if e.kind() == ErrorKind::Unknown || !text.contains("boom") || !located {
        return Err(format!("want a kind, \"boom\" and {key} line 2 in: {text}"));
    }
    Ok(())
}

fn error_process(c: &Ctx) -> Result<(), String> {
    check_location(c, c.spawn(vec![], trusted(), Limits::default())?)
}

fn error_interpreter(c: &Ctx) -> Result<(), String> {
    check_location(c, c.interpret(trusted(), Limits::default())?)
}

fn unknown_process(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.spawn(vec![], trusted(), Limits::default())?,
        ErrorKind::NotFound,
    )
    .map(drop)
}

fn unknown_interpreter(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.interpret(trusted(), Limits::default())?,
        ErrorKind::NotFound,
    )
    .map(drop)
}

fn denied_process(c: &Ctx) -> Result<(), String> {
    let r = c.spawn(vec![], Policy::deny_all(), Limits::default())?;
    expect_kind(r, ErrorKind::PermissionDenied).map(drop)
}

fn denied_interpreter(c: &Ctx) -> Result<(), String> {
    let r = c.interpret(Policy::deny_all(), Limits::default())?;
    expect_kind(r, ErrorKind::PermissionDenied).map(drop)
}

fn loop_process(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.spawn(vec![], trusted(), instruction_limit())?,
        ErrorKind::LimitExceeded,
    )
    .map(drop)
}

fn loop_interpreter(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.interpret(trusted(), instruction_limit())?,
        ErrorKind::LimitExceeded,
    )
    .map(drop)
}

fn bomb_process(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.spawn(vec![], trusted(), memory_limit())?,
        ErrorKind::LimitExceeded,
    )
    .map(drop)
}

fn bomb_interpreter(c: &Ctx) -> Result<(), String> {
    expect_kind(
        c.interpret(trusted(), memory_limit())?,
        ErrorKind::LimitExceeded,
    )
    .map(drop)
}

fn send_receive_process(c: &Ctx) -> Result<(), String> {
    let rt = c.runtime()?;
    let h = rt
        .spawn(Spawn::script(c.key()).policy(trusted()))
        .map_err(|e| format!("spawn: {e}"))?;
    h.try_send("greeting", "ping")
        .map_err(|e| format!("send: {e}"))?;
    expect_value(h.join_blocking(), &Value::from("ping"))
}

fn sleep_process(c: &Ctx) -> Result<(), String> {
    let rt = c.runtime()?;
    let handles = (0..c.lang.sleepers)
        .map(|_| rt.spawn(Spawn::script(c.key()).policy(trusted())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("spawn: {e}"))?;
    // All are asleep at once: more sleepers than workers, so none may block one.
    for h in handles {
        expect_value(h.join_blocking(), &Value::from("slept"))?;
    }
    Ok(())
}

fn sleep_interpreter(c: &Ctx) -> Result<(), String> {
    let e = expect_kind(
        c.interpret(trusted(), Limits::default())?,
        ErrorKind::Unavailable,
    )?;
    match e.message().contains("commands need a process") {
        true => Ok(()),
        false => Err(format!("want \"commands need a process\", got {e}")),
    }
}

#[test]
fn every_engine_passes_every_case_it_can_express() {
    let factory = EngineFactory::builtin();
    let mut failures = Vec::new();
    let mut ran = 0;
    for lang in ENGINES {
        for case in CASES {
            let Some(code) = (lang.case)(case.name) else {
                println!("{} {}: not expressible, skipped", lang.name, case.name);
                continue;
            };
            let ctx = Ctx {
                lang,
                factory: &factory,
                case: case.name,
                code,
            };
            let mut runs: Vec<(&str, Run)> = vec![("process", case.process)];
            runs.extend(case.interpreter.map(|f| ("interpreter", f)));
            for (how, run) in runs {
                ran += 1;
                if let Err(e) = run(&ctx) {
                    failures.push(format!("{} {} ({how}): {e}", lang.name, case.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 0 || ENGINES.is_empty());
}

#[test]
fn snippet_tables_name_only_known_cases() {
    // A typo in a snippet file's case name would silently skip the case.
    for lang in ENGINES {
        let known = CASES
            .iter()
            .filter(|c| (lang.case)(c.name).is_some())
            .count();
        assert!(known > 0, "{} expresses no case", lang.name);
        assert!(
            (lang.case)("no_such_case").is_none(),
            "{} answers unknown cases",
            lang.name
        );
    }
}
