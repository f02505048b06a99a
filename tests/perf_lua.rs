//! Lua processes without an instruction limit run without an instruction
//! hook and are preempted by the engine's watchdog by time: their limits
//! still hold (the wall-clock limit of a CPU-bound loop, of a loop of short
//! commands, of a loop inside the script's own coroutine), and with one
//! worker a process that only computes never keeps another from finishing.

use std::time::Duration;

use troupe::{Class, ErrorKind, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

fn runtime(src: MemorySource, workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(src)
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn timeout(ms: u64) -> Limits {
    Limits {
        timeout: Some(Duration::from_millis(ms)),
        ..Limits::default()
    }
}

#[test]
fn wall_clock_limits_hold_without_an_instruction_limit() {
    let src = MemorySource::new()
        .with("spin.lua", "local n = 0 while true do n = n + 1 end")
        .with(
            "commands.lua",
            "local time = require('time') while true do time.now() end",
        )
        .with(
            "coroutine.lua",
            "local co = coroutine.create(function() while true do end end) coroutine.resume(co)",
        )
        .with(
            "wrapped.lua",
            "coroutine.wrap(function() local t = {} while true do t[1] = #t end end)()",
        );
    for workers in [1, 2] {
        let rt = runtime(src.clone(), workers);
        for script in ["spin.lua", "commands.lua", "coroutine.lua", "wrapped.lua"] {
            let h = rt
                .spawn(Spawn::script(script).limits(timeout(50)))
                .expect("spawns");
            let err = h
                .join_blocking()
                .expect_err(&format!("{script}: the loop never ends"));
            assert_eq!(err.kind(), ErrorKind::Timeout, "{script}: {err:?}");
        }
        rt.shutdown();
    }
}

#[test]
fn a_computing_process_never_holds_the_only_worker() {
    let src = MemorySource::new()
        .with("spin.lua", "local n = 0 while true do n = n + 1 end")
        .with(
            "nested.lua",
            "local co = coroutine.create(function() local n = 0 while true do n = n + 1 end end) coroutine.resume(co)",
        )
        .with(
            "count.lua",
            "local n = 0 for i = 1, 3e6 do n = n + 1 end return n",
        );
    let rt = runtime(src, 1);
    let spinners: Vec<_> = ["spin.lua", "nested.lua", "spin.lua"]
        .into_iter()
        .map(|s| rt.spawn(Spawn::script(s)).expect("spinner spawns"))
        .collect();
    for _ in 0..3 {
        let h = rt.spawn(Spawn::script("count.lua")).expect("spawns");
        assert_eq!(h.join_blocking(), Ok(Value::Int(3_000_000)));
    }
    for s in &spinners {
        assert!(s.kill());
        assert_eq!(s.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    }
    assert_eq!(rt.process_count(), 0);
    rt.shutdown();
}
