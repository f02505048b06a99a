//! `troupe bench --cluster`: the remote jobs, two Troupe nodes beside two
//! Erlang nodes on loopback, in one run.
//!
//! Troupe: an etcd of its own on free loopback ports, then two
//! `troupe run --cluster URL --node a|b` OS processes (this binary
//! re-executed), talking over libp2p; node b serves, node a runs the jobs
//! and prints its timings. Erlang: two `erl -sname` nodes with one cookie
//! (epmd and the distribution on loopback); node a runs
//! `benches/erlang/troupe_bench_cluster.erl`. Each side times the jobs
//! inside node a, so start-up and connecting are not counted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use troupe_dispatcher::Error;

use crate::{BenchArgs, Unit, compile_erlang, on_path};

/// The Erlang half of the remote jobs, compiled with `erlc` at run time.
const ERLANG_SOURCE: &str = include_str!("../../erlang/troupe_bench_cluster.erl");

/// Node b's main process: starts the sink, serves the pings under the
/// global name `bench_echo` until `stop`.
const SERVER: &str = r#"
local process = require("process")
assert(process.spawn("sink.lua"))
assert(process.register("bench_echo", {global = true}))
while true do
  local m = assert(process.receive())
  if m.topic == "stop" then return "stopped" end
  process.send(m.from, "pong", m.payload)
end
"#;

/// Node b's sink (global name `bench_sink`): takes `go` (a count), then
/// that many messages, and answers `done`; again and again.
const SINK: &str = r#"
local process = require("process")
assert(process.register("bench_sink", {global = true}))
while true do
  local go = assert(process.receive("go"))
  for _ = 1, go.payload do assert(process.receive("msg")) end
  process.send(go.from, "done", go.payload)
end
"#;

/// What node a spawns on node b: runs and ends.
const CHILD: &str = "return true\n";

/// Node a: the jobs, timed inside the node, one `NAME VALUE` line each
/// (as the Erlang half prints them); `spawn_error MESSAGE` when a remote
/// spawn is not possible.
const CLIENT: &str = r#"
local process = require("process")
local time = require("time")
local rounds, messages, spawns = ...
local function find(name)
  for _ = 1, 400 do
    local pid = process.whereis(name)
    if pid then return pid end
    time.sleep(25)
  end
  error("no global " .. name .. " (node b did not start)")
end
local echo, sink = find("bench_echo"), find("bench_sink")
local function ping(n)
  for i = 1, n do
    assert(process.send(echo, "ping", i))
    local m = assert(process.receive("pong", 10000))
    if m.payload ~= i then error("out of order pong") end
  end
end
-- Warm up, as the Erlang half does: connected both ways before timing.
ping(100)
local t0 = time.monotonic()
ping(rounds)
print(("ping_pong %.1f"):format((time.monotonic() - t0) * 1e6 / rounds))

t0 = time.monotonic()
assert(process.send(sink, "go", messages))
for i = 1, messages do assert(process.send(sink, "msg", i)) end
assert(process.receive("done", 60000))
print(("one_way %.1f"):format((time.monotonic() - t0) * 1e6 / messages))

-- Remote spawn + run + exit, linked, every EXIT collected.
process.trap_exits(true)
local function spawn_n(n)
  for _ = 1, n do
    local pid, err = process.spawn("child.lua", {node = "b", link = true})
    if not pid then return tostring(err) end
    if not pid:find("^<b%.") then return "the child ran on this node (" .. pid .. ")" end
  end
  for _ = 1, n do
    local m = assert(process.receive("EXIT", 10000))
    if m.payload.reason ~= "normal" then error("a remote child failed: " .. tostring(m.payload.reason)) end
  end
end
local why = spawn_n(1)
if why then
  print("spawn_error " .. why:gsub("%s+", " "))
else
  spawn_n(100)
  t0 = time.monotonic()
  why = spawn_n(spawns)
  if why then error(why) end
  print(("spawn %.1f"):format((time.monotonic() - t0) * 1e6 / spawns))
end
assert(process.send(echo, "stop"))
"#;

/// How long one side of the benchmark may take before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(600);

/// The sizes of the remote jobs.
struct Sizes {
    rounds: usize,
    messages: usize,
    spawns: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let d = if quick { 10 } else { 1 };
        Self {
            rounds: 10_000 / d,
            messages: 100_000 / d,
            spawns: 5_000 / d,
        }
    }
}

/// What node a printed: job name to figure (or to the reason a job could
/// not run).
type Figures = HashMap<String, String>;

/// Steps `troupe bench --cluster` reports.
pub(crate) const STEPS: u64 = 3;

/// Runs the remote jobs on both sides and returns the table.
pub(crate) fn bench(args: &BenchArgs, step: &mut dyn FnMut(u64, &str)) -> Result<String, Error> {
    let sizes = Sizes::new(args.quick);
    let mut notes = Vec::new();
    step(1, "Erlang/OTP distribution");
    let erlang = if args.no_erlang {
        Err("left out (--no-erlang)".to_owned())
    } else {
        erlang(&sizes)
    };
    let erlang = erlang.unwrap_or_else(|why| {
        notes.push(format!("Erlang: {why}."));
        Figures::new()
    });
    step(2, "Troupe nodes");
    let troupe = troupe(args, &sizes).unwrap_or_else(|why| {
        notes.push(format!("Troupe: {why}."));
        Figures::new()
    });
    step(STEPS, "done");
    let number = |f: &Figures, k: &str| f.get(k).and_then(|v| v.parse::<f64>().ok());
    let rows = [
        (
            format!("remote ping-pong round trip ({} rounds)", sizes.rounds),
            "ping_pong",
            Unit::Nanos,
            "≤ 1.5×",
            1.5,
        ),
        (
            format!("one-way remote messages ({})", sizes.messages),
            "one_way",
            Unit::NanosRate,
            "≤ 1× (rate ≥ Erlang's)",
            1.0,
        ),
        (
            format!(
                "remote spawn + run + exit ({} linked, EXIT collected)",
                sizes.spawns
            ),
            "spawn",
            Unit::Nanos,
            "",
            f64::INFINITY,
        ),
    ];
    let mut out = String::from(
        "| job | Erlang/OTP | Troupe | Troupe ÷ Erlang | target | met? |\n\
         |---|---|---|---|---|---|\n",
    );
    for (job, key, unit, target, limit) in rows {
        let (e, t) = (number(&erlang, key), number(&troupe, key));
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| unit.show(v));
        let troupe_cell = match troupe.get(&format!("{key}_error")) {
            Some(_) => "not built".to_owned(),
            None => show(t),
        };
        let (ratio, met) = match (t, e) {
            (Some(t), Some(e)) if e > 0.0 => (
                format!("{:.2}×", t / e),
                match (target.is_empty(), t / e <= limit) {
                    (true, _) => "",
                    (false, true) => "yes",
                    (false, false) => "no",
                },
            ),
            _ => (String::new(), ""),
        };
        out.push_str(&format!(
            "| {job} | {} | {troupe_cell} | {ratio} | {target} | {met} |\n",
            show(e)
        ));
    }
    let workers = args
        .workers
        .map_or_else(|| "one per core".to_owned(), |n| n.to_string());
    out.push_str(&format!(
        "\nTwo nodes on loopback, each its own OS process, timed inside node a. \
         Troupe: `troupe run --cluster` nodes (one libp2p stream per pair of nodes, \
         etcd), workers = {workers}, default limits. Erlang: `erl -sname` nodes, \
         one cookie, epmd and the distribution on 127.0.0.1. Ratios are of the \
         time per unit.\n"
    ));
    if let Some(why) = troupe.get("spawn_error") {
        notes.push(format!("Troupe remote spawn not built: {why}."));
    }
    for n in notes {
        out.push_str(&format!("{n}\n"));
    }
    Ok(out)
}

/// Reads `NAME VALUE` lines.
fn figures(stdout: &[u8]) -> Figures {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let (name, v) = l.split_once(' ')?;
            Some((name.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A scratch directory, removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Scratch, String> {
        let dir = std::env::temp_dir().join(format!("troupe-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let path = self.0.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// A file of the directory to capture output in.
    fn capture(&self, name: &str) -> Result<std::fs::File, String> {
        let path = self.0.join(name);
        std::fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    }

    /// What a capture file holds (empty if unreadable).
    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.0.join(name)).unwrap_or_default()).into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child OS process, killed when dropped.
struct Guard(Child);

impl Guard {
    /// Waits for its end, killing it after [`DEADLINE`].
    fn finish(mut self, what: &str) -> Result<std::process::ExitStatus, String> {
        let started = Instant::now();
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if started.elapsed() > DEADLINE => {
                    return Err(format!("{what} still running after {DEADLINE:?}; killed"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
    }

    /// Whether it has ended.
    fn ended(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Erlang half: node b started bare, node a running the jobs.
fn erlang(sizes: &Sizes) -> Result<Figures, String> {
    if !on_path("erl") || !on_path("erlc") {
        return Err(
            "`erl`/`erlc` not found, Erlang left out (Debian: apt-get install erlang-base)"
                .to_owned(),
        );
    }
    let dir = Scratch::new("erlang-cluster")?;
    compile_erlang(&dir.0, "troupe_bench_cluster.erl", ERLANG_SOURCE)?;
    let id = std::process::id();
    let cookie = format!("troupe_bench_{id}");
    let node = |name: &str| {
        let mut cmd = Command::new("erl");
        cmd.current_dir(&dir.0)
            // epmd, if this starts it, listens on loopback only.
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .args(["-sname", &format!("{name}@localhost")])
            .args(["-setcookie", &cookie, "-noinput", "+P", "1000000"])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .arg("-pa")
            .arg(&dir.0)
            .stdin(Stdio::null());
        cmd
    };
    let b_name = format!("troupe_bench_b{id}");
    let b_err = dir.capture("b.err")?;
    let b = node(&b_name)
        .stdout(Stdio::null())
        .stderr(b_err)
        .spawn()
        .map_err(|e| format!("erl: {e}"))?;
    let _b = Guard(b);
    let call = format!(
        "troupe_bench_cluster:main(['{b_name}@localhost', {}, {}, {}]), init:stop().",
        sizes.rounds, sizes.messages, sizes.spawns
    );
    let a = node(&format!("troupe_bench_a{id}"))
        .args(["-eval", &call])
        .stdout(dir.capture("a.out")?)
        .stderr(dir.capture("a.err")?)
        .spawn()
        .map_err(|e| format!("erl: {e}"))?;
    let status = Guard(a).finish("Erlang node a")?;
    let out = dir.read("a.out");
    if !status.success() || !out.contains("spawn ") {
        return Err(format!(
            "erl failed: {} {}",
            out.trim(),
            dir.read("a.err").trim()
        ));
    }
    Ok(figures(out.as_bytes()))
}

/// The Troupe half: etcd, node b serving, node a running the jobs.
fn troupe(args: &BenchArgs, sizes: &Sizes) -> Result<Figures, String> {
    if !on_path("etcd") {
        return Err(
            "`etcd` not found, Troupe's cluster left out (Debian: apt-get install etcd-server)"
                .to_owned(),
        );
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let dir = Scratch::new("cluster")?;
    for (name, code) in [
        ("server.lua", SERVER),
        ("sink.lua", SINK),
        ("child.lua", CHILD),
        ("client.lua", CLIENT),
        ("cluster.secret", "troupe bench\n"),
    ] {
        dir.write(name, code)?;
    }
    let etcd = Etcd::start(&dir.0)?;
    let url = etcd.url();
    let node = |name: &str, script: &str| -> Result<Command, String> {
        let mut cmd = Command::new(&exe);
        cmd.current_dir(&dir.0)
            .env_remove("RUST_LOG")
            .args(["run", "--cluster", &url, "--node", name])
            .args(["--cluster-secret-file", "cluster.secret"]);
        if let Some(n) = args.workers {
            cmd.args(["--workers", &n.to_string()]);
        }
        cmd.arg(script)
            .stdin(Stdio::null())
            .stdout(dir.capture(&format!("{name}.out"))?)
            .stderr(dir.capture(&format!("{name}.err"))?);
        Ok(cmd)
    };
    let b = node("b", "server.lua")?
        .spawn()
        .map_err(|e| format!("cannot start node b: {e}"))?;
    let mut b = Guard(b);
    let mut a = node("a", "client.lua")?;
    a.args([sizes.rounds, sizes.messages, sizes.spawns].map(|n| n.to_string()));
    let a = a.spawn().map_err(|e| format!("cannot start node a: {e}"))?;
    let status = Guard(a).finish("Troupe node a")?;
    let out = dir.read("a.out");
    if !status.success() {
        let b_err = if b.ended() {
            dir.read("b.err")
        } else {
            String::new()
        };
        return Err(format!(
            "node a failed: {} {} {}",
            out.trim(),
            dir.read("a.err").trim(),
            b_err.trim()
        ));
    }
    // Node b ends with its server (a stopped it); a node that does not is
    // killed with its guard.
    let _ = b.finish("Troupe node b");
    Ok(figures(out.as_bytes()))
}

/// An etcd server of its own on free loopback ports (Debian's
/// `etcd-server`), its data and log in a directory of the caller's,
/// killed when dropped: for this benchmark and the cluster tests.
pub struct Etcd {
    _child: Guard,
    port: u16,
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

impl Etcd {
    /// Starts etcd on free ports and waits until it answers as itself (a
    /// name of its own); a port taken between the probe and etcd's bind
    /// makes etcd exit, and it is tried again on new ports.
    pub fn start(dir: &Path) -> Result<Etcd, String> {
        for attempt in 0..5 {
            if let Some(etcd) = Etcd::try_start(dir, attempt)? {
                return Ok(etcd);
            }
        }
        Err("etcd did not start in five tries".to_owned())
    }

    fn try_start(dir: &Path, attempt: u32) -> Result<Option<Etcd>, String> {
        let (port, peer) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let name = format!("troupe-bench-{port}");
        let log = std::fs::File::create(dir.join(format!("etcd{attempt}.log")))
            .map_err(|e| format!("etcd log: {e}"))?;
        let child = Command::new("etcd")
            .arg(format!("--name={name}"))
            .arg(format!(
                "--data-dir={}",
                dir.join(format!("etcd{attempt}")).display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={name}={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start etcd: {e}"))?;
        let mut child = Guard(child);
        let started = Instant::now();
        while !answers_as(port, &name) {
            if child.ended() {
                return Ok(None);
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("etcd did not answer within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(Etcd {
            _child: child,
            port,
        }))
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Whether the etcd on `port` is the one named `name`: its member list
/// (etcd's JSON gateway) names it.
fn answers_as(port: u16, name: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    stream
        .write_all(
            b"POST /v3/cluster/member/list HTTP/1.0\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )
        .and_then(|()| stream.read_to_string(&mut answer))
        .is_ok()
        && answer.contains(&format!(r#""name":"{name}""#))
}
