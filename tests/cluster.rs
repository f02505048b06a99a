//! A cluster of real `troupe` OS processes on loopback, with a real etcd
//! (Debian's `etcd-server`, which .ci/setup installs) on free ports in a
//! temporary directory: global names, remote sends in order, pids
//! rewritten across nodes, links and monitors across nodes, remote spawns
//! within the node's policy, the `cluster` module, and a wrong secret.
#![cfg(feature = "cluster")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use support::Run;

mod support;

/// An etcd server of its own, in a temporary directory, killed when
/// dropped (before the directory goes).
struct Etcd {
    etcd: troupe_bench::Etcd,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let etcd = troupe_bench::Etcd::start(dir.path())
            .unwrap_or_else(|e| panic!("{e} (.ci/setup installs Debian's etcd-server)"));
        Etcd { etcd, _dir: dir }
    }

    fn url(&self) -> String {
        self.etcd.url()
    }
}

/// A node running one script, killed when dropped; output in files.
struct Node {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

/// The scripts every node runs from, and their secrets.
struct Scripts(tempfile::TempDir);

impl Scripts {
    fn new() -> Scripts {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, code) in [
            ("echo.lua", ECHO),
            ("client.lua", CLIENT),
            ("watcher.lua", WATCHER),
            ("partition.lua", PARTITION),
            ("spawner.lua", SPAWNER),
            ("service.lua", SERVICE),
            ("services.lua", SERVICES),
            ("visitor.lua", VISITOR),
            ("probe.lua", &PROBE.replace("SOURCE", "shared")),
            ("right.secret", "the right secret\n"),
            ("wrong.secret", "another secret\n"),
        ] {
            std::fs::write(dir.path().join(name), code).expect("write");
        }
        Scripts(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Starts `troupe run --cluster …` as node `name` with `secret`.
    fn node(&self, etcd: &Etcd, name: &str, secret: &str, script: &[&str]) -> Node {
        self.start("run", etcd, name, secret, script)
    }

    /// Starts `troupe COMMAND --cluster …` as node `name` with `secret`.
    fn start(&self, command: &str, etcd: &Etcd, name: &str, secret: &str, script: &[&str]) -> Node {
        let out = self.path().join(format!("{name}.out"));
        let err = self.path().join(format!("{name}.err"));
        let url = etcd.url();
        let mut args = vec![
            command,
            "--cluster",
            &url,
            "--node",
            name,
            "--cluster-secret-file",
            secret,
            "--allow-module",
            "cluster",
        ];
        args.extend_from_slice(script);
        let child = support::start_with_env(
            self.path(),
            &args,
            &[("RUST_LOG", Some("troupe_cluster=debug"))],
            &out,
            &err,
        );
        Node {
            child: Some(child),
            out,
            err,
        }
    }
}

impl Node {
    /// Waits for the script's end.
    fn finish(mut self, label: &str) -> Run {
        let child = self.child.take().expect("running");
        support::finish(label, child, &self.out, &self.err)
    }

    /// What it logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Node b's service: claims the global name `echo` (or its argument) and
/// answers every message with its payload, until told to stop.
const ECHO: &str = r#"
local process = require("process")
local name = ... or "echo"
assert(process.register(name, {global = true}))
while true do
  local m = assert(process.receive())
  if m.topic == "stop" then return "stopped" end
  assert(process.send(m.from, "echo", m.payload))
end
"#;

/// A client: finds `echo` (waiting for it to be registered), sends it N
/// messages with a window of 1,000 in flight, checks every answer comes
/// back in order and its own pid comes back as its own, and that a
/// message too large to cross is refused; then reports (with `stop`,
/// after stopping echo, whose node then leaves).
const CLIENT: &str = r#"
local process = require("process")
local time = require("time")
local n, wait_ms, stop = ...
local echo
for _ = 1, 400 do
  echo = process.whereis("echo")
  if echo then break end
  time.sleep(50)
end
assert(echo, "no global echo")
local me = process.pid()
local sent, got = 0, 0
while got < n do
  while sent < n and sent - got < 1000 do
    sent = sent + 1
    assert(process.send(echo, "ping", {i = sent, from = me}))
  end
  local m, err = process.receive("echo", wait_ms)
  if not m then return {echo = echo, got = got, error = err:kind()} end
  got = got + 1
  if m.payload.i ~= got then error(("answer %d came as %d"):format(m.payload.i, got)) end
  if m.payload.from ~= me then error("own pid came back as " .. tostring(m.payload.from)) end
end
local _, unknown = process.send("<nowhere.0.1>", "ping", 1)
-- A message too large to cross is refused, not lost on the way.
local _, huge = process.send(echo, "ping", string.rep("x", 65 * 1024 * 1024))
assert(process.send(echo, "ping", {i = got + 1, from = me}))
local after = assert(process.receive("echo", wait_ms))
local cluster = require("cluster")
local nodes = cluster.nodes()
-- Once echo's node has left, sends to its pids are UNAVAILABLE.
local gone
if stop then
  assert(process.send(echo, "stop"))
  for _ = 1, 200 do
    local ok, err = process.send(echo, "ping", {})
    if not ok then gone = err:kind() break end
    time.sleep(50)
  end
end
return {echo = echo, got = got, node = cluster.node(), nodes = nodes,
        unknown = unknown and unknown:kind(), gone = gone,
        huge = huge and huge:kind(), after = after.payload.i - got}
"#;

/// Node a's watcher: links to and monitors `echo` (node b) and `keeper`
/// (node c), trapping exits, and monitors node b; prints `ready` once b
/// has seen all that, then reports the first three notices (b is killed
/// meanwhile), and the two of keeper's normal end.
const WATCHER: &str = r#"
local process = require("process")
local cluster = require("cluster")
local time = require("time")
local function find(name)
  for _ = 1, 400 do
    local pid = process.whereis(name)
    if pid then return pid end
    time.sleep(50)
  end
  error("no global " .. name)
end
local echo, keeper = find("echo"), find("keeper")
process.trap_exits(true)
assert(process.link(echo))
process.monitor(echo)
assert(process.link(keeper))
process.monitor(keeper)
cluster.monitor_node("b")
-- Signals and messages to a node stay in order: once echo answers, b
-- holds the link and the monitor.
assert(process.send(echo, "ping", {}))
assert(process.receive("echo", 10000))
print("ready")
local function notices(n, wait_ms)
  local seen = {}
  for i = 1, n do
    local m, err = process.receive(nil, wait_ms)
    if not m then seen[i] = err:kind() break end
    local p = m.payload
    seen[i] = table.concat({m.topic, tostring(p.pid or p.node), tostring(p.reason)}, " ")
  end
  table.sort(seen)
  return seen
end
local b_down = notices(3, 2000)
assert(process.send(keeper, "stop"))
local keeper_end = notices(2, 10000)
return {echo = echo, keeper = keeper, b_down = b_down, keeper_end = keeper_end,
        nodes = cluster.nodes()}
"#;

/// Node a across a partition: 100 pings of `echo` answered, then
/// (printing `ready`) it waits for b to be stopped: its monitor, link and
/// node monitor fire, and a send fails (printing `partitioned`); then,
/// while b runs again, it checks that no answer arrives twice, and waits
/// for b to rejoin: `steady` is b's again, and answers.
const PARTITION: &str = r#"
local process = require("process")
local cluster = require("cluster")
local time = require("time")
local echo, steady
for _ = 1, 400 do
  echo, steady = process.whereis("echo"), process.whereis("steady")
  if echo and steady then break end
  time.sleep(50)
end
process.trap_exits(true)
assert(process.link(echo))
process.monitor(echo)
cluster.monitor_node("b")
for i = 1, 100 do assert(process.send(echo, "ping", {i = i})) end
for _ = 1, 100 do assert(process.receive("echo", 10000)) end
print("ready")
local seen = {}
for i = 1, 3 do
  local m, err = process.receive(nil, 30000)
  seen[i] = m and (m.topic .. " " .. tostring(m.payload.reason or m.payload.node)) or err:kind()
end
table.sort(seen)
local _, refused = process.send(echo, "ping", {i = 101})
print("partitioned")
local extra = process.receive("echo", 3000)
-- b rejoins with the global names of its live processes: `steady`
-- (echo, linked to this process, ended with noconnection) answers again.
local back
for _ = 1, 600 do
  back = process.whereis("steady")
  if back and process.send(steady, "ping", {i = 102}) then break end
  time.sleep(50)
end
local again = process.receive("echo", 10000)
return {seen = seen, refused = refused and refused:kind(), extra = extra ~= nil,
        back = back == steady, again = again and again.payload.i, nodes = cluster.nodes(),
        echo = process.whereis("echo")}
"#;

/// Node b's processes across a partition: `echo` and `steady`, two echo
/// services with global names.
const SERVICES: &str = r#"
local process = require("process")
process.spawn("echo.lua", {}, "echo")
process.spawn("echo.lua", {}, "steady")
return "serving"
"#;

/// Node a's spawner: once b and c are members, starts `probe.lua` on b,
/// on c, here, and on c with fewer classes, and collects what each probe
/// could load; then a linked probe on b that fails, and four spawns that
/// cannot start.
const SPAWNER: &str = r#"
local process = require("process")
local cluster = require("cluster")
local time = require("time")
for _ = 1, 400 do
  if #cluster.nodes() == 3 then break end
  time.sleep(50)
end
process.trap_exits(true)
local me = process.pid()
local function probe(opts)
  local pid, err = process.spawn("probe.lua", opts, me)
  if not pid then return err:kind() end
  local m = assert(process.receive("probe", 10000))
  m.payload.pid = pid
  m.payload.from_child = m.from == pid
  return m.payload
end
local out = {}
out.b = probe({node = "b"})
out.c = probe({node = "c"})
out.here = probe({})
out.narrowed = probe({node = "c", allow = {"deterministic", "encoding", "process", "cluster"}})
local failing = assert(process.spawn("probe.lua", {node = "b", link = true}, me, "fail"))
local m = assert(process.receive("EXIT", 10000))
out.exit = {pid = m.payload.pid == failing, message = m.payload.reason.message}
local function refused(script, opts, ...)
  local pid, err = process.spawn(script, opts, me, ...)
  return pid or err:kind()
end
out.unknown_node = refused("probe.lua", {node = "nowhere"})
out.bad_node = refused("probe.lua", {node = "not a node"})
out.missing = refused("missing.lua", {node = "b"})
out.huge = refused("probe.lua", {node = "b"}, string.rep("x", 65 * 1024 * 1024))
return out
"#;

/// What a remote spawn starts: tells its parent where it runs, from which
/// source (`SOURCE`), and whether it could load `http` (network) and
/// `json`; fails if asked to.
const PROBE: &str = r#"
local process = require("process")
local parent, mode = ...
if mode == "fail" then error("asked to fail") end
local function can(name) return (pcall(require, name)) end
assert(process.send(parent, "probe", {node = require("cluster").node(), source = "SOURCE",
  http = can("http"), json = can("json")}))
"#;

/// What `troupe node` runs first: claims a global name and ends.
const SERVICE: &str = r#"
local process = require("process")
assert(process.register("service", {global = true}))
return "serving"
"#;

/// Once there are N members (its argument), spawns a probe on node b,
/// and reports what it said and the members.
const VISITOR: &str = r#"
local process = require("process")
local cluster = require("cluster")
local time = require("time")
local n = ...
for _ = 1, 400 do
  if #cluster.nodes() == n then break end
  time.sleep(50)
end
local pid, err = process.spawn("probe.lua", {node = "b"}, process.pid())
if not pid then return {error = err:kind(), nodes = cluster.nodes()} end
local m = assert(process.receive("probe", 10000))
return {node = m.payload.node, nodes = cluster.nodes()}
"#;

fn json(run: &Run) -> Json {
    assert_eq!(run.code, Some(0), "expected success: {run:?}");
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

#[test]
fn a_node_finds_a_global_echo_on_another_and_exchanges_100_000_messages_in_order() {
    // …and once b has left, sends to b's pids are UNAVAILABLE.
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    let b = scripts.node(&etcd, "b", "right.secret", &["echo.lua"]);
    let started = Instant::now();
    let a = scripts.node(
        &etcd,
        "a",
        "right.secret",
        &["client.lua", "100000", "20000", "true"],
    );
    let out = json(&a.finish("node a"));
    let elapsed = started.elapsed();
    let echo = out["echo"].as_str().expect("echo's pid");
    assert!(echo.starts_with("<b.0.") && echo.ends_with('>'), "{out}");
    assert_eq!(out["got"], 100_000, "{out}");
    assert_eq!(out["node"], "a");
    assert_eq!(out["nodes"], json!(["a", "b"]));
    assert_eq!(out["unknown"], "UNAVAILABLE", "{out}");
    assert_eq!(out["huge"], "LIMIT_EXCEEDED", "{out}");
    assert_eq!(out["after"], 1, "the next message still crosses: {out}");
    assert_eq!(out["gone"], "UNAVAILABLE", "{out}");
    let b = b.finish("node b");
    assert_eq!(json(&b), json!("stopped"), "{b:?}");
    eprintln!("100,000 messages each way between two nodes in {elapsed:?}");
}

#[test]
fn links_and_monitors_across_three_nodes_fire_noconnection_when_a_node_is_killed() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    let b = scripts.node(&etcd, "b", "right.secret", &["echo.lua"]);
    let c = scripts.node(&etcd, "c", "right.secret", &["echo.lua", "keeper"]);
    let a = scripts.node(&etcd, "a", "right.secret", &["watcher.lua"]);
    let started = Instant::now();
    while !std::fs::read_to_string(&a.out)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node a never got ready: {}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(b); // SIGKILL
    let run = a.finish("node a");
    let stdout = run.stdout.trim().trim_start_matches("ready").trim();
    let out: Json = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    let echo = out["echo"].as_str().expect("echo's pid");
    let keeper = out["keeper"].as_str().expect("keeper's pid");
    assert!(
        echo.starts_with("<b.0.") && keeper.starts_with("<c.0."),
        "{out}"
    );
    // All three within the 2 s each notice is waited for.
    assert_eq!(
        out["b_down"],
        json!([
            format!("DOWN {echo} noconnection"),
            format!("EXIT {echo} noconnection"),
            "nodedown b nil",
        ]),
        "{out}"
    );
    // Node c's keeper ended normally: its link and monitor say so.
    let c = c.finish("node c");
    assert_eq!(
        out["keeper_end"],
        json!([
            format!("DOWN {keeper} normal"),
            format!("EXIT {keeper} normal")
        ]),
        "{out}\nnode c: {c:?}\nnode a: {run:?}"
    );
    // b's connection is lost: it is no live member any more.
    let nodes = out["nodes"].as_array().expect("nodes");
    assert!(!nodes.contains(&json!("b")), "{out}");
    assert_eq!(json(&c), json!("stopped"));
}

/// Waits until node `node` prints `line`.
fn wait_for_line(node: &Node, line: &str) {
    let started = Instant::now();
    while !std::fs::read_to_string(&node.out)
        .unwrap_or_default()
        .contains(line)
    {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no {line:?} from the node: {}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a node.
fn signal(node: &Node, signal: &str) {
    let pid = node.child.as_ref().expect("running").id().to_string();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_stopped_node_counts_as_gone_once_its_lease_ends_nothing_arrives_twice_and_it_rejoins() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    let b = scripts.start("node", &etcd, "b", "right.secret", &["services.lua"]);
    let a = scripts.node(&etcd, "a", "right.secret", &["partition.lua"]);
    wait_for_line(&a, "ready");
    signal(&b, "STOP");
    wait_for_line(&a, "partitioned");
    signal(&b, "CONT");
    let run = a.finish("node a");
    let stdout = run.stdout.replace("ready", "").replace("partitioned", "");
    let out: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(
        out["seen"],
        json!(["DOWN noconnection", "EXIT noconnection", "nodedown b"]),
        "{out}"
    );
    assert_eq!(out["refused"], "UNAVAILABLE", "{out}");
    assert_eq!(out["extra"], false, "an answer came twice: {out}");
    // Resumed, b finds its lease gone, says so, and rejoins with its name.
    assert_eq!(out["back"], true, "{out}: {}", b.log());
    assert_eq!(out["again"], 102, "{out}");
    assert_eq!(out["nodes"], json!(["a", "b"]), "{out}");
    assert_eq!(out.get("echo"), None, "echo ended with the link: {out}");
    let log = b.log();
    assert!(log.contains("lost the node's lease"), "node b: {log}");
    assert!(log.contains("rejoined the cluster"), "node b: {log}");
}

#[test]
fn a_node_with_the_wrong_secret_cannot_reach_the_others() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    let b = scripts.node(&etcd, "b", "right.secret", &["echo.lua"]);
    let c = scripts.node(&etcd, "c", "wrong.secret", &["client.lua", "1", "3000"]);
    let out = json(&c.finish("node c"));
    assert_eq!(out["got"], 0, "{out}");
    assert_eq!(out["error"], "TIMEOUT", "{out}");
    assert!(
        b.log()
            .contains("refused a connection from outside the cluster"),
        "node b logs the refused connection: {}",
        b.log()
    );
}

#[test]
fn the_cluster_module_is_left_out_of_the_default_policy() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    std::fs::write(
        scripts.path().join("nodes.lua"),
        "return require('cluster').nodes()",
    )
    .expect("write");
    let url = etcd.url();
    let args = ["run", "--cluster", &url, "--node", "d", "nodes.lua"];
    let out = scripts.path().join("d.out");
    let err = scripts.path().join("d.err");
    let run = support::finish(
        "node d",
        support::start(scripts.path(), &args, &out, &err),
        &out,
        &err,
    );
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("PERMISSION_DENIED"), "{run:?}");
}

#[test]
fn a_remote_spawn_runs_from_the_nodes_source_within_its_policy_ceiling() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    // Node b runs from a directory of its own, with the default classes
    // (no network); nodes a and c also allow `http`.
    let own = scripts.path().join("b");
    std::fs::create_dir(&own).expect("mkdir");
    std::fs::write(own.join("echo.lua"), ECHO).expect("write");
    std::fs::write(own.join("probe.lua"), PROBE.replace("SOURCE", "b's")).expect("write");
    let http = ["--allow-module", "http"];
    let _b = scripts.node(&etcd, "b", "right.secret", &["b/echo.lua"]);
    let _c = scripts.node(
        &etcd,
        "c",
        "right.secret",
        &[&http[..], &["echo.lua", "keeper"]].concat(),
    );
    let a = scripts.node(
        &etcd,
        "a",
        "right.secret",
        &[&http[..], &["spawner.lua"]].concat(),
    );
    let out = json(&a.finish("node a"));
    let probe = |at: &str, node: &str, source: &str, http: bool| {
        let p = &out[at];
        assert_eq!(p["node"], node, "{at}: {out}");
        assert_eq!(p["source"], source, "{at}: {out}");
        assert_eq!(p["http"], http, "{at}: {out}");
        assert_eq!(p["json"], true, "{at}: {out}");
        assert_eq!(p["from_child"], true, "{at}: {out}");
    };
    // a may use http, but b's ceiling has no network class.
    probe("b", "b", "b's", false);
    probe("c", "c", "shared", true);
    probe("here", "a", "shared", true);
    // The spawner's `allow` narrows what c would give.
    probe("narrowed", "c", "shared", false);
    let pid = out["b"]["pid"].as_str().expect("a pid");
    assert!(pid.starts_with("<b.0."), "{out}");
    assert_eq!(out["exit"]["pid"], true, "{out}");
    assert!(
        out["exit"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("asked to fail")),
        "the linked child's failure comes back: {out}"
    );
    assert_eq!(out["unknown_node"], "UNAVAILABLE", "{out}");
    assert_eq!(out["bad_node"], "INVALID", "{out}");
    assert_eq!(out["missing"], "NOT_FOUND", "{out}");
    assert_eq!(out["huge"], "LIMIT_EXCEEDED", "{out}");
}

#[test]
fn troupe_node_serves_after_its_script_ends_and_leaves_when_interrupted() {
    let etcd = Etcd::start();
    let scripts = Scripts::new();
    let b = scripts.start("node", &etcd, "b", "right.secret", &["service.lua"]);
    wait_for_line(&b, "\"serving\"");
    // b's script has ended; b still takes spawns.
    let a = scripts.node(&etcd, "a", "right.secret", &["visitor.lua", "2"]);
    let out = json(&a.finish("node a"));
    assert_eq!(out, json!({"node": "b", "nodes": ["a", "b"]}));
    signal(&b, "TERM");
    let run = b.finish("node b");
    assert_eq!(run.code, Some(0), "{run:?}");
    // It left: its lease is revoked, not left to expire.
    let c = scripts.node(&etcd, "c", "right.secret", &["visitor.lua", "1"]);
    let out = json(&c.finish("node c"));
    assert_eq!(out, json!({"error": "UNAVAILABLE", "nodes": ["c"]}));
}
