//! Nothing a script does takes down the host: durations too long for the
//! clock, expressions deep enough to overflow a stack, spawn options that
//! are misspelt or out of range, and a worker count no machine has. Each
//! fails in its own process (or its own call) with a clear error, and the
//! runtime goes on.

use std::time::Duration;

use troupe::{Engine, ErrorKind, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

/// A runtime without limits (the default a host gets), one worker so a
/// stuck or panicked worker would hang the test.
fn runtime(src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(1)
        .source(src)
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::trusted())
        .build()
        .expect("runtime builds")
}

fn run(rt: &Runtime, spawn: Spawn) -> Result<Value, troupe::Error> {
    let h = rt.spawn(spawn)?;
    rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), h.join())
            .await
            .expect("the process ends")
    })
}

#[test]
fn durations_too_long_for_the_clock_are_no_deadline_not_a_panic() {
    let src = MemorySource::new()
        .with(
            "parent.lua",
            r#"
            local process = require("process")
            local me = process.pid()
            for _, t in ipairs({"99999999999999999999s", 1e22, 1e300}) do
              assert(process.spawn("child.lua", {timeout = t}, me))
              assert(process.receive("done", 10000), "the child ran")
            end
            return "ok"
            "#,
        )
        .with(
            "child.lua",
            r#"local parent = ... require("process").send(parent, "done", true)"#,
        )
        .with("one.lua", "return 1");
    let rt = runtime(src);
    for lightweight in [false, true] {
        let mut spawn = Spawn::script("parent.lua");
        if lightweight {
            spawn = spawn.lightweight();
        }
        assert_eq!(run(&rt, spawn).unwrap(), Value::from("ok"));
    }
    // The host's own limit, as long as a Duration goes.
    let forever = Limits {
        timeout: Some(Duration::MAX),
        ..Limits::default()
    };
    let v = run(&rt, Spawn::script("one.lua").limits(forever));
    assert_eq!(v.unwrap(), Value::Int(1));
    assert_eq!(
        run(&rt, Spawn::script("parent.lua")).unwrap(),
        Value::from("ok")
    );
    rt.shutdown();
}

#[test]
fn expressions_too_deep_for_a_stack_are_refused_and_long_ones_still_run() {
    let src = MemorySource::new().with(
        "expr.lua",
        r#"
        local expr = require("expr")
        local out = {}
        for _, src in ipairs({
          string.rep("1+", 2000) .. "1",
          string.rep("(", 5000) .. "1" .. string.rep(")", 5000),
          string.rep("[", 5000) .. string.rep("]", 5000),
        }) do
          local program, err = expr.compile(src)
          out[#out + 1] = program and "compiled" or err:kind()
        end
        -- At the limits, an expression compiles and evaluates.
        out[#out + 1] = expr.eval(string.rep("1+", 399) .. "1")
        out[#out + 1] = expr.eval(string.rep("(", 64) .. "2" .. string.rep(")", 64))
        out[#out + 1] = expr.eval("'" .. string.rep("+", 5000) .. "'") == string.rep("+", 5000)
        return out
        "#,
    );
    let rt = runtime(src);
    for lightweight in [false, true] {
        let mut spawn = Spawn::script("expr.lua");
        if lightweight {
            spawn = spawn.lightweight();
        }
        let v = run(&rt, spawn).unwrap();
        assert_eq!(
            v,
            Value::from(vec![
                Value::from("LIMIT_EXCEEDED"),
                Value::from("LIMIT_EXCEEDED"),
                Value::from("LIMIT_EXCEEDED"),
                Value::Int(400),
                Value::Int(2),
                Value::Bool(true),
            ])
        );
    }
    rt.shutdown();
}

#[test]
fn spawn_options_are_checked_by_name() {
    let src = MemorySource::new()
        .with(
            "parent.lua",
            r#"
            local process = require("process")
            local out = {}
            for _, opts in ipairs({
              {timout = "1s"},
              {mailbox = 2^40},
              {mailbox = 0},
              {link = "yes"},
              {entry = 5},
            }) do
              local pid, err = process.spawn("child.lua", opts)
              out[#out + 1] = pid or (err:kind() .. ": " .. err:message())
            end
            local ok, err = pcall(process.spawn, "child.lua", "fast")
            out[#out + 1] = tostring(err)
            return out
            "#,
        )
        .with("child.lua", "return 1");
    let rt = runtime(src);
    let v = run(&rt, Spawn::script("parent.lua")).unwrap();
    let lines: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        lines[0].starts_with("INVALID: process.spawn: unknown option \"timout\""),
        "{lines:?}"
    );
    for (line, option) in lines[1..5]
        .iter()
        .zip(["mailbox", "mailbox", "link", "entry"])
    {
        assert!(
            line.starts_with(&format!("INVALID: process.spawn: opts.{option} must be")),
            "{line}"
        );
    }
    assert!(lines[5].contains("got string"), "{}", lines[5]);
    rt.shutdown();
}

#[test]
fn a_worker_count_no_machine_has_is_refused_before_any_thread_starts() {
    let e = Runtime::builder()
        .workers(20_000)
        .engine(LuaEngine::new())
        .build()
        .err()
        .expect("the build fails");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("limit of 1024"), "{e}");
}

#[test]
fn a_backtracking_pattern_neither_holds_the_worker_nor_escapes_a_kill() {
    let src = MemorySource::new()
        .with(
            "spinner.lua",
            r#"
            local s, p = string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40)
            while true do pcall(string.find, s, p) end
            "#,
        )
        .with(
            "bounded.lua",
            r#"
            local ok, err = pcall(string.match, string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40))
            return {ok, err:kind()}
            "#,
        )
        .with("quick.lua", "return 'quick'");
    let rt = runtime(src);
    // Without any limit, one search still ends, with LIMIT_EXCEEDED.
    assert_eq!(
        run(&rt, Spawn::script("bounded.lua")).unwrap(),
        Value::from(vec![Value::Bool(false), Value::from("LIMIT_EXCEEDED")])
    );
    // A process searching forever shares the one worker and can be killed.
    let spinner = rt.spawn(Spawn::script("spinner.lua")).unwrap();
    assert_eq!(
        run(&rt, Spawn::script("quick.lua")).unwrap(),
        Value::from("quick")
    );
    assert!(spinner.kill());
    let end = rt.io().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), spinner.join())
            .await
            .expect("the killed process ends")
    });
    assert!(end.is_err());
    rt.shutdown();
}

#[test]
fn an_instruction_limit_below_the_slice_is_not_overshot() {
    let src = MemorySource::new().with(
        "loop.lua",
        "local x = 0 for i = 1, 5000 do x = x + i end return x",
    );
    let rt = runtime(src);
    for lightweight in [false, true] {
        let limits = Limits {
            max_instructions: std::num::NonZeroU64::new(1),
            ..Limits::default()
        };
        let mut spawn = Spawn::script("loop.lua").limits(limits);
        if lightweight {
            spawn = spawn.lightweight();
        }
        let e = run(&rt, spawn).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    }
    // The same loop within a limit above it runs.
    let limits = Limits {
        max_instructions: std::num::NonZeroU64::new(1_000_000),
        ..Limits::default()
    };
    assert_eq!(
        run(&rt, Spawn::script("loop.lua").limits(limits)).unwrap(),
        Value::Int(12_502_500)
    );
    rt.shutdown();
}

#[test]
fn an_error_value_without_text_says_what_it_is_not_where_it_lives() {
    let src = MemorySource::new()
        .with("table.lua", "error({})")
        .with("fn.lua", "error(print)")
        .with(
            "custom.lua",
            "error(setmetatable({}, {__tostring = function() return 'custom text' end}))",
        );
    let rt = runtime(src);
    for (script, text) in [
        ("table.lua", "(error object is a table value)"),
        ("fn.lua", "(error object is a function value)"),
        ("custom.lua", "custom text"),
    ] {
        let e = run(&rt, Spawn::script(script)).unwrap_err();
        assert_eq!((e.kind(), e.message()), (ErrorKind::Internal, text));
    }
    rt.shutdown();
}

/// The fork bomb of the issue that asked for caps, as written: two
/// unlinked copies of itself, then wait forever.
const BOMB: &str = r#"
    local p = require("process")
    p.spawn("bomb.lua")
    p.spawn("bomb.lua")
    p.receive("never")
"#;

/// Sleeps ten times and says how many sleeps it took.
const SLEEPER: &str = r#"
    local time = require("time")
    local n = 0
    for _ = 1, 10 do time.sleep(10) n = n + 1 end
    return n
"#;

/// Polls until the count of live processes stops changing (the bomb has
/// spent itself: every copy is waiting or failed), and returns it.
fn settled_count(rt: &Runtime) -> usize {
    let mut last = usize::MAX;
    let mut same = 0;
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(50));
        let now = rt.process_count();
        same = if now == last { same + 1 } else { 0 };
        last = now;
        if same == 5 {
            break;
        }
    }
    last
}

#[test]
fn a_fork_bomb_stops_at_its_trees_process_cap_and_its_neighbours_run_on() {
    let src = MemorySource::new()
        .with("bomb.lua", BOMB)
        .with("sleeper.lua", SLEEPER);
    let rt = runtime(src);
    let capped = Limits {
        max_processes: std::num::NonZeroUsize::new(200),
        ..Limits::default()
    };
    let bomb = rt.spawn(Spawn::script("bomb.lua").limits(capped)).unwrap();
    let sleeper = rt.spawn(Spawn::script("sleeper.lua")).unwrap();
    assert_eq!(sleeper.join_blocking().unwrap(), Value::Int(10));
    // The tree never holds more than its cap; the copies refused a spawn
    // failed, the rest wait.
    let left = settled_count(&rt);
    assert!((2..=200).contains(&left), "{left} processes");
    // Another tree spawns as usual beside the full one.
    let again = rt.spawn(Spawn::script("sleeper.lua")).unwrap();
    assert_eq!(again.join_blocking().unwrap(), Value::Int(10));
    drop(bomb);
    rt.shutdown();
}

#[test]
fn a_fork_bomb_stops_at_its_trees_memory_limit_counting_every_copy() {
    let src = MemorySource::new().with("bomb.lua", BOMB);
    let rt = runtime(src);
    // One MiB for the whole tree: before, each copy had a MiB of its own
    // and the tree grew without end.
    let limited = Limits {
        max_memory: std::num::NonZeroUsize::new(1 << 20),
        ..Limits::default()
    };
    let _bomb = rt.spawn(Spawn::script("bomb.lua").limits(limited)).unwrap();
    let left = settled_count(&rt);
    assert!((2..=64).contains(&left), "{left} processes");
    // The tree's MiB and one charge grain, plus what each copy costs the
    // host beyond its state (charged to the runtime, not to the tree).
    let footprints = left * LuaEngine::new().footprint(false);
    assert!(
        rt.memory_in_use() <= (1 << 20) + (64 << 10) + footprints,
        "{} bytes",
        rt.memory_in_use()
    );
    rt.shutdown();
}

#[test]
fn the_runtime_caps_its_processes_whatever_the_trees() {
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("wait.lua", "require('process').receive('go')"))
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::trusted())
        .max_processes(std::num::NonZeroUsize::new(5).unwrap())
        .build()
        .unwrap();
    let live: Vec<_> = (0..5)
        .map(|_| rt.spawn(Spawn::script("wait.lua")).unwrap())
        .collect();
    let Err(e) = rt.spawn(Spawn::script("wait.lua")) else {
        panic!("a sixth process was spawned");
    };
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(
        e.message().contains("the runtime has 5 live processes"),
        "{e}"
    );
    // One ends: there is room again.
    rt.send_blocking(live[0].pid(), "go", true).unwrap();
    live[0].join_blocking().unwrap();
    rt.spawn(Spawn::script("wait.lua")).unwrap();
    rt.shutdown();
}

#[test]
fn the_runtime_memory_cap_counts_what_each_process_costs_the_host() {
    // No tree limits: only the runtime's 4 MiB, which each copy's
    // footprint (72 KiB for an isolated Lua process) and state count
    // against. Without the footprint, the states' heaps alone would let
    // the bomb hold several times more memory than the cap says.
    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("bomb.lua", BOMB))
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::trusted())
        .max_memory(std::num::NonZeroUsize::new(4 << 20).unwrap())
        .build()
        .unwrap();
    let _bomb = rt.spawn(Spawn::script("bomb.lua")).unwrap();
    let left = settled_count(&rt);
    let footprint = LuaEngine::new().footprint(false);
    assert!(
        (2..=(4 << 20) / footprint).contains(&left),
        "{left} processes"
    );
    assert!(
        rt.memory_in_use() <= 4 << 20,
        "{} bytes",
        rt.memory_in_use()
    );
    rt.shutdown();
}
