//! A minimal runtime for testing modules: add the module (its commands'
//! handlers come with it), run a script as a real process, get its result
//! or its error. A module whose functions yield is tested exactly like a
//! pure one.
//!
//! ```
//! use troupe::testing::TestRuntime;
//! use troupe::{Class, ModuleDef, Value};
//!
//! let greet = ModuleDef::new("greet").class(Class::Deterministic).typed_function(
//!     "hello",
//!     |_cx, (name,): (String,)| Ok(format!("hello, {name}")),
//! );
//! let t = TestRuntime::builder().module(greet).build()?;
//! assert_eq!(t.run("return require('greet').hello('Ada')")?, Value::from("hello, Ada"));
//! let err = t.run("return require('greet').hello()").unwrap_err();
//! assert_eq!(err.message(), "greet.hello: argument #1 expected string, got nil");
//! # Ok::<(), troupe::Error>(())
//! ```

use troupe_dispatcher::{Error, Value};
use troupe_engines::lua::LuaEngine;
use troupe_modules::{ModuleDef, Policy};
use troupe_runtime::{Limits, Runtime, RuntimeBuilder, Spawn};
use troupe_sources::MemorySource;

/// Configures a [`TestRuntime`].
pub struct TestBuilder {
    builder: RuntimeBuilder,
    source: MemorySource,
    policy: Policy,
    limits: Limits,
}

impl TestBuilder {
    /// Adds a module (replacing a built-in of the same name) with the
    /// handlers of its commands.
    #[must_use]
    pub fn module(mut self, module: ModuleDef) -> Self {
        self.builder = self.builder.module(module);
        self
    }

    /// Adds a script that test scripts can `process.spawn`.
    #[must_use]
    pub fn script(self, key: &str, code: &str) -> Self {
        // A bad key is reported when the script is spawned (NOT_FOUND).
        let _ = self.source.insert(key, code);
        self
    }

    /// The policy scripts run under (default: trusted, every module).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The limits scripts run under (default: a 60 s wall-clock limit, so a
    /// script stuck waiting fails the test instead of hanging it).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Starts the runtime.
    pub fn build(self) -> Result<TestRuntime, Error> {
        let rt = self.builder.source(self.source).build()?;
        Ok(TestRuntime {
            rt,
            policy: self.policy,
            limits: self.limits,
        })
    }
}

/// A small real runtime (two workers, the Lua engine, the built-in modules
/// plus the ones added) for running test scripts. Shuts down when dropped.
pub struct TestRuntime {
    rt: Runtime,
    policy: Policy,
    limits: Limits,
}

impl TestRuntime {
    /// Starts configuring one.
    pub fn builder() -> TestBuilder {
        TestBuilder {
            builder: Runtime::builder()
                .workers(2)
                .io_threads(1)
                .engine(LuaEngine::new()),
            source: MemorySource::new(),
            policy: Policy::trusted(),
            limits: Limits {
                timeout: Some(std::time::Duration::from_secs(60)),
                ..Limits::default()
            },
        }
    }

    /// Runs Lua `code` as a process and waits for its result: the chunk's
    /// return value, or the error it failed with.
    pub fn run(&self, code: &str) -> Result<Value, Error> {
        self.run_with(code, Vec::<Value>::new())
    }

    /// Runs Lua `code` with `args` as its `...`.
    pub fn run_with<I, V>(&self, code: &str, args: I) -> Result<Value, Error>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        let spawn = Spawn::script("test.lua")
            .args(args)
            .policy(self.policy.clone())
            .limits(self.limits);
        self.rt.spawn_code(spawn, code)?.join_blocking()
    }

    /// Runs `code` under another policy.
    pub fn run_as(&self, policy: Policy, code: &str) -> Result<Value, Error> {
        let spawn = Spawn::script("test.lua").policy(policy).limits(self.limits);
        self.rt.spawn_code(spawn, code)?.join_blocking()
    }

    /// The runtime underneath, for anything else.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        self.rt.shutdown();
    }
}
