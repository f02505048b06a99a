//! Zip and .tar.gz script sources over real archives written by the test
//! (with the zip, tar and flate2 crates): reads, listing, change reports when
//! the archive is rewritten, and the entries and sizes that are refused.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use troupe_sources::{ArchiveLimits, Change, Source, SourceError, TarGzSource, Watch, ZipSource};
use zip::write::SimpleFileOptions;

/// Writes `path` atomically (a sibling file renamed over it), as a deploy
/// tool would.
fn replace(path: &Path, write: impl FnOnce(File)) {
    let tmp = path.with_extension("tmp");
    write(File::create(&tmp).unwrap());
    std::fs::rename(&tmp, path).unwrap();
}

fn zip_bytes(file: File, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(file);
    for (name, data) in entries {
        if name.ends_with('/') {
            zip.add_directory(*name, SimpleFileOptions::default())
                .unwrap();
        } else {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap();
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    replace(path, |f| zip_bytes(f, entries));
}

/// A tar.gz with `entries`; a name ending in `/` is a directory. Names are
/// written into the header as they are (the tar crate's `set_path` would
/// refuse `..` and absolute paths, which these tests need).
fn tgz_bytes(file: File, entries: &[(&str, &[u8])]) {
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_gnu_mut().unwrap().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o755);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
        }
        header.set_cksum();
        tar.append(&header, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn write_tgz(path: &Path, entries: &[(&str, &[u8])]) {
    replace(path, |f| tgz_bytes(f, entries));
}

fn text(src: &dyn Source, key: &str) -> String {
    String::from_utf8(src.get(key).unwrap().code.to_vec()).unwrap()
}

/// Collects changes until `want` have all been seen (10 s at most).
fn wait_for(watch: &Watch, want: &[Change]) -> BTreeSet<Change> {
    let want: BTreeSet<Change> = want.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !want.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.recv_timeout(left) {
            Some(change) => {
                seen.insert(change);
            }
            None => panic!("saw {seen:?}, still waiting for {want:?}"),
        }
    }
    seen
}

/// An archive's entries: path and content (a path ending in `/` is a
/// directory).
type Entries<'a> = [(&'a str, &'a [u8])];

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

/// The same checks for both formats: `write` (re)writes the archive at a
/// path, `open` opens a source on it.
fn get_list_and_watch(
    archive: PathBuf,
    write: fn(&Path, &Entries),
    open: fn(&Path) -> Result<Box<dyn Source>, SourceError>,
) {
    write(
        &archive,
        &[
            ("lib/", b""),
            ("lib/util.lua", b"return 'util v1'"),
            ("lib/old.lua", b"return 'old'"),
            ("main.lua", b"return 'main v1'"),
        ],
    );
    let src = open(&archive).unwrap();
    assert_eq!(text(&*src, "main.lua"), "return 'main v1'");
    assert_eq!(text(&*src, "lib/util.lua"), "return 'util v1'");
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/old.lua", "lib/util.lua", "main.lua"]
    );
    assert_eq!(
        src.list("lib/").unwrap(),
        vec!["lib/old.lua", "lib/util.lua"]
    );
    assert!(src.list("nothing/").unwrap().is_empty());
    assert!(matches!(src.get("lib"), Err(SourceError::NotFound { .. })));
    assert!(matches!(
        src.get("nope.lua"),
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        src.get("../main.lua"),
        Err(SourceError::InvalidKey { .. })
    ));
    let v1 = src.get("main.lua").unwrap().version;

    let watch = src.watch("").unwrap();
    write(
        &archive,
        &[
            ("lib/util.lua", b"return 'util v1'"),
            ("lib/new.lua", b"return 'new'"),
            ("main.lua", b"return 'main v2'"),
        ],
    );
    let seen = wait_for(
        &watch,
        &[
            updated("main.lua"),
            updated("lib/new.lua"),
            removed("lib/old.lua"),
        ],
    );
    assert!(
        !seen.contains(&updated("lib/util.lua")),
        "an unchanged entry is not a change: {seen:?}"
    );
    assert_eq!(text(&*src, "main.lua"), "return 'main v2'");
    assert_ne!(src.get("main.lua").unwrap().version, v1);
    assert!(matches!(
        src.get("lib/old.lua"),
        Err(SourceError::NotFound { .. })
    ));
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/new.lua", "lib/util.lua", "main.lua"]
    );

    // Only changes under the watched prefix are reported.
    let lib_watch = src.watch("lib/").unwrap();
    write(
        &archive,
        &[
            ("lib/util.lua", b"return 'util v2'"),
            ("lib/new.lua", b"return 'new'"),
            ("main.lua", b"return 'main v3'"),
        ],
    );
    wait_for(&lib_watch, &[updated("lib/util.lua")]);
    assert_eq!(lib_watch.try_recv(), None, "main.lua is outside lib/");
}

#[test]
fn zip_source_reads_lists_and_reports_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    get_list_and_watch(dir.path().join("scripts.zip"), write_zip, |p| {
        Ok(Box::new(
            ZipSource::open(p)?.debounce(Duration::from_millis(20)),
        ))
    });
}

#[test]
fn tar_gz_source_reads_lists_and_reports_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    get_list_and_watch(dir.path().join("scripts.tar.gz"), write_tgz, |p| {
        Ok(Box::new(
            TarGzSource::open(p)?.debounce(Duration::from_millis(20)),
        ))
    });
}

#[test]
fn a_get_after_a_rewrite_in_place_sees_the_new_archive_without_a_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.tgz");
    tgz_bytes(File::create(&path).unwrap(), &[("./a.lua", b"v1")]);
    let src = TarGzSource::open(&path).unwrap();
    assert_eq!(src.list("").unwrap(), vec!["a.lua"], "./ is dropped");
    assert_eq!(text(&src, "a.lua"), "v1");
    // Rewritten in place (same inode); the added entry of bytes that do not
    // compress makes the file longer, so its stamp differs even on a file
    // system with a coarse clock.
    let noise: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    tgz_bytes(
        File::create(&path).unwrap(),
        &[("a.lua", b"version 2"), ("noise.bin", &noise)],
    );
    assert_eq!(text(&src, "a.lua"), "version 2");
    assert_eq!(src.reload_error(), None);
}

#[test]
fn a_broken_rewrite_keeps_the_last_good_archive_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.zip");
    write_zip(&path, &[("a.lua", b"good")]);
    let src = ZipSource::open(&path).unwrap();
    write_zip(&path, &[("a.lua", b"evil"), ("../escape.lua", b"x")]);
    assert_eq!(text(&src, "a.lua"), "good");
    let err = src.reload_error().expect("the rewrite was refused");
    assert!(
        matches!(&err, SourceError::BadContent { key, .. } if key == "../escape.lua"),
        "{err}"
    );
    // A half-written file (no central directory) is not an archive yet.
    std::fs::write(&path, b"PK\x03\x04 not finished").unwrap();
    assert_eq!(text(&src, "a.lua"), "good");
    assert!(matches!(
        src.reload_error(),
        Some(SourceError::Unavailable { .. })
    ));
    write_zip(&path, &[("a.lua", b"fixed")]);
    assert_eq!(text(&src, "a.lua"), "fixed");
    assert_eq!(src.reload_error(), None);
}

/// Opening `entries` as a zip and as a tar.gz fails with `BadContent`
/// naming `entry` and a reason containing `reason`.
fn refused(entries: &[(&str, &[u8])], limits: ArchiveLimits, entry: &str, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("a.zip");
    write_zip(&zip_path, entries);
    let tgz_path = dir.path().join("a.tar.gz");
    write_tgz(&tgz_path, entries);
    for err in [
        ZipSource::open_with(&zip_path, limits).unwrap_err(),
        TarGzSource::open_with(&tgz_path, limits).unwrap_err(),
    ] {
        match &err {
            SourceError::BadContent {
                key, reason: why, ..
            } => {
                assert_eq!(key, entry, "{err}");
                assert!(why.contains(reason), "{err}");
            }
            other => panic!("expected BadContent, got {other}"),
        }
    }
}

#[test]
fn entries_escaping_the_archive_are_refused() {
    let ok: (&str, &[u8]) = ("fine.lua", b"return 1");
    let limits = ArchiveLimits::default();
    refused(
        &[ok, ("../evil.lua", b"x")],
        limits,
        "../evil.lua",
        "escapes",
    );
    refused(
        &[ok, ("lib/../../evil.lua", b"x")],
        limits,
        "lib/../../evil.lua",
        "escapes",
    );
    refused(
        &[ok, ("/etc/evil.lua", b"x")],
        limits,
        "/etc/evil.lua",
        "absolute",
    );
    refused(
        &[("..\\evil.lua", b"x")],
        limits,
        "..\\evil.lua",
        "backslash",
    );
}

#[test]
fn symbolic_links_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("links.zip");
    replace(&zip_path, |f| {
        let mut zip = zip::ZipWriter::new(f);
        zip.start_file("a.lua", SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"return 1").unwrap();
        zip.add_symlink("link.lua", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        zip.finish().unwrap();
    });
    let err = ZipSource::open(&zip_path).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { key, reason, .. }
            if key == "link.lua" && reason.contains("symbolic link")),
        "{err}"
    );

    let tgz_path = dir.path().join("links.tar.gz");
    replace(&tgz_path, |f| {
        let mut tar = tar::Builder::new(GzEncoder::new(f, Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        tar.append_link(&mut header, "link.lua", "/etc/passwd")
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    });
    let err = TarGzSource::open(&tgz_path).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { key, reason, .. }
            if key == "link.lua" && reason.contains("links are not allowed")),
        "{err}"
    );
}

#[test]
fn entries_and_totals_over_the_limits_are_refused() {
    let big = vec![b'-'; 64 * 1024];
    let limits = ArchiveLimits::new()
        .max_entry_size(32 * 1024)
        .max_total_size(100 * 1024);
    refused(
        &[("small.lua", b"return 1"), ("big.lua", &big)],
        limits,
        "big.lua",
        "larger than the 32768 bytes limit",
    );
    // Each entry fits, all together do not.
    let part = vec![b'-'; 30 * 1024];
    refused(
        &[
            ("a.lua", &part),
            ("b.lua", &part),
            ("c.lua", &part),
            ("d.lua", &part),
        ],
        limits,
        "d.lua",
        "expands to more than the 102400 bytes limit",
    );
    refused(
        &[("a.lua", b"1"), ("b.lua", b"2"), ("c.lua", b"3")],
        ArchiveLimits::new().max_entries(2),
        "c.lua",
        "more than 2 entries",
    );
    // The default: 16 MiB per entry. 17 MiB of zeros compress to little.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    write_zip(&path, &[("bomb.lua", &vec![0u8; 17 << 20])]);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let err = ZipSource::open(&path).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { key, reason, .. }
            if key == "bomb.lua" && reason.contains("16 MiB")),
        "{err}"
    );
}

#[test]
fn a_tar_gz_stream_is_bounded_even_where_no_script_is_read() {
    // A PAX global header (metadata, skipped) of 1 MiB of zeros: reading
    // past it decompresses the whole of it, so the stream bound catches it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.tar.gz");
    replace(&path, |f| {
        let mut tar = tar::Builder::new(GzEncoder::new(f, Compression::fast()));
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_path("pax_global_header").unwrap();
        header.set_size(1 << 20);
        header.set_cksum();
        tar.append(&header, &vec![0u8; 1 << 20][..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    });
    let small = ArchiveLimits::new().max_total_size(4 * 1024).max_entries(2);
    let err = TarGzSource::open_with(&path, small).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { reason, .. }
            if reason.contains("decompressed archive is larger")),
        "{err}"
    );
    // Within the default bounds the same archive is fine (and empty).
    assert!(
        TarGzSource::open(&path)
            .unwrap()
            .list("")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_archive_that_is_not_one_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.zip");
    std::fs::write(&path, b"not a zip at all").unwrap();
    let err = ZipSource::open(&path).unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("zip:"), "{err}");
    let err = TarGzSource::open(&path).unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    let err = ZipSource::open(dir.path().join("missing.zip")).unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
}
