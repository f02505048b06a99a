//! Runs the `plugin_host` example's host over the shipped plugins and checks
//! its transcript: per-plugin policies, the kv-backed async `store`, routing
//! by message, a plugin denied `fs` and one that crashes, and a host that
//! carries on through both.

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/plugin_host.rs"]
mod plugin_host;

use std::path::Path;

#[tokio::test(flavor = "current_thread")]
async fn plugin_host_routes_events_and_survives_bad_plugins() {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins");
    let data = tempfile::tempdir().expect("temp dir");
    let mut lines = Vec::new();
    plugin_host::run(&plugins, data.path(), &mut |l| lines.push(l))
        .await
        .expect("the host runs to the end");
    let text = lines.join("\n");
    println!("{text}");
    let expected = [
        "counter: loaded (topics: count)",
        "greeter: loaded (topics: greet)",
        "journal: loaded (topics: count, greet)",
        "sneaky: failed to load: PERMISSION_DENIED: ",
        r#"event 1 greet {"id":1,"name":"Ada"}"#,
        "  greeter -> hello, Ada (visit #1; other plugins' keys: PERMISSION_DENIED)",
        "  journal -> logged entry #1 (secrets.txt: PERMISSION_DENIED)",
        "event 2 count",
        "  counter -> 4 words (4 so far)",
        "  greeter -> hello, Grace (visit #1;",
        "  greeter -> hello, Ada (visit #2;",
        "event 5 dance",
        "  (no plugin handles it)",
        "event 6 count",
        "  counter -> crashed: INTERNAL: ",
        "  journal -> logged entry #5",
        "event 7 count",
        "  journal -> logged entry #6",
        r#"greeter stopped: "greeted 3 people""#,
        r#"journal stopped: {"entries":6}"#,
        "journal.log has 6 lines",
    ];
    let mut rest = text.as_str();
    for want in expected {
        let at = rest
            .find(want)
            .unwrap_or_else(|| panic!("{want:?} missing (or out of order) in:\n{text}"));
        rest = &rest[at + want.len()..];
    }
    // The crashed counter is gone: nothing else answers for it, and it is not stopped.
    assert_eq!(text.matches("counter ->").count(), 2, "{text}");
    assert!(!text.contains("counter stopped"), "{text}");
    // The plugin denied `fs` never read the host's secret.
    assert!(!text.contains("the host's secret"), "{text}");
    // The store is real: the greeter's counts are in the kv store on disk.
    drop(lines);
    let kv = troupe::Kv::open(data.path().join("store")).expect("store reopens");
    assert_eq!(
        kv.get("greeter/seen/Ada").expect("read"),
        Some(troupe::Value::Int(2))
    );
}
