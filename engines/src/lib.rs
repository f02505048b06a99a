//! Script engines. Each engine turns source text into a compiled program and
//! programs into [`Process`](troupe_runtime::Process)es the scheduler steps.
//! Lua (mlua, Lua 5.4) is the first engine.
//!
//! Engines must not know about the scheduler's internals: they see
//! [`ProcessInit`](troupe_runtime::ProcessInit) and return
//! [`Step`](troupe_runtime::Step)s.

pub mod lua;
