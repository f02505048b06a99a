//! `kv` from scripts: values of every type round-trip, scans are prefix- and
//! limit-bounded in key order, the policy applies, and the data survives a
//! runtime restart on the same directory.

mod common;

use common::{json, run};
use serde_json::json;
use troupe_dispatcher::{ErrorKind, Value};
use troupe_io::Kv;
use troupe_modules::{Class, Policy, RuleEffect};

fn policy() -> Policy {
    Policy::plugin().allow_class(Class::Storage)
}

#[test]
fn values_round_trip_and_scans_follow_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Kv::open(dir.path()).unwrap();
    let v = run(
        &[&kv],
        policy(),
        r#"
        local kv = require("kv")
        assert(kv.put("user/ada", {name = "Ada", langs = {"en", "fr"}, age = 36, score = 9.5}))
        assert(kv.put("user/bob", "just a string"))
        assert(kv.put("user/cy", true))
        assert(kv.put("userx", 1))
        assert(kv.put("bin", "\0\1\255"))
        local out = {}
        out.ada = kv.get("user/ada")
        out.missing = kv.get("user/zed") == nil
        local keys = {}
        for i, e in ipairs(kv.scan("user/")) do keys[i] = e.key end
        out.keys = keys
        local two = kv.scan("user/", 2)
        out.limited = {#two, two[2].key, two[2].value}
        out.all = #kv.scan()
        out.deleted = {kv.delete("user/bob"), kv.delete("user/bob")}
        out.after = #kv.scan("user/")
        out.bin = #kv.get("bin")
        local ok, err = pcall(kv.put, "k", nil)
        out.put_nil = err:kind()
        return out
        "#,
    )
    .unwrap();
    assert_eq!(
        json(&v),
        json!({
            "ada": {"name": "Ada", "langs": ["en", "fr"], "age": 36, "score": 9.5},
            "missing": true,
            "keys": ["user/ada", "user/bob", "user/cy"],
            "limited": [2, "user/bob", "just a string"],
            "all": 5,
            "deleted": [true, false],
            "after": 2,
            "bin": 3,
            "put_nil": "INVALID",
        })
    );
    // The host sees what the script wrote, through the same store.
    assert_eq!(kv.get("user/cy").unwrap(), Some(Value::Bool(true)));
}

#[test]
fn data_survives_a_runtime_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = Kv::open(dir.path()).unwrap();
        let v = run(
            &[&kv],
            policy(),
            r#"
            local kv = require("kv")
            for i = 1, 50 do assert(kv.put(string.format("n/%03d", i), {i = i, sq = i * i})) end
            assert(kv.put("greeting", "hello"))
            assert(kv.delete("n/050"))
            return #kv.scan("n/")
            "#,
        )
        .unwrap();
        assert_eq!(v, Value::Int(49));
        // The runtime is shut down; close the store as a restarting host does.
        kv.close();
        assert_eq!(
            kv.get("greeting").unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
    // A second open while the first is alive is refused, not corrupted.
    let kv = Kv::open(dir.path()).unwrap();
    let busy = Kv::open(dir.path()).unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Unavailable);
    let v = run(
        &[&kv],
        policy(),
        r#"
        local kv = require("kv")
        local entries = kv.scan("n/")
        return {kv.get("greeting"), #entries, entries[7].value.sq, kv.get("n/050") == nil}
        "#,
    )
    .unwrap();
    assert_eq!(json(&v), json!(["hello", 49, 49, true]));
}

#[test]
fn kv_needs_the_storage_class_and_obeys_action_rules() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Kv::open(dir.path()).unwrap();
    kv.put("secret/token", &Value::from("s3cr3t")).unwrap();

    let e = run(&[&kv], Policy::plugin(), r#"return require("kv")"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    let rules = policy()
        .rule("kv.get", "public/*", RuleEffect::Allow)
        .rule("kv.put", "public/*", RuleEffect::Allow)
        .rule("kv.scan", "public/", RuleEffect::Allow);
    let v = run(
        &[&kv],
        rules,
        r#"
        local kv = require("kv")
        assert(kv.put("public/a", 1))
        local _, get_err = kv.get("secret/token")
        local _, put_err = kv.put("secret/token", "overwritten")
        local _, scan_err = kv.scan("")
        return {kv.get("public/a"), get_err:kind(), put_err:kind(), scan_err:kind(), #kv.scan("public/")}
        "#,
    )
    .unwrap();
    assert_eq!(
        json(&v),
        json!([
            1,
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            1
        ])
    );
    assert_eq!(kv.get("secret/token").unwrap(), Some(Value::from("s3cr3t")));
}
