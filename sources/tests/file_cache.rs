//! `FileSource` caches what it reads, and never serves stale content: an
//! edit is seen by the next `get` however fast it follows (same length,
//! same second, even with the old modification time put back), a removed
//! file is `NOT_FOUND`, and a file that has not changed is not read again.

use std::fs::{File, FileTimes};
use std::path::Path;
use std::time::Duration;

use troupe_sources::{FileSource, Source, SourceError};

/// Content read within this long of the file's last change is read again
/// on the next `get` (`SETTLED` in `sources/src/file_cache.rs`), plus a
/// margin for the file system's timestamp tick.
const SETTLE: Duration = Duration::from_millis(2_200);

fn code(src: &FileSource, key: &str) -> String {
    let script = src.get(key).expect("the script is there");
    String::from_utf8(script.code.to_vec()).expect("utf-8")
}

/// Writes `text` into `path` in place (same inode), keeping the file's
/// modification time as it was.
fn overwrite_keeping_mtime(path: &Path, text: &str) {
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(path, text).expect("writes");
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_times(FileTimes::new().set_modified(mtime)))
        .expect("sets the mtime back");
}

#[test]
fn every_get_after_a_write_sees_it_even_at_the_same_length_and_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a.lua");
    let src = FileSource::new(dir.path());
    for i in 0..200 {
        // Same length every time, many writes within one second.
        let text = format!("return {}", i % 10);
        if i % 2 == 0 {
            std::fs::write(&path, &text).expect("writes");
        } else {
            overwrite_keeping_mtime(&path, &text);
        }
        assert_eq!(code(&src, "a.lua"), text, "write {i}");
        assert_eq!(code(&src, "a.lua"), text, "write {i}, read again");
    }
}

#[test]
fn an_unchanged_file_is_read_once_and_every_change_is_seen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a.lua");
    std::fs::write(&path, "return 1").expect("writes");
    let src = FileSource::new(dir.path());
    std::thread::sleep(SETTLE);

    let first = src.get("a.lua").expect("there");
    assert_eq!(src.disk_reads(), 1);
    for _ in 0..100 {
        // Clones share the cache.
        let again = src.clone().get("a.lua").expect("there");
        assert_eq!(again, first);
    }
    assert_eq!(src.disk_reads(), 1, "cached loads do not read the file");

    // The same length, the old mtime put back: the ctime still changed.
    overwrite_keeping_mtime(&path, "return 2");
    assert_eq!(code(&src, "a.lua"), "return 2");
    assert_ne!(src.get("a.lua").expect("there").version, first.version);

    // An editor's save: a new file renamed over the old one.
    std::fs::write(dir.path().join(".a.tmp"), "return 3").expect("writes");
    std::fs::rename(dir.path().join(".a.tmp"), &path).expect("renames");
    assert_eq!(code(&src, "a.lua"), "return 3");

    // Removed: not found, and not served from the cache.
    std::fs::remove_file(&path).expect("removes");
    assert!(matches!(
        src.get("a.lua"),
        Err(SourceError::NotFound { .. })
    ));
    std::fs::write(&path, "return 4").expect("writes");
    assert_eq!(code(&src, "a.lua"), "return 4");

    // Once settled, cached again.
    std::thread::sleep(SETTLE);
    let reads = src.disk_reads();
    assert_eq!(code(&src, "a.lua"), "return 4");
    assert_eq!(code(&src, "a.lua"), "return 4");
    assert_eq!(src.disk_reads(), reads + 1);
}

#[test]
fn a_directory_in_place_of_a_file_is_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.lua"), "return 1").expect("writes");
    let src = FileSource::new(dir.path());
    assert_eq!(code(&src, "a.lua"), "return 1");
    std::fs::remove_file(dir.path().join("a.lua")).expect("removes");
    std::fs::create_dir(dir.path().join("a.lua")).expect("creates");
    assert!(matches!(
        src.get("a.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[cfg(unix)]
#[test]
fn a_link_retargeted_outside_the_root_is_refused_not_served_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("real.lua"), "return 1").expect("writes");
    std::fs::write(outside.path().join("secret.lua"), "return 2").expect("writes");
    let link = dir.path().join("link.lua");
    std::os::unix::fs::symlink(dir.path().join("real.lua"), &link).expect("links");
    let src = FileSource::new(dir.path());
    std::thread::sleep(SETTLE);
    assert_eq!(code(&src, "link.lua"), "return 1");
    assert_eq!(code(&src, "link.lua"), "return 1");
    assert_eq!(src.disk_reads(), 1);
    // A file that was plain and becomes a link is resolved again too.
    std::fs::remove_file(&link).expect("removes");
    std::os::unix::fs::symlink(outside.path().join("secret.lua"), &link).expect("links");
    std::fs::remove_file(dir.path().join("real.lua")).expect("removes");
    std::os::unix::fs::symlink(
        outside.path().join("secret.lua"),
        dir.path().join("real.lua"),
    )
    .expect("links");
    for key in ["link.lua", "real.lua"] {
        assert!(
            matches!(src.get(key), Err(SourceError::InvalidKey { .. })),
            "{key}"
        );
    }
}
