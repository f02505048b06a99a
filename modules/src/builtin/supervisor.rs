use std::collections::BTreeMap;

use troupe_dispatcher::{Call, Value};

use super::ids;
use crate::{Class, ModuleDef, Ret};

/// `supervisor`: Erlang-style supervisors started from scripts. The spec
/// is checked by the runtime, which runs the supervisor.
pub(super) fn module() -> ModuleDef {
    ModuleDef::new("supervisor")
        .describe("Supervisors: restart child processes by a strategy")
        .class(Class::Process)
        .command("start", |_cx, mut args| {
            let spec = args.take(0);
            if !matches!(spec, Value::Map(_)) {
                return Err(args.error(0, "table (supervisor spec)").into());
            }
            Ok(Ret::Call(Call::new(ids::SUPERVISOR_START, spec)))
        })
        .command("which_children", |_cx, args| {
            let pid = args.string(0)?;
            let mut m = BTreeMap::new();
            m.insert("pid".to_owned(), Value::from(pid));
            Ok(Ret::Call(Call::new(
                ids::SUPERVISOR_CHILDREN,
                Value::Map(m),
            )))
        })
}
