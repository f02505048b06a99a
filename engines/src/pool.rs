//! Pools of interpreter instances, shared by many tokio tasks and threads.
//!
//! A pool hands out an instance inside a [`PooledEngine`] guard; dropping the
//! guard [`reset`](ScriptEngine::reset)s the instance (so the next user sees
//! none of the previous user's globals, functions or scripts) and puts it
//! back. An instance whose reset fails is dropped; the pool makes a new one
//! when it needs it.
//!
//! What is set up on the pool itself ([`EnginePool::set_global`],
//! [`register_function`](EnginePool::register_function),
//! [`register_module`](EnginePool::register_module),
//! [`bind_source`](EnginePool::bind_source), [`load`](EnginePool::load))
//! is recorded once and applied to every instance: to the idle ones at
//! once, to new ones when they are made, and again after each reset, so
//! only what a user changed is gone when the next one gets the instance.
//! [`execute_string`](EnginePool::execute_string),
//! [`execute`](EnginePool::execute) and
//! [`call_function`](EnginePool::call_function) check an instance out for
//! one call.
//!
//! ```
//! # #[cfg(feature = "lua")] {
//! use std::sync::Arc;
//! use troupe_dispatcher::Value;
//! use troupe_engines::lua::LuaInterpreter;
//! use troupe_engines::{AutoGrowPool, ScriptEngine};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let pool = AutoGrowPool::new(2, 8, || {
//!     Ok(Box::new(LuaInterpreter::default()) as Box<dyn ScriptEngine>)
//! })?
//! .into_pool();
//! // Once, for every instance the pool has or will make.
//! pool.register_function("greet", Arc::new(|args: Vec<Value>| {
//!     let name = args.first().and_then(Value::as_str).unwrap_or("world");
//!     Ok(Value::from(format!("hello, {name}")))
//! }))?;
//! let tasks: Vec<_> = (0..100)
//!     .map(|i| {
//!         let pool = pool.clone();
//!         tokio::spawn(async move {
//!             pool.execute_string(&format!("return greet('task {i}')")).await
//!         })
//!     })
//!     .collect();
//! for (i, task) in tasks.into_iter().enumerate() {
//!     assert_eq!(task.await.unwrap()?, Value::from(format!("hello, task {i}")));
//! }
//! # Ok::<(), troupe_dispatcher::Error>(())
//! # }).unwrap();
//! # }
//! ```
//!
//! - [`EnginePool`]: a fixed number of instances, made up front.
//! - [`AutoGrowPool`]: `initial` instances up front, more on demand up to
//!   `max`; idle ones are reused first.
//!
//! When every instance is in use, [`get`](EnginePool::get) (async) and
//! [`get_blocking`](EnginePool::get_blocking) wait up to the pool's wait
//! timeout, then fail `RATE_LIMITED`.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_modules::ModuleDef;
use troupe_sources::Source;

use crate::capability::{HostFunction, ScriptEngine};

/// Makes a new interpreter instance for a pool.
pub type EngineMaker = Arc<dyn Fn() -> Result<Box<dyn ScriptEngine>, Error> + Send + Sync>;

/// How long a caller waits for a free instance by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// What the pool types share.
struct Inner {
    maker: EngineMaker,
    /// One permit per instance that may be in use.
    permits: Arc<Semaphore>,
    max: usize,
    idle: Mutex<Vec<Box<dyn ScriptEngine>>>,
    /// Instances alive (idle or in use).
    alive: AtomicUsize,
    closed: AtomicBool,
    wait: Duration,
    /// Wakes threads in `get_blocking` when a permit comes back.
    returned: Condvar,
    returned_lock: Mutex<()>,
    /// The pool-level setup, in the order it was given.
    setup: Mutex<Vec<Setup>>,
}

/// One step of a pool's setup, applied to each of its instances.
enum Setup {
    Global(String, Value),
    Function(String, HostFunction),
    Module(ModuleDef),
    Source(Arc<dyn Source>),
    Load(String),
}

impl Setup {
    fn apply(&self, engine: &mut dyn ScriptEngine) -> Result<(), Error> {
        match self {
            Setup::Global(name, value) => engine.as_globals()?.set_global(name, value.clone()),
            Setup::Function(name, f) => engine
                .as_functions()?
                .register_function(name, Arc::clone(f)),
            Setup::Module(def) => engine.as_modules()?.register_module(def.clone()),
            Setup::Source(source) => {
                engine.as_loader()?.bind_source(Arc::clone(source));
                Ok(())
            }
            Setup::Load(key) => engine.as_loader()?.load(key),
        }
    }
}

/// A fixed-size pool of interpreter instances. Cheap to clone.
#[derive(Clone)]
pub struct EnginePool {
    inner: Arc<Inner>,
}

/// A pool that starts with `initial` instances and grows up to `max`.
/// Everything else is [`EnginePool`]'s (it derefs to one).
#[derive(Clone)]
pub struct AutoGrowPool(EnginePool);

impl Deref for AutoGrowPool {
    type Target = EnginePool;

    fn deref(&self) -> &EnginePool {
        &self.0
    }
}

impl AutoGrowPool {
    /// A pool with `initial` instances made now (each `init`ed) and up to
    /// `max` in all; callers wait [`DEFAULT_WAIT`] for a free one.
    pub fn new(
        initial: usize,
        max: usize,
        maker: impl Fn() -> Result<Box<dyn ScriptEngine>, Error> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        EnginePool::build(initial, max, Arc::new(maker), DEFAULT_WAIT).map(Self)
    }

    /// The same pool whose callers wait up to `wait` for a free instance.
    pub fn with_wait(self, wait: Duration) -> Result<Self, Error> {
        self.0.with_wait(wait).map(Self)
    }

    /// The pool as a plain [`EnginePool`] handle.
    pub fn into_pool(self) -> EnginePool {
        self.0
    }
}

impl EnginePool {
    /// A pool of exactly `size` instances, made now (each `init`ed); callers
    /// wait [`DEFAULT_WAIT`] for a free one.
    pub fn new(
        size: usize,
        maker: impl Fn() -> Result<Box<dyn ScriptEngine>, Error> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        Self::build(size, size, Arc::new(maker), DEFAULT_WAIT)
    }

    /// The same pool whose callers wait up to `wait` for a free instance.
    /// Only before first use: a pool already handed out instances keeps its
    /// wait (`INVALID`).
    pub fn with_wait(self, wait: Duration) -> Result<Self, Error> {
        let inner = Arc::try_unwrap(self.inner)
            .map_err(|_| Error::invalid("set the pool's wait before sharing it"))?;
        Ok(Self {
            inner: Arc::new(Inner { wait, ..inner }),
        })
    }

    fn build(
        initial: usize,
        max: usize,
        maker: EngineMaker,
        wait: Duration,
    ) -> Result<Self, Error> {
        if max == 0 || initial > max {
            return Err(Error::invalid(format!(
                "a pool needs 0 <= initial <= max and max > 0 (got initial {initial}, max {max})"
            )));
        }
        let idle = (0..initial)
            .map(|_| make(&maker))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                maker,
                permits: Arc::new(Semaphore::new(max)),
                max,
                alive: AtomicUsize::new(idle.len()),
                idle: Mutex::new(idle),
                closed: AtomicBool::new(false),
                wait,
                returned: Condvar::new(),
                returned_lock: Mutex::new(()),
                setup: Mutex::new(Vec::new()),
            }),
        })
    }

    /// An instance, waiting up to the pool's wait time for one to be free
    /// (then `RATE_LIMITED`). `UNAVAILABLE` once the pool is closed.
    pub async fn get(&self) -> Result<PooledEngine, Error> {
        self.acquire(Some(self.inner.wait)).await
    }

    /// An instance, waiting until one is free: forever with `None`, or up
    /// to `timeout` (then `RATE_LIMITED`). `UNAVAILABLE` once the pool is
    /// closed.
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<PooledEngine, Error> {
        self.check_open()?;
        let acquire = Arc::clone(&self.inner.permits).acquire_owned();
        let permit = match timeout {
            None => acquire.await.map_err(|_| pool_closed())?,
            Some(t) => match tokio::time::timeout(t, acquire).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(pool_closed()),
                Err(_) => return Err(self.busy()),
            },
        };
        self.checkout(permit)
    }

    /// Sets global `name` in every instance, now and after each reset.
    pub fn set_global(&self, name: &str, value: Value) -> Result<(), Error> {
        self.record(Setup::Global(name.to_owned(), value))
    }

    /// Registers host function `name` in every instance.
    pub fn register_function(&self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.record(Setup::Function(name.to_owned(), f))
    }

    /// Registers module `def` in every instance.
    pub fn register_module(&self, def: ModuleDef) -> Result<(), Error> {
        self.record(Setup::Module(def))
    }

    /// Binds every instance's loader to `source`.
    pub fn bind_source(&self, source: Arc<dyn Source>) -> Result<(), Error> {
        self.record(Setup::Source(source))
    }

    /// Loads script `key` (from the bound source) in every instance.
    pub fn load(&self, key: &str) -> Result<(), Error> {
        self.record(Setup::Load(key.to_owned()))
    }

    /// Runs `code` in an instance (checked out for the call).
    pub async fn execute_string(&self, code: &str) -> Result<Value, Error> {
        self.get().await?.as_executor()?.execute_string(code)
    }

    /// Runs loaded script `key` in an instance.
    pub async fn execute(&self, key: &str) -> Result<Value, Error> {
        self.get().await?.as_executor()?.execute(key)
    }

    /// Calls function `name` with `args` in an instance.
    pub async fn call_function(&self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.get().await?.as_functions()?.call_function(name, args)
    }

    /// Applies `step` to the idle instances and keeps it for the others.
    /// A step an idle instance refuses is refused, and not kept.
    fn record(&self, step: Setup) -> Result<(), Error> {
        self.check_open()?;
        let mut setup = self.inner.setup.lock();
        for engine in self.inner.idle.lock().iter_mut() {
            step.apply(engine.as_mut())?;
        }
        setup.push(step);
        Ok(())
    }

    /// Applies the whole setup to `engine`.
    fn prepare(&self, engine: &mut dyn ScriptEngine) -> Result<(), Error> {
        self.inner
            .setup
            .lock()
            .iter()
            .try_for_each(|step| step.apply(engine))
    }

    /// [`get`](EnginePool::get) for threads outside an async context.
    pub fn get_blocking(&self) -> Result<PooledEngine, Error> {
        self.check_open()?;
        // A wait too long for the clock is a century: forever, in effect.
        let now = Instant::now();
        let deadline = now
            .checked_add(self.inner.wait)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut guard = self.inner.returned_lock.lock();
        loop {
            match Arc::clone(&self.inner.permits).try_acquire_owned() {
                Ok(p) => {
                    drop(guard);
                    return self.checkout(p);
                }
                Err(TryAcquireError::Closed) => return Err(pool_closed()),
                Err(TryAcquireError::NoPermits) => {
                    if self
                        .inner
                        .returned
                        .wait_until(&mut guard, deadline)
                        .timed_out()
                    {
                        return Err(self.busy());
                    }
                }
            }
        }
    }

    /// Instances alive (idle or in use).
    pub fn size(&self) -> usize {
        self.inner.alive.load(Ordering::SeqCst)
    }

    /// Instances waiting for a user.
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().len()
    }

    /// Instances checked out now.
    pub fn in_use(&self) -> usize {
        self.inner.max - self.inner.permits.available_permits()
    }

    /// The most instances this pool makes.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Closes the pool: new `get`s fail `UNAVAILABLE`; waits up to
    /// `timeout` for checked-out instances to come back, then closes every
    /// instance. `TIMEOUT` (naming how many were still in use) if they did
    /// not all come back in time; those are closed when their guard drops.
    pub async fn close(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::SeqCst);
        let all = u32::try_from(self.inner.max).unwrap_or(u32::MAX);
        let waited = tokio::time::timeout(timeout, self.inner.permits.acquire_many(all)).await;
        let in_use = match &waited {
            Ok(Ok(_)) => 0,
            _ => self.in_use(),
        };
        drop(waited);
        self.inner.permits.close();
        self.wake_blocked();
        for mut e in self.inner.idle.lock().drain(..) {
            if let Err(err) = e.close() {
                tracing::warn!(error = %err, "closing a pooled engine failed");
            }
            self.inner.alive.fetch_sub(1, Ordering::SeqCst);
        }
        match in_use {
            0 => Ok(()),
            n => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{n} engine(s) still in use after {} ms",
                    timeout.as_millis()
                ),
            )),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(pool_closed())
        } else {
            Ok(())
        }
    }

    fn busy(&self) -> Error {
        Error::new(
            ErrorKind::RateLimited,
            format!(
                "all {} engines of the pool are in use (waited {} ms)",
                self.inner.max,
                self.inner.wait.as_millis()
            ),
        )
        .retryable(true)
    }

    /// An idle instance, or a new one, for the holder of `permit`.
    fn checkout(&self, permit: OwnedSemaphorePermit) -> Result<PooledEngine, Error> {
        let idle = self.inner.idle.lock().pop();
        let engine = match idle {
            Some(e) => e,
            None => {
                let mut e = make(&self.inner.maker)?;
                self.prepare(e.as_mut())?;
                self.inner.alive.fetch_add(1, Ordering::SeqCst);
                e
            }
        };
        Ok(PooledEngine {
            engine: Some(engine),
            pool: self.clone(),
            permit: Some(permit),
        })
    }

    /// Takes an instance back from a guard.
    fn give_back(&self, mut engine: Box<dyn ScriptEngine>) {
        if self.inner.closed.load(Ordering::SeqCst) {
            if let Err(e) = engine.close() {
                tracing::warn!(error = %e, "closing a pooled engine failed");
            }
            self.inner.alive.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        match engine.reset().and_then(|()| self.prepare(engine.as_mut())) {
            Ok(()) => self.inner.idle.lock().push(engine),
            Err(e) => {
                tracing::warn!(kind = engine.kind(), error = %e, "dropping a pooled engine whose reset failed");
                self.inner.alive.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn wake_blocked(&self) {
        // Taking the lock orders this wake-up after a waiter's failed
        // `try_acquire`, so the waiter is already waiting.
        drop(self.inner.returned_lock.lock());
        self.inner.returned.notify_all();
    }
}

fn make(maker: &EngineMaker) -> Result<Box<dyn ScriptEngine>, Error> {
    let mut e = maker()?;
    e.init()?;
    Ok(e)
}

fn pool_closed() -> Error {
    Error::new(ErrorKind::Unavailable, "the engine pool is closed")
}

/// An instance checked out of a pool; dropping it returns the instance.
pub struct PooledEngine {
    engine: Option<Box<dyn ScriptEngine>>,
    pool: EnginePool,
    permit: Option<OwnedSemaphorePermit>,
}

impl Deref for PooledEngine {
    type Target = dyn ScriptEngine;

    fn deref(&self) -> &Self::Target {
        // Present until drop.
        self.engine.as_deref().expect("engine present until drop")
    }
}

impl DerefMut for PooledEngine {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.engine
            .as_deref_mut()
            .expect("engine present until drop")
    }
}

impl Drop for PooledEngine {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            self.pool.give_back(engine);
        }
        drop(self.permit.take());
        self.pool.wake_blocked();
    }
}
