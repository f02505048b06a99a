//! A Lua process: one coroutine in a Lua state it owns, stepped by the
//! scheduler. Commands arrive as the prelude's sentinel with the command
//! stored in [`ProcCtx::pending`]; a preemption is a yield with no values
//! while the hook's `preempting` flag is set.

use std::sync::Arc;

use mlua::thread::ThreadStatus;
use mlua::{Lua, MultiValue, Thread};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::ResultHandler;
use troupe_runtime::{Process, Resume, Step, StepCx};

use super::convert::to_value;
use super::pool::Ending;
use super::state::{ProcCtx, is_sent, resume_values, stepping};
use super::{Pool, error, watchdog};

pub(crate) struct LuaProcess {
    /// The state, returned to the pool on drop; `None` for a lightweight
    /// process, whose state is shared (see `lightweight.rs`).
    pub lua: Option<Lua>,
    pub thread: Thread,
    /// What the first resume passes to the prelude's `body`.
    pub start: Option<MultiValue>,
    pub pool: Arc<Pool>,
    pub memory_limit: Option<usize>,
    /// How the result of the command the script waits for reaches it.
    pub awaiting: ResultHandler,
    /// The hook the watchdog installs when a step runs too long; `None`
    /// when the thread has the counting hook instead.
    pub hook: Option<mlua::ffi::lua_Hook>,
    /// The script returned: the state may be reset and pooled again.
    pub clean: bool,
}

fn lua_failure(e: &mlua::Error, memory_limit: Option<usize>) -> Error {
    match e {
        mlua::Error::MemoryError(_) => Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "memory limit of {} bytes exceeded",
                memory_limit.unwrap_or_default()
            ),
        ),
        other => Error::internal(other.to_string()),
    }
}

/// The value a finished script returned: nothing → nil, one value → that
/// value, several → an array.
fn result_value(values: &[mlua::Value]) -> Result<Value, Error> {
    let convert = |v: &mlua::Value| {
        to_value(v).map_err(|e| Error::invalid(format!("process result: {}", e.message())))
    };
    match values {
        [] => Ok(Value::Nil),
        [one] => convert(one),
        many => many
            .iter()
            .map(convert)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}

impl LuaProcess {
    /// Instructions run so far (counted a slice at a time).
    pub(crate) fn instructions(&self) -> u64 {
        self.lua
            .as_ref()
            .and_then(|l| l.app_data_ref::<ProcCtx>().map(|c| c.instructions))
            .unwrap_or(0)
    }

    fn resume_args(&mut self, lua: &Lua, input: Resume) -> Result<MultiValue, Error> {
        let limit = self.memory_limit;
        let conv = |e: mlua::Error| match e {
            mlua::Error::MemoryError(_) => lua_failure(&e, limit),
            other => Error::internal(format!("cannot pass a value to the script: {other}")),
        };
        Ok(match input {
            Resume::Start => self.start.take().unwrap_or_default(),
            Resume::Continue => MultiValue::new(),
            Resume::Return(result) => {
                let handler = std::mem::take(&mut self.awaiting);
                resume_values(lua, &handler, result).map_err(conv)?
            }
        })
    }

    fn finished(&mut self, values: MultiValue) -> Step {
        let values = values.into_vec();
        match values.split_first() {
            Some((mlua::Value::Boolean(true), rest)) => match result_value(rest) {
                Ok(v) => {
                    self.clean = true;
                    Step::Done(v)
                }
                Err(e) => Step::Failed(e),
            },
            Some((_, [err, ..])) => Step::Failed(error::from_lua(err).unwrap_or_else(|| {
                let text = err.to_string().unwrap_or_default();
                if text.contains("not enough memory") {
                    lua_failure(&mlua::Error::MemoryError(text), self.memory_limit)
                } else {
                    Error::internal(text)
                }
            })),
            _ => Step::Failed(Error::internal("script ended without a status")),
        }
    }
}

impl Process for LuaProcess {
    fn step(&mut self, cx: &mut StepCx<'_>, input: Resume) -> Step {
        // Present from creation until drop.
        let Some(lua) = self.lua.take() else {
            return Step::Failed(Error::internal("the process has no Lua state"));
        };
        let step = self.step_in(&lua, cx, input);
        self.lua = Some(lua);
        step
    }

    /// The bytes its own Lua state holds.
    fn memory(&self) -> Option<usize> {
        self.lua.as_ref().map(Lua::used_memory)
    }

    /// Counted when the process thread runs under the instruction hook
    /// (an instruction limit); a process preempted by time is not counted.
    fn instructions(&self) -> Option<u64> {
        let lua = self.lua.as_ref()?;
        let ctx = lua.app_data_ref::<ProcCtx>()?;
        (!ctx.timed).then_some(ctx.instructions)
    }
}

impl LuaProcess {
    /// One step of the process's thread in `lua`, its state, where its
    /// [`ProcCtx`] is the app data.
    pub(crate) fn step_in(&mut self, lua: &Lua, cx: &StepCx<'_>, input: Resume) -> Step {
        let args = match self.resume_args(lua, input) {
            Ok(a) => a,
            Err(e) => return Step::Failed(e),
        };
        let thread = &self.thread;
        let result = stepping(cx, || match self.hook {
            Some(hook) => {
                let (result, armed) =
                    watchdog::watched(thread.state(), hook, || thread.resume::<MultiValue>(args));
                if armed {
                    thread.remove_hook();
                }
                result
            }
            None => thread.resume::<MultiValue>(args),
        });
        let sent = matches!(&result, Ok(v) if v.front().is_some_and(is_sent));
        let (terminate, pending) = match lua.app_data_mut::<ProcCtx>() {
            Some(mut ctx) => {
                ctx.preempting = false;
                if ctx.timed && ctx.deadline.is_some() {
                    // No hook ran if the step was short: check the clock.
                    ctx.charge(0);
                }
                // A preemption can land between a module storing its command
                // and yielding the sentinel; the command then stays stored
                // until the sentinel's own yield.
                (
                    ctx.terminate.take().map(|e| *e),
                    if sent { ctx.pending.take() } else { None },
                )
            }
            None => (None, None),
        };
        if let Some(e) = terminate {
            return Step::Failed(e);
        }
        match result {
            Err(e) => Step::Failed(lua_failure(&e, self.memory_limit)),
            Ok(values) => match self.thread.status() {
                ThreadStatus::Resumable => match (values.front(), pending) {
                    (Some(v), Some((call, handler))) if is_sent(v) => {
                        self.awaiting = handler;
                        Step::Yield(call)
                    }
                    (Some(v), None) if is_sent(v) => {
                        Step::Failed(Error::internal("command sentinel without a command"))
                    }
                    // A preemption, or the script yielding the CPU on purpose
                    // with `coroutine.yield()` at its top level.
                    _ => Step::Preempted,
                },
                _ => self.finished(values),
            },
        }
    }
}

impl Drop for LuaProcess {
    fn drop(&mut self) {
        if let Some(lua) = self.lua.take() {
            let ending = if self.clean {
                Ending::Clean
            } else if self.thread.status() == ThreadStatus::Running {
                Ending::Broken
            } else {
                Ending::Failed
            };
            self.pool.give_back(lua, ending);
        }
    }
}
