//! Handlers for the commands of the built-in `time`, `process`,
//! `supervisor` and `workflow` modules that are not yet typed (the message
//! path is, in `commands.rs`). They need the scheduler (the process table,
//! links and names), so they live here rather than beside the module
//! definitions. The self-contained `rand` and `uuid` handlers come from
//! `troupe-modules`.

use std::sync::{Arc, Weak};

use troupe_dispatcher::{DispatcherBuilder, Error, ErrorKind, HandlerCx, Pid, Value};
use troupe_modules::builtin::ids;

use crate::Supervisor;
use crate::entry::Entry;
use crate::exit::Exit;
use crate::scheduler::Scheduler;
use crate::supervisor_spec;

fn upgrade(s: &Weak<Scheduler>) -> Result<Arc<Scheduler>, Error> {
    s.upgrade()
        .ok_or_else(|| Error::new(ErrorKind::Canceled, "runtime shut down"))
}

/// The yielding process's entry; `CANCELED` if it is gone.
fn caller(cx: &HandlerCx<'_>, s: &Scheduler) -> Result<Arc<Entry>, Error> {
    s.table
        .lookup(cx.pid)
        .ok_or_else(|| Error::new(ErrorKind::Canceled, "process is gone"))
}

fn field<'a>(args: &'a Value, name: &str) -> &'a Value {
    args.get(name).unwrap_or(&Value::Nil)
}

/// Registers the built-in command handlers.
pub(crate) fn register(b: &mut DispatcherBuilder, sched: &Weak<Scheduler>) -> Result<(), Error> {
    troupe_modules::builtin::register_handlers(b)?;

    let s = sched.clone();
    b.immediate(ids::TIME_MONOTONIC, "time.monotonic", move |_, _| {
        Ok(Value::Float(
            upgrade(&s)?.started.elapsed().as_secs_f64() * 1e3,
        ))
    })?;

    let s = sched.clone();
    b.asynchronous(ids::WORKFLOW_SIGNAL, "workflow.signal", move |_, args| {
        let store = upgrade(&s).and_then(|s| s.workflow_store().map(Arc::clone));
        async move {
            let text = |k: &str| field(&args, k).as_str().unwrap_or_default().to_owned();
            let (id, topic) = (text("id"), text("topic"));
            let payload = field(&args, "payload").clone();
            // A durable write: off the IO threads.
            tokio::task::spawn_blocking(move || store?.signal(&id, &topic, payload))
                .await
                .map_err(|e| Error::internal(format!("workflow.signal: {e}")))??;
            Ok(Value::Bool(true))
        }
    })?;

    let s = sched.clone();
    b.inline(ids::PROCESS_SPAWN, "process.spawn", move |cx, args| {
        let s = upgrade(&s)?;
        let pid = s.spawn_child(&*caller(cx, &s)?, args)?;
        Ok(Value::from(pid.to_string()))
    })?;
    register_links(b, sched)
}

/// The pid named by `args.pid`: a pid's text form or a registered name.
fn target(s: &Scheduler, args: &Value) -> Result<Pid, Error> {
    s.table
        .resolve(field(args, "pid").as_str().unwrap_or_default())
}

fn name(args: &Value) -> &str {
    field(args, "name").as_str().unwrap_or_default()
}

/// Handlers of links, monitors, exits and the name registry.
fn register_links(b: &mut DispatcherBuilder, sched: &Weak<Scheduler>) -> Result<(), Error> {
    let s = sched.clone();
    b.inline(ids::PROCESS_LINK, "process.link", move |cx, args| {
        let s = upgrade(&s)?;
        s.link(cx.pid, target(&s, &args)?)?;
        Ok(Value::Bool(true))
    })?;

    let s = sched.clone();
    b.inline(ids::PROCESS_UNLINK, "process.unlink", move |cx, args| {
        let s = upgrade(&s)?;
        s.table.unlink(cx.pid, target(&s, &args)?);
        Ok(Value::Bool(true))
    })?;

    let s = sched.clone();
    b.inline(ids::PROCESS_MONITOR, "process.monitor", move |cx, args| {
        let s = upgrade(&s)?;
        Ok(Value::Int(s.monitor(cx.pid, target(&s, &args)?)?))
    })?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_DEMONITOR,
        "process.demonitor",
        move |cx, args| {
            let r = field(&args, "ref").as_i64().unwrap_or_default();
            Ok(Value::Bool(upgrade(&s)?.table.demonitor(cx.pid, r)))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_TRAP_EXITS,
        "process.trap_exits",
        move |cx, args| {
            let on = field(&args, "on").as_bool().unwrap_or_default();
            Ok(Value::Bool(upgrade(&s)?.table.trap_exits(cx.pid, on)?))
        },
    )?;

    let s = sched.clone();
    b.inline(ids::PROCESS_KILL, "process.kill", move |_, args| {
        let s = upgrade(&s)?;
        Ok(Value::Bool(s.stop(target(&s, &args)?, Exit::Killed)))
    })?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_REGISTER,
        "process.register",
        move |cx, args| {
            upgrade(&s)?.table.register(cx.pid, name(&args))?;
            Ok(Value::Bool(true))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::PROCESS_UNREGISTER,
        "process.unregister",
        move |cx, args| {
            upgrade(&s)?.table.unregister(cx.pid, name(&args))?;
            Ok(Value::Bool(true))
        },
    )?;

    let s = sched.clone();
    b.immediate(ids::PROCESS_WHEREIS, "process.whereis", move |_, args| {
        let pid = upgrade(&s)?.table.whereis(name(&args));
        Ok(pid.map_or(Value::Nil, |p| Value::from(p.to_string())))
    })?;

    let s = sched.clone();
    b.inline(
        ids::SUPERVISOR_START,
        "supervisor.start",
        move |cx, args| {
            let s = upgrade(&s)?;
            let parent = caller(cx, &s)?;
            let sup = Supervisor::from_value(&parent, &args)?;
            let (pid, _) = s.start_supervisor(sup, Some(&parent), None)?;
            Ok(Value::from(pid.to_string()))
        },
    )?;

    let s = sched.clone();
    b.inline(
        ids::SUPERVISOR_CHILDREN,
        "supervisor.which_children",
        move |_, args| {
            let s = upgrade(&s)?;
            let pid = target(&s, &args)?;
            let children = s
                .table
                .supervisors
                .get(&pid)
                .map(|c| Arc::clone(&c))
                .ok_or_else(|| Error::not_found(format!("{pid} is not a live supervisor")))?;
            let list = children.lock();
            Ok(supervisor_spec::children_value(&list))
        },
    )?;
    Ok(())
}
