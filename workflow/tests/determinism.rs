//! Plain Lua in a workflow computes the same on replay: table iteration and
//! the names of tables do not depend on the interpreter state (its string
//! hash seed, its addresses), and what could only come from addresses is a
//! NONDETERMINISM error.

use troupe_dispatcher::{ErrorKind, Value};
use troupe_engines::lua::LuaEngine;
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;
use troupe_workflow::WorkflowStore;

fn runtime(dir: &tempfile::TempDir, src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .journal_store(WorkflowStore::open(dir.path().join("wf.redb")).unwrap())
        .build()
        .unwrap()
}

/// The issue's script: every key a `pairs` loop visits is checked against
/// the journaled value of a side effect that returned it.
const PAIRS: &str = r#"
local workflow = require("workflow")
local t = {}
for i = 1, 40 do t["key" .. i] = i end
t[true], t[2.5], t[7] = "b", "f", "i"
local order = {}
for k in pairs(t) do
  local got = workflow.side_effect(function() return k end)
  assert(got == k, "history says " .. tostring(got) .. " but this run iterates " .. tostring(k))
  order[#order + 1] = tostring(k)
end
local walked = {}
local k = next(t)
while k ~= nil do
  walked[#walked + 1] = tostring(k)
  k = next(t, k)
end
assert(table.concat(walked, ",") == table.concat(order, ","), "next and pairs disagree")
return order
"#;

#[test]
fn pairs_visits_keys_in_one_order_on_every_run_and_every_replay() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir, MemorySource::new().with("pairs.lua", PAIRS));
    let first = rt
        .spawn(Spawn::workflow("w0", "pairs.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    // Booleans, then numbers, then strings, each sorted.
    let mut expected = vec!["true".to_owned(), "2.5".to_owned(), "7".to_owned()];
    let mut keys: Vec<String> = (1..=40).map(|i| format!("key{i}")).collect();
    keys.sort();
    expected.extend(keys);
    assert_eq!(
        first,
        Value::Array(expected.into_iter().map(Value::String).collect())
    );
    // Fresh runs in other (pooled) states agree.
    for i in 1..5 {
        let again = rt
            .spawn(Spawn::workflow(format!("w{i}"), "pairs.lua"))
            .unwrap()
            .join_blocking()
            .unwrap();
        assert_eq!(again, first);
    }
    for _ in 0..100 {
        assert_eq!(rt.replay("w0").unwrap().join_blocking().unwrap(), first);
    }
}

#[test]
fn tables_are_named_by_first_print_and_addresses_are_refused() {
    let script = r#"
        local function kind(f, ...)
          local ok, e = pcall(f, ...)
          if ok then return "ok" end
          return type(e) == "userdata" and e:kind() or tostring(e)
        end
        local a, b = {}, function() end
        local names = { tostring(a), tostring(b), tostring(a), string.format("%s|%s", b, a) }
        local keyed = { [a] = 1 }
        return {
          names = names,
          percent = string.format("100%%p %d", 1),
          p = kind(string.format, "%p", a),
          p_method = kind(function() return ("%5p"):format(a) end),
          table_keys = kind(function() for _ in pairs(keyed) do end end),
          next_keys = kind(next, keyed),
          count = kind(collectgarbage, "count"),
        }
    "#;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir, MemorySource::new().with("names.lua", script));
    let got = rt
        .spawn(Spawn::workflow("n", "names.lua"))
        .unwrap()
        .join_blocking()
        .unwrap();
    let field = |k: &str| match &got {
        Value::Map(m) => m[k].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field("names"),
        Value::Array(
            [
                "table: #1",
                "function: #2",
                "table: #1",
                "function: #2|table: #1"
            ]
            .map(Value::from)
            .to_vec()
        )
    );
    assert_eq!(field("percent"), Value::from("100%p 1"));
    for k in ["p", "p_method", "table_keys", "next_keys", "count"] {
        assert_eq!(field(k), Value::from("NONDETERMINISM"), "{k}");
    }
    assert_eq!(rt.replay("n").unwrap().join_blocking().unwrap(), got);
}

#[test]
fn plain_processes_keep_lua_as_it_is_after_a_workflow_used_their_state() {
    let plain = r#"
        local t = {}
        local name = tostring(t)
        return { name:match("^table: 0x") ~= nil, string.format("%p", t) ~= "", ("%p"):format(t) ~= "" }
    "#;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(
        &dir,
        MemorySource::new()
            .with("pairs.lua", PAIRS)
            .with("plain.lua", plain),
    );
    for i in 0..4 {
        rt.spawn(Spawn::workflow(format!("w{i}"), "pairs.lua"))
            .unwrap()
            .join_blocking()
            .unwrap();
        let got = rt
            .spawn(Spawn::script("plain.lua"))
            .unwrap()
            .join_blocking()
            .unwrap();
        assert_eq!(got, Value::Array(vec![Value::Bool(true); 3]));
    }
}

#[test]
fn a_lightweight_workflow_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir, MemorySource::new().with("pairs.lua", PAIRS));
    let Err(err) = rt.spawn(Spawn::workflow("l", "pairs.lua").lightweight()) else {
        panic!("a lightweight workflow was spawned");
    };
    assert_eq!(err.kind(), ErrorKind::Invalid);
}
