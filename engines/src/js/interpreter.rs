//! [`JsInterpreter`]: an embeddable JS instance. Its context lives on a JS
//! thread (see `threads.rs`); the handle forwards every call there. Scripts
//! run to completion: a script's value is its completion value (or the
//! settled value of the Promise it ends with); module commands are
//! `UNAVAILABLE` here (they need a process).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use boa_engine::object::builtins::JsArray;
use boa_engine::{Context, JsString, JsValue};
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};
use troupe_modules::{ModuleDef, ModuleRegistry, Policy};
use troupe_runtime::Limits;
use troupe_sources::{Script, Source};

use super::Output;
use super::convert::{from_js, from_js_error, to_js};
use super::host::{Host, host, new_context, register_host_function, set_global};
use super::process::past;
use super::run::{Main, Outcome, Parsed, Stop, apply_limits, check_syntax, parse, poll, start};
use super::threads::{Worker, next_id, pick};
use crate::cancel::CancelSlot;
use crate::capability::{
    Executor, Functions, Globals, HostFunction, Loader, Modules, ScriptEngine, Watcher, closed,
};
use crate::shell::{Shell, not_loaded, shell_methods};

/// The kind every JS interpreter reports.
const KIND: &str = "js";

thread_local! {
    /// The interpreters living on this JS thread, by id.
    static INSTANCES: RefCell<HashMap<u64, Instance>> = RefCell::new(HashMap::new());
}

/// The globals a `call_function` hands its function and arguments to
/// [`CALL`] through.
const CALL_FUNCTION: &str = "__troupe_call_function";
const CALL_ARGS: &str = "__troupe_call_args";
/// The script a `call_function` runs (so a call runs in slices, as a
/// script does, and can be stopped).
const CALL: &str = "__troupe_call_function(...__troupe_call_args)";

/// An interpreter's state on its JS thread.
struct Instance {
    ctx: Context,
    host: Rc<Host>,
    limits: Limits,
    /// Loaded scripts, parsed, by key.
    scripts: HashMap<String, Parsed>,
    /// [`CALL`], parsed.
    call: Parsed,
    /// The last run was stopped midway (deadline, cancellation): `ctx`
    /// still holds its frames.
    stopped: bool,
}

impl Instance {
    fn new(
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
        limits: Limits,
    ) -> Result<Self, Error> {
        let output: Output = Arc::new(|line| println!("{line}"));
        let host = Host::new(Pid::new(0, 0), None, policy, modules, false, output);
        let mut ctx = new_context(Rc::clone(&host))?;
        apply_limits(&mut ctx, &limits);
        let call = parse("<call>", CALL.as_bytes(), &mut ctx)?;
        Ok(Self {
            ctx,
            host,
            limits,
            scripts: HashMap::new(),
            call,
            stopped: false,
        })
    }

    /// A fresh context in place of this one, with the same policy,
    /// modules and limits (what `reset` and a stopped run leave).
    fn restart(&mut self) -> Result<(), Error> {
        let extra = self.host.extra.borrow().clone();
        let policy = self.host.policy.borrow().clone();
        let modules = self.host.modules.borrow().clone();
        let fresh = Instance::new(policy, modules, self.limits)?;
        *fresh.host.extra.borrow_mut() = extra;
        *self = fresh;
        Ok(())
    }

    /// Runs `parsed`; with a timeout or a cancellation handle it runs in
    /// slices, and a passed deadline or a cancelled `cancel` stops it
    /// between them (and marks the instance [`Instance::stopped`]).
    fn run(&mut self, key: &str, parsed: &Parsed, cancel: &CancelSlot) -> Result<Value, Error> {
        let deadline = self.limits.deadline(Instant::now());
        past(deadline, key)?;
        cancel.check()?;
        let stopped = Cell::new(false);
        let stop = || {
            let r = past(deadline, key).and_then(|()| cancel.check());
            stopped.set(r.is_err());
            r
        };
        let watched = deadline.is_some() || cancel.is_set();
        let main = start(
            parsed,
            key,
            &mut self.ctx,
            watched.then_some(&stop as Stop<'_>),
        );
        self.stopped = stopped.get();
        let mut main = main?;
        let outcome = poll(&mut main, key, &mut self.ctx);
        self.finish(outcome, key, deadline)
    }

    fn finish(
        &mut self,
        outcome: Outcome,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Value, Error> {
        past(deadline, key)?;
        match outcome {
            Outcome::Done(v) => Ok(v),
            Outcome::Failed(e) => Err(e),
            Outcome::Waiting => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{key}: the script awaits a Promise; commands need a process (spawn the script)"
                ),
            )),
        }
    }

    /// Calls the global function `name` with `args`: directly, or, with a
    /// timeout or a cancellation handle, through [`CALL`] (in slices).
    fn call(&mut self, name: &str, args: Vec<Value>, cancel: &CancelSlot) -> Result<Value, Error> {
        let ctx = &mut self.ctx;
        let f = ctx
            .global_object()
            .get(JsString::from(name), ctx)
            .map_err(|e| from_js_error(e, name, ctx))?;
        if !f.is_callable() {
            return Err(Error::not_found(format!("no function {name:?}")));
        }
        let mut js_args = Vec::with_capacity(args.len());
        for a in &args {
            js_args.push(to_js(a, ctx).map_err(|e| Error::invalid(e.to_string()))?);
        }
        if let (true, Some(func)) = (
            self.limits.timeout.is_none() && !cancel.is_set(),
            f.as_callable(),
        ) {
            let value = func
                .call(&JsValue::undefined(), &js_args, ctx)
                .map_err(|e| from_js_error(e, name, ctx))?;
            let outcome = poll(&mut Main::Value(value), name, ctx);
            return self.finish(outcome, name, None);
        }
        let js_args = JsArray::from_iter(js_args, ctx);
        let global = ctx.global_object();
        for (slot, value) in [(CALL_FUNCTION, f), (CALL_ARGS, js_args.into())] {
            global
                .set(JsString::from(slot), value, false, ctx)
                .map_err(|e| from_js_error(e, name, ctx))?;
        }
        let call = self.call.clone();
        let r = self.run(name, &call, cancel);
        if !self.stopped {
            let ctx = &mut self.ctx;
            for slot in [CALL_FUNCTION, CALL_ARGS] {
                global
                    .delete_property_or_throw(JsString::from(slot), ctx)
                    .map_err(|e| from_js_error(e, name, ctx))?;
            }
        }
        r
    }
}

/// The embeddable JavaScript interpreter (boa). `Send`: a handle on a
/// context kept on a JS thread.
pub struct JsInterpreter {
    /// The loaded scripts live on the JS thread, in the [`Instance`].
    shell: Shell,
    worker: Option<&'static Worker>,
    id: u64,
    /// Set by `init`, cleared by `close`.
    live: bool,
    policy: Arc<Policy>,
    modules: Arc<ModuleRegistry>,
    limits: Limits,
}

impl Default for JsInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl JsInterpreter {
    /// A new, uninitialised instance (deny-all policy, default limits).
    pub fn new() -> Self {
        Self {
            shell: Shell::opened(KIND),
            worker: None,
            id: next_id(),
            live: false,
            policy: Arc::new(Policy::deny_all()),
            modules: Arc::new(ModuleRegistry::with_builtins()),
            limits: Limits::default(),
        }
    }

    /// Runs `f` on the instance's thread, initialising it first; records
    /// the error it returns.
    fn with<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Instance) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let result = self.init().and_then(|()| {
            let id = self.id;
            let worker = self.worker.ok_or_else(|| closed(KIND))?;
            worker.call(move || {
                let taken = INSTANCES.with(|i| i.borrow_mut().remove(&id));
                let Some(mut inst) = taken else {
                    return Err(closed(KIND));
                };
                let r = f(&mut inst);
                INSTANCES.with(|i| i.borrow_mut().insert(id, inst));
                r
            })?
        });
        self.shell.record(result)
    }

    /// Runs `f` (an execution or call) on the instance with the
    /// cancellation handle; a run it stopped midway restarts the instance
    /// (as `reset` does: its context holds the run's frames).
    fn stoppable(
        &mut self,
        f: impl FnOnce(&mut Instance, &CancelSlot) -> Result<Value, Error> + Send + 'static,
    ) -> Result<Value, Error> {
        let cancel = self.shell.cancel().clone();
        let (r, stopped) = self.with(move |inst| {
            let r = f(inst, &cancel);
            let stopped = inst.stopped;
            if stopped {
                inst.restart()?;
            }
            Ok((r, stopped))
        })?;
        if stopped {
            tracing::debug!("a stopped JS run restarted its interpreter");
            self.shell.forget_loaded();
        }
        self.shell.record(r)
    }

    fn drop_instance(&mut self) {
        if let Some(worker) = self.worker.take() {
            let id = self.id;
            worker.post(move || {
                let inst = INSTANCES.with(|i| i.borrow_mut().remove(&id));
                drop(inst);
            });
        }
        self.live = false;
    }
}

impl Drop for JsInterpreter {
    fn drop(&mut self) {
        self.drop_instance();
    }
}

impl ScriptEngine for JsInterpreter {
    shell_methods!(as_loader: Loader, as_executor: Executor, as_globals: Globals,
        as_functions: Functions, as_modules: Modules, as_watcher: Watcher);

    fn init(&mut self) -> Result<(), Error> {
        self.shell.check()?;
        if self.live {
            return Ok(());
        }
        let worker = pick()?;
        let (id, policy, modules, limits) = (
            self.id,
            Arc::clone(&self.policy),
            Arc::clone(&self.modules),
            self.limits,
        );
        worker.call(move || {
            let inst = Instance::new(policy, modules, limits)?;
            INSTANCES.with(|i| i.borrow_mut().insert(id, inst));
            Ok::<_, Error>(())
        })??;
        self.worker = Some(worker);
        self.live = true;
        Ok(())
    }

    fn close(&mut self) -> Result<(), Error> {
        self.drop_instance();
        self.shell.close();
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.shell.check()?;
        self.with(Instance::restart)?;
        self.shell.reset();
        Ok(())
    }

    fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        modules: Arc<ModuleRegistry>,
    ) -> Result<(), Error> {
        self.policy = Arc::clone(&policy);
        self.modules = Arc::clone(&modules);
        if !self.live {
            return Ok(());
        }
        self.with(move |inst| {
            *inst.host.policy.borrow_mut() = policy;
            *inst.host.modules.borrow_mut() = modules;
            inst.host.forget_loaded();
            Ok(())
        })
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), Error> {
        self.limits = limits;
        if !self.live {
            return Ok(());
        }
        self.with(move |inst| {
            inst.limits = limits;
            apply_limits(&mut inst.ctx, &limits);
            Ok(())
        })
    }
}

impl Loader for JsInterpreter {
    fn bind_source(&mut self, source: Arc<dyn Source>) {
        self.shell.bind(source);
    }

    fn load(&mut self, key: &str) -> Result<(), Error> {
        let script = self.shell.read(key);
        let script = self.shell.record(script)?;
        let owned = key.to_owned();
        self.with(move |inst| {
            let parsed = parse(&owned, &script.code, &mut inst.ctx)?;
            inst.scripts.insert(owned, parsed);
            Ok(())
        })?;
        self.shell.note_loaded(key);
        Ok(())
    }

    fn load_string(&mut self, name: &str, code: &str) -> Result<(), Error> {
        let (owned, code) = (name.to_owned(), code.to_owned());
        self.with(move |inst| {
            let parsed = parse(&owned, code.as_bytes(), &mut inst.ctx)?;
            inst.scripts.insert(owned, parsed);
            Ok(())
        })?;
        self.shell.note_loaded(name);
        Ok(())
    }
}

impl Executor for JsInterpreter {
    fn loaded(&self) -> Vec<String> {
        self.shell.loaded_keys()
    }

    fn execute(&mut self, key: &str) -> Result<Value, Error> {
        // The JS thread holds the new versions already: this records the
        // failed reloads and the newly loaded keys.
        self.shell.apply_reloads();
        let key = key.to_owned();
        self.stoppable(move |inst, cancel| {
            let parsed = inst
                .scripts
                .get(&key)
                .cloned()
                .ok_or_else(|| not_loaded(&key))?;
            inst.run(&key, &parsed, cancel)
        })
    }

    fn execute_named(&mut self, name: &str, code: &str) -> Result<Value, Error> {
        let (name, code) = (name.to_owned(), code.to_owned());
        self.stoppable(move |inst, cancel| {
            let parsed = parse(&name, code.as_bytes(), &mut inst.ctx)?;
            inst.run(&name, &parsed, cancel)
        })
    }
}

impl Globals for JsInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        let name = name.to_owned();
        self.with(move |inst| set_global(&mut inst.ctx, &name, &value))
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        let name = name.to_owned();
        self.with(move |inst| {
            let ctx = &mut inst.ctx;
            let v = ctx
                .global_object()
                .get(JsString::from(name.as_str()), ctx)
                .map_err(|e| from_js_error(e, &name, ctx))?;
            from_js(&v, ctx)
        })
    }
}

impl Functions for JsInterpreter {
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        let name = name.to_owned();
        let f = self.shell.cancel().guard(f);
        self.with(move |inst| register_host_function(&mut inst.ctx, &name, f))
    }

    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let name = name.to_owned();
        self.stoppable(move |inst, cancel| inst.call(&name, args, cancel))
    }
}

impl Watcher for JsInterpreter {
    /// Checks a changed `key` on the reload thread, then parses it again on
    /// the instance's JS thread, whenever the source changes it.
    fn watch(&mut self, key: &str) -> Result<(), Error> {
        self.init()?;
        let (worker, id) = (self.worker.ok_or_else(|| closed(KIND))?, self.id);
        let compile = move |script: &Script| {
            check_syntax(&script.key, &script.code)?;
            let (key, code) = (script.key.clone(), Arc::clone(&script.code));
            worker.post(move || {
                INSTANCES.with(|all| {
                    let mut all = all.borrow_mut();
                    let Some(inst) = all.get_mut(&id) else { return };
                    match parse(&key, &code, &mut inst.ctx) {
                        Ok(parsed) => drop(inst.scripts.insert(key, parsed)),
                        Err(e) => {
                            tracing::warn!(key, error = %e, "cannot reload a watched JS script")
                        }
                    }
                });
            });
            Ok(())
        };
        self.shell.watch(key, Arc::new(compile))
    }

    fn unwatch(&mut self, key: &str) -> Result<(), Error> {
        self.shell.unwatch(key);
        Ok(())
    }
}

impl Modules for JsInterpreter {
    fn register_module(&mut self, def: ModuleDef) -> Result<(), Error> {
        self.with(move |inst| {
            let h = host(&inst.ctx).map_err(|e| Error::internal(e.to_string()))?;
            h.extra
                .borrow_mut()
                .insert(def.name().to_owned(), Arc::new(def));
            h.forget_loaded();
            Ok(())
        })
    }
}
