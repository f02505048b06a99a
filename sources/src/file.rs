use std::path::{Path, PathBuf};

use crate::{Script, Source, SourceError, content_hash, validate_key};

/// Scripts in a directory; keys are paths relative to it. Symlinks that lead
/// outside the directory are refused.
#[derive(Debug, Clone)]
pub struct FileSource {
    root: PathBuf,
}

impl FileSource {
    /// A source rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn unavailable(&self, reason: impl ToString) -> SourceError {
        SourceError::Unavailable {
            source_name: self.name(),
            reason: reason.to_string(),
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, SourceError> {
        validate_key(key)?;
        let path = self.root.join(key);
        let not_found = || SourceError::NotFound {
            key: key.to_owned(),
            source_name: self.name(),
        };
        let real = path.canonicalize().map_err(|_| not_found())?;
        let root = self.root.canonicalize().map_err(|e| self.unavailable(e))?;
        if !real.starts_with(&root) {
            return Err(SourceError::InvalidKey {
                key: key.to_owned(),
                reason: "resolves outside the source root".to_owned(),
            });
        }
        Ok(real)
    }
}

impl Source for FileSource {
    fn name(&self) -> String {
        format!("file:{}", self.root.display())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        let path = self.path_of(key)?;
        let code = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory => {
                SourceError::NotFound {
                    key: key.to_owned(),
                    source_name: self.name(),
                }
            }
            _ => self.unavailable(format!("{}: {e}", path.display())),
        })?;
        if path.is_dir() {
            return Err(SourceError::NotFound {
                key: key.to_owned(),
                source_name: self.name(),
            });
        }
        Ok(Script {
            key: key.to_owned(),
            version: content_hash(&code),
            code: code.into(),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| self.unavailable(e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("main.lua"), "return 1").unwrap();
        std::fs::write(dir.path().join("lib/u.lua"), "return 2").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.lua"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            outside.path().join("secret.lua"),
            dir.path().join("link.lua"),
        )
        .unwrap();

        let src = FileSource::new(dir.path());
        let s = src.get("main.lua").unwrap();
        assert_eq!(&*s.code, b"return 1");
        assert_eq!(
            src.list("").unwrap(),
            vec!["lib/u.lua", "link.lua", "main.lua"]
        );
        assert!(matches!(
            src.get("nope.lua"),
            Err(SourceError::NotFound { .. })
        ));
        assert!(matches!(
            src.get("../x.lua"),
            Err(SourceError::InvalidKey { .. })
        ));
        assert!(matches!(src.get("lib"), Err(SourceError::NotFound { .. })));
        #[cfg(unix)]
        assert!(matches!(
            src.get("link.lua"),
            Err(SourceError::InvalidKey { .. })
        ));
        std::fs::write(dir.path().join("main.lua"), "return 3").unwrap();
        assert_ne!(src.get("main.lua").unwrap().version, s.version);
    }
}
