//! Pools and the manager, with the Lua interpreter.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_engines::lua::LuaInterpreter;
use troupe_engines::{AutoGrowPool, EngineFactory, EnginePool, Manager, ScriptEngine};

mod support;
use support::Stub;

fn lua() -> Result<Box<dyn ScriptEngine>, Error> {
    Ok(Box::new(LuaInterpreter::with_output(|_| {})))
}

/// Runs `x * 2` with `x = i` on a pooled instance.
fn double(e: &mut dyn ScriptEngine, i: i64) -> Result<Value, Error> {
    e.as_globals()?.set_global("x", Value::Int(i))?;
    e.as_executor()?.execute_string("return x * 2")
}

#[test]
fn thousand_concurrent_executions_on_auto_grow_pool_lose_none() {
    let pool = AutoGrowPool::new(2, 8, lua)
        .and_then(|p| p.with_wait(Duration::from_secs(600)))
        .unwrap();
    assert_eq!(pool.size(), 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    // 800 from tokio tasks, 200 from plain threads.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (pool, ok) = (pool.clone(), Arc::clone(&ok));
            std::thread::spawn(move || {
                for i in 0..50 {
                    let n = 10_000 + t * 50 + i;
                    let mut e = pool.get_blocking().unwrap();
                    assert_eq!(double(&mut *e, n).unwrap(), Value::Int(n * 2));
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = (0..800)
            .map(|i| {
                let (pool, ok) = (pool.clone(), Arc::clone(&ok));
                tokio::spawn(async move {
                    let mut e = pool.get().await.unwrap();
                    assert_eq!(double(&mut *e, i).unwrap(), Value::Int(i * 2));
                    ok.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 1000);
    assert!(pool.size() >= 2 && pool.size() <= 8, "size {}", pool.size());
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.idle(), pool.size());
}

#[test]
fn a_returned_engine_carries_nothing_from_its_previous_user() {
    let pool = EnginePool::new(1, lua).unwrap();
    {
        let mut e = pool.get_blocking().unwrap();
        e.as_globals()
            .unwrap()
            .set_global("secret", Value::from("s3"))
            .unwrap();
        e.as_functions()
            .unwrap()
            .register_function("host", Arc::new(|_| Ok(Value::Int(1))))
            .unwrap();
        e.as_loader()
            .unwrap()
            .load_string("lib", "return 7")
            .unwrap();
        e.as_executor()
            .unwrap()
            .execute_string("function mine() return 1 end")
            .unwrap();
    }
    let mut e = pool.get_blocking().unwrap();
    let g = e.as_globals().unwrap();
    for name in ["secret", "host", "mine"] {
        assert_eq!(g.get_global(name).unwrap(), Value::Nil, "{name}");
    }
    let gone = e.as_executor().unwrap().execute("lib").unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    assert_eq!(pool.size(), 1);
}

#[test]
fn over_max_waits_then_rate_limited() {
    let pool = EnginePool::new(1, lua)
        .and_then(|p| p.with_wait(Duration::from_millis(20)))
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let blocked = pool.get_blocking().err().map(|e| e.kind());
    assert_eq!(blocked, Some(ErrorKind::RateLimited));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let waited = rt.block_on(pool.get()).err().map(|e| e.kind());
    assert_eq!(waited, Some(ErrorKind::RateLimited));
    drop(held);
    assert!(pool.get_blocking().is_ok());
}

#[test]
fn an_engine_whose_reset_fails_is_replaced() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = EnginePool::new(1, move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Stub { reset_fails: true }) as Box<dyn ScriptEngine>)
    })
    .unwrap();
    drop(pool.get_blocking().unwrap());
    assert_eq!(pool.size(), 0);
    drop(pool.get_blocking().unwrap());
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[test]
fn manager_keeps_namespaces_apart_and_closes_gracefully() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let m = Arc::new(Manager::new(EngineFactory::builtin()));
        m.add_engine("a", "rules", "lua").unwrap();
        m.add_engine("b", "rules", "lua").unwrap();
        let dup = m.add_engine("a", "rules", "lua").unwrap_err();
        assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
        let unknown = m.add_engine("a", "x", "cobol").unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::NotFound);
        m.add_pool(
            "a",
            "workers",
            AutoGrowPool::new(0, 4, lua).unwrap().into_pool(),
        )
        .unwrap();
        assert_eq!(m.namespaces(), vec!["a", "b"]);
        assert_eq!(m.names("a"), vec!["rules", "workers"]);

        let mut a = m.get("a", "rules").await.unwrap();
        a.as_globals()
            .unwrap()
            .set_global("tenant", Value::from("a"))
            .unwrap();
        let mut b = m.get_blocking("b", "rules").unwrap();
        assert_eq!(
            b.as_globals().unwrap().get_global("tenant").unwrap(),
            Value::Nil
        );
        drop(b);
        m.close_namespace("b", Duration::from_secs(1))
            .await
            .unwrap();
        let gone = m.get("b", "rules").await.err().map(|e| e.kind());
        assert_eq!(gone, Some(ErrorKind::NotFound));

        // Close waits for the checked-out instance to come back.
        let pool = m.pool("a", "rules").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let user = tokio::spawn(async move {
            rx.await.unwrap();
            drop(a);
        });
        let closing = {
            let m = Arc::clone(&m);
            tokio::spawn(async move { m.close(Duration::from_secs(600)).await })
        };
        tx.send(()).unwrap();
        user.await.unwrap();
        closing.await.unwrap().unwrap();
        assert!(m.namespaces().is_empty());
        assert_eq!(pool.size(), 0);
        let closed = pool.get().await.err().map(|e| e.kind());
        assert_eq!(closed, Some(ErrorKind::Unavailable));
    });
}

#[test]
fn close_times_out_while_an_engine_is_held() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = EnginePool::new(2, lua).unwrap();
    let held = pool.get_blocking().unwrap();
    let r = rt.block_on(pool.close(Duration::from_millis(10)));
    assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::Timeout));
    assert_eq!(pool.size(), 1);
    drop(held);
    assert_eq!(pool.size(), 0);
}

/// The reference's pool example: a function registered once on the pool,
/// then `execute_string` from 100 concurrent tasks; what the pool set up
/// survives every release, what a user set does not.
#[test]
fn pool_setup_is_kept_across_releases_and_serves_concurrent_tasks() {
    let pool = AutoGrowPool::new(1, 4, lua).unwrap().into_pool();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    pool.register_function(
        "add",
        Arc::new(move |args: Vec<Value>| {
            counted.fetch_add(1, Ordering::SeqCst);
            match args.as_slice() {
                [Value::Int(a), Value::Int(b)] => Ok(Value::Int(a + b)),
                _ => Err(Error::invalid("add(a, b) takes two integers")),
            }
        }),
    )
    .unwrap();
    pool.set_global("base", Value::Int(100)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..100i64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    // A user's own global, which the next user must not see.
                    pool.execute_string(&format!("leak = {i} return add(base, {i})"))
                        .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    assert_eq!(
        results,
        (0..100).map(|i| Value::Int(100 + i)).collect::<Vec<_>>()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 100);
    assert!(pool.size() >= 1 && pool.size() <= 4);
    let mut e = pool.get_blocking().unwrap();
    let g = e.as_globals().unwrap();
    assert_eq!(g.get_global("base").unwrap(), Value::Int(100));
    assert_eq!(g.get_global("leak").unwrap(), Value::Nil);
    drop(e);
    // Pass-through calls check an instance out for one call.
    let rt1 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sum = rt1.block_on(pool.call_function("add", vec![Value::Int(2), Value::Int(3)]));
    assert_eq!(sum, Ok(Value::Int(5)));
    // A step the instances refuse is refused, and not kept.
    let refused = pool.load("no-source-bound.lua").unwrap_err();
    assert_ne!(refused.kind(), ErrorKind::Internal);
    assert_eq!(
        rt1.block_on(pool.execute_string("return base")),
        Ok(Value::Int(100))
    );
}

#[test]
fn acquire_waits_as_long_as_asked() {
    let pool = EnginePool::new(1, lua).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let short = rt.block_on(pool.acquire(Some(Duration::from_millis(20))));
    assert_eq!(short.err().map(|e| e.kind()), Some(ErrorKind::RateLimited));
    // With no timeout, the caller waits for the release (longer than the
    // pool's default wait would allow is not needed to show it waits).
    let waiter = {
        let pool = pool.clone();
        rt.spawn(async move { pool.acquire(None).await.map(|_| ()) })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());
    drop(held);
    assert_eq!(rt.block_on(waiter).unwrap(), Ok(()));
}

#[test]
fn manager_default_remove_init_all_and_closed() {
    let manager = Manager::new(EngineFactory::builtin());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        manager.default_pool().err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    manager.add_engine("a", "rules", "lua").unwrap();
    manager.add_engine("a", "other", "lua").unwrap();
    assert_eq!(
        manager.set_default("a", "nope").err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    manager.set_default("a", "rules").unwrap();
    rt.block_on(manager.init_all()).unwrap();
    let mut e = rt.block_on(manager.default()).unwrap();
    assert_eq!(
        e.as_executor().unwrap().execute_string("return 6 * 7"),
        Ok(Value::Int(42))
    );
    drop(e);
    rt.block_on(manager.remove("a", "rules", Duration::from_secs(1)))
        .unwrap();
    assert_eq!(manager.names("a"), vec!["other".to_owned()]);
    assert_eq!(
        manager.default_pool().err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        rt.block_on(manager.remove("a", "rules", Duration::from_secs(1)))
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(!manager.is_closed());
    rt.block_on(manager.close(Duration::from_secs(1))).unwrap();
    assert!(manager.is_closed());
    assert_eq!(
        manager
            .add_engine("a", "late", "lua")
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::Unavailable)
    );
}

#[test]
fn factory_names_are_unique_until_unregistered() {
    let mut factory = EngineFactory::builtin();
    let dup = factory
        .add::<troupe_engines::lua::LuaEngine, LuaInterpreter>()
        .err()
        .map(|e| e.kind());
    assert_eq!(dup, Some(ErrorKind::AlreadyExists));
    factory.unregister("lua").unwrap();
    assert_eq!(
        factory.create("lua").err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(factory.name_for_path("x.lua").is_err());
    assert_eq!(
        factory.unregister("lua").err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    factory
        .add::<troupe_engines::lua::LuaEngine, LuaInterpreter>()
        .unwrap();
    assert_eq!(factory.name_for_path("x.lua"), Ok("lua"));
}
