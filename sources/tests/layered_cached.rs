//! Layered (fallback / first-ok) and cached (TTL, size bound, invalidation)
//! sources over real memory, file and HTTP sources.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use troupe_sources::{
    CachedSource, Change, ChangeSink, FileSource, HttpSource, LayerStrategy, LayeredSource,
    MemorySource, Script, Source, SourceError, WatchGuard,
};

/// A source that counts the reads reaching it; `watchable` decides whether
/// it passes the inner source's changes on.
struct Counting {
    inner: MemorySource,
    gets: Arc<AtomicUsize>,
    watchable: bool,
}

impl Source for Counting {
    fn name(&self) -> String {
        "counting".into()
    }
    fn get(&self, key: &str) -> Result<Script, SourceError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.inner.list(prefix)
    }
    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        if self.watchable {
            self.inner.subscribe(prefix, sink)
        } else {
            Err(SourceError::Unsupported {
                source_name: self.name(),
                operation: "watch",
            })
        }
    }
}

fn counting(mem: &MemorySource, watchable: bool) -> (Counting, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let src = Counting {
        inner: mem.clone(),
        gets: Arc::clone(&gets),
        watchable,
    };
    (src, gets)
}

/// An HTTP source whose server is down (nothing listens on the port).
fn down() -> HttpSource {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    HttpSource::new(&format!("http://127.0.0.1:{port}/")).unwrap()
}

fn code(src: &dyn Source, key: &str) -> String {
    String::from_utf8(src.get(key).unwrap().code.to_vec()).unwrap()
}

#[test]
fn fallback_takes_the_first_layer_that_has_the_key_and_stops_at_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.lua"), "file a").unwrap();
    std::fs::write(dir.path().join("b.lua"), "file b").unwrap();
    let top = MemorySource::new().with("a.lua", "memory a");
    let src = LayeredSource::new(LayerStrategy::Fallback)
        .layer(top.clone())
        .layer(FileSource::new(dir.path()));
    assert_eq!(code(&src, "a.lua"), "memory a");
    assert_eq!(code(&src, "b.lua"), "file b");
    assert_eq!(src.list("").unwrap(), vec!["a.lua", "b.lua"]);
    let err = src.get("c.lua").unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }));
    assert!(err.to_string().contains("layered-fallback"), "{err}");
    top.remove("a.lua");
    assert_eq!(code(&src, "a.lua"), "file a");

    // A layer that is down is an error, not a reason to serve an older layer.
    let outage = LayeredSource::new(LayerStrategy::Fallback)
        .layer(down())
        .layer(MemorySource::new().with("a.lua", "stale"));
    let err = outage.get("a.lua").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
}

#[test]
fn first_ok_skips_failing_layers() {
    let replica = MemorySource::new().with("a.lua", "replica");
    let src = LayeredSource::new(LayerStrategy::FirstOk)
        .layer(down())
        .layer(replica);
    assert_eq!(code(&src, "a.lua"), "replica");
    let err = src.get("zzz.lua").unwrap_err();
    assert!(
        matches!(err, SourceError::Unavailable { .. }),
        "one layer down, one without the key: {err}"
    );
    let all_missing = LayeredSource::new(LayerStrategy::FirstOk)
        .layer(MemorySource::new())
        .layer(MemorySource::new());
    assert!(matches!(
        all_missing.get("a.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

/// A layer that answers only after `delay` (a replica far away, or hung).
struct Slow {
    delay: Duration,
    inner: MemorySource,
}

impl Source for Slow {
    fn name(&self) -> String {
        "slow".into()
    }
    fn get(&self, key: &str) -> Result<Script, SourceError> {
        std::thread::sleep(self.delay);
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.inner.list(prefix)
    }
}

#[test]
fn first_ok_races_the_layers_so_a_slow_one_does_not_delay_a_fast_one() {
    let slow = Slow {
        delay: Duration::from_secs(2),
        inner: MemorySource::new().with("a.lua", "slow"),
    };
    let src = LayeredSource::new(LayerStrategy::FirstOk)
        .layer(slow)
        .layer(MemorySource::new().with("a.lua", "fast"));
    let started = Instant::now();
    assert_eq!(code(&src, "a.lua"), "fast");
    // Asked one after the other this would take the slow layer's 2 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );

    // A fast failure does not end the race: the slow success is taken.
    let src = LayeredSource::new(LayerStrategy::FirstOk)
        .layer(down())
        .layer(Slow {
            delay: Duration::from_millis(200),
            inner: MemorySource::new().with("a.lua", "slow but there"),
        });
    assert_eq!(code(&src, "a.lua"), "slow but there");
    // All failing: every layer's reason, in layer order.
    let err = src.get("zzz.lua").unwrap_err();
    let text = err.to_string();
    let (http, slow) = (text.find("http:").unwrap(), text.find("slow").unwrap());
    assert!(http < slow, "{text}");
}

#[test]
fn layered_watch_reports_every_layers_changes() {
    let (a, b) = (MemorySource::new(), MemorySource::new());
    let src = LayeredSource::new(LayerStrategy::Fallback)
        .layer(a.clone())
        .layer(b.clone());
    let watch = src.watch("").unwrap();
    b.insert("low.lua", "1").unwrap();
    a.insert("high.lua", "2").unwrap();
    assert_eq!(
        watch.try_recv(),
        Some(Change::Updated {
            key: "low.lua".into()
        })
    );
    assert_eq!(
        watch.try_recv(),
        Some(Change::Updated {
            key: "high.lua".into()
        })
    );
}

#[test]
fn cache_serves_copies_until_the_ttl_runs_out() {
    let mem = MemorySource::new().with("a.lua", "v1");
    let (inner, gets) = counting(&mem, false);
    let long = CachedSource::new(inner).ttl(Duration::from_secs(3600));
    assert_eq!(code(&long, "a.lua"), "v1");
    mem.insert("a.lua", "v2").unwrap();
    assert_eq!(
        code(&long, "a.lua"),
        "v1",
        "fresh copy, source not watchable"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 1);

    let (inner, gets) = counting(&mem, false);
    let short = CachedSource::new(inner).ttl(Duration::from_millis(1));
    assert_eq!(code(&short, "a.lua"), "v2");
    mem.insert("a.lua", "v3").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(code(&short, "a.lua"), "v3", "expired copy is read again");
    assert_eq!(gets.load(Ordering::SeqCst), 2);
}

#[test]
fn cache_is_invalidated_by_the_inner_sources_changes_before_watchers_hear() {
    let mem = MemorySource::new().with("a.lua", "v1").with("b.lua", "b");
    let (inner, gets) = counting(&mem, true);
    let cache = CachedSource::new(inner);
    let watch = cache.watch("").unwrap();
    assert_eq!(code(&cache, "a.lua"), "v1");
    assert_eq!(code(&cache, "b.lua"), "b");
    assert_eq!(code(&cache, "a.lua"), "v1");
    assert_eq!(gets.load(Ordering::SeqCst), 2);

    mem.insert("a.lua", "v2").unwrap();
    assert_eq!(
        watch.try_recv(),
        Some(Change::Updated {
            key: "a.lua".into()
        })
    );
    assert_eq!(code(&cache, "a.lua"), "v2");
    assert_eq!(code(&cache, "b.lua"), "b", "other keys stay cached");
    assert_eq!(gets.load(Ordering::SeqCst), 3);

    mem.remove("b.lua");
    assert!(matches!(
        cache.get("b.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[test]
fn cache_keeps_at_most_its_capacity_evicting_the_least_recently_used() {
    let mem = MemorySource::new()
        .with("a.lua", "a")
        .with("b.lua", "b")
        .with("c.lua", "c");
    let (inner, gets) = counting(&mem, true);
    let cache = CachedSource::new(inner).capacity(2);
    code(&cache, "a.lua");
    code(&cache, "b.lua");
    code(&cache, "a.lua"); // b is now the least recently used
    code(&cache, "c.lua");
    assert_eq!(cache.len(), 2);
    assert_eq!(gets.load(Ordering::SeqCst), 3);
    code(&cache, "a.lua");
    assert_eq!(gets.load(Ordering::SeqCst), 3, "a stayed");
    code(&cache, "b.lua");
    assert_eq!(gets.load(Ordering::SeqCst), 4, "b was evicted");
}

#[test]
fn cache_over_files_sees_edits_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.lua"), "v1").unwrap();
    let cache = CachedSource::new(FileSource::new(dir.path()).debounce(Duration::from_millis(10)));
    let watch = cache.watch("").unwrap();
    assert_eq!(code(&cache, "a.lua"), "v1");
    std::fs::write(dir.path().join("a.lua"), "v2").unwrap();
    // Every change is announced; after the last one the cache serves v2.
    // (A slow write may be announced twice: truncate, then content.)
    loop {
        let change = watch.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            change,
            Some(Change::Updated {
                key: "a.lua".into()
            })
        );
        if code(&cache, "a.lua") == "v2" {
            break;
        }
    }
}
