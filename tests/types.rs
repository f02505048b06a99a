//! `troupe types` and `troupe docs`: definition files follow the policy and
//! type-check real scripts with a real Lua type checker (`emmylua_check`),
//! and the committed module reference is exactly what `troupe docs` prints.

use std::path::Path;
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn troupe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the troupe binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes definitions for `policy_flags` into a fresh directory.
fn definitions(policy_flags: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8 temp path");
    let mut args = vec!["types", "--out", out];
    args.extend_from_slice(policy_flags);
    let run = troupe(&args);
    assert!(run.status.success(), "troupe types failed: {run:?}");
    dir
}

#[test]
fn committed_module_reference_is_generated() {
    let run = troupe(&["docs"]);
    assert!(run.status.success(), "troupe docs failed: {run:?}");
    let generated = text(&run.stdout);
    let committed = std::fs::read_to_string(repo().join("docs/modules.md"))
        .expect("docs/modules.md is committed");
    assert!(
        generated == committed,
        "docs/modules.md is stale: regenerate it with \
         `cargo run --release -- docs > docs/modules.md`"
    );
    for module in ["errors", "json", "base64", "hash", "log", "time", "process"] {
        assert!(
            generated.contains(&format!("## `{module}`")),
            "{module} is documented"
        );
    }
    assert!(
        generated.contains(
            "- `json.decode(text: string) -> any?, err: troupe.Error?` — Parses JSON text"
        )
    );
}

#[test]
fn every_module_the_cli_offers_has_a_true_manifest() {
    let registry = troupe::ModuleRegistry::with_builtins();
    let problems: Vec<String> = registry
        .iter()
        .map(|m| &**m)
        .chain(troupe_io::definitions().iter())
        .flat_map(troupe::types::check)
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn definitions_cover_exactly_what_the_policy_allows() {
    let dir = definitions(&["--allow", "deterministic,encoding", "--deny-module", "hash"]);
    let exists = |name: &str| dir.path().join(name).is_file();
    assert!(exists("troupe.lua") && exists("json.lua") && exists("errors.lua"));
    assert!(!exists("hash.lua"), "denied by name");
    assert!(
        !exists("time.lua") && !exists("process.lua"),
        "class not allowed"
    );

    let json = std::fs::read_to_string(dir.path().join("json.lua")).expect("json.lua");
    assert!(json.starts_with("---@meta json\n"));
    assert!(json.contains(
        "---@param text string\n---@return any?\n---@return troupe.Error? err\nfunction json.decode(text) end"
    ));

    let all = definitions(&["--allow", "all"]);
    assert!(all.path().join("process.lua").is_file());
    let bad = troupe(&["types", "--out", "unused", "--allow", "bogus"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).starts_with("INVALID: unknown module class \"bogus\""));
}

/// Runs `emmylua_check` on `workspace` with the definitions in `library`.
fn emmylua_check(workspace: &Path, library: &Path) -> Output {
    let config = serde_json::json!({
        "runtime": { "version": "Lua5.4" },
        "workspace": { "library": [library] },
        "diagnostics": {
            "severity": { "param-type-mismatch": "error", "missing-parameter": "error" }
        }
    });
    let config_path = library.join(".emmyrc.json");
    std::fs::write(&config_path, config.to_string()).expect("write config");
    Command::new("emmylua_check")
        .arg("--config")
        .arg(&config_path)
        .arg(workspace)
        .output()
        .expect("emmylua_check is installed (`cargo install emmylua_check`; .ci/run does it)")
}

#[test]
fn a_real_type_checker_accepts_the_examples_and_catches_a_wrong_argument() {
    let defs = definitions(&["--allow", "all"]);
    let ok = emmylua_check(&repo().join("examples"), defs.path());
    assert!(
        ok.status.success(),
        "examples/*.lua must type-check against the generated definitions:\n{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );

    let bad = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        bad.path().join("wrong.lua"),
        "local hash = require(\"hash\")\nreturn hash.sha256({ 1, 2, 3 })\n",
    )
    .expect("write sample");
    let caught = emmylua_check(bad.path(), defs.path());
    let report = format!("{}{}", text(&caught.stdout), text(&caught.stderr));
    assert!(
        !caught.status.success(),
        "a table passed as a string must fail the check:\n{report}"
    );
    assert!(report.contains("wrong.lua"), "{report}");
    assert!(report.contains("param-type-mismatch"), "{report}");
}
