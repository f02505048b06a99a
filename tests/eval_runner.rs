//! `eval_runner` end to end: every option of `run` and `compile`, every
//! permission check denying, limits capped by the caller's, commands and
//! preemption relayed through the caller.

use troupe::{
    Class, Error, ErrorKind, Limits, LuaEngine, MemorySource, Policy, RuleEffect, Runtime, Spawn,
    Value,
};

/// The policy of a caller that may use `eval_runner`.
fn caller_policy() -> Policy {
    Policy::plugin().allow_module("eval_runner")
}

fn runtime(src: MemorySource) -> Runtime {
    Runtime::builder()
        .workers(2)
        .source(src)
        .engine(LuaEngine::new())
        .build()
        .expect("runtime builds")
}

/// Runs `code` as `main.lua` (beside `lib/utils.lua`) under `policy`.
fn run_with(code: &str, policy: Policy, limits: Limits) -> Result<Value, Error> {
    let src = MemorySource::new()
        .with("main.lua", code)
        .with(
            "lib/utils.lua",
            "local M = {} function M.double(x) return x * 2 end return M",
        )
        .with("lib/cycle_a.lua", "return require('b')")
        .with("lib/cycle_b.lua", "return require('a')");
    let rt = runtime(src);
    let r = rt
        .spawn(Spawn::script("main.lua").policy(policy).limits(limits))
        .and_then(|h| h.join_blocking());
    rt.shutdown();
    r
}

fn run(code: &str) -> Result<Value, Error> {
    run_with(code, caller_policy(), Limits::default())
}

/// Runs `code` for a caller that also has the process class.
fn run_with_process(code: &str) -> Result<Value, Error> {
    run_with(
        code,
        caller_policy().allow_class(Class::Process),
        Limits::default(),
    )
}

/// An array of values, for comparing results.
fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn s(text: &str) -> Value {
    Value::from(text)
}

#[test]
fn source_args_input_and_method() {
    let v = run(r#"
        local runner = require("eval_runner")
        local a = runner.run{source = "return 1 + 2"}
        local b = runner.run{source = "local x, y = ... return x * y", args = {6, 7}}
        local c = runner.run{source = "return input.n + 1", args = {{n = 41}}}
        local d = runner.run{source = "return input == nil, select('#', ...)", args = {1, 2}}
        local e = runner.run{
            source = "local M = {} function M.greet(name, p) return p .. ', ' .. name end return M",
            method = "greet",
            args = {"Ada", "hello"},
        }
        local f = runner.run{source = "function shout(s) return s:upper() end", method = "shout", args = {"hi"}}
        local none, err = runner.run{source = "return {}", method = "missing"}
        return {a, b, c, d, e, f, none == nil, err:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            Value::Int(3),
            Value::Int(42),
            Value::Int(42),
            arr(vec![Value::Bool(true), Value::Int(2)]),
            s("hello, Ada"),
            s("HI"),
            Value::Bool(true),
            s("INVALID"),
        ]))
    );
}

#[test]
fn modules_is_a_whitelist_for_require() {
    let v = run(r#"
        local runner = require("eval_runner")
        local ok = runner.run{source = "return require('json').encode({1})", modules = {"json"}}
        local _, hidden = runner.run{source = "return require('hash')", modules = {"json"}}
        local any = runner.run{source = "return require('hash').sha256('')", }
        local _, unknown = runner.run{source = "return 1", modules = {"jsno"}}
        local _, beyond = runner.run{source = "return 1", modules = {"process"}}
        return {ok, hidden:kind(), #any, unknown:kind(), beyond:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            s("[1]"),
            s("PERMISSION_DENIED"),
            Value::Int(64),
            s("INVALID"),
            s("PERMISSION_DENIED"),
        ]))
    );
}

#[test]
fn imports_load_scripts_from_the_source() {
    let v = run(r#"
        local runner = require("eval_runner")
        local doubled = runner.run{
            source = "local u = require('utils') assert(require('utils') == u) return u.double(21)",
            imports = {utils = "lib/utils.lua"},
        }
        local _, cycle = runner.run{
            source = "return require('a')",
            imports = {a = "lib/cycle_a.lua", b = "lib/cycle_b.lua"},
        }
        local _, missing = runner.run{source = "return 1", imports = {x = "lib/nope.lua"}}
        local _, outside = runner.run{source = "return 1", imports = {x = "../etc/passwd"}}
        return {doubled, cycle:kind(), missing:kind(), outside:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            Value::Int(42),
            s("INVALID"),
            s("NOT_FOUND"),
            s("INVALID"),
        ]))
    );
}

#[test]
fn context_and_custom_modules() {
    let v = run(r#"
        local runner = require("eval_runner")
        local greeting = runner.run{source = "return ctx.user .. '@' .. ctx.site", context = {user = "ada", site = "x"}}
        local rate = runner.run{
            source = "local cfg = require('cfg') return cfg.limits.rate * 2",
            custom_modules = {cfg = {limits = {rate = 5}}},
        }
        local _, ro = runner.run{
            source = "require('cfg').limits = nil",
            custom_modules = {cfg = {limits = {rate = 5}}},
        }
        local _, fn = runner.run{source = "return 1", custom_modules = {f = {go = print}}}
        -- The reference's own example: custom modules are globals too.
        local version = runner.run{source = "return sdk.version", custom_modules = {sdk = {version = "1.0.0"}}}
        local same = runner.run{source = "return sdk == require('sdk')", custom_modules = {sdk = {version = "1.0.0"}}}
        local _, ro_global = runner.run{source = "sdk.version = '2'", custom_modules = {sdk = {version = "1.0.0"}}}
        return {greeting, rate, ro:kind(), fn:kind(), version, same, ro_global:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            s("ada@x"),
            Value::Int(10),
            s("PERMISSION_DENIED"),
            s("INVALID"),
            s("1.0.0"),
            Value::Bool(true),
            s("PERMISSION_DENIED"),
        ]))
    );
}

#[test]
fn allow_classes_adds_only_what_the_caller_has() {
    let code = r#"
        local runner = require("eval_runner")
        local process = require("process")
        local _, default = runner.run{source = "return require('process').pid()"}
        local pid = runner.run{source = "return require('process').pid()", allow_classes = {"process"}}
        local _, io = runner.run{source = "return 1", allow_classes = {"io"}}
        local _, bogus = runner.run{source = "return 1", allow_classes = {"proces"}}
        return {default:kind(), pid == process.pid(), io:kind(), bogus:kind()}
    "#;
    let v = run_with_process(code);
    assert_eq!(
        v,
        Ok(arr(vec![
            s("PERMISSION_DENIED"),
            Value::Bool(true),
            s("PERMISSION_DENIED"),
            s("INVALID"),
        ]))
    );
    // Default classes are capped by the caller's too: no time for a
    // deterministic caller.
    let v = run_with(
        r#"local _, e = require("eval_runner").run{source = "return require('time').now()"} return e:kind()"#,
        Policy::deterministic().allow_module("eval_runner"),
        Limits::default(),
    );
    assert_eq!(v, Ok(s("PERMISSION_DENIED")));
}

#[test]
fn every_permission_check_can_deny() {
    let code = r#"
        local runner = require("eval_runner")
        local r = {}
        local _, e = runner.run{source = "return 1"}
        r.run = e and e:kind()
        local _, ce = runner.compile("return 1")
        r.compile = ce and ce:kind()
        _, e = runner.run{source = "return 1", modules = {"json"}}
        r.module = e and e:kind()
        _, e = runner.run{source = "return 1", imports = {u = "lib/utils.lua"}}
        r.import = e and e:kind()
        _, e = runner.run{source = "return 1", allow_classes = {"process"}}
        r.class = e and e:kind()
        return r
    "#;
    let base = || caller_policy().allow_class(Class::Process);
    let denied = |action: &str, resource: &str| {
        run_with(
            code,
            base().rule(action, resource, RuleEffect::Deny),
            Limits::default(),
        )
        .expect("the caller itself runs")
    };
    let kind = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Nil);
    for (action, resource, field) in [
        ("eval.run", "*", "run"),
        ("eval.compile", "*", "compile"),
        ("eval.module", "json", "module"),
        ("eval.import", "lib/**", "import"),
        ("eval.class", "process", "class"),
    ] {
        let v = denied(action, resource);
        assert_eq!(kind(&v, field), s("PERMISSION_DENIED"), "{action}: {v:?}");
    }
    // Nothing denied: every run succeeds.
    let v = run_with(code, base(), Limits::default()).unwrap();
    assert_eq!(v, Value::Map(Default::default()));
    // An allow rule for one module refuses the others.
    let v = run_with(
        code,
        base().rule("eval.module", "hash", RuleEffect::Allow),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(kind(&v, "module"), s("PERMISSION_DENIED"));
}

#[test]
fn compile_then_run_many_times_in_fresh_states() {
    let v = run(r#"
        local runner = require("eval_runner")
        local prog = assert(runner.compile("seen = (seen or 0) + 1 return input * 2, seen"))
        local a, seen_a = table.unpack(prog:run({5}))
        local b, seen_b = table.unpack(prog:run({21}))
        local m = assert(runner.compile("return {add = function(x, y) return x + y end}", "add"))
        local sum = m:run({2, 3})
        local _, syntax = runner.compile("return +")
        local _, bad = pcall(prog.run, {})
        return {a, seen_a, b, seen_b, sum, syntax:kind(), syntax:message():find("eval:1:", 1, true) ~= nil, bad:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            Value::Int(10),
            Value::Int(1),
            Value::Int(42),
            Value::Int(1),
            Value::Int(5),
            s("INVALID"),
            Value::Bool(true),
            s("INVALID"),
        ]))
    );
}

#[test]
fn errors_of_evaluated_code_never_crash_the_caller() {
    let code = r#"
        local runner = require("eval_runner")
        local _, rt = runner.run{source = "local t = nil return t.x"}
        local _, raised = runner.run{source = "error(require('errors').new{kind = 'CONFLICT', message = 'taken'})"}
        local _, syntax = runner.run{source = "return = 1"}
        local _, exit = runner.run{source = "require('process').exit('bye')", allow_classes = {"process"}}
        local _, opt = runner.run{source = "return 1", sauce = "typo"}
        local _, nosrc = runner.run{}
        local _, args = runner.run{source = "return 1", args = "x"}
        return {rt:kind(), raised:kind(), syntax:kind(), exit:kind(), opt:kind(), nosrc:kind(), args:kind(), "still here"}
    "#;
    let v = run_with_process(code);
    assert_eq!(
        v,
        Ok(arr(vec![
            s("INTERNAL"),
            s("CONFLICT"),
            s("INVALID"),
            s("INVALID"),
            s("INVALID"),
            s("INVALID"),
            s("INVALID"),
            s("still here"),
        ]))
    );
}
#[test]
fn limits_are_at_most_the_callers_remaining_ones() {
    let v = run(r#"
        local runner = require("eval_runner")
        local _, spin = runner.run{source = "while true do end", limits = {max_instructions = 100000}}
        local _, slow = runner.run{source = "while true do end", limits = {timeout = 50}}
        local _, bomb = runner.run{source = "local t = {} for i = 1, 1e7 do t[i] = i end", limits = {max_memory = 1000000}}
        local _, bad = runner.run{source = "return 1", limits = {max_instructions = -1}}
        return {spin:kind(), slow:kind(), bomb:kind(), bad:kind()}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            s("LIMIT_EXCEEDED"),
            s("TIMEOUT"),
            s("LIMIT_EXCEEDED"),
            s("INVALID"),
        ]))
    );
    // The caller has 2M instructions: an eval asking for far more still
    // stops within them, and what evaluations use is charged to the caller,
    // so a loop of small ones cannot add up past its limit either.
    let capped = Limits {
        max_instructions: std::num::NonZeroU64::new(2_000_000),
        ..Limits::default()
    };
    let v = run_with(
        r#"local _, e = require("eval_runner").run{source = "while true do end", limits = {max_instructions = 1e12}}
           return "unreachable""#,
        caller_policy(),
        capped,
    );
    assert_eq!(v.unwrap_err().kind(), ErrorKind::LimitExceeded);
    let v = run_with(
        r#"local runner = require("eval_runner")
           for i = 1, 100 do runner.run{source = "for i = 1, 1e5 do end"} end
           return "unreachable""#,
        caller_policy(),
        capped,
    );
    assert_eq!(v.unwrap_err().kind(), ErrorKind::LimitExceeded);
    // A caller with 1 MB gets at most what it has left.
    let v = run_with(
        r#"local _, e = require("eval_runner").run{source = "return string.rep('x', 4e6)", limits = {max_memory = 1e9}}
           return e:kind()"#,
        caller_policy(),
        Limits {
            max_memory: std::num::NonZeroUsize::new(1_000_000),
            ..Limits::default()
        },
    );
    assert_eq!(v, Ok(s("LIMIT_EXCEEDED")));
}

#[test]
fn commands_and_preemption_pass_through_the_caller() {
    let v = run(r#"
        local runner = require("eval_runner")
        local time = require("time")
        local slept = runner.run{source = [[
            local time = require("time")
            local t0 = time.monotonic()
            time.sleep(20)
            local co = coroutine.wrap(function() time.sleep(1) return "in a coroutine" end)
            return {time.monotonic() - t0 >= 19, co()}
        ]]}
        local n = runner.run{source = "local n = 0 for i = 1, 2e6 do n = n + 1 end return n"}
        local wrapped = coroutine.wrap(function() return runner.run{source = "require('time').sleep(1) return 'nested'"} end)()
        return {slept, n, wrapped}
    "#);
    assert_eq!(
        v,
        Ok(arr(vec![
            arr(vec![Value::Bool(true), s("in a coroutine")]),
            Value::Int(2_000_000),
            s("nested"),
        ]))
    );
}

#[test]
fn an_evaluation_never_holds_the_only_worker() {
    let src = MemorySource::new()
        .with(
            "eval_spin.lua",
            r#"return require("eval_runner").run{source = "while true do end"}"#,
        )
        .with("sleepy.lua", "require('time').sleep(5) return 'done'");
    let rt = Runtime::builder()
        .workers(1)
        .source(src)
        .engine(LuaEngine::new())
        .default_policy(caller_policy())
        .build()
        .unwrap();
    let spinner = rt.spawn(Spawn::script("eval_spin.lua")).unwrap();
    let sleepy = rt.spawn(Spawn::script("sleepy.lua")).unwrap();
    assert_eq!(sleepy.join_blocking().unwrap(), s("done"));
    assert_eq!(rt.process_count(), 1, "the evaluating process still runs");
    assert!(spinner.kill());
    assert_eq!(
        spinner.join_blocking().unwrap_err().kind(),
        ErrorKind::Canceled
    );
    rt.shutdown();
}

#[test]
fn evaluations_nest_only_so_deep() {
    let code = r#"
        local S = [[
            local r = require("eval_runner")
            local v, e = r.run{source = ctx.src, context = ctx, allow_classes = {"security"}, modules = {"eval_runner"}}
            if e then return "depth " .. tostring(ctx.n) .. ": " .. e:kind() end
            return v
        ]]
        return require("eval_runner").run{source = S, context = {src = S}, allow_classes = {"security"}}
    "#;
    let v = run_with(code, Policy::trusted(), Limits::default()).unwrap();
    assert_eq!(
        v.as_str().map(|t| t.ends_with("LIMIT_EXCEEDED")),
        Some(true),
        "{v:?}"
    );
    // Without security in the caller, the evaluated code cannot reach eval_runner.
    let v = run(
        r#"local _, e = require("eval_runner").run{source = "return require('eval_runner')"} return e:kind()"#,
    );
    assert_eq!(v, Ok(s("PERMISSION_DENIED")));
}
