//! Handlers of `supervisor`: starting one from a script's spec and
//! listing a live one's children.

use std::sync::Arc;

use troupe_dispatcher::{Dispatched, Error, Value};
use troupe_modules::builtin::supervisor::{Start, WhichChildren};

use super::process::target;
use super::{Builtin, Cx, ready};
use crate::Supervisor;
use crate::supervisor_spec;

impl Builtin for Start {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let started = Supervisor::from_value(cx.entry, &self.0)
            .and_then(|sup| cx.sched.start_supervisor(sup, Some(cx.entry), None));
        ready(started.map(|(pid, _)| Value::from(pid.to_string())))
    }
}

impl Builtin for WhichChildren {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        ready(target(cx.sched, &self.pid).and_then(|pid| {
            let children = cx
                .sched
                .table
                .supervisors
                .get(&pid)
                .map(|c| Arc::clone(&c))
                .ok_or_else(|| Error::not_found(format!("{pid} is not a live supervisor")))?;
            let list = children.lock();
            Ok(supervisor_spec::children_value(&list))
        }))
    }
}
