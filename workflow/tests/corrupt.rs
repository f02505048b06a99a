//! A corrupt workflow store fails calls with an error naming the store,
//! never a panic of the caller or the journal writer, and never a hang.
//! Bits are flipped in a copy of a real store (the history fixture) past
//! its first page, as a disk or a careless tool might.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use troupe_workflow::WorkflowStore;

/// A small deterministic generator (xorshift), so each seed is a case.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Opens the store at `path` and reads everything it lists, on a thread
/// of its own: whether it ended (within a minute) without panicking.
fn read_all(path: &Path) -> bool {
    let path = path.to_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| {
            let Ok(store) = WorkflowStore::open(&path) else {
                return;
            };
            if let Ok(rows) = store.list() {
                for row in rows {
                    let _ = store.header(&row.id);
                    let _ = store.history(&row.id);
                }
            }
            let _ = store.signal("fixture-v1", "poke", troupe_dispatcher::Value::Nil);
        });
        let _ = tx.send(outcome.is_ok());
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or(false)
}

#[test]
fn bit_flips_give_errors_not_panics_or_hangs() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/history_v1.redb");
    let clean = std::fs::read(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for seed in 1..=61u64 {
        let mut bytes = clean.clone();
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..10 {
            let span = (bytes.len() - 4096) as u64;
            let at = 4096 + usize::try_from(xorshift(&mut state) % span).unwrap();
            bytes[at] ^= 1 << (xorshift(&mut state) % 8);
        }
        let path = dir.path().join(format!("seed-{seed}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        if !read_all(&path) {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "seeds that panicked or hung: {failures:?}"
    );
}

#[test]
fn a_new_or_empty_store_is_made_valid_in_place_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let fresh = dir.path().join("sub/fresh.redb");
    for path in [&empty, &fresh] {
        let store = WorkflowStore::open(path).unwrap();
        assert!(store.list().unwrap().is_empty());
        drop(store);
        // Opened again, it is the same valid store.
        assert!(
            WorkflowStore::open(path)
                .unwrap()
                .list()
                .unwrap()
                .is_empty()
        );
        let siblings: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(siblings.is_empty(), "left behind: {siblings:?}");
    }
}
