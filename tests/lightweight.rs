//! Lightweight processes (coroutines in shared Lua states): the same API
//! as isolated ones, nothing reachable from one process to another in the
//! same state, failures and limits that take down only the process itself.
//!
//! The engine places lightweight processes in its shared states round
//! robin (four per core), so [`CROWD`] processes spawned one after another
//! share every state with many others on any machine of up to 50 cores.

use std::num::{NonZeroU64, NonZeroUsize};
use std::process::Command;

use troupe::{Class, ErrorKind, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

/// Processes enough for several per shared state.
const CROWD: usize = 200;

fn runtime(src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Tries every way out of its own environment, then reports to the host
/// mailbox (`...`) what it could see and whether any attempt succeeded.
const TAMPER: &str = r#"
    local host = ...
    local json = require("json")
    local escaped = {}
    local function try(name, f)
      if pcall(f) then escaped[#escaped + 1] = name end
    end
    -- Another tamperer (the same script, alive) set this global before.
    if leaked ~= nil or rawget(_G, "leaked") ~= nil then escaped[#escaped + 1] = "a sibling's global" end
    -- Own globals, shadowing the shared library: the process's own business.
    leaked = "secret"
    print = nil
    tostring = function() return "hijacked" end
    -- The shared library and module tables.
    try("string.upper", function() string.upper = function() return "hijacked" end end)
    try("rawset string", function() rawset(string, "upper", function() return "hijacked" end) end)
    try("string metatable", function() getmetatable("").__index = { upper = function() return "hijacked" end } end)
    try("rawset string metatable", function() rawset(getmetatable(""), "__index", {}) end)
    try("setmetatable string proxy", function() setmetatable(string, nil) end)
    try("env __index", function() rawset(getmetatable(_ENV), "__index", {}) end)
    try("env __index table", function() getmetatable(_ENV).__index.leaked = "secret" end)
    try("json.encode", function() json.encode = function() return "hijacked" end end)
    try("rawset json", function() rawset(json, "encode", function() return "hijacked" end) end)
    try("json metatable", function() setmetatable(json, nil) end)
    try("table.insert into math", function() table.insert(math, "x") end)
    try("coroutine.create", function() coroutine.create = nil end)
    try("debug", function() return debug.getregistry() end)
    try("getfenv", function() return getfenv(1) end)
    try("setfenv", function() return setfenv(1, {}) end)
    try("package", function() package.loaded.json = {} end)
    try("string.dump", function() return string.dump(try) end)
    try("binary load", function() assert(load("\27Lua"))() end)
    try("collectgarbage stop", function() collectgarbage("stop") end)
    local process = require("process")
    process.send(host, "done", { escaped = escaped, meta = type(getmetatable(_ENV)) })
    -- Stay alive (holding the globals set above) until told to end.
    process.receive("end")
"#;

/// Reads what the tamperers could have changed.
const OBSERVE: &str = r#"
    local json = require("json")
    return {
      leaked = leaked == nil and rawget(_G, "leaked") == nil,
      print = type(print) == "function",
      tostring = tostring(1) == "1",
      upper = ("abc"):upper() == "ABC" and string.upper("x") == "X",
      json = json.encode({ 1 }) == "[1]",
      insert = math.x == nil and math[1] == nil,
      coroutine = type(coroutine.create) == "function",
    }
"#;

#[test]
fn a_lightweight_process_cannot_reach_another_ones_globals_or_modules() {
    let src = MemorySource::new()
        .with("tamper.lua", TAMPER)
        .with("observe.lua", OBSERVE);
    let rt = runtime(src);
    let host = rt.mailbox();
    let tamperers: Vec<_> = (0..CROWD)
        .map(|_| {
            rt.spawn(
                Spawn::script("tamper.lua")
                    .args([host.pid().to_string()])
                    .lightweight(),
            )
            .expect("spawns")
        })
        .collect();
    for _ in 0..CROWD {
        let payload = rt.io().block_on(host.recv_topic("done")).payload;
        // An empty Lua table arrives as an empty map.
        assert_eq!(
            payload.get("escaped"),
            Some(&Value::Map(Default::default())),
            "an escape attempt succeeded: {payload:?}"
        );
        // Its environment is its own, as an isolated process's is.
        assert_eq!(payload.get("meta"), Some(&Value::from("nil")));
    }
    // Every tamperer is alive, holding its globals, in every shared state.
    for _ in 0..CROWD {
        let seen = rt
            .spawn(Spawn::script("observe.lua").lightweight())
            .expect("spawns")
            .join_blocking()
            .expect("observer runs");
        for (what, ok) in seen.as_map().expect("a table") {
            assert_eq!(ok, &Value::Bool(true), "{what} leaked between processes");
        }
    }
    for t in &tamperers {
        rt.try_send(t.pid(), "end", true).expect("sends");
        t.join_blocking().expect("tamperer ends");
    }
    rt.shutdown();
}

#[test]
fn failures_limits_and_kills_take_down_only_the_process_itself() {
    let src = MemorySource::new()
        .with("crash.lua", "local t = nil\nreturn t.field")
        .with("spin.lua", "while true do end")
        .with("block.lua", "require('process').receive('never')")
        .with(
            "work.lua",
            r#"
            local process, time = require("process"), require("time")
            local n = ...
            time.sleep(5)
            local acc = 0
            for i = 1, 20000 do acc = acc + i % 7 end
            process.send(process.pid(), "self", n)
            local m = process.receive("self")
            return { n = m.payload, acc = acc }
            "#,
        );
    let rt = runtime(src);
    let limited = Limits {
        max_instructions: NonZeroU64::new(50_000),
        ..Limits::default()
    };
    let mut crashes = Vec::new();
    let mut spins = Vec::new();
    let mut blocks = Vec::new();
    let mut workers = Vec::new();
    for i in 0..CROWD {
        crashes.push(
            rt.spawn(Spawn::script("crash.lua").lightweight())
                .expect("spawns"),
        );
        spins.push(
            rt.spawn(Spawn::script("spin.lua").limits(limited).lightweight())
                .expect("spawns"),
        );
        blocks.push(
            rt.spawn(Spawn::script("block.lua").lightweight())
                .expect("spawns"),
        );
        workers.push(
            rt.spawn(Spawn::script("work.lua").args([i as i64]).lightweight())
                .expect("spawns"),
        );
    }
    for b in &blocks {
        assert!(b.kill(), "the blocked process is alive");
    }
    for c in crashes {
        let e = c.join_blocking().expect_err("the crash fails");
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        // Line numbers are the script's own.
        assert!(e.message().contains("crash.lua:2: attempt to index"), "{e}");
    }
    for s in spins {
        let e = s.join_blocking().expect_err("the spinner is stopped");
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    }
    for b in blocks {
        let e = b.join_blocking().expect_err("killed");
        assert_eq!(e.kind(), ErrorKind::Canceled, "{e}");
    }
    for (i, w) in workers.into_iter().enumerate() {
        let v = w.join_blocking().expect("siblings finish");
        assert_eq!(v.get("n"), Some(&Value::from(i as i64)));
        assert_eq!(v.get("acc"), Some(&Value::from(59_998_i64)));
    }
    rt.shutdown();
}

#[test]
fn an_unlimited_loop_is_preempted_so_its_siblings_run() {
    // One worker: the spinner must yield its worker for the others to run.
    let src = MemorySource::new()
        .with("spin.lua", "while true do end")
        .with("quick.lua", "return 7");
    let rt = Runtime::builder()
        .workers(1)
        .source(src)
        .engine(LuaEngine::new())
        .build()
        .expect("runtime builds");
    let spinner = rt
        .spawn(Spawn::script("spin.lua").lightweight())
        .expect("spawns");
    for _ in 0..CROWD {
        let v = rt
            .spawn(Spawn::script("quick.lua").lightweight())
            .expect("spawns")
            .join_blocking();
        assert_eq!(v.expect("runs"), Value::from(7));
    }
    assert!(spinner.kill());
    rt.shutdown();
}

#[test]
fn lightweight_processes_message_sleep_and_spawn_lightweight_children() {
    let src = MemorySource::new()
        .with(
            "pong.lua",
            r#"
            local process = require("process")
            local parent, n = ...
            for _ = 1, n do
              local m = process.receive("ping")
              process.send(parent, "pong", m.payload + 1)
            end
            "#,
        )
        .with(
            "main.lua",
            r#"
            local process, time = require("process"), require("time")
            local n = 100
            local child = process.spawn("pong.lua", { lightweight = true }, process.pid(), n)
            local total = 0
            for i = 1, n do
              process.send(child, "ping", i)
              total = total + process.receive("pong").payload
            end
            time.sleep(10)
            return { total = total, global = rawget(_G, "print") == nil }
            "#,
        );
    let rt = runtime(src);
    let v = rt
        .spawn(Spawn::script("main.lua").lightweight())
        .expect("spawns")
        .join_blocking()
        .expect("runs");
    assert_eq!(v.get("total"), Some(&Value::from(5150_i64)));
    // The library comes through a shared `__index`, but `rawget` sees it
    // as an isolated process does (in its own table).
    assert_eq!(v.get("global"), Some(&Value::Bool(false)));
    let isolated = rt
        .spawn_code(
            Spawn::script("iso.lua"),
            "return rawget(_G, 'print') == nil",
        )
        .expect("spawns")
        .join_blocking()
        .expect("runs");
    assert_eq!(isolated, Value::Bool(false));
    rt.shutdown();
}

#[test]
fn a_lightweight_process_spawns_lightweight_children_in_every_shared_state() {
    let src = MemorySource::new()
        .with(
            "child.lua",
            "local process = require('process'); process.send(..., 'hi', 1)",
        )
        .with(
            "main.lua",
            r#"
            local process = require("process")
            local n = ...
            for _ = 1, n do process.spawn("child.lua", { lightweight = true }, process.pid()) end
            local got = 0
            for _ = 1, n do got = got + process.receive("hi").payload end
            return got
            "#,
        );
    let rt = runtime(src);
    let n = CROWD as i64;
    let v = rt
        .spawn(Spawn::script("main.lua").args([n]).lightweight())
        .expect("spawns")
        .join_blocking();
    assert_eq!(v.expect("runs"), Value::from(n));
    rt.shutdown();
}

#[test]
fn lightweight_spawners_in_different_states_spawn_into_each_other() {
    // Parents in every shared state spawn children at the same time on two
    // workers: a step that waited for another state's lock while holding
    // its own would deadlock with a parent of that state doing the same.
    let src = MemorySource::new().with("leaf.lua", "return 1").with(
        "parent.lua",
        r#"
            local process = require("process")
            process.trap_exits(true)
            local n = ...
            for _ = 1, n do process.spawn("leaf.lua", { lightweight = true, link = true }) end
            for _ = 1, n do assert(process.receive("EXIT").payload.reason == "normal") end
            return n
            "#,
    );
    let rt = runtime(src);
    let parents: Vec<_> = (0..CROWD / 4)
        .map(|_| {
            rt.spawn(Spawn::script("parent.lua").args([50]).lightweight())
                .expect("spawns")
        })
        .collect();
    for p in parents {
        assert_eq!(p.join_blocking().expect("runs"), Value::from(50));
    }
    rt.shutdown();
}

#[test]
fn the_policy_holds_for_lightweight_processes_and_their_children() {
    let src = MemorySource::new()
        .with(
            "main.lua",
            r#"
            local process = require("process")
            local ok_json, err = pcall(require, "json")
            assert(not ok_json, "json is denied")
            assert(math.random == nil, "random is denied")
            -- The child asks for more than its parent has: it gets no more.
            process.spawn("child.lua", {
              lightweight = true, allow = { "encoding", "nondeterministic", "process" },
            }, process.pid())
            local m = process.receive("child")
            return { denied = tostring(err), child_http = m.payload }
            "#,
        )
        .with(
            "child.lua",
            r#"
            local process = require("process")
            local ok = pcall(require, "json")
            process.send(..., "child", ok or math.random ~= nil)
            "#,
        );
    let rt = runtime(src);
    let v = rt
        .spawn(
            Spawn::script("main.lua")
                .policy(Policy::deny_all().allow_class(Class::Process))
                .lightweight(),
        )
        .expect("spawns")
        .join_blocking()
        .expect("runs");
    assert!(
        v.get("denied")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains("PERMISSION_DENIED")),
        "{v:?}"
    );
    assert_eq!(v.get("child_http"), Some(&Value::Bool(false)), "{v:?}");
    rt.shutdown();
}

#[test]
fn a_lightweight_spawn_with_a_memory_limit_is_invalid() {
    let rt = runtime(MemorySource::new().with("m.lua", "return 1"));
    let limits = Limits {
        max_memory: NonZeroUsize::new(1 << 20),
        ..Limits::default()
    };
    let e = rt
        .spawn(Spawn::script("m.lua").limits(limits).lightweight())
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    rt.shutdown();
}

/// `load` is shared by the processes of a state; the chunks it makes see
/// the globals of the process that calls it, unless given an environment.
const LOADER: &str = r#"
    local id = ...
    mine = id
    local read = assert(load("return mine"))
    local write = assert(load("mine = mine * 10"))
    -- Another process of the state runs between the load and the call.
    coroutine.yield()
    write()
    local other = assert(load("return mine, print", "other", "t", { mine = -1 }))()
    local inner = coroutine.wrap(function() return load("return mine")() end)()
    return { read = read(), inner = inner, other = other }
"#;

#[test]
fn load_in_a_lightweight_process_uses_its_own_globals() {
    let rt = runtime(MemorySource::new().with("loader.lua", LOADER));
    let handles: Vec<_> = (1..=CROWD as i64)
        .map(|i| {
            rt.spawn(Spawn::script("loader.lua").args([i]).lightweight())
                .expect("spawns")
        })
        .collect();
    for (h, i) in handles.into_iter().zip(1_i64..) {
        let v = h.join_blocking().expect("runs");
        assert_eq!(v.get("read"), Some(&Value::Int(i * 10)), "{v:?}");
        assert_eq!(v.get("inner"), Some(&Value::Int(i * 10)), "{v:?}");
        assert_eq!(v.get("other"), Some(&Value::Int(-1)), "{v:?}");
    }
    rt.shutdown();
}

#[test]
fn a_hundred_thousand_lightweight_processes_complete() {
    let rt = runtime(MemorySource::new().with("n.lua", "local n = ... return n * 2"));
    let n = 100_000;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            rt.spawn(Spawn::script("n.lua").args([i]).lightweight())
                .expect("spawns")
        })
        .collect();
    let mut sum = 0_i64;
    for h in handles {
        sum += h.join_blocking().expect("runs").as_i64().expect("a number");
    }
    assert_eq!(sum, (0..n).map(|i: i64| i * 2).sum::<i64>());
    rt.shutdown();
}

#[test]
fn the_cli_runs_a_script_lightweight() {
    let dir = std::env::temp_dir().join(format!("troupe-lightweight-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("main.lua");
    std::fs::write(&file, "return rawget(_G, 'print') == nil").expect("writes");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .arg("run")
            .args(extra)
            .arg(&file)
            .output()
            .expect("troupe runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    assert_eq!(run(&["--lightweight"]), (true, "false".to_owned()));
    assert_eq!(run(&[]), (true, "false".to_owned()));
    let (ok, _) = run(&["--lightweight", "--max-memory", "1000000"]);
    assert!(!ok, "a lightweight run with a memory limit is refused");
    let _ = std::fs::remove_dir_all(&dir);
}
