//! Handlers for the commands of the built-in `time` and `process` modules.
//! They need the scheduler (timers, mailboxes, the process table, links and
//! names), so they live here rather than beside the module definitions. The self-contained
//! `rand` and `uuid` handlers come from `troupe-modules`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use troupe_dispatcher::{Dispatched, DispatcherBuilder, Error, ErrorKind, HandlerCx, Pid, Value};
use troupe_modules::builtin::ids;

use crate::Supervisor;
use crate::entry::Entry;
use crate::exit::Exit;
use crate::mailbox::{Mailbox, Message, SendWaker, Waiter};
use crate::scheduler::Scheduler;
use crate::send::Delivery;
use crate::supervisor_spec;
use crate::timers::TimerAction;

/// The scheduler a handler serves: the dispatching one, borrowed (no
/// reference count touched on the hot path), or the weak link upgraded.
enum Sched<'a> {
    Dispatching(&'a Scheduler),
    Upgraded(Arc<Scheduler>),
}

impl std::ops::Deref for Sched<'_> {
    type Target = Scheduler;

    fn deref(&self) -> &Scheduler {
        match self {
            Sched::Dispatching(s) => s,
            Sched::Upgraded(s) => s,
        }
    }
}

fn scheduler<'a>(cx: &HandlerCx<'a>, s: &Weak<Scheduler>) -> Result<Sched<'a>, Error> {
    if let Some(s) = cx.runtime.and_then(|r| r.downcast_ref::<Scheduler>()) {
        return Ok(Sched::Dispatching(s));
    }
    upgrade(s).map(Sched::Upgraded)
}

fn upgrade(s: &Weak<Scheduler>) -> Result<Arc<Scheduler>, Error> {
    s.upgrade()
        .ok_or_else(|| Error::new(ErrorKind::Canceled, "runtime shut down"))
}

/// Runs `f` on the yielding process's entry: the one the scheduler passed
/// along, else looked up. `CANCELED` if it is gone.
fn with_process<R>(
    cx: &HandlerCx<'_>,
    s: &Scheduler,
    f: impl FnOnce(&Arc<Entry>) -> R,
) -> Result<R, Error> {
    let passed = cx
        .process
        .and_then(|p| p.downcast_ref::<Arc<Entry>>())
        .filter(|e| e.pid == cx.pid);
    match passed {
        Some(entry) => Ok(f(entry)),
        None => s
            .table
            .lookup(cx.pid)
            .map(|entry| f(&entry))
            .ok_or_else(|| Error::new(ErrorKind::Canceled, "process is gone")),
    }
}

/// A script's milliseconds as a duration; too large for one is forever.
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::MAX)
}

fn field<'a>(args: &'a Value, name: &str) -> &'a Value {
    args.get(name).unwrap_or(&Value::Nil)
}

/// Registers the built-in command handlers.
pub(crate) fn register(b: &mut DispatcherBuilder, sched: &Weak<Scheduler>) -> Result<(), Error> {
    troupe_modules::builtin::register_handlers(b)?;

    b.immediate(ids::TIME_NOW, "time.now", |_, _| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        Ok(Value::Float(ms))
    })?;

    let s = sched.clone();
    b.immediate(ids::TIME_MONOTONIC, "time.monotonic", move |cx, _| {
        Ok(Value::Float(
            scheduler(cx, &s)?.started.elapsed().as_secs_f64() * 1e3,
        ))
    })?;

    let s = sched.clone();
    b.deferred(ids::TIME_SLEEP, "time.sleep", move |cx, args| {
        let ms = field(&args, "ms").as_f64().unwrap_or(0.0);
        if ms.is_nan() || ms <= 0.0 {
            return Dispatched::Ready(Ok(Value::Nil));
        }
        let s = match scheduler(cx, &s) {
            Ok(s) => s,
            Err(e) => return Dispatched::Ready(Err(e)),
        };
        let action = TimerAction::Wake {
            pid: cx.pid,
            tag: cx.tag,
        };
        let slept = with_process(cx, &s, |entry| {
            let key = s.add_timer(millis(ms), action);
            entry.sleep_timer.store(key.to_bits(), Ordering::Release);
        });
        match slept {
            Ok(()) => Dispatched::Pending(None),
            Err(e) => Dispatched::Ready(Err(e)),
        }
    })?;

    let s = sched.clone();
    b.asynchronous(ids::WORKFLOW_SIGNAL, "workflow.signal", move |_, args| {
        let store = upgrade(&s).and_then(|s| s.workflow_store().map(Arc::clone));
        async move {
            let text = |k: &str| field(&args, k).as_str().unwrap_or_default().to_owned();
            let (id, topic) = (text("id"), text("topic"));
            let payload = field(&args, "payload").clone();
            // A durable write: off the IO threads.
            tokio::task::spawn_blocking(move || store?.signal(&id, &topic, payload))
                .await
                .map_err(|e| Error::internal(format!("workflow.signal: {e}")))??;
            Ok(Value::Bool(true))
        }
    })?;

    // A send is answered inside the script's call when there is room; a
    // full mailbox yields it and parks the sender until the receiver makes
    // room (or its timeout passes). Where the script cannot yield, a full
    // mailbox is RATE_LIMITED, as for `try_send`.
    let s = sched.clone();
    let probe_s = sched.clone();
    b.probed(
        ids::PROCESS_SEND,
        "process.send",
        move |cx, args| {
            let Ok(s) = scheduler(cx, &probe_s) else {
                return Err(args);
            };
            let timeout = field(&args, "timeout_ms").clone();
            let (to, msg) = match outgoing(&s, cx.pid, args) {
                Ok(parts) => parts,
                Err(e) => return Ok(Err(e)),
            };
            let full = |mb: &mut Mailbox, msg| (mb.full(to), msg);
            match s.deliver_with(to, msg, true, full) {
                Ok(Delivery::Delivered) => Ok(Ok(Value::Bool(true))),
                Err(e) => Ok(Err(e)),
                Ok(Delivery::Full((e, _))) if !cx.can_wait || to == cx.pid => Ok(Err(e)),
                Ok(Delivery::Full((_, msg))) => Err(send_args(to, msg, timeout)),
            }
        },
        move |cx, args| {
            let s = match scheduler(cx, &s) {
                Ok(s) => s,
                Err(e) => return Dispatched::Ready(Err(e)),
            };
            let timeout = field(&args, "timeout_ms").as_f64().map(millis);
            let sent = outgoing(&s, cx.pid, args).and_then(|(to, msg)| {
                with_process(cx, &s, |me| {
                    s.send_or_block(to, msg, (cx.pid, cx.tag), timeout, &me.sleep_timer)
                })?
            });
            match sent {
                Ok(true) => Dispatched::Ready(Ok(Value::Bool(true))),
                Ok(false) => Dispatched::Pending(None),
                Err(e) => Dispatched::Ready(Err(e)),
            }
        },
    )?;

    let s = sched.clone();
    b.immediate(
        ids::PROCESS_TRY_SEND,
        "process.try_send",
        move |cx, args| {
            let s = scheduler(cx, &s)?;
            let (to, msg) = outgoing(&s, cx.pid, args)?;
            s.deliver(to, msg)?;
            Ok(Value::Bool(true))
        },
    )?;

    // The probe answers inside the script's call when a message is queued
    // (or the timeout is 0); otherwise the receive is yielded and waits.
    let s = sched.clone();
    let probe_s = sched.clone();
    b.probed(
        ids::PROCESS_RECEIVE,
        "process.receive",
        move |cx, args| {
            let Ok(s) = scheduler(cx, &probe_s) else {
                return Err(args);
            };
            let (topic, timeout) = receive_args(&args);
            let now = with_process(cx, &s, |entry| {
                receive_now(&mut entry.mailbox.lock(), topic.as_deref(), timeout)
            });
            match now {
                Ok(Some((now, admitted))) => {
                    admit(&s, admitted);
                    Ok(now)
                }
                _ => Err(args),
            }
        },
        move |cx, args| {
            let s = match scheduler(cx, &s) {
                Ok(s) => s,
                Err(e) => return Dispatched::Ready(Err(e)),
            };
            let (topic, timeout) = receive_args(&args);
            let received = with_process(cx, &s, |entry| {
                let mut mb = entry.mailbox.lock();
                if let Some(now) = receive_now(&mut mb, topic.as_deref(), timeout) {
                    return Ok(now);
                }
                // The timer starts under the mailbox lock: a message cannot take
                // the waiter before it knows the timer to cancel, and the timer
                // cannot fire before the waiter is in place.
                let timer = timeout.map(|ms| {
                    let action = TimerAction::ReceiveTimeout {
                        pid: cx.pid,
                        tag: cx.tag,
                    };
                    s.add_timer(millis(ms), action)
                });
                mb.waiter = Some(Waiter {
                    topic,
                    tag: cx.tag,
                    timer,
                });
                Err(())
            });
            match received {
                Ok(Ok((now, admitted))) => {
                    admit(&s, admitted);
                    Dispatched::Ready(now)
                }
                Ok(Err(())) => Dispatched::Pending(None),
                Err(e) => Dispatched::Ready(Err(e)),
            }
        },
    )?;

    let s = sched.clone();
    b.inline(ids::PROCESS_SPAWN, "process.spawn", move |cx, args| {
        let s = scheduler(cx, &s)?;
        let pid = with_process(cx, &s, |parent| s.spawn_child(parent, args))??;
        Ok(Value::from(pid.to_string()))
    })?;
    register_links(b, sched)
}

/// A `receive`'s topic and timeout (ms).
fn receive_args(args: &Value) -> (Option<String>, Option<f64>) {
    let topic = field(args, "topic").as_str().map(str::to_owned);
    (topic, field(args, "timeout_ms").as_f64())
}

/// What a `receive` gets without waiting, if anything: the first queued
/// message on `topic` (and the blocked sender its place went to), or a
/// timeout when it may not wait.
fn receive_now(
    mb: &mut Mailbox,
    topic: Option<&str>,
    timeout: Option<f64>,
) -> Option<(Result<Value, Error>, Option<SendWaker>)> {
    if let Some(taken) = mb.take(topic) {
        return Some((Ok(taken.msg.into_value()), taken.admitted));
    }
    timeout.is_some_and(|ms| ms.is_nan() || ms <= 0.0).then(|| {
        (
            Err(Error::new(ErrorKind::Timeout, "receive timed out")),
            None,
        )
    })
}

/// Wakes the sender a `receive` made room for (outside the mailbox's lock).
fn admit(s: &Scheduler, admitted: Option<SendWaker>) {
    if let Some(waker) = admitted {
        s.wake_sender(waker, Ok(()));
    }
}

/// A send's destination and message, from its `{to, topic, payload}`.
fn outgoing(s: &Scheduler, from: Pid, args: Value) -> Result<(Pid, Message), Error> {
    let to = s
        .table
        .resolve(field(&args, "to").as_str().unwrap_or_default())?;
    let Value::Map(mut m) = args else {
        return Err(Error::invalid("bad send arguments"));
    };
    let topic = match m.remove("topic") {
        Some(Value::String(t)) => t,
        _ => return Err(Error::invalid("process.send: topic must be a string")),
    };
    let payload = m.remove("payload").unwrap_or_default();
    let msg = Message {
        from: Some(from),
        topic,
        payload,
    };
    Ok((to, msg))
}

/// The arguments of a send given back by its probe, to be yielded.
fn send_args(to: Pid, msg: Message, timeout_ms: Value) -> Value {
    let mut m = std::collections::BTreeMap::new();
    if !timeout_ms.is_nil() {
        m.insert("timeout_ms".to_owned(), timeout_ms);
    }
    m.insert("to".to_owned(), Value::from(to.to_string()));
    m.insert("topic".to_owned(), Value::String(msg.topic));
    m.insert("payload".to_owned(), msg.payload);
    Value::Map(m)
}

/// The pid named by `args.pid`: a pid's text form or a registered name.
fn target(s: &Scheduler, args: &Value) -> Result<Pid, Error> {
    s.table
        .resolve(field(args, "pid").as_str().unwrap_or_default())
}

fn name(args: &Value) -> &str {
    field(args, "name").as_str().unwrap_or_default()
}

/// Handlers of links, monitors, exits and the name registry.
fn register_links(b: &mut DispatcherBuilder, sched: &Weak<Scheduler>) -> Result<(), Error> {
    let s = sched.clone();
    b.inline(ids::PROCESS_LINK, "process.link", move |cx, args| {
        let s = scheduler(cx, &s)?;
        s.link(cx.pid, target(&s, &args)?)?;
        Ok(Value::Bool(true))
    })?;

    let s = sched.clone();
    b.inline(ids::PROCESS_UNLINK, "process.unlink", move |cx, args| {
        let s = scheduler(cx, &s)?;
        s.table.unlink(cx.pid, target(&s, &args)?);
        Ok(Value::Bool(true))
    })?;

    let s = sched.clone();
    b.inline(ids::PROCESS_MONITOR, "process.monitor", move |cx, args| {
        let s = scheduler(cx, &s)?;
        Ok(Value::Int(s.monitor(cx.pid, target(&s, &args)?)?))
    })?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_DEMONITOR,
        "process.demonitor",
        move |cx, args| {
            let r = field(&args, "ref").as_i64().unwrap_or_default();
            Ok(Value::Bool(scheduler(cx, &s)?.table.demonitor(cx.pid, r)))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_TRAP_EXITS,
        "process.trap_exits",
        move |cx, args| {
            let on = field(&args, "on").as_bool().unwrap_or_default();
            Ok(Value::Bool(
                scheduler(cx, &s)?.table.trap_exits(cx.pid, on)?,
            ))
        },
    )?;

    let s = sched.clone();
    b.inline(ids::PROCESS_KILL, "process.kill", move |cx, args| {
        let s = scheduler(cx, &s)?;
        Ok(Value::Bool(s.stop(target(&s, &args)?, Exit::Killed)))
    })?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_REGISTER,
        "process.register",
        move |cx, args| {
            scheduler(cx, &s)?.table.register(cx.pid, name(&args))?;
            Ok(Value::Bool(true))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_UNREGISTER,
        "process.unregister",
        move |cx, args| {
            scheduler(cx, &s)?.table.unregister(cx.pid, name(&args))?;
            Ok(Value::Bool(true))
        },
    )?;

    let s = sched.clone();
    b.immediate(ids::PROCESS_WHEREIS, "process.whereis", move |cx, args| {
        let pid = scheduler(cx, &s)?.table.whereis(name(&args));
        Ok(pid.map_or(Value::Nil, |p| Value::from(p.to_string())))
    })?;

    let s = sched.clone();
    b.inline(
        ids::SUPERVISOR_START,
        "supervisor.start",
        move |cx, args| {
            let s = upgrade(&s)?;
            let parent = s
                .table
                .lookup(cx.pid)
                .ok_or_else(|| Error::new(ErrorKind::Canceled, "calling process is gone"))?;
            let sup = Supervisor::from_value(&parent, &args)?;
            let (pid, _) = s.start_supervisor(sup, Some(&parent), None)?;
            Ok(Value::from(pid.to_string()))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::SUPERVISOR_CHILDREN,
        "supervisor.which_children",
        move |cx, args| {
            let s = scheduler(cx, &s)?;
            let pid = target(&s, &args)?;
            let children = s
                .table
                .supervisors
                .get(&pid)
                .map(|c| Arc::clone(&c))
                .ok_or_else(|| Error::not_found(format!("{pid} is not a live supervisor")))?;
            let list = children.lock();
            Ok(supervisor_spec::children_value(&list))
        },
    )?;
    Ok(())
}
