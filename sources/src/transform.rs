use std::sync::Arc;

use crate::{ChangeSink, Script, Source, SourceError, WatchGuard};

/// A function rewriting a script's bytes; `Err(reason)` rejects the script.
type Rewrite = dyn Fn(&str, &[u8]) -> Result<Vec<u8>, String> + Send + Sync;

/// Another source with every script rewritten by a function (strip a
/// shebang, expand a template, …). Versions follow the rewritten content;
/// changes are the inner source's.
#[derive(Clone)]
pub struct TransformSource {
    inner: Arc<dyn Source>,
    label: String,
    rewrite: Arc<Rewrite>,
}

impl std::fmt::Debug for TransformSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl TransformSource {
    /// Rewrites `inner`'s scripts with `rewrite(key, bytes)`; `label` names
    /// the transform in errors. A rewrite returning `Err(reason)` makes
    /// `get` fail with [`SourceError::BadContent`].
    pub fn new(
        inner: impl Source,
        label: impl Into<String>,
        rewrite: impl Fn(&str, &[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(inner),
            label: label.into(),
            rewrite: Arc::new(rewrite),
        }
    }

    /// Blanks a leading `#!` line (keeping the line break, so error line
    /// numbers stay right).
    pub fn strip_shebang(inner: impl Source) -> Self {
        Self::new(inner, "strip-shebang", |_, code| {
            Ok(match code.strip_prefix(b"#!") {
                Some(rest) => {
                    let eol = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    rest[eol..].to_vec()
                }
                None => code.to_vec(),
            })
        })
    }
}

impl Source for TransformSource {
    fn name(&self) -> String {
        format!("{}({})", self.label, self.inner.name())
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        let script = self.inner.get(key)?;
        let code = (self.rewrite)(key, &script.code).map_err(|reason| SourceError::BadContent {
            key: key.to_owned(),
            source_name: self.name(),
            reason,
        })?;
        Ok(Script::from_content(script.key, code))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.inner.list(prefix)
    }

    fn subscribe(&self, prefix: &str, sink: ChangeSink) -> Result<WatchGuard, SourceError> {
        self.inner.subscribe(prefix, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySource;

    #[test]
    fn strips_shebang_keeping_line_numbers_and_rejects_with_reason() {
        let mem = MemorySource::new()
            .with("tool.lua", "#!/usr/bin/env troupe\nreturn 1\n")
            .with("plain.lua", "return 2");
        let src = TransformSource::strip_shebang(mem.clone());
        assert_eq!(&*src.get("tool.lua").unwrap().code, b"\nreturn 1\n");
        assert_eq!(&*src.get("plain.lua").unwrap().code, b"return 2");

        let tmpl = TransformSource::new(mem, "template", |_, code| {
            let text = std::str::from_utf8(code).map_err(|e| e.to_string())?;
            if text.contains("{{") {
                Ok(text.replace("{{answer}}", "42").into_bytes())
            } else {
                Err("not a template".to_owned())
            }
        });
        let err = tmpl.get("plain.lua").unwrap_err();
        assert!(
            matches!(&err, SourceError::BadContent { reason, .. } if reason == "not a template")
        );
        assert_eq!(err.source_name(), Some("template(memory)"));
    }
}
