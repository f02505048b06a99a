//! Races completions against yields: a process yields an async command whose
//! handler completes at once on an IO thread, so the completion often lands
//! while the worker is still finishing the step that yielded. A lost wake-up
//! would hang the process; the join below would then never return.

use std::sync::Arc;
use std::time::Duration;

use troupe_dispatcher::{Call, Command, CommandId, Error, Value};
use troupe_modules::ModuleDef;
use troupe_runtime::{Engine, Process, ProcessInit, Program, Resume, Runtime, Spawn, Step, StepCx};
use troupe_sources::{MemorySource, Script};

/// The command the test engine's processes yield, answered by an async
/// handler on the IO pool.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Ping;

impl Command for Ping {
    const ID: CommandId = CommandId(5000);
    const NAME: &'static str = "test.ping";
    type Output = i64;
}

/// Yields `left` async commands, then finishes with how many it got back.
struct Pinger {
    left: u64,
    got: u64,
}

impl Process for Pinger {
    fn step(&mut self, _cx: &mut StepCx<'_>, input: Resume) -> Step {
        if let Resume::Return(r) = input {
            match r {
                Ok(Value::Int(1)) => self.got += 1,
                other => return Step::Failed(Error::internal(format!("bad completion {other:?}"))),
            }
        }
        if self.left == 0 {
            return Step::Done(Value::from(self.got));
        }
        self.left -= 1;
        Step::Yield(Call::typed(Ping))
    }
}

/// An engine for `.ping` scripts whose text is the number of pings.
struct PingEngine;

impl Engine for PingEngine {
    fn name(&self) -> &str {
        "ping"
    }
    fn extensions(&self) -> &[&str] {
        &["ping"]
    }
    fn compile(&self, script: &Script) -> Result<Program, Error> {
        let n: u64 = std::str::from_utf8(&script.code)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::invalid("not a number"))?;
        Ok(Arc::new(n))
    }
    fn instantiate(
        &self,
        program: &Program,
        _init: ProcessInit,
    ) -> Result<Box<dyn Process>, Error> {
        let n = *program
            .downcast_ref::<u64>()
            .ok_or_else(|| Error::internal("wrong program"))?;
        Ok(Box::new(Pinger { left: n, got: 0 }))
    }
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(
            MemorySource::new()
                .with("a.ping", "50000")
                .with("b.ping", "50000"),
        )
        .engine(PingEngine)
        .module(ModuleDef::new("test").handle_async(|_, Ping| async { Ok(1) }))
        .build()
        .expect("runtime builds")
}

#[test]
fn a_completion_racing_a_yield_is_never_lost() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let a = rt.spawn(Spawn::script("a.ping")).unwrap();
        let b = rt.spawn(Spawn::script("b.ping")).unwrap();
        // 100,000 yield/completion races in total; a lost wake-up hangs here.
        let joined = rt.io().block_on(async {
            tokio::time::timeout(Duration::from_secs(300), async {
                (a.join().await, b.join().await)
            })
            .await
        });
        let (ra, rb) = joined.expect("no lost wake-up");
        assert_eq!(ra.unwrap(), Value::Int(50_000));
        assert_eq!(rb.unwrap(), Value::Int(50_000));
        rt.shutdown();
    }
}

#[test]
fn unknown_engine_and_missing_script_are_typed_errors() {
    let rt = runtime(1);
    let e = rt.spawn(Spawn::script("x.unknown")).err().unwrap();
    assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::NotFound);
    let e = rt.spawn(Spawn::script("missing.ping")).err().unwrap();
    assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::NotFound);
    let e = rt.spawn(Spawn::script("../a.ping")).err().unwrap();
    assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::Invalid);
}
