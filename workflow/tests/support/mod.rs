//! What the workflow tests share.

use troupe_engines::lua::LuaEngine;
use troupe_runtime::Runtime;
use troupe_sources::MemorySource;
use troupe_workflow::WorkflowStore;

/// A two-worker Lua runtime reading `scripts` and journaling in `store`.
pub fn runtime(store: &WorkflowStore, scripts: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(scripts)
        .engine(LuaEngine::new())
        .journal_store(store.clone())
        .build()
        .unwrap()
}
