//! The handler registry. Built once with a [`DispatcherBuilder`], then frozen
//! into a [`Dispatcher`] that every worker shares without locks.
//!
//! Three handler flavours cover every command:
//! - **inline**: a quick, non-blocking function run on the calling worker; its
//!   result resumes the process at once (`process.spawn`, `process.kill`).
//!   An inline handler registered as **immediate** (`time.now`,
//!   `process.send`) may also be called by an engine from inside the
//!   script's own call, without a yield, for a process that is not
//!   journaled ([`Dispatcher::call_immediate`]).
//! - **async**: a tokio future on the [`IoPool`]; its result arrives later as a
//!   [`Completion`] (`http.get`, a host's database call).
//! - **deferred**: the handler keeps a [`Completer`] and completes when an
//!   event happens (a timer fires, a message arrives); it may also answer at
//!   once (`process.receive` with a message already queued).

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
    /// Whether the caller could wait if a [probe] does not answer: false
    /// inside the script's call where it cannot yield (a `table.sort`
    /// comparator), so the probe must answer, e.g. with a refusal.
    ///
    /// [probe]: DispatcherBuilder::probed
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
type ProbeFn = dyn Fn(&HandlerCx<'_>, Call) -> Result<Result<Value, Error>, Call> + Send + Sync;

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
    /// A deferred handler, and optionally a probe that answers inside the
    /// script's call when it can (see [`DispatcherBuilder::probed`]).
    Deferred(Box<DeferredFn>, Option<Box<ProbeFn>>),
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

    /// Registers a quick, non-blocking handler run on the calling worker.
    pub fn inline<F>(&mut self, id: CommandId, name: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(&HandlerCx<'_>, Value) -> Result<Value, Error> + Send + Sync + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Inline(Box::new(move |cx, call| f(cx, call.into_args()))),
        )
    }

    /// Registers an inline handler that may also run inside the script's
    /// call, without a yield ([`Dispatcher::call_immediate`]). Only for
    /// handlers that neither start processes nor signal the caller itself:
    /// the engine's state is in use while they run, and the scheduler
    /// looks at the caller's signals only between yields.
    pub fn immediate<F>(&mut self, id: CommandId, name: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(&HandlerCx<'_>, Value) -> Result<Value, Error> + Send + Sync + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Immediate(Box::new(move |cx, call| f(cx, call.into_args()))),
        )
    }

    /// Registers an async handler run on the IO pool.
    pub fn asynchronous<F, Fut>(
        &mut self,
        id: CommandId,
        name: &str,
        f: F,
    ) -> Result<&mut Self, Error>
    where
        F: Fn(Pid, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, Error>> + Send + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Async(Box::new(move |pid, call| {
                Box::pin(f(pid, call.into_args()))
            })),
        )
    }

    /// Registers a handler that completes later through a [`Completer`].
    pub fn deferred<F>(&mut self, id: CommandId, name: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(&HandlerCx<'_>, Value) -> Dispatched + Send + Sync + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Deferred(Box::new(move |cx, call| f(cx, call.into_args())), None),
        )
    }

    /// Registers a deferred handler `f` with an immediate `probe`: inside
    /// the script's call ([`Dispatcher::call_immediate`]) the probe answers
    /// when it can do so now (`Ok`); otherwise it gives the arguments back
    /// (`Err`) and the command is yielded and `f` runs (a journaled process
    /// always yields). Where the caller cannot yield
    /// ([`HandlerCx::can_wait`] is false) a probe should answer anyway if
    /// it has a sensible refusal. The probe is subject to the rules of
    /// [`DispatcherBuilder::immediate`].
    pub fn probed<P, F>(
        &mut self,
        id: CommandId,
        name: &str,
        probe: P,
        f: F,
    ) -> Result<&mut Self, Error>
    where
        P: Fn(&HandlerCx<'_>, Value) -> Result<Result<Value, Error>, Value> + Send + Sync + 'static,
        F: Fn(&HandlerCx<'_>, Value) -> Dispatched + Send + Sync + 'static,
    {
        self.insert(
            id,
            name,
            Handler::Deferred(
                Box::new(move |cx, call| f(cx, call.into_args())),
                Some(Box::new(move |cx, call: Call| {
                    let id = call.id;
                    probe(cx, call.into_args()).map_err(|args| Call::new(id, args))
                })),
            ),
        )
    }

    /// Registers a typed inline handler for command `C`.
    pub fn inline_command<C, F>(&mut self, f: F) -> Result<&mut Self, Error>
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.insert(C::ID, C::NAME, Handler::Inline(typed(f)))
    }

    /// Registers a typed [immediate](Self::immediate) handler for command `C`.
    pub fn immediate_command<C, F>(&mut self, f: F) -> Result<&mut Self, Error>
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.insert(C::ID, C::NAME, Handler::Immediate(typed(f)))
    }

    /// Registers a typed async handler for command `C`.
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
            Handler::Deferred(f, _) => f(cx, call),
            Handler::Async(f) => {
                let fut = f(cx.pid, call);
                let completer = cx.completer();
                let task = self.io.spawn(async move { completer.complete(fut.await) });
                Dispatched::Pending(Some(task.abort_handle()))
            }
        }
    }

    /// Answers `call` now when its handler is [immediate] or its [probe]
    /// can; otherwise gives it back, to be yielded and dispatched.
    ///
    /// [immediate]: DispatcherBuilder::immediate
    /// [probe]: DispatcherBuilder::probed
    pub fn call_immediate(
        &self,
        cx: &HandlerCx<'_>,
        call: Call,
    ) -> Result<Result<Value, Error>, Call> {
        match self.registered(call.id).map(|r| &r.handler) {
            Some(Handler::Immediate(f)) => Ok(f(cx, call)),
            Some(Handler::Deferred(_, Some(probe))) => probe(cx, call),
            _ => Err(call),
        }
    }

    fn registered(&self, id: CommandId) -> Option<&Registered> {
        self.handlers
            .get(usize::from(id.0))
            .and_then(Option::as_ref)
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

    #[test]
    fn inline_async_and_unknown_commands() {
        let io = IoPool::new(1).unwrap();
        let mut b = DispatcherBuilder::new();
        b.inline_command::<Double, _>(|_, d| Ok(d.n * 2)).unwrap();
        b.asynchronous(CommandId(8), "test.later", |_, v| async move { Ok(v) })
            .unwrap();
        let dup = b.inline(CommandId(7), "again", |_, v| Ok(v)).err().unwrap();
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
            d.dispatch(&cx, Call::new(CommandId(8), "hi")),
            Dispatched::Pending(_)
        ));
        let c = rx.recv().unwrap();
        assert_eq!(
            (c.pid, c.tag, c.result.unwrap()),
            (Pid::new(0, 1), 5, Value::from("hi"))
        );

        match d.dispatch(&cx, Call::new(CommandId(9), ())) {
            Dispatched::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(d.name(CommandId(7)), Some("test.double"));
    }
}
