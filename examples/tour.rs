//! The README's tour from Rust: a host module scripts can `require`, and a
//! script spawned as a process that uses it.
//!
//! `cargo run --release --example tour` prints `"hello, world"`.

use troupe::{Class, LuaEngine, ModuleDef, Policy, Runtime, Spawn, Value};

fn main() -> Result<(), troupe::Error> {
    let greeter = ModuleDef::new("greeter")
        .class(Class::Deterministic)
        .typed_function("hello", |_cx, (name,): (String,)| {
            Ok(format!("hello, {name}"))
        });
    let rt = Runtime::builder()
        .engine(LuaEngine::new())
        .module(greeter)
        .build()?;
    let code = r#"return require("greeter").hello("world")"#;
    let h = rt.spawn_code(Spawn::script("hi.lua").policy(Policy::plugin()), code)?;
    let greeting = h.join_blocking()?;
    assert_eq!(greeting, Value::from("hello, world"));
    println!("{}", greeting.to_json());
    rt.shutdown();
    Ok(())
}
