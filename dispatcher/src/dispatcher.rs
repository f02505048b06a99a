//! The handler registry. Built once with a [`DispatcherBuilder`], then frozen
//! into a [`Dispatcher`] that every worker shares without locks.
//!
//! Four registration methods cover every command, three of them typed
//! (the handler gets the command as its Rust type):
//! - [`command`](DispatcherBuilder::command): a quick, non-blocking
//!   function run on the calling worker; its result resumes the process at
//!   once (`workflow.version` outside a workflow).
//! - [`immediate`](DispatcherBuilder::immediate): the same, and safe to
//!   call from inside the script's own call, without a yield, for a
//!   process that is not journaled ([`Dispatcher::call_immediate`];
//!   `rand.int`, `uuid.v4`).
//! - [`async_command`](DispatcherBuilder::async_command): a tokio future
//!   on the [`IoPool`]; its result arrives later as a [`Completion`]
//!   (`http.get`, `kv.put`, a host's database call).
//! - [`untyped`](DispatcherBuilder::untyped), the escape hatch (as
//!   wasmtime keeps `Func::new` beside its typed functions): arguments in
//!   value form, answered now or later through a [`Completer`].
//!
//! Modules bring their handlers with them (`ModuleDef::handle` and
//! friends in `troupe-modules`), so a host rarely calls these directly.
//! The runtime's own commands (`process.*`, `time.*`) have typed handlers
//! in the runtime, which needs its scheduler to answer them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::task::AbortHandle;

use crate::{Call, Command, CommandId, Error, IoPool, Pid, Value, to_value};

/// Identifies one yield of one process, so a late completion for an earlier
/// yield is recognised and dropped.
pub type Tag = u64;

/// The result of a command, addressed to the yield that asked for it.
#[derive(Debug)]
pub struct Completion {
    /// The process that yielded.
    pub pid: Pid,
    /// Which yield.
    pub tag: Tag,
    /// The handler's answer.
    pub result: Result<Value, Error>,
}

/// Where completions go: implemented by the runtime, which wakes the process.
pub trait CompletionSink: Send + Sync + 'static {
    /// Delivers a completion. Must not block.
    fn complete(&self, completion: Completion);
}

/// The right to complete one pending yield, exactly once.
pub struct Completer {
    pid: Pid,
    tag: Tag,
    sink: Arc<dyn CompletionSink>,
}

impl Completer {
    /// Delivers the result to the waiting process.
    pub fn complete(self, result: Result<Value, Error>) {
        self.sink.complete(Completion {
            pid: self.pid,
            tag: self.tag,
            result,
        });
    }

    /// The waiting process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The yield being answered.
    pub fn tag(&self) -> Tag {
        self.tag
    }
}

/// What a handler sees of the yield it serves.
#[derive(Clone, Copy)]
pub struct HandlerCx<'a> {
    /// The yielding process.
    pub pid: Pid,
    /// The yield's tag.
    pub tag: Tag,
    /// Where a later completion goes.
    pub sink: &'a Arc<dyn CompletionSink>,
    /// Whether the caller could wait if the command is not answered now:
    /// false inside the script's call where it cannot yield (a
    /// `table.sort` comparator).
    pub can_wait: bool,
}

impl HandlerCx<'_> {
    /// A completer for this yield, for handlers that answer later.
    pub fn completer(&self) -> Completer {
        Completer {
            pid: self.pid,
            tag: self.tag,
            sink: Arc::clone(self.sink),
        }
    }
}

/// The outcome of dispatching one call.
#[derive(Debug)]
pub enum Dispatched {
    /// Answered now; resume the process with it.
    Ready(Result<Value, Error>),
    /// Will be answered by a [`Completion`]. The abort handle, when present,
    /// cancels the work if the process dies first.
    Pending(Option<AbortHandle>),
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send>>;
type InlineFn = dyn Fn(&HandlerCx<'_>, Call) -> Result<Value, Error> + Send + Sync;
type AsyncFn = dyn Fn(Pid, Call) -> BoxFuture + Send + Sync;
type DeferredFn = dyn Fn(&HandlerCx<'_>, Call) -> Dispatched + Send + Sync;

/// An inline handler of typed command `C` as the dispatcher keeps it.
fn typed<C, F>(f: F) -> Box<InlineFn>
where
    C: Command,
    F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
{
    Box::new(move |cx, call| to_value(&f(cx, call.into_command::<C>()?)?))
}

enum Handler {
    Inline(Box<InlineFn>),
    /// Inline, and safe to run inside the script's call (see
    /// [`DispatcherBuilder::immediate`]).
    Immediate(Box<InlineFn>),
    Async(Box<AsyncFn>),
    /// Answers now or later (see [`DispatcherBuilder::untyped`]).
    Deferred(Box<DeferredFn>),
}

struct Registered {
    name: String,
    handler: Handler,
}

/// Collects handlers; [`DispatcherBuilder::build`] freezes them.
#[derive(Default)]
pub struct DispatcherBuilder {
    handlers: HashMap<CommandId, Registered>,
}

impl DispatcherBuilder {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, id: CommandId, name: &str, handler: Handler) -> Result<&mut Self, Error> {
        if let Some(old) = self.handlers.get(&id) {
            return Err(Error::new(
                crate::ErrorKind::AlreadyExists,
                format!("command id {id} of {name} is already taken by {}", old.name),
            ));
        }
        self.handlers.insert(
            id,
            Registered {
                name: name.to_owned(),
                handler,
            },
        );
        Ok(self)
    }

    /// Registers the typed handler of command `C`: a quick, non-blocking
    /// function run on the worker that dispatches the yield.
    pub fn command<C, F>(&mut self, f: F) -> Result<&mut Self, Error>
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.insert(C::ID, C::NAME, Handler::Inline(typed(f)))
    }

    /// Registers the typed handler of command `C` that may also run inside
    /// the script's call, without a yield ([`Dispatcher::call_immediate`]).
    /// Only for handlers that neither start processes nor signal the
    /// caller itself: the engine's state is in use while they run, and the
    /// scheduler looks at the caller's signals only between yields.
    pub fn immediate<C, F>(&mut self, f: F) -> Result<&mut Self, Error>
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.insert(C::ID, C::NAME, Handler::Immediate(typed(f)))
    }

    /// Registers the typed async handler of command `C`: a tokio future on
    /// the IO pool, cancelled if the process dies first.
    pub fn async_command<C, F, Fut>(&mut self, f: F) -> Result<&mut Self, Error>
    where
        C: Command,
        F: Fn(Pid, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, Error>> + Send + 'static,
    {
        let f = Arc::new(f);
        let run = move |pid, call: Call| -> BoxFuture {
            let f = Arc::clone(&f);
            Box::pin(async move { to_value(&f(pid, call.into_command::<C>()?).await?) })
        };
        self.insert(C::ID, C::NAME, Handler::Async(Box::new(run)))
    }

    /// The escape hatch: registers an untyped handler of command `id`
    /// that gets the arguments in value form and answers now
    /// ([`Dispatched::Ready`]) or later, through the yield's
    /// [`Completer`] ([`Dispatched::Pending`]). For commands without a
    /// Rust type (a journal's own markers, a bridge to another system);
    /// anything else is clearer typed.
    pub fn untyped<F>(&mut self, id: CommandId, name: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(&HandlerCx<'_>, Value) -> Dispatched + Send + Sync + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Deferred(Box::new(move |cx, call| f(cx, call.into_args()))),
        )
    }

    /// Freezes the registry into a table indexed by command id, so a
    /// dispatch is one bounds-checked index, not a hash lookup.
    pub fn build(self, io: IoPool) -> Dispatcher {
        let len = self.handlers.keys().map(|id| usize::from(id.0) + 1).max();
        let mut table: Vec<Option<Registered>> = Vec::new();
        table.resize_with(len.unwrap_or(0), || None);
        for (id, reg) in self.handlers {
            table[usize::from(id.0)] = Some(reg);
        }
        Dispatcher {
            handlers: table.into(),
            io,
        }
    }
}

/// The frozen handler registry. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    /// Handlers by command id.
    handlers: Arc<[Option<Registered>]>,
    io: IoPool,
}

impl Dispatcher {
    /// Routes `call` to its handler.
    pub fn dispatch(&self, cx: &HandlerCx<'_>, call: Call) -> Dispatched {
        let Some(reg) = self.registered(call.id) else {
            return Dispatched::Ready(Err(Error::not_found(format!(
                "no handler registered for command {}",
                call.id
            ))));
        };
        match &reg.handler {
            Handler::Inline(f) | Handler::Immediate(f) => Dispatched::Ready(f(cx, call)),
            Handler::Deferred(f) => f(cx, call),
            Handler::Async(f) => {
                let fut = f(cx.pid, call);
                let completer = cx.completer();
                let task = self.io.spawn(async move { completer.complete(fut.await) });
                Dispatched::Pending(Some(task.abort_handle()))
            }
        }
    }

    /// Answers `call` now when its handler is
    /// [immediate](DispatcherBuilder::immediate); otherwise gives it back,
    /// to be yielded and dispatched.
    pub fn call_immediate(
        &self,
        cx: &HandlerCx<'_>,
        call: Call,
    ) -> Result<Result<Value, Error>, Call> {
        match self.registered(call.id).map(|r| &r.handler) {
            Some(Handler::Immediate(f)) => Ok(f(cx, call)),
            _ => Err(call),
        }
    }

    fn registered(&self, id: CommandId) -> Option<&Registered> {
        self.handlers
            .get(usize::from(id.0))
            .and_then(Option::as_ref)
    }

    /// One more than the highest command id registered (0 if none): every
    /// command's id is below it.
    pub fn id_limit(&self) -> usize {
        self.handlers.len()
    }

    /// The registered name of a command id.
    pub fn name(&self, id: CommandId) -> Option<&str> {
        self.registered(id).map(|r| r.name.as_str())
    }

    /// The IO pool async handlers run on.
    pub fn io(&self) -> &IoPool {
        &self.io
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::ErrorKind;

    struct ChannelSink(std::sync::Mutex<mpsc::Sender<Completion>>);
    impl CompletionSink for ChannelSink {
        fn complete(&self, c: Completion) {
            let _ = self.0.lock().map(|tx| tx.send(c));
        }
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Double {
        n: i64,
    }
    impl Command for Double {
        const ID: CommandId = CommandId(7);
        const NAME: &'static str = "test.double";
        type Output = i64;
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Later {
        n: i64,
    }
    impl Command for Later {
        const ID: CommandId = CommandId(8);
        const NAME: &'static str = "test.later";
        type Output = i64;
    }

    #[test]
    fn inline_async_and_unknown_commands() {
        let io = IoPool::new(1).unwrap();
        let mut b = DispatcherBuilder::new();
        b.command::<Double, _>(|_, d| Ok(d.n * 2)).unwrap();
        b.async_command::<Later, _, _>(|_, l| async move { Ok(l.n) })
            .unwrap();
        let dup = b
            .untyped(CommandId(7), "again", |_, v| Dispatched::Ready(Ok(v)))
            .err()
            .unwrap();
        assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
        let d = b.build(io);

        let (tx, rx) = mpsc::channel();
        let sink: Arc<dyn CompletionSink> = Arc::new(ChannelSink(std::sync::Mutex::new(tx)));
        let cx = HandlerCx {
            pid: Pid::new(0, 1),
            tag: 5,
            sink: &sink,
            can_wait: true,
        };

        let call = Double { n: 21 }.to_call().unwrap();
        assert!(matches!(
            d.dispatch(&cx, call),
            Dispatched::Ready(Ok(Value::Int(42)))
        ));

        assert!(matches!(
            d.dispatch(&cx, Later { n: 3 }.to_call().unwrap()),
            Dispatched::Pending(_)
        ));
        let c = rx.recv().unwrap();
        assert_eq!(
            (c.pid, c.tag, c.result.unwrap()),
            (Pid::new(0, 1), 5, Value::Int(3))
        );

        match d.dispatch(&cx, Call::new(CommandId(9), ())) {
            Dispatched::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(d.name(CommandId(7)), Some("test.double"));
    }
}
