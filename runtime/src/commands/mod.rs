//! Typed handlers of the runtime-backed built-in modules: one file per
//! module (`process`, `time`, `supervisor`, and `workflow.signal`), beside
//! the command types its functions yield (declared with the module in
//! `troupe_modules::builtin`).
//!
//! A handler here gets its command as the Rust type the module function
//! decoded from the script's arguments (carried typed by the yielded
//! [`Call`]) and a typed context owned by the runtime: the scheduler and
//! the yielding process's entry, borrowed. Nothing re-reads an argument
//! map, parses a pid's text or downcasts the runtime. The scheduler looks
//! a command up here first and in the host's [`Dispatcher`] otherwise.

mod process;
mod supervisor;
mod time;
mod workflow;

use std::sync::Arc;

use troupe_dispatcher::{
    Call, Command, CommandId, Dispatched, Dispatcher, Error, ErrorKind, Tag, Value,
};
use troupe_modules::builtin::{process as p, supervisor as sup, time as t, workflow as wf};

use crate::entry::Entry;
use crate::scheduler::Scheduler;

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
pub(crate) type Answer = Result<Result<Value, Error>, Call>;

/// A handler's answer, now.
fn ready(result: Result<Value, Error>) -> Dispatched {
    Dispatched::Ready(result)
}

/// A command the runtime handles itself.
pub(crate) trait Builtin: Command + Sized {
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
        b.add::<p::Send>();
        b.add::<p::TrySend>();
        b.add::<p::Receive>();
        b.add::<p::Spawn>();
        b.add::<p::Link>();
        b.add::<p::Unlink>();
        b.add::<p::Monitor>();
        b.add::<p::Demonitor>();
        b.add::<p::TrapExits>();
        b.add::<p::Kill>();
        b.add::<p::Register>();
        b.add::<p::Unregister>();
        b.add::<p::Whereis>();
        b.add::<t::Now>();
        b.add::<t::Sleep>();
        b.add::<t::Monotonic>();
        b.add::<sup::Start>();
        b.add::<sup::WhichChildren>();
        b.add::<wf::Signal>();
        b.add::<wf::StartChild>();
        b.add::<wf::AwaitChild>();
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

    /// One more than the highest runtime command id.
    pub fn id_limit(&self) -> usize {
        self.table.len()
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
pub(crate) use troupe_modules::builtin::duration_from_ms as millis;
