use troupe_dispatcher::Value;

use crate::types::{Signature, Type, Types};
use crate::{Class, FnCx, ModuleDef, Ret};

fn emit(level: tracing::Level, cx: &FnCx<'_>, msg: &str, fields: &Value) {
    let pid = cx.pid.to_string();
    let fields = if fields.is_nil() {
        String::new()
    } else {
        fields.to_json()
    };
    match level {
        tracing::Level::DEBUG => tracing::debug!(target: "troupe::script", %pid, fields, "{msg}"),
        tracing::Level::INFO => tracing::info!(target: "troupe::script", %pid, fields, "{msg}"),
        tracing::Level::WARN => tracing::warn!(target: "troupe::script", %pid, fields, "{msg}"),
        _ => tracing::error!(target: "troupe::script", %pid, fields, "{msg}"),
    }
}

/// `log`: `debug/info/warn/error(msg, fields?)`, forwarded to `tracing`.
pub(super) fn module() -> ModuleDef {
    let mut m = ModuleDef::new("log")
        .describe("Structured logging through tracing")
        .class(Class::Deterministic);
    let mut types = Types::new();
    for (name, level) in [
        ("debug", tracing::Level::DEBUG),
        ("info", tracing::Level::INFO),
        ("warn", tracing::Level::WARN),
        ("error", tracing::Level::ERROR),
    ] {
        types = types.function(
            name,
            Signature::new(format!(
                "Logs at {name} level with the process's pid; a non-string message is logged as JSON."
            ))
            .param("message", Type::Any)
            .optional("fields", Type::map()),
        );
        m = m.typed_function(name, move |cx, (message, fields): (Value, Value)| {
            let msg = match message {
                Value::String(s) => s,
                other => other.to_json(),
            };
            emit(level, cx, &msg, &fields);
            Ok(Ret::Values(Vec::new()))
        });
    }
    m.types(types)
}
