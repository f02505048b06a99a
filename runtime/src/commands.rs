//! Typed handlers of the runtime-backed commands on the message path
//! (`process.send`, `process.try_send`, `process.receive`, `time.now`,
//! `time.sleep`).
//!
//! A handler here gets its command as the Rust type the module function
//! decoded from the script's arguments (carried typed by the yielded
//! [`Call`]) and a typed context owned by the runtime: the scheduler and
//! the yielding process's entry, borrowed. Nothing re-reads an argument
//! map, parses a pid's text or downcasts the runtime. The scheduler looks
//! a command up here first and in the host's [`Dispatcher`] otherwise.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use troupe_dispatcher::{
    Call, Command, CommandId, Dispatched, Dispatcher, Error, ErrorKind, Pid, Tag, Value,
};
use troupe_modules::builtin::commands::{Now, Outgoing, Receive, Send, Sleep, Target, TrySend};

use crate::entry::Entry;
use crate::mailbox::{Mailbox, Message, SendWaker, Waiter};
use crate::scheduler::Scheduler;
use crate::send::Delivery;
use crate::timers::TimerAction;

/// What a runtime handler sees: the scheduler, the yielding process and
/// the yield's tag.
pub(crate) struct Cx<'a> {
    /// The dispatching scheduler.
    pub sched: &'a Scheduler,
    /// The yielding process.
    pub entry: &'a Arc<Entry>,
    /// The yield's tag (inside the script's call: the tag its yield would
    /// get).
    pub tag: Tag,
    /// Whether the caller could wait if the command is not answered now:
    /// false inside the script's call where it cannot yield (a
    /// `table.sort` comparator).
    pub can_wait: bool,
}

/// An answer given inside the script's call, or the call given back to
/// be yielded.
type Answer = Result<Result<Value, Error>, Call>;

/// A command the runtime handles itself.
trait Builtin: Command + Sized {
    /// Answers `call` (of this command) inside the script's call, without
    /// a yield, when it can; gives it back to be yielded and
    /// [handled](Builtin::handle) otherwise (the default). Only for answers
    /// that neither start processes nor signal the caller.
    fn now(_cx: &Cx<'_>, call: Call) -> Answer {
        Err(call)
    }

    /// Handles the yielded command.
    fn handle(self, cx: &Cx<'_>) -> Dispatched;
}

/// One registered runtime command: its name and its typed entry points,
/// instantiated for its type.
struct Registered {
    name: &'static str,
    handle: fn(&Cx<'_>, Call) -> Dispatched,
    now: fn(&Cx<'_>, Call) -> Answer,
}

fn handle<C: Builtin>(cx: &Cx<'_>, call: Call) -> Dispatched {
    match call.into_command::<C>() {
        Ok(c) => c.handle(cx),
        Err(e) => Dispatched::Ready(Err(e)),
    }
}

/// The runtime's commands, indexed by id.
pub(crate) struct Builtins {
    table: Vec<Option<Registered>>,
}

impl Builtins {
    /// Every runtime-backed command with a typed handler.
    pub fn new() -> Self {
        let mut b = Builtins { table: Vec::new() };
        b.add::<Send>();
        b.add::<TrySend>();
        b.add::<Receive>();
        b.add::<Now>();
        b.add::<Sleep>();
        b
    }

    fn add<C: Builtin>(&mut self) {
        let at = usize::from(C::ID.0);
        if self.table.len() <= at {
            self.table.resize_with(at + 1, || None);
        }
        self.table[at] = Some(Registered {
            name: C::NAME,
            handle: handle::<C>,
            now: C::now,
        });
    }

    fn get(&self, id: CommandId) -> Option<&Registered> {
        self.table.get(usize::from(id.0)).and_then(Option::as_ref)
    }

    /// `ALREADY_EXISTS` if the host's `dispatcher` has a handler for one
    /// of the runtime's command ids (it would never be called).
    pub fn check(&self, dispatcher: &Dispatcher) -> Result<(), Error> {
        let taken = self.table.iter().enumerate().find_map(|(id, r)| {
            let r = r.as_ref()?;
            let other = dispatcher.name(CommandId(u16::try_from(id).ok()?))?;
            Some(format!(
                "command id #{id} of {} is already taken by {other}",
                r.name
            ))
        });
        match taken {
            Some(msg) => Err(Error::new(ErrorKind::AlreadyExists, msg)),
            None => Ok(()),
        }
    }

    /// The name of a runtime command.
    pub fn name(&self, id: CommandId) -> Option<&'static str> {
        self.get(id).map(|r| r.name)
    }

    /// Handles `call` if it is a runtime command; gives it back otherwise.
    pub fn dispatch(&self, cx: &Cx<'_>, call: Call) -> Result<Dispatched, Call> {
        match self.get(call.id) {
            Some(r) => Ok((r.handle)(cx, call)),
            None => Err(call),
        }
    }

    /// Answers `call` inside the script's call if it is a runtime command
    /// that can answer now. `Err(call)` otherwise, with `true` when it is
    /// a runtime command (the dispatcher need not be asked).
    pub fn now(&self, cx: &Cx<'_>, call: Call) -> Result<Result<Value, Error>, (Call, bool)> {
        match self.get(call.id) {
            Some(r) => (r.now)(cx, call).map_err(|c| (c, true)),
            None => Err((call, false)),
        }
    }
}

/// A script's milliseconds as a duration; too large for one is forever.
pub(crate) fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::MAX)
}

/// The pid a message goes to: given, or looked up by name.
fn target(s: &Scheduler, to: &Target) -> Result<Pid, Error> {
    match to {
        Target::Pid(p) => Ok(*p),
        Target::Name(n) => s.table.resolve(n),
    }
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
        let full = |mb: &mut Mailbox, msg| (mb.full(to), msg);
        match cx.sched.deliver_with(to, msg, true, full) {
            Ok(Delivery::Delivered) => Ok(Ok(Value::Bool(true))),
            Err(e) => Ok(Err(e)),
            Ok(Delivery::Full((e, _))) if !cx.can_wait => Ok(Err(e)),
            Ok(Delivery::Full((_, msg))) => Err(Call::typed(Send {
                msg: Outgoing {
                    to: Target::Pid(to),
                    topic: msg.topic,
                    payload: msg.payload,
                },
                timeout_ms,
            })),
        }
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        let timeout = self.timeout_ms.map(millis);
        let sent = outgoing(cx, self.msg).and_then(|(to, msg)| {
            let me = (cx.entry.pid, cx.tag);
            cx.sched
                .send_or_block(to, msg, me, timeout, &cx.entry.sleep_timer)
        });
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
    cx.sched.deliver(to, msg)?;
    Ok(Value::Bool(true))
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

impl Builtin for Now {
    fn now(_cx: &Cx<'_>, _call: Call) -> Answer {
        Ok(Ok(wall_clock_ms()))
    }

    fn handle(self, _cx: &Cx<'_>) -> Dispatched {
        Dispatched::Ready(Ok(wall_clock_ms()))
    }
}

fn wall_clock_ms() -> Value {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3);
    Value::Float(ms)
}

impl Builtin for Sleep {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        if self.ms.is_nan() || self.ms <= 0.0 {
            return Dispatched::Ready(Ok(Value::Nil));
        }
        let action = TimerAction::Wake {
            pid: cx.entry.pid,
            tag: cx.tag,
        };
        let key = cx.sched.add_timer(millis(self.ms), action);
        cx.entry.sleep_timer.store(key.to_bits(), Ordering::Release);
        Dispatched::Pending(None)
    }
}
