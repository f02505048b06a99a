//! The handlers of `workflow.signal` (a durable write to a workflow's
//! inbox in the runtime's workflow store, off the scheduler's workers),
//! `workflow.start_child` and `workflow.await`.

use std::sync::Arc;

use troupe_dispatcher::{Completer, Dispatched, Error, ErrorKind, HandlerCx, Value};
use troupe_modules::builtin::workflow::{AwaitChild, Signal, StartChild};

use super::{Builtin, Cx, millis, ready};
use crate::journal::{ChildDone, JournalStore};

/// The workflow store, and the completer of the command being handled,
/// for a handler that answers from the IO pool.
fn store_and_completer(cx: &Cx<'_>) -> Result<(Arc<dyn JournalStore>, Completer), Error> {
    let store = Arc::clone(cx.sched.workflow_store()?);
    let completer = HandlerCx {
        pid: cx.entry.pid,
        tag: cx.tag,
        sink: &cx.sched.sink,
        can_wait: cx.can_wait,
    }
    .completer();
    Ok((store, completer))
}

impl Builtin for Signal {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let (store, completer) = match store_and_completer(cx) {
            Ok(both) => both,
            Err(e) => return ready(Err(e)),
        };
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

/// `workflow.start_child`: starts the child workflow (see
/// `Scheduler::start_child`).
impl Builtin for StartChild {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        ready(cx.sched.start_child(cx.entry, self).map(Value::from))
    }
}

/// `workflow.await`: waits, off the workers, for the store to report the
/// child's end (or the timeout).
impl Builtin for AwaitChild {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let Some(parent) = cx.entry.origin.workflow.as_deref().map(str::to_owned) else {
            return ready(Err(Error::invalid(
                "workflow.await: this process is not a workflow",
            )));
        };
        let (store, completer) = match store_and_completer(cx) {
            Ok(both) => both,
            Err(e) => return ready(Err(e)),
        };
        let AwaitChild { id, timeout_ms } = self;
        let timeout = timeout_ms.map(millis);
        let task = cx.sched.dispatcher.io().spawn(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let done: ChildDone = Box::new(move |r| {
                let _ = tx.send(r);
            });
            let child = id.clone();
            let registered =
                tokio::task::spawn_blocking(move || store.await_child(&parent, &child, done))
                    .await
                    .map_err(|e| Error::internal(format!("workflow.await: {e}")))
                    .and_then(|r| r);
            if let Err(e) = registered {
                return completer.complete(Err(e));
            }
            let gone = || {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("workflow.await: the store stopped waiting for child workflow {id:?}"),
                )
            };
            let outcome = match timeout {
                None => rx.await.unwrap_or_else(|_| Err(gone())),
                Some(t) => match tokio::time::timeout(t, rx).await {
                    Ok(r) => r.unwrap_or_else(|_| Err(gone())),
                    Err(_) => Err(Error::new(
                        ErrorKind::Timeout,
                        format!("workflow.await: child workflow {id:?} did not end in time"),
                    )),
                },
            };
            completer.complete(outcome);
        });
        Dispatched::Pending(Some(task.abort_handle()))
    }
}
