//! What each fuzz target checks, shared by the fuzz targets
//! (`fuzz_targets/`) and by the replay of their committed corpora in the
//! main test suite (`tests/fuzz_corpus.rs`), so every input the fuzzer
//! kept, and every crash it found, stays a regression test on stable.
//!
//! Each check takes arbitrary bytes and must neither panic nor hang: bad
//! input is an error value, and what parses survives its round trip.

use std::collections::BTreeMap;

use troupe_dispatcher::Value;

/// A fuzz target's check: arbitrary bytes in, a panic on a bug.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name, as the corpus directories are named.
#[allow(dead_code)] // Used by the corpus replay, not by a single target.
pub const TARGETS: [(&str, Check); 7] = [
    ("value_msgpack", value_msgpack),
    ("value_json", value_json),
    ("journal_record", journal_record),
    ("expr", expr),
    ("duration", duration),
    ("size", size),
    ("spawn_options", spawn_options),
];

/// The MessagePack codec of messages and journal payloads: whatever
/// decodes encodes back to bytes that decode to the same bytes again.
pub fn value_msgpack(data: &[u8]) {
    if let Ok(v) = Value::from_msgpack(data) {
        let once = v.to_msgpack();
        let again = Value::from_msgpack(&once).expect("an encoded value decodes");
        assert_eq!(again.to_msgpack(), once);
    }
}

/// JSON as the CLI reads its arguments (`troupe run f.lua '{"n": 3}'`):
/// whatever parses prints as JSON that parses to the same text again.
pub fn value_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Value::from_json(text) {
        let once = v.to_json();
        let again = Value::from_json(&once).expect("printed JSON parses");
        assert_eq!(again.to_json(), once);
    }
}

/// A journal record as read back from a workflow store (a corrupt or
/// hostile file): a header or a history entry decodes or is an error.
pub fn journal_record(data: &[u8]) {
    use troupe_workflow::record::{Entry, Header, decode, encode};
    if let Ok(h) = decode::<Header>(data) {
        let bytes = encode(&h).expect("a decoded header encodes");
        assert!(decode::<Header>(&bytes).is_ok());
    }
    if let Ok(e) = decode::<Entry>(data) {
        let _ = e.describe();
        let bytes = encode(&e).expect("a decoded entry encodes");
        assert!(decode::<Entry>(&bytes).is_ok());
    }
}

/// The `expr` front end scripts feed: compiling any text (and running
/// what compiles, with a few variables) is a value or an error.
pub fn expr(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(program) = troupe_modules::builtin::expr::compile(src) {
        let vars: BTreeMap<String, Value> = [
            ("x".to_owned(), Value::Int(7)),
            ("s".to_owned(), Value::from("text")),
            (
                "xs".to_owned(),
                Value::from(vec![Value::Int(1), Value::Float(2.5)]),
            ),
        ]
        .into_iter()
        .collect();
        let _ = program.run(&vars);
    }
}

/// Durations as scripts, flags and hosts give them (`"1.5s"`, `250`,
/// `1e300`): a number of milliseconds or an error, and any number a
/// [`std::time::Duration`] without a panic.
pub fn duration(data: &[u8]) {
    use troupe_modules::builtin::{duration_from_ms, parse_duration_ms};
    let mut values = vec![Value::from(String::from_utf8_lossy(data).into_owned())];
    if let Ok(bytes) = <[u8; 8]>::try_from(data.get(..8).unwrap_or_default()) {
        values.push(Value::Float(f64::from_le_bytes(bytes)));
        values.push(Value::Int(i64::from_le_bytes(bytes)));
    }
    for v in values {
        if let Ok(ms) = parse_duration_ms(&v) {
            let _ = duration_from_ms(ms);
        }
    }
}

/// Sizes as the CLI's flags take them (`10MB`, `512KiB`).
pub fn size(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(n) = troupe_modules::parse_size(&text) {
        assert!(n.get() > 0);
    }
}

/// `process.spawn`'s options table, as MessagePack: whatever a script
/// passes is accepted or `INVALID`, never a panic.
pub fn spawn_options(data: &[u8]) {
    if let Ok(opts) = Value::from_msgpack(data)
        && let Err(e) = troupe_runtime::check_spawn_options(&opts)
    {
        assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::Invalid, "{e}");
    }
}
