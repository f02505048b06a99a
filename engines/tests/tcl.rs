//! The TCL engine (molt): the sandbox (escape attempts), limits a script
//! cannot catch its way past, deep nesting and recursion as errors, modules
//! through `package require`, and an interpreter that keeps procs and
//! globals between runs.
#![cfg(feature = "tcl")]

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::ScriptEngine;
use troupe_engines::tcl::TclInterpreter;
use troupe_modules::{ModuleRegistry, Policy};
use troupe_runtime::Limits;

fn tcl() -> TclInterpreter {
    let mut t = TclInterpreter::new();
    t.init().unwrap();
    t
}

fn run(t: &mut TclInterpreter, code: &str) -> Result<Value, Error> {
    t.as_executor().unwrap().execute_string(code)
}

fn kind(r: Result<Value, Error>) -> ErrorKind {
    r.expect_err("an error").kind()
}

#[test]
fn escape_attempts_find_no_command_and_no_environment() {
    let mut t = tcl();
    for code in [
        "exec ls /",
        "open /etc/passwd",
        "source /etc/passwd",
        "socket localhost 22",
        "exit 3",
        "time {set x 1}",
        "pdump",
        "file exists /etc/passwd",
        "load libc.so",
        "interp create evil",
        "set env(HOME)",
        "puts stderr hi",
    ] {
        let r = run(&mut t, code);
        assert!(r.is_err(), "{code} ran: {r:?}");
    }
    // A script cannot bring a command in by renaming or defining one that
    // reaches outside: a proc only runs what the sandbox has.
    let r = run(&mut t, "proc exec {args} { return $args }\nexec ls");
    assert_eq!(r.unwrap(), Value::from("ls"));
}

#[test]
fn a_limit_ends_the_run_even_inside_catch() {
    let mut t = tcl();
    t.set_limits(Limits {
        max_instructions: NonZeroU64::new(100_000),
        ..Limits::default()
    })
    .unwrap();
    for code in [
        "while 1 {}",
        "for {} 1 {} {}",
        "while 1 { catch { while 1 {} } }",
        "proc f {} { f; f }\ncatch { f }\nwhile 1 { catch { set x 1 } }",
        "set l {}\nforeach x [string repeat {a } 1000] { while 1 {} }",
    ] {
        assert_eq!(kind(run(&mut t, code)), ErrorKind::LimitExceeded, "{code}");
    }
    // The interpreter runs the next script.
    assert_eq!(run(&mut t, "expr {2 * 21}").unwrap(), Value::Int(42));
}

#[test]
fn a_timeout_stops_a_busy_loop() {
    let mut t = tcl();
    t.set_limits(Limits {
        timeout: Some(Duration::from_millis(50)),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(kind(run(&mut t, "while 1 {}")), ErrorKind::Timeout);
}

#[test]
fn deep_nesting_and_runaway_recursion_are_errors_not_crashes() {
    let mut t = tcl();
    let deep = format!("set x {}1{}", "[set y ".repeat(20_000), "]".repeat(20_000));
    assert!(run(&mut t, &deep).is_err());
    let parens = format!("expr {{{}1{}}}", "(".repeat(20_000), ")".repeat(20_000));
    assert!(run(&mut t, &parens).is_err());
    // Built at run time, then evaluated.
    let built =
        "set s [string repeat {[set y } 50000]\nappend s 1 [string repeat \\] 50000]\nif 1 $s";
    assert!(run(&mut t, built).is_err());
    assert!(run(&mut t, "proc f {n} { f [incr n] }\nf 0").is_err());
    assert_eq!(run(&mut t, "expr {1 + 1}").unwrap(), Value::Int(2));
}

#[test]
fn foreach_with_no_variables_is_an_error_not_a_hang() {
    let mut t = tcl();
    assert!(run(&mut t, "foreach {} {1 2 3} {}").is_err());
}

#[test]
fn modules_come_in_through_package_require_under_the_policy() {
    let mut t = tcl();
    t.set_policy(
        Arc::new(Policy::trusted()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    let r = run(&mut t, "package require json\njson::encode [list 1 2]");
    assert_eq!(r.unwrap(), Value::from("\"1 2\""));
    assert_eq!(
        kind(run(&mut t, "package require no_such_module")),
        ErrorKind::NotFound
    );
    t.set_policy(
        Arc::new(Policy::deny_all()),
        Arc::new(ModuleRegistry::with_builtins()),
    )
    .unwrap();
    assert_eq!(
        kind(run(&mut t, "package require json")),
        ErrorKind::PermissionDenied
    );
    // A denied module stays out even if the script catches the error.
    assert!(run(&mut t, "catch {package require json}\njson::encode 1").is_err());
}

#[test]
fn procs_and_globals_persist_between_runs_and_host_values_read_back() {
    let mut t = tcl();
    run(
        &mut t,
        "proc add {a {b 2}} { expr {$a + $b} }\nset greeting hello",
    )
    .unwrap();
    assert_eq!(run(&mut t, "add 40").unwrap(), Value::Int(42));
    let f = t.as_functions().unwrap();
    assert_eq!(
        f.call_function("add", vec![Value::Int(1), Value::Int(1)])
            .unwrap(),
        Value::Int(2)
    );
    let g = t.as_globals().unwrap();
    assert_eq!(g.get_global("greeting").unwrap(), Value::from("hello"));
    let list = Value::Array(vec![Value::Int(1), Value::from("two")]);
    g.set_global("items", list.clone()).unwrap();
    assert_eq!(g.get_global("items").unwrap(), list);
    assert_eq!(run(&mut t, "llength $items").unwrap(), Value::Int(2));
    // Unchanged by the run: still the value the host set.
    assert_eq!(t.as_globals().unwrap().get_global("items").unwrap(), list);
    run(&mut t, "lappend items three").unwrap();
    assert_eq!(
        t.as_globals().unwrap().get_global("items").unwrap(),
        Value::from("1 two three")
    );
    t.reset().unwrap();
    assert!(run(&mut t, "add 1").is_err());
}

#[test]
fn host_functions_are_commands_and_their_errors_keep_their_kind() {
    let mut t = tcl();
    let f = t.as_functions().unwrap();
    f.register_function(
        "double",
        Arc::new(|args| match args.first() {
            Some(Value::Int(n)) => Ok(Value::Int(n * 2)),
            _ => Err(Error::not_found("no number")),
        }),
    )
    .unwrap();
    assert_eq!(run(&mut t, "double 21").unwrap(), Value::Int(42));
    assert_eq!(kind(run(&mut t, "double x")), ErrorKind::NotFound);
    // TCL sees the kind as errorCode.
    assert_eq!(
        run(&mut t, "catch {double x}\nset errorCode").unwrap(),
        Value::from("NOT_FOUND")
    );
}
