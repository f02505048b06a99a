//! The built-in transforms over real files: gzip and zstd decompression
//! (round trips and bombs), AES-256-GCM decryption (round trip, tampering,
//! wrong and malformed keys) and the glob filter.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use flate2::Compression;
use flate2::write::GzEncoder;
use troupe_sources::{
    Change, FileSource, FilterSource, Key, KeyError, Source, SourceError, TransformSource,
};

const SCRIPT: &str = "-- a script\nreturn function(x) return x * 2 end\n";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn text(src: &dyn Source, key: &str) -> String {
    String::from_utf8(src.get(key).unwrap().code.to_vec()).unwrap()
}

/// `get(key)` fails with `BadContent` whose reason contains `reason`.
fn rejected(src: &dyn Source, key: &str, reason: &str) {
    match src.get(key) {
        Err(SourceError::BadContent { reason: why, .. }) => {
            assert!(why.contains(reason), "{why}");
        }
        other => panic!("expected BadContent ({reason}), got {other:?}"),
    }
}

fn write(dir: &Path, key: &str, data: &[u8]) {
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

#[test]
fn gunzip_and_zstd_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.lua", &gzip(SCRIPT.as_bytes()));
    write(dir.path(), "b.lua", &zstd(SCRIPT.as_bytes()));
    // Two zstd frames, a skippable frame between them: one script.
    let mut framed = zstd(b"return ");
    framed.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    framed.extend_from_slice(&zstd(b"42"));
    write(dir.path(), "c.lua", &framed);
    write(dir.path(), "plain.lua", SCRIPT.as_bytes());

    let gz = TransformSource::gunzip(FileSource::new(dir.path()));
    assert_eq!(text(&gz, "a.lua"), SCRIPT);
    assert_eq!(
        gz.get("a.lua").unwrap().version,
        troupe_sources::Script::from_content("a.lua", SCRIPT.as_bytes()).version,
        "the version follows the decompressed content"
    );
    rejected(&gz, "plain.lua", "not valid gzip data");
    assert!(gz.name().starts_with("gunzip(file:"), "{}", gz.name());

    let zs = TransformSource::zstd(FileSource::new(dir.path()));
    assert_eq!(text(&zs, "b.lua"), SCRIPT);
    assert_eq!(text(&zs, "c.lua"), "return 42");
    rejected(&zs, "plain.lua", "not valid zstd data");
    rejected(&zs, "a.lua", "not valid zstd data");
}

#[test]
fn decompression_bombs_are_bounded() {
    // Members of 1 MiB of zeros, concatenated: 20 MiB from ~20 KB.
    let dir = tempfile::tempdir().unwrap();
    let mib = vec![0u8; 1 << 20];
    let (gz_member, zstd_frame) = (gzip(&mib), zstd(&mib));
    write(dir.path(), "bomb.gz", &gz_member.repeat(20));
    write(dir.path(), "bomb.zst", &zstd_frame.repeat(20));
    write(dir.path(), "fits.gz", &gz_member.repeat(2));
    write(dir.path(), "fits.zst", &zstd_frame.repeat(2));
    assert!(std::fs::metadata(dir.path().join("bomb.gz")).unwrap().len() < 1 << 20);

    // The default: 16 MiB.
    let gz = TransformSource::gunzip(FileSource::new(dir.path()));
    rejected(&gz, "bomb.gz", "more than the limit of 16777216 bytes");
    assert_eq!(gz.get("fits.gz").unwrap().code.len(), 2 << 20);
    let zs = TransformSource::zstd(FileSource::new(dir.path()));
    rejected(&zs, "bomb.zst", "more than the limit of 16777216 bytes");
    assert_eq!(zs.get("fits.zst").unwrap().code.len(), 2 << 20);

    // A chosen limit.
    let gz = TransformSource::gunzip_with_limit(FileSource::new(dir.path()), 1 << 20);
    rejected(&gz, "fits.gz", "more than the limit of 1048576 bytes");
    let zs = TransformSource::zstd_with_limit(FileSource::new(dir.path()), (1 << 20) - 1);
    rejected(&zs, "fits.zst", "more than the limit of 1048575 bytes");
    let exact = TransformSource::zstd_with_limit(FileSource::new(dir.path()), 2 << 20);
    assert_eq!(exact.get("fits.zst").unwrap().code.len(), 2 << 20);
}

/// `plain` sealed under `key` with `nonce`: nonce, then ciphertext and tag.
fn seal(key: &[u8; 32], nonce: [u8; 12], plain: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let mut out = nonce.to_vec();
    out.extend(cipher.encrypt(&nonce.into(), plain).unwrap());
    out
}

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

#[test]
fn aes256gcm_decrypts_and_refuses_tampered_or_foreign_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = seal(&KEY, [9; 12], SCRIPT.as_bytes());
    write(dir.path(), "a.lua", &sealed);
    for (name, at) in [
        ("nonce", 0),
        ("ciphertext", 12 + 3),
        ("tag", sealed.len() - 1),
    ] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        write(dir.path(), &format!("tampered-{name}.lua"), &bad);
    }
    write(
        dir.path(),
        "foreign.lua",
        &seal(&[7; 32], [9; 12], SCRIPT.as_bytes()),
    );
    write(dir.path(), "short.lua", b"too short");

    // The key from a file of 64 hex digits and a newline.
    let key_file = dir.path().join("script.key");
    std::fs::write(&key_file, format!("{}\n", hex_of(&KEY))).unwrap();
    let key = Key::from_file(&key_file).unwrap();
    let src = TransformSource::decrypt_aes256gcm(FileSource::new(dir.path()), &key);
    assert_eq!(text(&src, "a.lua"), SCRIPT);
    for name in ["nonce", "ciphertext", "tag"] {
        rejected(
            &src,
            &format!("tampered-{name}.lua"),
            "authentication failed",
        );
    }
    rejected(&src, "foreign.lua", "authentication failed");
    rejected(&src, "short.lua", "too short");
    // A key file of the 32 raw bytes is the same key.
    std::fs::write(&key_file, KEY).unwrap();
    let raw = TransformSource::decrypt_aes256gcm(
        FileSource::new(dir.path()),
        &Key::from_file(&key_file).unwrap(),
    );
    assert_eq!(text(&raw, "a.lua"), SCRIPT);
    // And a wrong key fails every script.
    let wrong =
        TransformSource::decrypt_aes256gcm(FileSource::new(dir.path()), &Key::from_bytes([1; 32]));
    rejected(&wrong, "a.lua", "authentication failed");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bad_key_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.key");
    std::fs::write(&path, "not a key\n").unwrap();
    let err = Key::from_file(&path).unwrap_err();
    assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("bad.key"), "{msg}");
    assert!(msg.contains("32 raw bytes or 64 hex digits"), "{msg}");

    std::fs::write(&path, "g".repeat(64)).unwrap();
    let err = Key::from_file(&path).unwrap_err();
    assert!(err.to_string().contains("not all hex digits"), "{err}");

    let err = Key::from_file(dir.path().join("missing.key")).unwrap_err();
    assert!(matches!(err, KeyError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.key"), "{err}");

    let err = Key::from_env("TROUPE_TEST_KEY_THAT_IS_NOT_SET").unwrap_err();
    assert_eq!(
        err,
        KeyError::MissingVar {
            var: "TROUPE_TEST_KEY_THAT_IS_NOT_SET".into()
        }
    );
    assert!(Key::from_hex(&hex_of(&KEY)).is_ok());
    assert!(Key::from_hex("abc").is_err());
}

/// The variable [`key_from_env_child`] reads.
const ENV_KEY: &str = "TROUPE_SOURCES_TEST_KEY";

/// Runs [`key_from_env_child`] in a child process with the key in the
/// environment (setting a variable in this multi-threaded test process
/// would race other threads reading theirs).
#[test]
fn key_from_env_reads_hex() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "key_from_env_child", "--include-ignored"])
        .env(ENV_KEY, hex_of(&KEY))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by key_from_env_reads_hex with the variable set"]
fn key_from_env_child() {
    let key = Key::from_env(ENV_KEY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.lua", &seal(&KEY, [1; 12], b"return 1"));
    let src = TransformSource::decrypt_aes256gcm(FileSource::new(dir.path()), &key);
    assert_eq!(text(&src, "a.lua"), "return 1");
}

#[test]
fn glob_filter_hides_other_keys_from_get_list_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.lua", b"return 1");
    write(dir.path(), "lib/util.lua", b"return 2");
    write(dir.path(), "notes.txt", b"secret");
    write(dir.path(), "lib/data.json", b"{}");
    let src = FilterSource::glob(
        FileSource::new(dir.path()).debounce(Duration::from_millis(20)),
        ["**/*.lua"],
    )
    .unwrap();
    assert_eq!(src.list("").unwrap(), vec!["lib/util.lua", "main.lua"]);
    assert_eq!(src.list("lib/").unwrap(), vec!["lib/util.lua"]);
    assert_eq!(text(&src, "main.lua"), "return 1");
    assert!(matches!(
        src.get("notes.txt"),
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        src.get("lib/data.json"),
        Err(SourceError::NotFound { .. })
    ));

    let watch = src.watch("").unwrap();
    write(dir.path(), "notes.txt", b"changed");
    write(dir.path(), "lib/new.lua", b"return 3");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let change = watch.recv_timeout(left).expect("no change for lib/new.lua");
        assert_ne!(
            change,
            Change::Updated {
                key: "notes.txt".into()
            },
            "a hidden key's change is not reported"
        );
        if change
            == (Change::Updated {
                key: "lib/new.lua".into(),
            })
        {
            break;
        }
    }
    // Only `*` within a segment: `*.lua` is the top level alone.
    let top = FilterSource::glob(FileSource::new(dir.path()), ["*.lua"]).unwrap();
    assert_eq!(top.list("").unwrap(), vec!["main.lua"]);
    assert!(FilterSource::glob(FileSource::new(dir.path()), ["[oops"]).is_err());
}

#[cfg(feature = "archive")]
#[test]
fn transforms_compose_over_an_archive() {
    use troupe_sources::ZipSource;
    use zip::write::SimpleFileOptions;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scripts.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("a.lua.gz", stored).unwrap();
    zip.write_all(&gzip(SCRIPT.as_bytes())).unwrap();
    zip.start_file("README", stored).unwrap();
    zip.write_all(b"not gzip").unwrap();
    zip.finish().unwrap();

    let src = TransformSource::gunzip(
        FilterSource::glob(ZipSource::open(&path).unwrap(), ["**/*.gz"]).unwrap(),
    );
    assert_eq!(src.list("").unwrap(), vec!["a.lua.gz"]);
    assert_eq!(text(&src, "a.lua.gz"), SCRIPT);
    assert!(matches!(
        src.get("README"),
        Err(SourceError::NotFound { .. })
    ));
}
