//! Troupe: a bound on how deep molt's parsers recurse (bracketed command
//! substitutions, parenthesized expressions), so a deeply nested script,
//! written or built at run time, is an error instead of a stack overflow.

use crate::types::Exception;
use crate::value::Value;
use std::cell::Cell;

/// Most nested levels one parse may open.
pub(crate) const MAX_DEPTH: usize = 1000;

thread_local! {
    static DEPTH: Cell<usize> = Cell::new(0);
}

/// Runs `f` one level deeper; an error past [`MAX_DEPTH`].
pub(crate) fn nested<T>(f: impl FnOnce() -> Result<T, Exception>) -> Result<T, Exception> {
    let depth = DEPTH.with(|d| {
        let v = d.get() + 1;
        d.set(v);
        v
    });
    let result = if depth > MAX_DEPTH {
        Err(Exception::molt_err(Value::from(format!(
            "too deeply nested (more than {} levels)",
            MAX_DEPTH
        ))))
    } else {
        f()
    };
    DEPTH.with(|d| d.set(d.get() - 1));
    result
}
