//! The handler of `workflow.signal`: a durable write to a workflow's
//! inbox in the runtime's workflow store, off the scheduler's workers.

use std::sync::Arc;

use troupe_dispatcher::{Dispatched, Error, HandlerCx, Value};
use troupe_modules::builtin::workflow::Signal;

use super::{Builtin, Cx, ready};

impl Builtin for Signal {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let store = match cx.sched.workflow_store() {
            Ok(store) => Arc::clone(store),
            Err(e) => return ready(Err(e)),
        };
        let completer = HandlerCx {
            pid: cx.entry.pid,
            tag: cx.tag,
            sink: &cx.sched.sink,
            can_wait: cx.can_wait,
        }
        .completer();
        let Signal { id, topic, payload } = self;
        // A durable write: on the IO pool's blocking threads.
        let task = cx.sched.dispatcher.io().spawn(async move {
            let written = tokio::task::spawn_blocking(move || store.signal(&id, &topic, payload))
                .await
                .map_err(|e| Error::internal(format!("workflow.signal: {e}")))
                .and_then(|r| r);
            completer.complete(written.map(|()| Value::Bool(true)));
        });
        Dispatched::Pending(Some(task.abort_handle()))
    }
}
