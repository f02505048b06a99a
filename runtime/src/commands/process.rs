//! Handlers of `process`: messages (send waits for room, try_send does
//! not, receive), spawning, links, monitors, exits and names.

use troupe_dispatcher::{Call, Dispatched, Error, ErrorKind, Pid, Value, nodes};
use troupe_modules::builtin::commands::Target;
use troupe_modules::builtin::process::{
    Demonitor, Kill, Link, Monitor, Outgoing, Receive, Register, Send, Spawn, TrapExits, TrySend,
    Unlink, Unregister, Whereis,
};

use super::{Answer, Builtin, Cx, millis, ready};
use crate::exit::Exit;
use crate::mailbox::{Mailbox, Message, SendWaker, Waiter};
use crate::remote::{RemoteFuture, RemoteSpawn, queue_full};
use crate::scheduler::Scheduler;
use crate::send::Delivery;
use crate::spawn::{SPAWN, child_spec, spawn_node};
use crate::timers::TimerAction;

/// The pid a message goes to: given, or looked up by name (this node's
/// names first, then the cluster's global ones).
pub(super) fn target(s: &Scheduler, to: &Target) -> Result<Pid, Error> {
    match to {
        Target::Pid(p) => Ok(*p),
        Target::Name(n) => s
            .table
            .resolve(n)
            .or_else(|e| s.remote.get().and_then(|r| r.whereis(n)).ok_or(e)),
    }
}

/// A send given back to be yielded (to wait for room).
fn resend(to: Pid, msg: Message, timeout_ms: Option<f64>) -> Call {
    Call::typed(Send {
        msg: Outgoing {
            to: Target::Pid(to),
            topic: msg.topic,
            payload: msg.payload,
        },
        timeout_ms,
    })
}

/// A send's destination and message.
fn outgoing(cx: &Cx<'_>, out: Outgoing) -> Result<(Pid, Message), Error> {
    let to = target(cx.sched, &out.to)?;
    let msg = Message {
        from: Some(cx.entry.pid),
        topic: out.topic,
        payload: out.payload,
    };
    Ok((to, msg))
}

/// A send is answered inside the script's call when there is room; a full
/// mailbox gives it back to be yielded (and park the sender until the
/// receiver makes room or its timeout passes). Where the script cannot
/// yield a full mailbox is `RATE_LIMITED`, as for `try_send`; a send to
/// itself is refused the same way by [`Scheduler::send_or_block`].
impl Builtin for Send {
    fn now(cx: &Cx<'_>, call: Call) -> Answer {
        let send = match call.into_command::<Send>() {
            Ok(send) => send,
            Err(e) => return Ok(Err(e)),
        };
        let timeout_ms = send.timeout_ms;
        let (to, msg) = match outgoing(cx, send.msg) {
            Ok(parts) => parts,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(remote) = cx.sched.remote_of(to) {
            return match remote.try_send(to, msg) {
                Ok(None) => Ok(Ok(Value::Bool(true))),
                Err(e) => Ok(Err(e)),
                Ok(Some(_)) if !cx.can_wait => Ok(Err(queue_full(to))),
                Ok(Some(msg)) => Err(resend(to, msg, timeout_ms)),
            };
        }
        let full = |mb: &mut Mailbox, msg| (mb.full(to), msg);
        match cx.sched.deliver_with(to, msg, true, full) {
            Ok(Delivery::Delivered) => Ok(Ok(Value::Bool(true))),
            Err(e) => Ok(Err(e)),
            Ok(Delivery::Full((e, _))) if !cx.can_wait => Ok(Err(e)),
            Ok(Delivery::Full((_, msg))) => Err(resend(to, msg, timeout_ms)),
        }
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let timeout = self.timeout_ms.map(millis);
        let (to, msg) = match outgoing(cx, self.msg) {
            Ok(parts) => parts,
            Err(e) => return ready(Err(e)),
        };
        if let Some(remote) = cx.sched.remote_of(to) {
            let me = (cx.entry.pid, cx.tag);
            return cx
                .sched
                .remote_pending(me, done(remote.send(to, msg)), timeout);
        }
        let me = (cx.entry.pid, cx.tag);
        let sent = cx
            .sched
            .send_or_block(to, msg, me, timeout, &cx.entry.sleep_timer);
        match sent {
            Ok(true) => Dispatched::Ready(Ok(Value::Bool(true))),
            Ok(false) => Dispatched::Pending(None),
            Err(e) => Dispatched::Ready(Err(e)),
        }
    }
}

impl Builtin for TrySend {
    fn now(cx: &Cx<'_>, call: Call) -> Answer {
        Ok(call.into_command::<TrySend>().and_then(|s| try_send(cx, s)))
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        Dispatched::Ready(try_send(cx, self))
    }
}

/// Delivers without waiting: `RATE_LIMITED` on a full mailbox.
fn try_send(cx: &Cx<'_>, TrySend(out): TrySend) -> Result<Value, Error> {
    let (to, msg) = outgoing(cx, out)?;
    match cx.sched.remote_of(to) {
        Some(remote) => match remote.try_send(to, msg)? {
            Some(_) => Err(queue_full(to)),
            None => Ok(Value::Bool(true)),
        },
        None => cx.sched.deliver(to, msg).map(|()| Value::Bool(true)),
    }
}

/// A message already queued (or a timeout of 0) answers inside the
/// script's call; otherwise the receive is yielded and waits.
impl Builtin for Receive {
    fn now(cx: &Cx<'_>, call: Call) -> Answer {
        let answer = call.command_ref::<Receive>().and_then(|r| {
            receive_now(
                &mut cx.entry.mailbox.lock(),
                r.topic.as_deref(),
                r.timeout_ms,
            )
        });
        match answer {
            Some((now, admitted)) => {
                admit(cx.sched, admitted);
                Ok(now)
            }
            None => Err(call),
        }
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let mut mb = cx.entry.mailbox.lock();
        if let Some((now, admitted)) = receive_now(&mut mb, self.topic.as_deref(), self.timeout_ms)
        {
            drop(mb);
            admit(cx.sched, admitted);
            return Dispatched::Ready(now);
        }
        // The timer starts under the mailbox lock: a message cannot take
        // the waiter before it knows the timer to cancel, and the timer
        // cannot fire before the waiter is in place.
        let timer = self.timeout_ms.map(|ms| {
            let action = TimerAction::ReceiveTimeout {
                pid: cx.entry.pid,
                tag: cx.tag,
            };
            cx.sched.add_timer(millis(ms), action)
        });
        mb.waiter = Some(Waiter {
            topic: self.topic,
            tag: cx.tag,
            timer,
        });
        Dispatched::Pending(None)
    }
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

/// A cluster operation answered with `true` once done.
fn done(op: RemoteFuture) -> RemoteFuture<Value> {
    Box::pin(async move { op.await.map(|()| Value::Bool(true)) })
}

/// `process.spawn`: here, or on the node `opts.node` names (answered once
/// that node made the process).
impl Builtin for Spawn {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let node = match spawn_node(&self.opts) {
            Ok(Some(node)) if nodes::local().as_deref() != Some(node) => node.to_owned(),
            Ok(_) => {
                let pid = cx.sched.spawn_child(cx.entry, self);
                return ready(pid.map(|pid| Value::from(pid.to_string())));
            }
            Err(e) => return ready(Err(e)),
        };
        let asked = cx.sched.cluster().and_then(|remote| {
            let spec = child_spec(cx.entry, &self.script, self.args, &self.opts, &SPAWN)?;
            Ok(remote.spawn(&node, RemoteSpawn::new(spec, cx.entry)))
        });
        match asked {
            Ok(started) => {
                let pid = Box::pin(async move { Ok(Value::from(started.await?.to_string())) });
                cx.sched.remote_pending((cx.entry.pid, cx.tag), pid, None)
            }
            Err(e) => ready(Err(e)),
        }
    }
}

impl Builtin for Link {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let linked = target(cx.sched, &self.pid).and_then(|to| cx.sched.link(cx.entry.pid, to));
        ready(linked.map(|()| Value::Bool(true)))
    }
}

impl Builtin for Unlink {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let to = target(cx.sched, &self.pid);
        ready(to.map(|to| {
            cx.sched.table.unlink(cx.entry.pid, to, cx.sched);
            Value::Bool(true)
        }))
    }
}

impl Builtin for Monitor {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let to = target(cx.sched, &self.pid);
        ready(to.and_then(|to| cx.sched.monitor(cx.entry.pid, to).map(Value::Int)))
    }
}

impl Builtin for Demonitor {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let was = cx
            .sched
            .table
            .demonitor(cx.entry.pid, self.monitor, cx.sched);
        ready(Ok(Value::Bool(was)))
    }
}

impl Builtin for TrapExits {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        ready(
            cx.sched
                .table
                .trap_exits(cx.entry.pid, self.on)
                .map(Value::Bool),
        )
    }
}

impl Builtin for Kill {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let to = target(cx.sched, &self.pid);
        ready(to.and_then(|to| kill(cx.sched, cx.entry.pid, to).map(Value::Bool)))
    }
}

/// Kills `to` (from `me`): whether it was alive; for a process of another
/// node, whether the kill was sent (`UNAVAILABLE` if its node cannot be
/// reached).
fn kill(s: &Scheduler, me: Pid, to: Pid) -> Result<bool, Error> {
    if s.remote_of(to).is_none() {
        return Ok(s.stop(to, Exit::Killed));
    }
    let sent = s
        .remote
        .get()
        .is_some_and(|r| r.signal(crate::remote::RemoteSignal::Kill { from: me, to }));
    if sent {
        Ok(true)
    } else {
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("cannot kill {to}: its node cannot be reached"),
        ))
    }
}

/// A global name is claimed through the cluster (etcd), off the workers.
impl Builtin for Register {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        if self.global {
            return match cx.sched.cluster() {
                Ok(remote) => {
                    let claim = remote.register(&self.name, cx.entry.pid);
                    cx.sched
                        .remote_pending((cx.entry.pid, cx.tag), done(claim), None)
                }
                Err(e) => ready(Err(e)),
            };
        }
        let done = cx.sched.table.register(cx.entry.pid, &self.name);
        ready(done.map(|()| Value::Bool(true)))
    }
}

impl Builtin for Unregister {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let done = cx.sched.table.unregister(cx.entry.pid, &self.name);
        ready(done.map(|()| Value::Bool(true)))
    }
}

/// A name lookup answers inside the script's call.
impl Builtin for Whereis {
    fn now(cx: &Cx<'_>, call: Call) -> Answer {
        Ok(call.into_command::<Whereis>().map(|w| whereis(cx, &w)))
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        ready(Ok(whereis(cx, &self)))
    }
}

/// This node's names first, then the cluster's.
fn whereis(cx: &Cx<'_>, w: &Whereis) -> Value {
    let pid = cx
        .sched
        .table
        .whereis(&w.name)
        .or_else(|| cx.sched.remote.get().and_then(|r| r.whereis(&w.name)));
    pid.map_or(Value::Nil, |p| Value::from(p.to_string()))
}
