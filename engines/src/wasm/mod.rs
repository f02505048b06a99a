//! The WebAssembly engine (wasmtime). A `.wasm` or `.wat` script is compiled
//! once to a [`wasmtime::Module`] kept in the runtime's program cache; each
//! process gets its own store and instance and calls one exported entry
//! (`run`, or [`ProcessInit::entry`]).
//!
//! Guests reach the host only through the functions they import from the
//! `troupe` namespace (`call`, `send`, `receive`, `sleep`, `self`, `log`);
//! values cross as MessagePack in the guest's linear memory, written into
//! buffers the guest hands out from its exported `alloc`. `docs/wasm-abi.md`
//! is the ABI.
//!
//! Nothing blocks a worker: every guest call runs on a wasmtime fiber driven
//! by `call_async`, polled with a no-op waker from [`Process::step`]. A host
//! function that needs a command (a module command, `receive`, `sleep`)
//! parks the command for the step to yield and waits for the scheduler's
//! reply; fuel counts instructions, yields every
//! [`Limits::slice_instructions`] (a preemption) and traps when
//! [`Limits::max_instructions`] is used up. A [`ResourceLimiter`] enforces
//! [`Limits::max_memory`] on linear memories.
//!
//! [`Limits::slice_instructions`]: troupe_runtime::Limits::slice_instructions
//! [`Limits::max_instructions`]: troupe_runtime::Limits::max_instructions
//! [`Limits::max_memory`]: troupe_runtime::Limits::max_memory
//! [`ResourceLimiter`]: wasmtime::ResourceLimiter

mod abi;
mod error;
mod host;
mod interpreter;
mod process;

use std::sync::Arc;

use troupe_dispatcher::{Error, Value};
use troupe_runtime::{Engine, Process, ProcessInit, Program};
use troupe_sources::Script;
use wasmtime::{Config, Linker, Module};

use self::host::{Ctx, Host};
pub use self::interpreter::WasmInterpreter;
use self::process::WasmProcess;

/// Virtual memory reserved up front for each linear memory. Small, so that
/// thousands of idle instances do not reserve gigabytes of address space;
/// a memory that outgrows it is moved (with explicit bounds checks).
const MEMORY_RESERVATION: u64 = 1 << 20;
/// Guard pages after each linear memory.
const MEMORY_GUARD: u64 = 64 << 10;
/// Wasm stack per process.
const WASM_STACK: usize = 256 << 10;
/// The fiber stack a guest call and the host functions it calls run on.
const FIBER_STACK: usize = 1 << 20;

/// What every process of an engine shares: the wasmtime engine and the
/// linker holding the `troupe` host functions.
pub(crate) struct Shared {
    engine: wasmtime::Engine,
    linker: Linker<Host>,
}

impl Shared {
    fn new() -> Result<Self, Error> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .max_wasm_stack(WASM_STACK)
            .async_stack_size(FIBER_STACK)
            .memory_reservation(MEMORY_RESERVATION)
            .memory_reservation_for_growth(MEMORY_RESERVATION)
            .memory_guard_size(MEMORY_GUARD);
        let engine = wasmtime::Engine::new(&config)
            .map_err(|e| Error::internal(format!("cannot configure wasmtime: {e}")))?;
        let mut linker = Linker::new(&engine);
        host::define(&mut linker)
            .map_err(|e| Error::internal(format!("cannot define the troupe imports: {e}")))?;
        Ok(Self { engine, linker })
    }

    /// Compiles a `.wasm` binary or `.wat` text. Errors are `INVALID` and
    /// name the key.
    pub(crate) fn compile(&self, key: &str, code: &[u8]) -> Result<Module, Error> {
        Module::new(&self.engine, code).map_err(|e| {
            Error::invalid(format!("cannot compile {key}: {e:#}")).with_details(Value::from(key))
        })
    }
}

/// A compiled WebAssembly script.
struct WasmProgram {
    key: String,
    module: Module,
}

/// The WebAssembly process engine for `.wasm` and `.wat` scripts. Cheap to
/// clone; clones share one wasmtime engine.
#[derive(Clone)]
pub struct WasmEngine {
    shared: Result<Arc<Shared>, Error>,
}

impl Default for WasmEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmEngine {
    /// A WebAssembly engine. A wasmtime configuration the host cannot run
    /// surfaces as an `INTERNAL` error from `compile`.
    pub fn new() -> Self {
        Self {
            shared: Shared::new().map(Arc::new),
        }
    }

    fn shared(&self) -> Result<&Arc<Shared>, Error> {
        self.shared.as_ref().map_err(Clone::clone)
    }
}

impl Engine for WasmEngine {
    fn name(&self) -> &str {
        "wasm"
    }

    fn extensions(&self) -> &[&str] {
        &["wasm", "wat"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        let module = self.shared()?.compile(&script.key, &script.code)?;
        Ok(Arc::new(WasmProgram {
            key: script.key.clone(),
            module,
        }))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let program = program
            .downcast_ref::<WasmProgram>()
            .ok_or_else(|| Error::internal("program was not compiled by the wasm engine"))?;
        let shared = self.shared()?;
        let ctx = Arc::new(Ctx::for_process(&init, &program.key));
        let process = WasmProcess::start(
            shared,
            &program.module,
            ctx,
            init.entry.as_deref().unwrap_or(abi::DEFAULT_ENTRY),
            init.args,
            init.limits,
        )?;
        Ok(Box::new(process))
    }
}
