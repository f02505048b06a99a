//! Shared by the IO module tests: run one Lua script on a runtime with the
//! given host modules and policy.

use troupe_dispatcher::{Error, Value};
use troupe_engines::lua::LuaEngine;
use troupe_io::HostModule;
use troupe_modules::Policy;
use troupe_runtime::{Runtime, Spawn};
use troupe_sources::MemorySource;

/// Runs `code` as `main.lua` under `policy` on a fresh runtime with
/// `modules` installed, and shuts the runtime down.
pub fn run(modules: &[&dyn HostModule], policy: Policy, code: &str) -> Result<Value, Error> {
    let mut builder = Runtime::builder()
        .workers(2)
        .source(MemorySource::new().with("main.lua", code))
        .engine(LuaEngine::new());
    for m in modules {
        builder = builder.module(m.module());
    }
    let rt = builder.build()?;
    let result = rt
        .spawn(Spawn::script("main.lua").policy(policy))
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    result
}

/// `value` as JSON, for compact assertions.
pub fn json(value: &Value) -> serde_json::Value {
    serde_json::from_str(&value.to_json()).expect("a value's JSON parses")
}
