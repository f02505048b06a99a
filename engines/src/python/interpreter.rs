//! [`PythonInterpreter`]: the Python engine as an embeddable
//! [`ScriptEngine`]. The RustPython interpreter is `!Send`, so it lives on a
//! dedicated thread and this type is a `Send` handle that hands each call
//! over and waits for its answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};

use rustpython_vm::compiler::{CodeObject, Mode};
use rustpython_vm::scope::Scope;
use rustpython_vm::{Interpreter, VirtualMachine};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::Limits;
use troupe_sources::{Script, Source};

use super::STACK_SIZE;
use super::vm::{self, Host, Output};
use crate::capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, closed,
};
use crate::shell::{Shell, shell_methods};

/// The kind every Python interpreter reports.
const KIND: &str = "python";

/// The interpreter and its globals, on the interpreter thread.
#[derive(Default)]
struct Live {
    interp: Option<(Interpreter, Scope)>,
}

impl Live {
    /// Runs `f` with the VM and the global scope (made on first use).
    /// Limits apply per call; a script ended by a limit takes the
    /// interpreter (and its globals) with it: the next call starts afresh.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&VirtualMachine, &Scope) -> Result<T, Error>,
    ) -> Result<T, Error> {
        vm::with_host(Host::start_budget);
        let r = vm::guarded(|| {
            if self.interp.is_none() {
                let (interp, scope) = vm::new_interpreter()?;
                let names: Vec<String> =
                    vm::with_host(|h| h.functions.keys().cloned().collect()).unwrap_or_default();
                interp.enter(|vm| {
                    names.iter().try_for_each(|n| {
                        let f = vm::host_function(vm, n)
                            .map_err(|e| vm::describe(vm, &e, "host function"))?;
                        scope
                            .globals
                            .set_item(n.as_str(), f, vm)
                            .map_err(|e| vm::describe(vm, &e, "host function"))
                    })
                })?;
                self.interp = Some((interp, scope));
            }
            let (interp, scope) = self
                .interp
                .as_ref()
                .ok_or_else(|| Error::internal("no interpreter"))?;
            interp.enter(|vm| f(vm, scope))
        });
        match r {
            Ok(r) => r,
            Err(e) => {
                self.clear();
                Err(e)
            }
        }
    }

    /// Drops the interpreter and everything the host kept of it.
    fn clear(&mut self) {
        vm::with_host(|h| {
            h.loaded.clear();
            h.objs = None;
        });
        self.interp = None;
    }
}

type Job = Box<dyn FnOnce(&mut Live) + Send>;

/// A Python interpreter instance: globals, loaded scripts and host
/// functions persist between calls until [`reset`](ScriptEngine::reset).
///
/// `execute_string` returns the value of an expression, or after
/// statements the global `result`; loaded scripts return `result`.
/// Commands fail `UNAVAILABLE` (they need a process). Exceeding a limit
/// discards the instance's globals.
///
/// ```
/// use troupe_engines::python::PythonInterpreter;
/// use troupe_engines::ScriptEngine;
/// use troupe_dispatcher::Value;
///
/// let mut py = PythonInterpreter::new();
/// py.as_loader()?.load_string("lib", "def double(n):\n    return n * 2")?;
/// py.as_executor()?.execute("lib")?;
/// let r = py.as_functions()?.call_function("double", vec![Value::Int(21)])?;
/// assert_eq!(r, Value::Int(42));
/// # Ok::<(), troupe_dispatcher::Error>(())
/// ```
pub struct PythonInterpreter {
    /// Loaded scripts, compiled.
    shell: Shell<CodeObject>,
    output: Output,
    jobs: Option<Sender<Job>>,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
    functions: HashMap<String, HostFunction>,
}

impl Default for PythonInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl PythonInterpreter {
    /// An interpreter whose `print` writes lines to stdout, with a deny-all
    /// policy, default limits and an empty source.
    pub fn new() -> Self {
        Self::with_output(|line| println!("{line}"))
    }

    /// An interpreter whose `print` hands each line to `output`.
    pub fn with_output(output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            shell: Shell::opened(KIND),
            output: Arc::new(output),
            jobs: None,
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::new()),
            limits: Limits::default(),
            functions: HashMap::new(),
        }
    }

    /// Makes the host context a fresh interpreter thread starts with.
    fn host(&self) -> impl FnOnce() -> Host + Send + 'static {
        let output = Arc::clone(&self.output);
        let policy = Arc::clone(&self.policy);
        let modules = Arc::clone(&self.modules);
        let limits = self.limits;
        let functions = self.functions.clone();
        let cancel = self.shell.cancel().clone();
        move || {
            let mut host = Host::new(output);
            host.policy = policy;
            host.modules = modules;
            host.limits = limits;
            host.functions = functions;
            host.cancel = cancel;
            host
        }
    }

    /// Starts the interpreter thread if it is not running.
    fn start(&mut self) -> Result<&Sender<Job>, Error> {
        self.shell.check()?;
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let host = self.host();
            std::thread::Builder::new()
                .name("python interpreter".to_owned())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    vm::install(host());
                    let mut live = Live::default();
                    while let Ok(job) = rx.recv() {
                        job(&mut live);
                    }
                    live.clear();
                    vm::uninstall();
                })
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot start a Python thread: {e}"),
                    )
                })?;
            self.jobs = Some(tx);
        }
        self.jobs.as_ref().ok_or_else(|| closed(KIND))
    }

    /// Runs `f` on the interpreter thread and waits for its answer.
    fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Live) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let r = (|| {
            let (tx, rx) = mpsc::sync_channel(1);
            let job: Job = Box::new(move |live| {
                let _ = tx.send(f(live));
            });
            self.start()?
                .send(job)
                .map_err(|_| Error::internal("the Python interpreter thread ended"))?;
            rx.recv()
                .map_err(|_| Error::internal("the Python interpreter thread ended"))?
        })();
        self.shell.record(r)
    }

    /// `CANCELED` (recorded) when the cancellation handle was cancelled.
    fn check_cancel(&mut self) -> Result<(), Error> {
        let r = self.shell.cancel().check();
        self.shell.record(r)
    }

    /// Changes the host context on the interpreter thread (if running).
    fn update(&mut self, f: impl FnOnce(&mut Live) + Send + 'static) -> Result<(), Error> {
        if self.jobs.is_none() {
            return self.shell.check();
        }
        self.call(move |live| {
            f(live);
            Ok(())
        })
    }
}

impl ScriptEngine for PythonInterpreter {
    shell_methods!(as_loader: Loader, as_executor: Executor, as_globals: Globals,
        as_functions: Functions, as_modules: Modules, as_watcher: Watcher);

    fn init(&mut self) -> Result<(), Error> {
        self.call(|live| live.run(|_, _| Ok(())))
    }

    fn close(&mut self) -> Result<(), Error> {
        self.shell.close();
        self.jobs = None;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.shell.reset();
        self.functions.clear();
        self.update(|live| {
            vm::with_host(|h| h.functions.clear());
            live.clear();
        })
    }

    fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
    ) -> Result<(), Error> {
        self.policy = Arc::clone(&policy);
        self.modules = Arc::clone(&modules);
        self.update(move |_| {
            vm::with_host(|h| {
                h.policy = policy;
                h.modules = modules;
                h.loaded.clear();
            });
        })
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), Error> {
        self.limits = limits;
        self.update(move |_| {
            vm::with_host(|h| h.limits = limits);
        })
    }
}

impl Loader for PythonInterpreter {
    fn bind_source(&mut self, source: Arc<dyn Source>) {
        self.shell.bind(source);
    }

    fn load(&mut self, key: &str) -> Result<(), Error> {
        let r = self.shell.read(key).and_then(|s| compile_script(&s));
        let r = r.map(|code| self.shell.keep(key, code));
        self.shell.record(r)
    }

    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error> {
        let r = vm::compile(name, code, Mode::Exec).map(|code| self.shell.keep(name, code));
        self.shell.record(r)
    }
}

/// A script read from a source, compiled.
fn compile_script(script: &Script) -> Result<CodeObject, Error> {
    let text = std::str::from_utf8(&script.code)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8", script.key)))?;
    vm::compile(&script.key, text, Mode::Exec)
}

impl Watcher for PythonInterpreter {
    fn watch(&mut self, key: &str) -> Result<(), Error> {
        self.shell.watch(key, Arc::new(compile_script))
    }

    fn unwatch(&mut self, key: &str) -> Result<(), Error> {
        self.shell.unwatch(key);
        Ok(())
    }
}

impl Executor for PythonInterpreter {
    fn loaded(&self) -> Vec<String> {
        self.shell.loaded_keys()
    }

    fn execute(&mut self, key: &str) -> Result<Value, Error> {
        self.check_cancel()?;
        self.shell.apply_reloads();
        let code = self.shell.loaded(key).cloned();
        let code = self.shell.record(code)?;
        self.call(move |live| {
            live.run(|vm, scope| {
                let obj = vm::run_code(vm, vm.ctx.new_code(code), scope)
                    .map_err(|e| vm::describe(vm, &e, "script failed"))?;
                vm::to_value(vm, &obj)
                    .map_err(|e| Error::invalid(format!("script result: {}", e.message())))
            })
        })
    }

    fn execute_named(&mut self, name: &str, code: &str) -> Result<Value, Error> {
        self.check_cancel()?;
        let (name, code) = (name.to_owned(), code.to_owned());
        self.call(move |live| live.run(|vm, scope| vm::run_embedded(vm, &name, &code, scope)))
    }
}

impl Globals for PythonInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        let name = name.to_owned();
        self.call(move |live| {
            live.run(|vm, scope| {
                scope
                    .globals
                    .set_item(name.as_str(), vm::to_py(vm, &value), vm)
                    .map_err(|e| vm::describe(vm, &e, "set_global"))
            })
        })
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        let name = name.to_owned();
        self.call(move |live| {
            live.run(|vm, scope| {
                match scope
                    .globals
                    .get_item_opt(name.as_str(), vm)
                    .map_err(|e| vm::describe(vm, &e, "get_global"))?
                {
                    Some(obj) => vm::to_value(vm, &obj),
                    None => Ok(Value::Nil),
                }
            })
        })
    }
}

impl Functions for PythonInterpreter {
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        let f = self.shell.cancel().guard(f);
        self.functions.insert(name.to_owned(), Arc::clone(&f));
        let name = name.to_owned();
        self.call(move |live| {
            vm::with_host(|h| h.functions.insert(name.clone(), f));
            live.run(|vm, scope| {
                let wrapper =
                    vm::host_function(vm, &name).map_err(|e| vm::describe(vm, &e, "register"))?;
                scope
                    .globals
                    .set_item(name.as_str(), wrapper, vm)
                    .map_err(|e| vm::describe(vm, &e, "register"))
            })
        })
    }

    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.check_cancel()?;
        let name = name.to_owned();
        self.call(move |live| live.run(|vm, scope| vm::call_global(vm, scope, &name, &args)))
    }
}

impl Modules for PythonInterpreter {
    fn register_module(&mut self, def: ModuleDef) -> Result<(), Error> {
        Arc::make_mut(&mut self.modules).insert(def);
        let modules = Arc::clone(&self.modules);
        self.update(move |_| {
            vm::with_host(|h| h.modules = modules);
        })
    }
}
