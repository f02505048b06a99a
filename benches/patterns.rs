//! Lua patterns: `string.find`/`match`/`gmatch`/`gsub` in a Troupe process
//! (the bounded port, `engines/src/lua/patterns.rs`, with the prelude's
//! Lua wrappers) against the same calls on Lua's C functions in a bare
//! mlua state, in the same run, so the ratio is the cost of bounding the
//! matcher.
//!
//! Each sample runs `iters` rounds of the same work: a `find` with
//! captures, a `match`, a `gmatch` word count and two `gsub`s over a
//! ~1 KB text. The Troupe side runs them in one process (spawn and join
//! are amortised over the loop).
//!
//! Run with `cargo bench --bench patterns`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mlua::{Function, Lua};
use troupe::{LuaEngine, MemorySource, Runtime, Spawn, Value};

/// The work, as a function of the text and the number of rounds.
const WORK: &str = r#"
local text, n = ...
local words = 0
for _ = 1, n do
  local a, b, key, value = string.find(text, "(%w+)%s*=%s*(%w+)")
  local date = string.match(text, "(%d+)-(%d+)-(%d+)")
  for _ in string.gmatch(text, "%a+") do words = words + 1 end
  local squeezed = string.gsub(text, "%s+", " ")
  local upper = string.gsub(text, "%f[%a]%a", string.upper)
  assert(key and date and #squeezed > 0 and #upper > 0)
end
return words
"#;

fn text() -> String {
    "The quick brown fox, key = value, jumps over the lazy dog on 2024-12-04.  ".repeat(14)
}

fn bench(c: &mut Criterion) {
    let text = text();
    let mut g = c.benchmark_group("lua_patterns");
    g.sample_size(20);

    let raw = Lua::new();
    let work: Function = raw
        .load(format!("return function(...) {WORK} end"))
        .eval()
        .expect("raw chunk");
    g.bench_function("raw_mlua_c_matcher", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let words: i64 = work.call((text.as_str(), iters)).expect("raw run");
            black_box(words);
            start.elapsed()
        });
    });

    let rt = Runtime::builder()
        .workers(1)
        .source(MemorySource::new().with("work.lua", WORK))
        .engine(LuaEngine::new())
        .build()
        .expect("runtime builds");
    g.bench_function("troupe_bounded_matcher", |b| {
        b.iter_custom(|iters| -> Duration {
            let n = Value::Int(i64::try_from(iters).expect("iteration count fits i64"));
            let start = Instant::now();
            let h = rt
                .spawn(Spawn::script("work.lua").args([Value::from(text.as_str()), n]))
                .expect("spawn");
            black_box(h.join_blocking().expect("join"));
            start.elapsed()
        });
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
