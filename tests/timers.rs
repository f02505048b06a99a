//! The runtime's timers (a hierarchical wheel driven by the workers) seen
//! from scripts: a sleep never ends before its deadline, many equal
//! deadlines all fire, far-future timers wait, and every way a timer stops
//! mattering (the process is killed or ends, the message comes first)
//! cancels it, so nothing is left pending. No test asserts an upper bound
//! on time.

use std::time::{Duration, Instant};

use troupe::{Class, ErrorKind, Limits, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};

const SCRIPT: &str = r#"
local process = require("process")
local time = require("time")
local M = {}

-- Sleeps each of `ms` in turn; returns the shortest measured/asked ratio
-- scaled by 1000 (>= 1000 means no sleep ended early).
function M.sleeps(...)
  local worst = math.huge
  for _, ms in ipairs({...}) do
    local t0 = time.monotonic()
    time.sleep(ms)
    local took = time.monotonic() - t0
    worst = math.min(worst, took * 1000 / ms)
  end
  return math.floor(worst)
end

-- Sleeps `ms` and returns how long it took.
function M.sleeper(ms)
  local t0 = time.monotonic()
  time.sleep(ms)
  return time.monotonic() - t0
end

-- Spawns n children sleeping `ms` each (the same deadline, give or take
-- the spawn loop) and collects their EXITs.
function M.fan_out(n, ms)
  process.trap_exits(true)
  for _ = 1, n do
    process.spawn("t.lua", { entry = "sleeper", link = true }, ms)
  end
  for _ = 1, n do
    local m = process.receive("EXIT")
    if m.payload.reason ~= "normal" then error("a sleeper failed") end
  end
  return n
end

function M.sleep_forever(ms)
  time.sleep(ms)
  return "woke up"
end

-- Receives n messages, each with a far timeout.
function M.receiver(n, timeout)
  for i = 1, n do
    local m, err = process.receive("go", timeout)
    if m == nil then error("receive " .. i .. " failed: " .. tostring(err)) end
  end
  return n
end

-- A receive whose timeout must fire.
function M.times_out(ms)
  local t0 = time.monotonic()
  local m, err = process.receive("never", ms)
  assert(m == nil and err:kind() == require("errors").TIMEOUT, "expected a timeout")
  return time.monotonic() - t0
end

-- Durations no timer can hold: a sleep that waits forever, and a receive
-- whose timeout never comes before the message does.
function M.odd_durations()
  local forever = process.spawn("t.lua", { entry = "sleep_forever" }, 1e300)
  local m = process.receive("go", math.maxinteger + 0.0)
  assert(m.topic == "go")
  process.kill(forever)
  return "ok"
end

return M
"#;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .source(MemorySource::new().with("t.lua", SCRIPT))
        .engine(LuaEngine::new())
        .default_policy(Policy::plugin().allow_class(Class::Process))
        .build()
        .expect("runtime builds")
}

fn spawn(entry: &str, args: Vec<Value>) -> Spawn {
    Spawn::script("t.lua").entry(entry).args(args)
}

/// Waits until `cond` holds (failing the test after a minute, so a bug
/// hangs nothing).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn sleeps_never_end_before_their_deadline() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let ms: Vec<Value> = [1, 2, 3, 7, 15, 64, 65, 130]
            .into_iter()
            .map(Value::from)
            .collect();
        let worst = rt.spawn(spawn("sleeps", ms)).unwrap().join_blocking();
        let worst = worst.unwrap().as_i64().unwrap();
        assert!(worst >= 1000, "a sleep ended early: {worst}/1000 of it");
        assert_eq!(rt.pending_timers(), 0);
        rt.shutdown();
    }
}

#[test]
fn many_equal_deadlines_all_fire() {
    let rt = runtime(2);
    let n = 3000;
    let h = rt
        .spawn(spawn("fan_out", vec![Value::from(n), Value::from(20)]))
        .unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::from(n));
    assert_eq!(rt.pending_timers(), 0);
    assert_eq!(rt.process_count(), 0);
    rt.shutdown();
}

#[test]
fn killed_sleepers_leave_no_timer_behind() {
    let rt = runtime(2);
    // An hour, a month (a higher level of the wheel) and 1e300 ms (more
    // than any `Duration`: forever).
    let sleeps = [3_600_000.0, 30.0 * 86_400_000.0, 1e300];
    let handles: Vec<_> = (0..300)
        .map(|i| {
            let ms = Value::from(sleeps[i % sleeps.len()]);
            rt.spawn(spawn("sleep_forever", vec![ms])).unwrap()
        })
        .collect();
    eventually("every sleeper asleep", || rt.pending_timers() == 300);
    for h in &handles {
        assert!(h.kill());
    }
    for h in handles {
        assert_eq!(h.join_blocking().unwrap_err().kind(), ErrorKind::Canceled);
    }
    assert_eq!(rt.pending_timers(), 0);
    rt.shutdown();
}

#[test]
fn a_receive_answered_first_cancels_its_timeout() {
    let rt = runtime(2);
    let n = 200;
    // Timeouts from a minute to thirty years: every level of the wheel.
    for timeout in [60_000.0, 1e9, 1e12] {
        let h = rt
            .spawn(spawn(
                "receiver",
                vec![Value::from(n), Value::from(timeout)],
            ))
            .unwrap();
        for _ in 0..n {
            h.try_send("go", Value::Nil).unwrap();
        }
        assert_eq!(h.join_blocking().unwrap(), Value::from(n));
        assert_eq!(rt.pending_timers(), 0, "timeout {timeout} ms");
    }
    rt.shutdown();
}

#[test]
fn receive_timeouts_fire_after_their_deadline() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let h = rt.spawn(spawn("times_out", vec![Value::from(25)])).unwrap();
        let took = h.join_blocking().unwrap().as_f64().unwrap();
        assert!(took >= 25.0, "timed out after {took} ms");
        assert_eq!(rt.pending_timers(), 0);
        rt.shutdown();
    }
}

#[test]
fn wall_clock_limits_fire_and_are_cancelled_when_done() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let limit = |ms| Limits {
            timeout: Some(Duration::from_millis(ms)),
            ..Limits::default()
        };
        // Finishes well within an hour: its limit's timer goes with it.
        let quick = rt
            .spawn(spawn("sleeper", vec![Value::from(1)]).limits(limit(3_600_000)))
            .unwrap();
        assert!(quick.join_blocking().is_ok());
        assert_eq!(rt.pending_timers(), 0);
        // Sleeps past its limit: TIMEOUT, and its sleep's timer goes too.
        let started = Instant::now();
        let slow = rt
            .spawn(spawn("sleep_forever", vec![Value::from(3_600_000)]).limits(limit(30)))
            .unwrap();
        let err = slow.join_blocking().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(rt.pending_timers(), 0);
        rt.shutdown();
    }
}

#[test]
fn durations_beyond_any_timer_neither_panic_nor_fire() {
    let rt = runtime(1);
    let h = rt.spawn(spawn("odd_durations", vec![])).unwrap();
    // The sleeper's and the receive's timers.
    eventually("both timers pending", || rt.pending_timers() == 2);
    h.try_send("go", Value::Nil).unwrap();
    assert_eq!(h.join_blocking().unwrap(), Value::from("ok"));
    // The killed sleeper ends on its own time.
    eventually("the sleeper gone", || rt.process_count() == 0);
    assert_eq!(rt.pending_timers(), 0);
    rt.shutdown();
}
