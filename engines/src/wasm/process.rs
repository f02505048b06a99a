//! A WebAssembly process: the future of its guest call, polled with a no-op
//! waker by each step. A pending poll is a command to yield when a host
//! function parked one, otherwise a fuel-slice preemption.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::{Limits, Process, Resume, Step, StepCx};
use wasmtime::{Module, Store};

use super::Shared;
use super::abi;
use super::error::from_wasmtime;
use super::host::{Ctx, Exchange, Host, Limiter};
use crate::cancel::CancelSlot;

/// A guest call in progress.
type Running = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send>>;

fn internal(e: &wasmtime::Error) -> Error {
    Error::internal(format!("wasmtime: {e:#}"))
}

/// A store for one guest under `limits`: fuel for the instruction limit,
/// a fuel yield every slice, the memory limiter.
pub(crate) fn new_store(
    shared: &Shared,
    ctx: Arc<Ctx>,
    limits: &Limits,
) -> Result<Store<Host>, Error> {
    let host = Host {
        ctx,
        limiter: Limiter {
            max_memory: limits.max_memory.map(|m| m.get()),
            exceeded: false,
        },
    };
    let mut store = Store::new(&shared.engine, host);
    store.limiter(|h| &mut h.limiter);
    store
        .set_fuel(limits.max_instructions.map_or(u64::MAX, |m| m.get()))
        .map_err(|e| internal(&e))?;
    store
        .fuel_async_yield_interval(Some(limits.slice_instructions.get()))
        .map_err(|e| internal(&e))?;
    Ok(store)
}

/// Instantiates `module` in `store` and calls `entry` with `args`.
pub(crate) async fn instantiate_and_call(
    shared: Arc<Shared>,
    mut store: Store<Host>,
    module: Module,
    entry: String,
    args: Vec<Value>,
    max_instructions: Option<u64>,
) -> Result<Value, Error> {
    let instance = match shared.linker.instantiate_async(&mut store, &module).await {
        Ok(i) => i,
        Err(e) => {
            let err = from_wasmtime(&e, store.data(), max_instructions);
            return Err(
                if err.kind() == ErrorKind::Internal && e.downcast_ref::<wasmtime::Trap>().is_none()
                {
                    Error::invalid(format!(
                        "cannot instantiate {}: {e:#}",
                        store.data().ctx.key
                    ))
                } else {
                    err
                },
            );
        }
    };
    match abi::invoke(&mut store, &instance, &entry, args).await {
        Ok(result) => result,
        Err(e) => Err(from_wasmtime(&e, store.data(), max_instructions)),
    }
}

/// Drives `future` to its end on this thread. Only for guests that cannot
/// wait for commands (embedded instances): a pending poll is a fuel-slice
/// yield, after which the guest goes on unless `deadline` passed or
/// `cancel` was cancelled.
pub(crate) fn run_to_end<F: Future>(
    future: F,
    deadline: Option<(Instant, Duration)>,
    cancel: &CancelSlot,
) -> Result<F::Output, Error> {
    cancel.check()?;
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if let Some(e) = timed_out(deadline) {
            return Err(e);
        }
        cancel.check()?;
    }
}

/// `TIMEOUT` once `deadline` (the instant and the limit it came from) has
/// passed.
fn timed_out(deadline: Option<(Instant, Duration)>) -> Option<Error> {
    let (at, limit) = deadline?;
    (Instant::now() >= at).then(|| {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "process exceeded its wall-clock limit of {} ms",
                limit.as_millis()
            ),
        )
    })
}

/// A running WebAssembly guest.
pub(crate) struct WasmProcess {
    running: Option<Running>,
    exchange: Arc<Mutex<Exchange>>,
    deadline: Option<(Instant, Duration)>,
}

impl WasmProcess {
    /// A process that will call `entry` of a fresh instance of `module`.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        module: &Module,
        ctx: Arc<Ctx>,
        entry: &str,
        args: Vec<Value>,
        limits: Limits,
    ) -> Result<Self, Error> {
        let exchange = ctx
            .exchange
            .clone()
            .ok_or_else(|| Error::internal("a process context without an exchange"))?;
        let store = new_store(shared, ctx, &limits)?;
        let running: Running = Box::pin(instantiate_and_call(
            Arc::clone(shared),
            store,
            module.clone(),
            entry.to_owned(),
            args,
            limits.max_instructions.map(|m| m.get()),
        ));
        Ok(Self {
            running: Some(running),
            exchange,
            deadline: limits
                .timeout
                .and_then(|t| Some((Instant::now().checked_add(t)?, t))),
        })
    }
}

impl Process for WasmProcess {
    fn step(&mut self, _cx: &mut StepCx<'_>, input: Resume) -> Step {
        if let Resume::Return(result) = input {
            self.exchange.lock().reply = Some(result);
        }
        if let Some(e) = timed_out(self.deadline) {
            self.running = None;
            return Step::Failed(e);
        }
        let Some(running) = self.running.as_mut() else {
            return Step::Failed(Error::internal("the wasm process already ended"));
        };
        let mut cx = Context::from_waker(Waker::noop());
        match running.as_mut().poll(&mut cx) {
            Poll::Ready(result) => {
                self.running = None;
                match result {
                    Ok(v) => Step::Done(v),
                    Err(e) => Step::Failed(e),
                }
            }
            Poll::Pending => match self.exchange.lock().pending.take() {
                Some(call) => Step::Yield(call),
                None => Step::Preempted,
            },
        }
    }
}
