use troupe_dispatcher::{Error, ErrorKind};

use crate::types::{Decl, Field, Signature, Type, Types};
use crate::{Class, ModuleDef, Ret};

/// `errors`: the kind constants and `errors.new{kind, message, retryable, details}`.
pub(super) fn module() -> ModuleDef {
    let mut m = ModuleDef::new("errors")
        .describe("Structured errors: kind constants and constructors")
        .class(Class::Deterministic)
        .types(
            Types::new()
                .function(
                    "new",
                    Signature::new(
                        "Builds an error object to return as `nil, err` or raise with `error(err)`.",
                    )
                    .param("spec", Type::named("Spec"))
                    .returns(Type::Error),
                )
                .decl(Decl::record(
                    "Spec",
                    "What `errors.new` builds an error from.",
                    [
                        Field::optional("kind", Type::String)
                            .doc("one of the kind constants (default UNKNOWN)"),
                        Field::optional("message", Type::String),
                        Field::optional("retryable", Type::Boolean),
                        Field::optional("details", Type::Any).doc("extra structured data"),
                    ],
                )),
        )
        .function("new", |_cx, args| {
            let spec = args.map(0)?;
            let kind = match spec.get("kind").and_then(|k| k.as_str()) {
                None => ErrorKind::Unknown,
                Some(k) => ErrorKind::parse(k).ok_or_else(|| {
                    args.error(0, "table with a known kind (e.g. errors.INVALID)")
                })?,
            };
            let message = spec
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_owned();
            let mut err = Error::new(kind, message);
            if let Some(r) = spec.get("retryable").and_then(|r| r.as_bool()) {
                err = err.retryable(r);
            }
            if let Some(d) = spec.get("details").filter(|d| !d.is_nil()) {
                err = err.with_details(d.clone());
            }
            Ok(Ret::Error(err))
        });
    for kind in ErrorKind::ALL {
        m = m.constant(kind.as_str(), kind.as_str());
    }
    m
}
