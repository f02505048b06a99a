//! A bound on how deep a script's source can make a recursive parser go,
//! taken before the parser runs. The JS, Python and Starlark parsers (and
//! the compilers behind them) recurse once per bracket level and, for
//! Python and Starlark, once per operator of a chain (`1+1+…`); a few
//! thousand levels overflow an interpreter thread's stack and abort the
//! whole host. Counting is cheap and conservative: string literals are
//! skipped (up to their line's end), everything else counts.

use troupe_dispatcher::{Error, ErrorKind};

/// How deep brackets may nest: far beyond written code, and well inside
/// the stack of an engine's thread (boa's parser, the hungriest, needs
/// about 16 KiB a level).
pub(crate) const MAX_NESTING: usize = 100;

/// How much of a source a parser may be made to recurse over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Most bracket levels (`(`, `[`, `{`) open at once.
    pub nesting: usize,
    /// Most operator characters in one statement (a statement ends at a
    /// `;`, or at a newline outside brackets), for languages whose parser
    /// recurses along a chain; `None` where it does not.
    pub chain: Option<usize>,
}

/// `LIMIT_EXCEEDED` naming `key` and the line where the source of
/// `engine` goes past `bounds`.
pub(crate) fn check(engine: &str, key: &str, src: &str, bounds: Bounds) -> Result<(), Error> {
    let (mut depth, mut chain, mut line) = (0usize, 0usize, 1usize);
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // A literal ends at its closing quote or its line's end
                // (a multi-line one is then scanned as code: conservative).
                let mut escaped = false;
                while let Some(&d) = chars.peek() {
                    if d == '\n' {
                        break;
                    }
                    chars.next();
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        _ if d == c => break,
                        _ => {}
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > bounds.nesting {
                    return too_deep(
                        engine,
                        key,
                        line,
                        format!("nests brackets more than {} deep", bounds.nesting),
                    );
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '\n' => {
                line += 1;
                if depth == 0 {
                    chain = 0;
                }
            }
            ';' => chain = 0,
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '&' | '|' | '^' => {
                chain += 1;
                if let Some(max) = bounds.chain.filter(|&max| chain > max) {
                    return too_deep(
                        engine,
                        key,
                        line,
                        format!("chains more than {max} operators in one statement"),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn too_deep(engine: &str, key: &str, line: usize, what: String) -> Result<(), Error> {
    Err(Error::new(
        ErrorKind::LimitExceeded,
        format!("{engine}: {key}:{line} {what}, past what its parser can take"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: Bounds = Bounds {
        nesting: 5,
        chain: Some(4),
    };

    #[test]
    fn counts_brackets_and_chains_outside_literals() {
        assert!(check("python", "a.py", "x = ((((1))))", PY).is_ok());
        let e = check("python", "a.py", "\nx = ((((((1))))))", PY).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(e.message().contains("a.py:2 nests"), "{e}");
        // Quoted brackets and operators are text.
        assert!(check("python", "a.py", "x = '((((((+++++'", PY).is_ok());
        // A chain restarts at each statement, not inside brackets.
        assert!(check("python", "a.py", "a=1+1\nb=1+1\nc=1+1", PY).is_ok());
        assert!(check("python", "a.py", "x = (1+\n1+\n1+\n1+\n1)", PY).is_err());
        // Without a chain bound only nesting counts.
        let js = Bounds {
            nesting: 5,
            chain: None,
        };
        assert!(check("js", "a.js", &"1+".repeat(10_000), js).is_ok());
    }
}
