//! Host modules with async functions: the handler is registered with the
//! module, a clash of command ids is refused at build time, and a slow
//! handler does not hold a worker.

use std::time::Duration;

use troupe::{
    Class, CommandId, ErrorKind, LuaEngine, MemorySource, ModuleDef, Runtime, Spawn, Value,
};

fn slow_module(name: &str, id: CommandId) -> ModuleDef {
    ModuleDef::new(name)
        .class(Class::Deterministic)
        .async_function("wait", id, |_pid, args| async move {
            let ms = args.int(0)?;
            tokio::time::sleep(Duration::from_millis(ms.unsigned_abs())).await;
            Ok(Value::Int(ms))
        })
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
        .module(slow_module("slow", CommandId(6000)))
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
        .module(slow_module("a", CommandId(6001)))
        .module(slow_module("b", CommandId(6001)))
        .build()
        .err()
        .expect("the build fails");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}
