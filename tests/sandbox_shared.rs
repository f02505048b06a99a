//! The sandbox of lightweight processes, which share Lua states: what a
//! script can observe of its environment is the same as in an isolated
//! process, and nothing one lightweight process does to what it can reach
//! (globals, `require` results, library functions, the string metatable,
//! `package.loaded`, the shared library tables) reaches another process of
//! the same state, alive at the time or spawned later.
//!
//! The engine places lightweight processes in its shared states round
//! robin (four per core), so [`CROWD`] processes spawned one after another
//! share every state with many others on any machine of up to 50 cores.

use troupe::{Class, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

/// Processes enough for several per shared state.
const CROWD: usize = 200;

fn runtime(src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::with_output(|_| {}))
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

/// Scripts that look at or change their own environment: each gives the
/// same result in an isolated and in a lightweight process. Each runs in a
/// fresh process, so each sees an environment nothing touched before.
const SAME_IN_BOTH: &[(&str, &str)] = &[
    (
        "rawget",
        "return type(rawget(_G, 'print')), type(rawget(_ENV, 'string'))",
    ),
    ("getmetatable", "return getmetatable(_G) == nil"),
    (
        "pairs",
        "local n = 0 for _ in pairs(_G) do n = n + 1 end return n",
    ),
    (
        "next",
        "local n, k = 0, next(_G) while k ~= nil do n = n + 1 k = next(_G, k) end return n",
    ),
    (
        "library globals",
        "local t = {} for k, v in pairs(_G) do t[#t + 1] = k .. ':' .. type(v) end \
         table.sort(t) return table.concat(t, ' ')",
    ),
    (
        "assign nil",
        "print = nil return type(print), type(_G.print)",
    ),
    (
        "assign",
        "tostring = 1 return tostring, rawget(_G, 'tostring')",
    ),
    (
        "shadow, then remove",
        "rawset(_G, 'pcall', 1) pcall = nil return type(pcall)",
    ),
    (
        "rawset nil",
        "rawset(_G, 'select', nil) return type(select)",
    ),
    (
        "own global",
        "x = 1 local raw = rawget(_G, 'x') x = nil return raw, x, rawget(_G, 'x')",
    ),
    (
        "setmetatable",
        "setmetatable(_G, {__index = function(_, k) return 'default ' .. k end}) \
         return undefined_name, type(print), getmetatable(_G) ~= nil",
    ),
    (
        "setmetatable nil",
        "return setmetatable(_G, nil) == _G, type(print)",
    ),
    (
        "__gc refused",
        "return (pcall(setmetatable, _G, {__gc = print}))",
    ),
    (
        "identity",
        "return rawequal(_G, _ENV), _G._G == _G, load('return _G')() == _G",
    ),
    (
        "load sees globals",
        "y = 5 return load('return y + #string.rep(\"a\", 2)')()",
    ),
    (
        "collectgarbage",
        "return collectgarbage(), collectgarbage('collect'), type(collectgarbage('count')), \
         type(collectgarbage('step'))",
    ),
    (
        "collectgarbage tuning",
        "return (pcall(collectgarbage, 'incremental')), (pcall(collectgarbage, 'stop'))",
    ),
    (
        "library views",
        "return type(string), rawget(string, 'upper'), next(string) ~= nil, \
         getmetatable(string), (pcall(rawset, string, 'x', 1))",
    ),
    (
        "entry function lookup",
        "function helper() return 'own' end return helper()",
    ),
];

#[test]
fn a_lightweight_environment_looks_like_an_isolated_one() {
    let mut src = MemorySource::new();
    for (i, (_, code)) in SAME_IN_BOTH.iter().enumerate() {
        src = src.with(&format!("case{i}.lua"), *code);
    }
    let rt = runtime(src);
    let run = |i: usize, light: bool| {
        let spawn = Spawn::script(format!("case{i}.lua"));
        let spawn = if light { spawn.lightweight() } else { spawn };
        rt.spawn(spawn).and_then(|h| h.join_blocking())
    };
    let mut differences = Vec::new();
    for (i, (what, _)) in SAME_IN_BOTH.iter().enumerate() {
        let isolated = run(i, false);
        let lightweight = run(i, true);
        assert!(isolated.is_ok(), "{what}: {isolated:?}");
        if isolated != lightweight {
            differences.push(format!(
                "{what}: isolated {isolated:?}, lightweight {lightweight:?}"
            ));
        }
    }
    rt.shutdown();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Tries to change everything it shares with the other processes of its
/// state, and to leave a reference to itself behind (the marker
/// `"stash <pid>"`), then reports to the host mailbox (`...`) which
/// attempts succeeded and stays alive until told to end.
const ATTACKER: &str = r#"
    local host = ...
    local process, json, errors = require("process"), require("json"), require("errors")
    local me = process.pid()
    local stash = "stash " .. me
    local token = setmetatable({}, {__tostring = function() return stash end})
    local escaped = {}
    local function try(name, f)
      if pcall(f) then escaped[#escaped + 1] = name end
    end
    -- Its own globals, and library names shadowed in its own environment.
    secret, print, tostring = stash, function() return stash end, nil
    -- `require` results (module tables).
    try("json field", function() json.stolen = token end)
    try("rawset json", function() rawset(json, "encode", function() return stash end) end)
    try("setmetatable json", function() setmetatable(json, {__index = {stolen = token}}) end)
    try("json metatable", function() getmetatable(json).__index = {stolen = token} end)
    try("errors constant", function() errors.NOT_FOUND = stash end)
    try("error metatable", function()
      local e = errors.new{kind = "INVALID", message = "x"}
      getmetatable(e).__index = function() return stash end
    end)
    -- The shared library tables.
    try("string field", function() string.upper = function() return stash end end)
    try("rawset string", function() rawset(string, "stolen", token) end)
    try("setmetatable string", function() setmetatable(string, {__index = {stolen = token}}) end)
    try("table.insert into math", function() table.insert(math, token) end)
    try("rawset coroutine", function() rawset(coroutine, "wrap", print) end)
    try("library pairs", function()
      for k in pairs(table) do rawset(table, k, print) end
      assert(next(table) == nil)
    end)
    -- The string metatable.
    try("string metatable __index", function() getmetatable("").__index = {stolen = token} end)
    try("string metatable field", function() getmetatable("").__index.stolen = token end)
    try("rawset string metatable", function() rawset(getmetatable(""), "__index", {}) end)
    try("setmetatable on a string", function() setmetatable("", {__index = {stolen = token}}) end)
    try("string method", function() ("").stolen = token end)
    -- `package.loaded`, `debug` (for upvalues of shared functions), raw globals.
    try("package.loaded", function() package.loaded.json = {stolen = token} end)
    try("require package", function() require("package").loaded.json = {} end)
    try("require debug", function() require("debug").setupvalue(pcall, 1, print) end)
    try("debug.setupvalue", function() debug.setupvalue(require, 1, print) end)
    try("debug.upvaluejoin", function() debug.upvaluejoin(pcall, 1, print, 1) end)
    try("load real globals", function() load("_G.stolen = ...", "x", "t", nil)(token) assert(_ENV.stolen == nil) end)
    try("string.dump", function() return string.dump(require) end)
    try("binary chunk", function() assert(load("\27Lua"))() end)
    try("getfenv", function() getfenv(require).stolen = token end)
    -- Its environment's metatable (the shared library behind it).
    try("env metatable __index", function() getmetatable(_ENV).__index.stolen = token end)
    try("env metatable rawset", function() rawset(getmetatable(_G), "__index", {stolen = token}) end)
    try("collectgarbage stop", function() collectgarbage("stop") end)
    try("coroutine.close of the process", function() coroutine.close(coroutine.running()) end)
    process.send(host, "done", escaped)
    process.receive("end")
"#;

/// Looks for the attackers' effects: compares the library with what it
/// must be, and walks everything reachable from its globals (tables,
/// their metatables, the string metatable) for an attacker's marker.
/// Returns the list of findings (empty: nothing).
const OBSERVER: &str = r#"
    local json, errors = require("json"), require("errors")
    local found = {}
    local function check(what, ok) if not ok then found[#found + 1] = what end end
    check("a global", secret == nil and stolen == nil)
    check("print", type(print) == "function" and print ~= nil)
    check("tostring", tostring(12) == "12")
    check("json", json.encode({1}) == "[1]" and json.stolen == nil)
    check("errors", errors.NOT_FOUND == "NOT_FOUND")
    check("string", ("abc"):upper() == "ABC" and string.stolen == nil and ("").stolen == nil)
    check("math", math[1] == nil and math.floor(2.5) == 2)
    check("table", type(table.concat) == "function" and table.concat({1, 2}, ",") == "1,2")
    check("coroutine", coroutine.wrap(function() return 1 end)() == 1)
    check("package", package == nil and debug == nil)
    check("string metatable", getmetatable("") == "locked")
    local e = errors.new{kind = "INVALID", message = "m"}
    check("error objects", e:kind() == "INVALID" and e:message() == "m" and tostring(e) == "INVALID: m")
    -- Everything reachable, for a marker.
    local seen = {}
    local function walk(v, path)
      local t = type(v)
      if t == "string" then
        if v:find("^stash ") then found[#found + 1] = path .. " = " .. v end
        return
      end
      if (t ~= "table" and t ~= "userdata" and t ~= "function") or seen[v] then return end
      seen[v] = true
      local mt = getmetatable(v)
      if mt ~= nil then walk(mt, path .. "<mt>") end
      if t == "table" then
        for k, x in pairs(v) do
          walk(k, path .. "<key>")
          walk(x, path .. "." .. tostring(k))
        end
      end
    end
    walk(_G, "_G")
    walk(getmetatable(""), "<string mt>")
    walk(json, "json")
    walk(e, "error")
    return found
"#;

#[test]
fn a_lightweight_process_leaves_nothing_to_its_state_neighbours() {
    let src = MemorySource::new()
        .with("attacker.lua", ATTACKER)
        .with("observer.lua", OBSERVER);
    let rt = runtime(src);
    let host = rt.mailbox();
    let observe = |when: &str| {
        for _ in 0..CROWD {
            let found = rt
                .spawn(Spawn::script("observer.lua").lightweight())
                .expect("spawns")
                .join_blocking()
                .expect("the observer runs");
            // An empty Lua table arrives as an empty map.
            assert_eq!(found, Value::Map(Default::default()), "{when}: {found:?}");
        }
    };
    observe("before");
    let attackers: Vec<_> = (0..CROWD)
        .map(|_| {
            rt.spawn(
                Spawn::script("attacker.lua")
                    .args([host.pid().to_string()])
                    .lightweight(),
            )
            .expect("spawns")
        })
        .collect();
    for _ in 0..CROWD {
        let escaped = rt.io().block_on(host.recv_topic("done")).payload;
        assert_eq!(
            escaped,
            Value::Map(Default::default()),
            "an attempt on shared state succeeded"
        );
    }
    // Alive, holding their globals, in every shared state.
    observe("while the attackers live");
    for a in &attackers {
        rt.try_send(a.pid(), "end", true).expect("sends");
        a.join_blocking().expect("the attacker ends");
    }
    // Spawned later, into the same states.
    observe("after the attackers ended");
    rt.shutdown();
}
