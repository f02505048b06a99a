//! Escape corpora (one attempt per file, its first line a comment naming
//! the outcome expected: `-- expect: KIND` in Lua, `# expect: KIND` in TCL)
//! and the host module their attackers try to reach.

use std::path::Path;

use troupe::{Class, ModuleDef, Ret, Value};

/// One attempt of a corpus.
pub struct Attempt {
    /// The file's name (its key in a `FileSource` over the directory).
    pub name: String,
    /// The script.
    pub code: String,
    /// The outcome its first line names: an error kind or `contained`.
    pub expected: String,
}

/// The attempts in `dir` whose extension is `ext`, sorted by name; each
/// file's first line is `{comment} expect: KIND`.
pub fn attempts(dir: &Path, ext: &str, comment: &str) -> Vec<Attempt> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    paths.sort();
    let prefix = format!("{comment} expect: ");
    paths
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_owned();
            let code = std::fs::read_to_string(path).expect("readable case");
            let expected = code
                .lines()
                .next()
                .and_then(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("{name}: first line must be `{prefix}KIND`"))
                .trim()
                .to_owned();
            Attempt {
                name,
                code,
                expected,
            }
        })
        .collect()
}

/// A host module scripts must never reach without the io class: the
/// secret every corpus's attackers go for.
pub fn vault() -> ModuleDef {
    ModuleDef::new("vault")
        .describe("A host secret")
        .class(Class::Io)
        .function("secret", |_cx, _args| {
            Ok(Ret::Value(Value::from("hunter2")))
        })
}
