//! Host modules with async functions: the handler is registered with the
//! module, a clash of command ids is refused at build time, and a slow
//! handler does not hold a worker.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe::{
    Class, Command, CommandId, ErrorKind, LuaEngine, MemorySource, ModuleCommand, ModuleDef,
    Runtime, Spawn, Value,
};

/// `slow.wait(ms)`: answered after `ms`.
#[derive(Clone, Serialize, Deserialize)]
struct Wait {
    ms: u64,
}

impl Command for Wait {
    const ID: CommandId = CommandId(6000);
    const NAME: &'static str = "slow.wait";
    type Output = u64;
}

impl ModuleCommand for Wait {}

/// A module whose `wait` is answered by an async handler.
fn slow_module(name: &str) -> ModuleDef {
    ModuleDef::new(name)
        .class(Class::Deterministic)
        .async_command(
            "wait",
            |_cx, (ms,): (i64,)| {
                Ok(Wait {
                    ms: ms.unsigned_abs(),
                })
            },
            |_pid, w: Wait| async move {
                tokio::time::sleep(Duration::from_millis(w.ms)).await;
                Ok(w.ms)
            },
        )
}

#[test]
fn async_functions_resume_scripts_without_holding_a_worker() {
    let src = MemorySource::new()
        .with("slow.lua", "return require('slow').wait(200)")
        .with("quick.lua", "return 'quick'");
    let rt = Runtime::builder()
        .workers(1)
        .source(src)
        .engine(LuaEngine::new())
        .module(slow_module("slow"))
        .build()
        .unwrap();
    let inbox = rt.mailbox();
    let slow = rt.spawn(Spawn::script("slow.lua")).unwrap();
    slow.monitor(&inbox).unwrap();
    // With one worker, quick can finish only if slow's pending call does
    // not occupy it; quick's DOWN then arrives before slow's.
    let quick = rt.spawn(Spawn::script("quick.lua")).unwrap();
    quick.monitor(&inbox).unwrap();
    let first = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), inbox.recv_topic("DOWN"))
            .await
            .expect("a DOWN")
    });
    assert_eq!(first.from, Some(quick.pid()));
    assert_eq!(slow.join_blocking().unwrap(), Value::Int(200));
    rt.shutdown();
}

#[test]
fn a_command_id_taken_twice_fails_the_build() {
    let e = Runtime::builder()
        .engine(LuaEngine::new())
        .module(slow_module("a"))
        .module(slow_module("b"))
        .build()
        .err()
        .expect("the build fails");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}
