//! Every input the fuzzers kept (`fuzz/corpus/TARGET/`), crashes they found
//! included, goes through its target's check again on every test run, on
//! the stable toolchain: what was fixed stays fixed. The fuzzing itself
//! runs in `.ci/run` (`cargo +nightly fuzz run TARGET`, 60 s each).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn every_kept_fuzz_input_passes_its_check_again() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, check) in checks::TARGETS {
        let dir = root.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{target}: no corpus");
        for input in inputs {
            let data = std::fs::read(&input).expect("readable corpus file");
            check(&data);
        }
    }
}
