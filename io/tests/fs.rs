//! `fs` from scripts: files under the granted root work; every way out of
//! the root (`..`, absolute paths, symlinks pointing out, NUL bytes) is
//! `PERMISSION_DENIED` and touches nothing outside.

mod common;

use std::path::Path;

use common::{json, run};
use serde_json::json;
use troupe_dispatcher::ErrorKind;
use troupe_io::Fs;
use troupe_modules::{Class, Policy, RuleEffect};

fn policy() -> Policy {
    Policy::plugin().allow_class(Class::Io)
}

/// A root `root/` with `a/hello.txt`, beside an `outside/` directory holding
/// `secret.txt`; inside the root, `out` links to `outside/` and `secret`
/// links to `outside/secret.txt`.
fn layout(base: &Path) -> std::path::PathBuf {
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("a/hello.txt"), "hello").unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("secret")).unwrap();
    // A relative link that stays inside is fine.
    std::os::unix::fs::symlink("a/hello.txt", root.join("inside")).unwrap();
    root
}

#[test]
fn scripts_read_write_list_stat_and_remove_under_the_root() {
    let base = tempfile::tempdir().unwrap();
    let root = layout(base.path());
    let fs = Fs::open(&root).unwrap();
    let v = run(
        &[&fs],
        policy(),
        r#"
        local fs = require("fs")
        local errors = require("errors")
        local out = {}
        out.read = fs.read("a/hello.txt")
        out.via_inside_link = fs.read("inside")
        assert(fs.mkdir("b/c"))
        assert(fs.write("b/c/note.txt", "written by a script"))
        assert(fs.write("b/bin", "\0\1\255"))
        out.bin_len = #fs.read("b/bin")
        out.list_root = fs.list()
        out.list_b = fs.list("b")
        local st = fs.stat("b/c/note.txt")
        out.stat = {type = st.type, size = st.size, has_mtime = st.modified > 0}
        out.stat_dir = fs.stat("b").type
        local missing, err = fs.read("nope.txt")
        out.missing = {missing == nil, err:kind()}
        local _, dir_err = fs.read("b")
        out.read_dir = dir_err:kind()
        assert(fs.remove("b/c/note.txt"))
        assert(fs.remove("b/c"))
        local _, nonempty = fs.remove("b")
        out.remove_nonempty = nonempty:kind()
        local _, root_err = fs.remove(".")
        out.remove_root = root_err:kind()
        return out
        "#,
    )
    .unwrap();
    assert_eq!(
        json(&v),
        json!({
            "read": "hello",
            "via_inside_link": "hello",
            "bin_len": 3,
            "list_root": ["a", "b", "inside", "out", "secret"],
            "list_b": ["bin", "c"],
            "stat": {"type": "file", "size": 19, "has_mtime": true},
            "stat_dir": "dir",
            "missing": [true, "NOT_FOUND"],
            "read_dir": "INVALID",
            "remove_nonempty": "INVALID",
            "remove_root": "PERMISSION_DENIED",
        })
    );
    // The script's writes are real files under the root.
    assert_eq!(std::fs::read(root.join("b/bin")).unwrap(), [0, 1, 255]);
    assert!(!root.join("b/c").exists());
}

#[test]
fn every_way_out_of_the_root_is_permission_denied() {
    let base = tempfile::tempdir().unwrap();
    let root = layout(base.path());
    let fs = Fs::open(&root).unwrap();
    let v = run(
        &[&fs],
        policy(),
        r#"
        local fs = require("fs")
        local attempts = {
            {"read", "../outside/secret.txt"},
            {"read", "a/../../outside/secret.txt"},
            {"read", "a/.."},
            {"read", "/etc/passwd"},
            {"read", "out/secret.txt"},
            {"read", "secret"},
            {"read", "a/hello.txt\0.png"},
            {"stat", "out/secret.txt"},
            {"stat", "/"},
            {"list", "out"},
            {"list", ".."},
            {"write", "out/planted.txt", "x"},
            {"write", "../planted.txt", "x"},
            {"write", "/tmp/planted.txt", "x"},
            {"mkdir", "out/newdir"},
            {"remove", "out/secret.txt"},
            {"remove", "../outside/secret.txt"},
        }
        local kinds = {}
        for i, a in ipairs(attempts) do
            local v, err = fs[a[1]](a[2], a[3])
            kinds[i] = v == nil and err:kind() or ("LEAKED: " .. tostring(v))
        end
        return kinds
        "#,
    )
    .unwrap();
    let kinds = json(&v);
    let kinds = kinds.as_array().unwrap();
    assert_eq!(kinds.len(), 17);
    for (i, k) in kinds.iter().enumerate() {
        assert_eq!(k, "PERMISSION_DENIED", "attempt #{}", i + 1);
    }
    // Nothing outside the root was touched.
    let outside = base.path().join("outside");
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "top secret"
    );
    assert!(!outside.join("planted.txt").exists());
    assert!(!outside.join("newdir").exists());
    assert!(!base.path().join("planted.txt").exists());
}

#[test]
fn fs_needs_the_io_class_and_obeys_action_rules() {
    let base = tempfile::tempdir().unwrap();
    let root = layout(base.path());
    std::fs::create_dir_all(root.join("private")).unwrap();
    std::fs::write(root.join("private/key"), "k").unwrap();
    let fs = Fs::open(&root).unwrap();

    let e = run(&[&fs], Policy::plugin(), r#"return require("fs")"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    let rules = policy().rule("fs.read", "a/**", RuleEffect::Allow).rule(
        "fs.write",
        "**",
        RuleEffect::Deny,
    );
    let v = run(
        &[&fs],
        rules,
        r#"
        local fs = require("fs")
        local _, read_err = fs.read("private/key")
        local _, write_err = fs.write("a/new.txt", "x")
        return {fs.read("a/hello.txt"), read_err:kind(), write_err:kind(), #fs.list()}
        "#,
    )
    .unwrap();
    assert_eq!(
        json(&v),
        json!(["hello", "PERMISSION_DENIED", "PERMISSION_DENIED", 5])
    );
    assert!(!root.join("a/new.txt").exists());
}

#[test]
fn reads_are_bounded_and_a_missing_root_is_not_found() {
    let base = tempfile::tempdir().unwrap();
    let root = layout(base.path());
    std::fs::write(root.join("big"), vec![b'x'; 2048]).unwrap();
    let fs = Fs::open(&root).unwrap().max_read_bytes(1024);
    let v = run(
        &[&fs],
        policy(),
        r#"
        local fs = require("fs")
        local _, err = fs.read("big")
        return {err:kind(), fs.read("a/hello.txt")}
        "#,
    )
    .unwrap();
    assert_eq!(json(&v), json!(["LIMIT_EXCEEDED", "hello"]));

    let e = Fs::open(base.path().join("no-such-dir")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
