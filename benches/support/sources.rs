//! The runtime the script-source benches spawn from (included with
//! `#[path = "support/sources.rs"]`).

use troupe::{LuaEngine, Policy, Runtime, Source};

/// A runtime reading scripts from `source`: 1 worker, Lua, the plugin
/// policy, and hot reload on (so it watches `source`, as a host serving
/// scripts that change does).
pub fn runtime(source: impl Source) -> Runtime {
    Runtime::builder()
        .workers(1)
        .source(source)
        .hot_reload(true)
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin())
        .build()
        .expect("runtime builds")
}
