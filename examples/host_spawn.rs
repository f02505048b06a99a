//! A Rust host embedding Troupe: build a runtime over the scripts in
//! `examples/`, spawn processes with arguments, and await their results.
//!
//! ```text
//! cargo run --example host_spawn
//! ```

use std::path::Path;

use troupe::{FileSource, LuaEngine, Policy, Runtime, Spawn, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), troupe::Error> {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let rt = Runtime::builder()
        .workers(2)
        .source(FileSource::new(scripts))
        .engine(LuaEngine::new())
        .build()?;

    // `hello.lua` only needs the plugin preset (json, time, …).
    let hello = rt.spawn(
        Spawn::script("hello.lua")
            .args(["host"])
            .policy(Policy::plugin()),
    )?;

    // `ping_pong.lua` spawns and messages a second process: it needs the
    // `process` class on top of the plugin preset.
    let ping_pong = rt.spawn(
        Spawn::script("ping_pong.lua")
            .args([100])
            .policy(Policy::plugin().allow_class(troupe::Class::Process)),
    )?;

    // Both run concurrently on the runtime's workers; await them in turn.
    let greeting: Value = hello.join().await?;
    println!("hello.lua     -> {}", greeting.to_json());
    let rounds: Value = ping_pong.join().await?;
    println!("ping_pong.lua -> {}", rounds.to_json());

    rt.shutdown();
    Ok(())
}
