//! Messaging benchmarks, each beside a raw baseline measured in the same
//! run, so the interesting figure is the ratio.
//!
//! * `send_receive` — throughput of messages from one process to another:
//!   a Lua producer sends N integers to a consumer that receives them all
//!   (selective `receive("n")`, order checked), both on a 2-worker runtime
//!   with the default 1024-message mailbox (the producer yields and retries
//!   on `RATE_LIMITED`); against two OS threads over a
//!   `crossbeam_channel::bounded(1024)`. Time per message.
//! * `host_round_trip` — host → process → host: the host sends from a host
//!   mailbox to a Lua echo process and awaits the reply with `recv().await`;
//!   against a host thread and an echo thread over two crossbeam channels.
//!   Time per round trip.
//!
//! Run with `cargo bench --bench messaging`.

use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use troupe::{Class, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

#[path = "support/lua.rs"]
mod lua_support;

use lua_support::{PONG, count};

const SCRIPT: &str = r#"
local process = require("process")
local M = {}

function M.consumer(n)
  for i = 1, n do
    local m = process.receive("n")
    if m.payload ~= i then error("out of order") end
  end
  return n
end

function M.producer(to, n)
  local send = process.send
  for i = 1, n do
    while not send(to, "n", i) do coroutine.yield() end
  end
end

return M
"#;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(
            MemorySource::new()
                .with("bench.lua", SCRIPT)
                .with("pong.lua", PONG),
        )
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn send_receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("send_receive");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    g.bench_function("crossbeam_bounded_1024_two_threads", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
            let start = Instant::now();
            let consumer = thread::spawn(move || {
                for i in 0..iters {
                    assert_eq!(rx.recv().expect("message"), i);
                }
            });
            for i in 0..iters {
                tx.send(i).expect("send");
            }
            consumer.join().expect("consumer");
            start.elapsed()
        });
    });

    let rt = runtime();
    g.bench_function("troupe_two_processes", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let consumer = rt
                .spawn(
                    Spawn::script("bench.lua")
                        .entry("consumer")
                        .args([count(iters)]),
                )
                .expect("consumer");
            let producer = rt
                .spawn(
                    Spawn::script("bench.lua")
                        .entry("producer")
                        .args([Value::from(consumer.pid().to_string()), count(iters)]),
                )
                .expect("producer");
            assert_eq!(consumer.join_blocking().expect("consumer"), count(iters));
            let elapsed = start.elapsed();
            producer.join_blocking().expect("producer");
            elapsed
        });
    });
    g.finish();
    rt.shutdown();
}

fn host_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("host_round_trip");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    g.bench_function("crossbeam_echo_thread", |b| {
        let (to_echo, echo_rx) = crossbeam_channel::bounded::<u64>(1);
        let (echo_tx, from_echo) = crossbeam_channel::bounded::<u64>(1);
        let echo = thread::spawn(move || {
            while let Ok(v) = echo_rx.recv() {
                if echo_tx.send(v).is_err() {
                    break;
                }
            }
        });
        b.iter(|| {
            to_echo.send(7).expect("send");
            assert_eq!(from_echo.recv().expect("reply"), 7);
        });
        drop(to_echo);
        echo.join().expect("echo thread");
    });

    let rt = runtime();
    let inbox = rt.mailbox();
    let echo = rt.spawn(Spawn::script("pong.lua")).expect("echo");
    g.bench_function("troupe_host_mailbox_to_process", |b| {
        b.iter_custom(|iters| {
            rt.io().block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    inbox.try_send(echo.pid(), "ping", count(i)).expect("send");
                    let reply = inbox.recv().await;
                    assert_eq!(reply.payload, count(i));
                }
                start.elapsed()
            })
        });
    });
    g.finish();
    echo.try_send("stop", ()).expect("stop");
    echo.join_blocking().expect("echo ends");
    rt.shutdown();
}

criterion_group!(benches, send_receive, host_round_trip);
criterion_main!(benches);
