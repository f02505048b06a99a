//! The dashboard in a real browser: headless Chromium, driven over
//! WebDriver (chromedriver, through fantoccini), against a runtime of over
//! 1,000 processes, a nested supervision tree and a completed workflow.
//! Each page is used as a person would (filter, kill, follow a link) and
//! saved as a screenshot in `$CARGO_TARGET_TMPDIR/screenshots/` (with
//! `TROUPE_UPDATE_SCREENSHOTS=1`, also in `docs/dashboard/`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/setup` installs
//! them): without them the test fails, it does not skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value as Json, json};
use troupe_dashboard::{Dashboard, DashboardHandle};
use troupe_dispatcher::Pid;
use troupe_engines::lua::LuaEngine;
use troupe_modules::{Class, Policy};
use troupe_runtime::{ChildSpec, Runtime, Spawn, Strategy, Supervisor};
use troupe_sources::MemorySource;
use troupe_workflow::{Entry, WorkflowStore};

/// How long any wait for the page (or the runtime) may take.
const DEADLINE: Duration = Duration::from_secs(30);
const TOKEN: &str = "browser-t0ken";
/// The lightweight processes that fill the table.
const CROWD: usize = 1_000;

/// Registers under its argument, if any, and waits.
const IDLE: &str = r#"
local process = require("process")
local name = ...
if name then process.register(name) end
process.receive("stop")
"#;

/// Starts a supervisor of its own (so the tree nests) and waits.
const TEAM: &str = r#"
local supervisor = require("supervisor")
supervisor.start{
  strategy = "one_for_one",
  children = {{id = "inner", script = "idle.lua", args = {"inner"}}},
}
require("process").receive("never")
"#;

/// A workflow of a few journaled steps.
const FLOW: &str = r#"
local time = require("time")
local started = time.now()
time.sleep(1)
local finished = time.now()
return {took_ms = finished - started}
"#;

/// The commands FLOW journals, in order.
const FLOW_COMMANDS: [&str; 3] = ["time.now", "time.sleep", "time.now"];

// --- The browser ---------------------------------------------------------

/// `name` on `PATH`, or a failure that says how to install it.
fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: the browser test needs it \
                 (Debian package `{package}`; `.ci/setup` installs it)"
            )
        })
}

/// A chromedriver on a loopback port it picks, in a process group of its
/// own (with the Chromium it starts), all killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(chromedriver: &Path, log: &Path) -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", chromedriver.display()));
        // It says "… started successfully on port N." on stdout; the rest
        // of its stdout is drained, so that it never blocks on a full pipe.
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = tx.send(port);
                }
            }
        });
        // Constructed first, so that a failure below kills it.
        let mut driver = Self { child, port: 0 };
        driver.port = rx.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            panic!(
                "chromedriver did not say its port ({e}; {:?}); see {}",
                driver.child.try_wait(),
                log.display()
            )
        });
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium in a fresh profile, through its own chromedriver.
struct Browser {
    client: Client,
    driver: Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let chromium = program("chromium", "chromium");
        let chromedriver = program("chromedriver", "chromium-driver");
        let profile = tempfile::tempdir().expect("a temporary profile");
        // Kept after the test, for a failure's post-mortem.
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromedriver.log");
        let driver = Driver::start(&chromedriver, &log);
        // The network is closed here: without these, Chromium waits on
        // connections that are refused (updates, sync, QUIC probes).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
        ]
        .map(String::from);
        let user_data = format!(
            "--user-data-dir={}",
            profile.path().join("chromium").display()
        );
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args.iter().chain([&user_data]).collect::<Vec<_>>(),
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Json::Object(caps) = caps else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}; see {}", log.display()));
        fit_viewport(&client, 1280, 800).await;
        let session = client
            .session_id()
            .await
            .expect("the session id")
            .expect("a session");
        Self {
            client,
            driver,
            session,
            _profile: profile,
        }
    }

    /// Opens the page of `d` at `route` (`#/…`), with the token.
    async fn open(&self, d: &DashboardHandle, route: &str) {
        let url = format!("http://{}/?token={TOKEN}{route}", d.local_addr());
        self.client.goto(&url).await.expect("the page loads");
    }

    /// Ends the session (and so the browser).
    async fn close(self) {
        let Self { client, driver, .. } = self;
        client.close().await.expect("the session ends");
        drop(driver);
    }

    /// What the page logged at level SEVERE since the last call (script
    /// errors, failed requests), through chromedriver's log endpoint.
    async fn console_errors(&self) -> Vec<String> {
        let url = format!("{}/session/{}/se/log", self.driver.url(), self.session);
        let body = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(json!({"type": "browser"}).to_string())
            .send()
            .await
            .expect("chromedriver answers")
            .text()
            .await
            .expect("the log");
        let log: Json = serde_json::from_str(&body).expect("the log is JSON");
        let entries = log["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {log}"));
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Fails on anything the page logged as an error.
    async fn assert_no_errors(&self, page: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{page} logged errors: {errors:#?}");
    }

    /// Saves the viewport as `NAME.png` (see the top of this file).
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let mut dirs = vec![Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
        if std::env::var("TROUPE_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
            dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).expect("the screenshot folder");
            let file = dir.join(format!("{name}.png"));
            std::fs::write(&file, &png)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        }
    }

    /// The texts of the elements `css` selects.
    async fn texts(&self, css: &str) -> Result<Vec<String>, CmdError> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await? {
            out.push(e.text().await?);
        }
        Ok(out)
    }

    /// Fails unless the navigation marks `tab` as the current one.
    async fn assert_tab(&self, tab: &str) {
        let current = self.texts("nav a.current").await.expect("the tabs");
        assert_eq!(current, [tab], "the current tab");
    }

    /// The text of the first element `css` selects, once there is one.
    async fn wait_text(&self, what: &str, css: &str) -> String {
        until(what, async || {
            match self.client.find_all(Locator::Css(css)).await?.first() {
                Some(e) => Ok(Some(e.text().await?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// How many elements `css` selects.
    async fn count(&self, css: &str) -> Result<usize, CmdError> {
        Ok(self.client.find_all(Locator::Css(css)).await?.len())
    }
}

/// Resizes the window so that the page itself (what a screenshot shows)
/// is `width` by `height`: the window's frame takes some of its size.
async fn fit_viewport(client: &Client, width: u32, height: u32) {
    client
        .set_window_size(width, height)
        .await
        .expect("the window is resized");
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await
        .expect("the viewport's size");
    let inner = |i: usize| {
        let n = inner[i]
            .as_u64()
            .unwrap_or_else(|| panic!("a size: {inner}"));
        u32::try_from(n).expect("a small size")
    };
    let (w, h) = (2 * width - inner(0), 2 * height - inner(1));
    client
        .set_window_size(w, h)
        .await
        .expect("the window is resized");
}

/// Polls `probe` until it gives a value, for [`DEADLINE`] at most; a
/// WebDriver error (an element replaced by a live update, say) counts as
/// "not yet".
async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<Option<T>, CmdError>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::from("no error");
    loop {
        match probe().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?} (last error: {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- The runtime ---------------------------------------------------------

/// What the pages show: a crowd of processes, a few named ones, a
/// supervision tree two deep and a completed workflow.
struct World {
    rt: Runtime,
    store: WorkflowStore,
    _dir: tempfile::TempDir,
    /// Found with the filter.
    needle: Pid,
    /// Killed from the page.
    victim: Pid,
    /// Has queued messages.
    inbox: Pid,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = WorkflowStore::open(dir.path().join("wf.redb")).expect("the store opens");
        let rt = Runtime::builder()
            .workers(2)
            .source(
                MemorySource::new()
                    .with("idle.lua", IDLE)
                    .with("team.lua", TEAM)
                    .with("flow.lua", FLOW),
            )
            .engine(LuaEngine::new())
            .default_policy(
                Policy::plugin()
                    .allow_class(Class::Process)
                    .allow_class(Class::Time),
            )
            .journal_store(store.clone())
            .build()
            .expect("the runtime builds");

        rt.spawn(Spawn::workflow("order-1", "flow.lua"))
            .expect("the workflow starts")
            .join_blocking()
            .expect("the workflow completes");
        // The named ones first: the lowest pids, at the top of the table.
        let named = |name: &str| {
            rt.spawn(Spawn::script("idle.lua").args([name]))
                .expect("spawns")
                .pid()
        };
        let (needle, victim, inbox) = (named("needle"), named("victim"), named("inbox"));
        rt.supervise(
            Supervisor::new(Strategy::OneForOne)
                .child(ChildSpec::new("team", Spawn::script("team.lua"))),
        )
        .expect("the supervisor starts");
        for _ in 0..CROWD {
            rt.spawn(Spawn::script("idle.lua").lightweight())
                .expect("a lightweight process spawns");
        }
        for topic in ["order", "invoice"] {
            rt.try_send(inbox, topic, 1).expect("queued");
        }
        let deadline = Instant::now() + DEADLINE;
        while ["needle", "victim", "inbox", "inner"]
            .iter()
            .any(|n| rt.whereis(n).is_none())
        {
            assert!(
                Instant::now() < deadline,
                "the named processes never registered"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            rt,
            store,
            _dir: dir,
            needle,
            victim,
            inbox,
        }
    }

    fn serve(&self) -> DashboardHandle {
        Dashboard::new(&self.rt)
            .token(TOKEN)
            .workflows(self.store.clone())
            .interval(Duration::from_millis(200))
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("the dashboard serves")
    }
}

/// A pid as the page's links write it (`encodeURIComponent`).
fn escaped(pid: &str) -> String {
    pid.replace('<', "%3C").replace('>', "%3E")
}

/// The live count out of `#count`'s "… (N live)" or "… of N live".
fn live_count(text: &str) -> Option<usize> {
    let before = text
        .strip_suffix(" live)")
        .or_else(|| text.strip_suffix(" live"))?;
    before.rsplit([' ', '(']).next()?.parse().ok()
}

// --- The pages -----------------------------------------------------------

async fn processes(b: &Browser, w: &World, d: &DashboardHandle) {
    let c = &b.client;
    b.open(d, "#/processes").await;
    let live = until("the process table fills", async || {
        let count = c.find(Locator::Css("#count")).await?.text().await?;
        let rows = b.count("#processes tr[data-pid]").await?;
        Ok(live_count(&count).filter(|&n| n >= CROWD && rows > 0))
    })
    .await;
    assert!(live >= CROWD, "{live} live");
    let shown = b.count("#processes tr[data-pid]").await.expect("rows");
    assert_eq!(shown, 500, "the table shows at most 500 rows");
    let kills = b.count("#processes button.kill").await.expect("buttons");
    assert_eq!(
        kills, shown,
        "a kill button on each row (the page has the token)"
    );
    b.assert_tab("Processes").await;
    b.screenshot("processes").await;

    // The filter finds a registered name.
    let filter = c.find(Locator::Css("#filter")).await.expect("the filter");
    filter.send_keys("needle").await.expect("typed");
    let found = until("the filter leaves one row", async || {
        match &c.find_all(Locator::Css("#processes tr[data-pid]")).await?[..] {
            [row] => Ok(Some(row.attr("data-pid").await?)),
            _ => Ok(None),
        }
    })
    .await;
    assert_eq!(found, Some(w.needle.to_string()));
    let count = c.find(Locator::Css("#count")).await.expect("#count");
    let count = count.text().await.expect("its text");
    assert!(count.starts_with("1 of "), "{count}");

    // A reload clears the filter; the victim's kill button kills it.
    c.refresh().await.expect("reloads");
    let victim = w.victim.to_string();
    let row = format!("#processes tr[data-pid=\"{victim}\"]");
    let button = format!("{row} button.kill");
    until("the victim's kill button is clicked", async || {
        c.find(Locator::Css(&button)).await?.click().await?;
        Ok(Some(()))
    })
    .await;
    until("the victim's row goes", async || {
        let rows = b.count("#processes tr[data-pid]").await?;
        Ok((rows > 0 && b.count(&row).await? == 0).then_some(()))
    })
    .await;
    assert!(w.rt.process(w.victim).is_none(), "the victim still runs");
    b.assert_no_errors("#/processes").await;
}

async fn process(b: &Browser, w: &World, d: &DashboardHandle) {
    let c = &b.client;
    let pid = w.inbox.to_string();
    let route = format!("#/process/{}", escaped(&pid));
    b.open(d, &route).await;
    let topics = b
        .wait_text("the queued topics show", "dl#process #topics")
        .await;
    assert_eq!(topics, "order, invoice");
    let heading = c.find(Locator::Css("h1")).await.expect("a heading");
    assert_eq!(
        heading.text().await.expect("its text"),
        format!("Process {pid} kill")
    );
    b.assert_tab("Processes").await;
    b.screenshot("process").await;

    // It ends: the page says so.
    assert!(w.rt.kill(w.inbox), "the inbox was alive");
    let gone = b
        .wait_text("the page says the process is gone", "#gone")
        .await;
    assert!(gone.contains("not alive"), "{gone}");
    b.assert_no_errors("#/process").await;
}

async fn supervisors(b: &Browser, w: &World, d: &DashboardHandle) {
    b.open(d, "#/supervisors").await;
    until("two supervisors show", async || {
        Ok((b.count("#supervisors li.supervisor").await? == 2).then_some(()))
    })
    .await;
    // The inner one is nested under the child that started it.
    let nested = b
        .count("#supervisors > li.supervisor > ul > li.child li.supervisor")
        .await
        .expect("nested");
    assert_eq!(nested, 1);
    let children = b
        .texts("#supervisors li.child > strong")
        .await
        .expect("ids");
    assert_eq!(children, ["team", "inner"]);
    let inner = w.rt.whereis("inner").expect("inner runs").to_string();
    let link = format!(
        "#supervisors li.supervisor li.supervisor li.child a[href=\"#/process/{}\"]",
        escaped(&inner)
    );
    assert_eq!(b.count(&link).await.expect("links"), 1, "{link}");
    b.assert_tab("Supervisors").await;
    b.screenshot("supervisors").await;
    b.assert_no_errors("#/supervisors").await;
}

async fn workflows(b: &Browser, w: &World, d: &DashboardHandle) {
    let c = &b.client;
    b.open(d, "#/workflows").await;
    let link = until("the workflow is listed", async || {
        let found = c
            .find_all(Locator::Css("#workflows tr[data-id=\"order-1\"] a"))
            .await?;
        Ok(found.into_iter().next())
    })
    .await;
    let status = b
        .texts("#workflows tr[data-id=\"order-1\"] td")
        .await
        .expect("cells");
    assert_eq!(status[1], "completed", "{status:?}");
    b.assert_tab("Workflows").await;
    b.screenshot("workflows").await;
    b.assert_no_errors("#/workflows").await;

    link.click().await.expect("the link is followed");
    let commands = until("the timeline shows", async || {
        let texts = b.texts("ol#timeline li.step .command").await?;
        Ok((!texts.is_empty()).then_some(texts))
    })
    .await;
    let history: Vec<String> = w
        .store
        .history("order-1")
        .expect("the history")
        .into_iter()
        .map(|Entry::Command { name, .. }| name)
        .collect();
    assert_eq!(commands, history);
    assert_eq!(commands, FLOW_COMMANDS);
    let steps = c
        .find_all(Locator::Css("ol#timeline li.step"))
        .await
        .expect("steps");
    for (i, step) in steps.iter().enumerate() {
        let n = step.attr("data-step").await.expect("its number");
        assert_eq!(n, Some((i + 1).to_string()));
    }
    assert!(
        c.current_url()
            .await
            .expect("the URL")
            .as_str()
            .ends_with("#/workflow/order-1")
    );
    b.assert_tab("Workflows").await;
    b.screenshot("workflow").await;
    b.assert_no_errors("#/workflow").await;
}

#[test]
fn the_dashboard_works_in_a_browser() {
    let world = World::new();
    let dashboard = world.serve();
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    io.block_on(async {
        let browser = Browser::start().await;
        processes(&browser, &world, &dashboard).await;
        process(&browser, &world, &dashboard).await;
        supervisors(&browser, &world, &dashboard).await;
        workflows(&browser, &world, &dashboard).await;
        browser.close().await;
    });
    world.rt.shutdown();
}

#[test]
#[should_panic(expected = ".ci/setup")]
fn a_missing_browser_fails_the_test_and_says_how_to_install_it() {
    program("troupe-no-such-browser", "chromium");
}

#[test]
fn the_live_count_is_read_from_both_forms() {
    assert_eq!(live_count("showing 500 of 1006 (1006 live)"), Some(1006));
    assert_eq!(live_count("1 of 1006 live"), Some(1006));
    assert_eq!(live_count(""), None);
}
