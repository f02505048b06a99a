//! # Embedding Troupe: the host API
//!
//! A [`Runtime`](crate::Runtime) is a running node: worker threads that
//! step script processes, a timer thread and a tokio IO pool. It is cheap to
//! clone and `Send + Sync`, so every part of a host can hold one; it shuts
//! down when the last clone is dropped (or on `shutdown`).
//!
//! ## Spawning, host modules with async handlers
//!
//! A host module is a [`ModuleDef`](crate::ModuleDef) whose functions are
//! typed: [`typed_function`](crate::ModuleDef::typed_function)s run inline,
//! [`async_command`](crate::ModuleDef::async_command)s yield a typed
//! command that a tokio future on the IO pool answers. A script calling one
//! yields; its worker runs other processes meanwhile, and the future's
//! result resumes the script. The handler travels with the module:
//! [`RuntimeBuilder::module`](crate::RuntimeBuilder::module) is the one way
//! to add either.
//!
//! ```
//! use std::time::Duration;
//! use troupe::{
//!     Class, Command, CommandId, Error, Limits, LuaEngine, MemorySource, ModuleCommand,
//!     ModuleDef, Policy, Runtime, Spawn, Value,
//! };
//!
//! fn shareable<T: Clone + Send + Sync + 'static>() {}
//! shareable::<Runtime>();
//!
//! /// `store.lookup(key)`: the command the function yields.
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Lookup {
//!     key: String,
//! }
//! impl Command for Lookup {
//!     const ID: CommandId = CommandId(5000);
//!     const NAME: &'static str = "store.lookup";
//!     type Output = String;
//! }
//! impl ModuleCommand for Lookup {}
//!
//! let store = ModuleDef::new("store")
//!     .class(Class::Storage)
//!     .typed_function("version", |_cx, ()| Ok("1.0"))
//!     .async_command(
//!         "lookup",
//!         |_cx, (key,): (String,)| Ok(Lookup { key }), // a wrong argument is INVALID
//!         |_pid, Lookup { key }| async move {
//!             tokio::time::sleep(Duration::from_millis(5)).await; // a slow service
//!             match key.as_str() {
//!                 "missing" => Err(Error::not_found("no such key")),
//!                 _ => Ok(format!("value of {key}")),
//!             }
//!         },
//!     );
//! let src = MemorySource::new().with(
//!     "plugin.lua",
//!     r#"
//!     local store = require("store")
//!     local n = ...
//!     local none, err = store.lookup("missing") -- a failed handler: nil, err
//!     return {store.version(), store.lookup("k" .. n), err:kind()}
//!     "#,
//! );
//! let rt = Runtime::builder()
//!     .workers(2)
//!     .source(src)
//!     .engine(LuaEngine::new())
//!     .module(store)
//!     .build()?;
//!
//! // Any clone, on any thread, can spawn: with arguments, a policy, limits
//! // and a mailbox capacity.
//! let rt2 = rt.clone();
//! let spawned = std::thread::spawn(move || {
//!     rt2.spawn(
//!         Spawn::script("plugin.lua")
//!             .args([7])
//!             .policy(Policy::plugin().allow_class(Class::Storage))
//!             .limits(Limits { timeout: Some(Duration::from_secs(30)), ..Limits::default() })
//!             .mailbox(16),
//!     )
//! });
//! let h = spawned.join().expect("spawning thread")?;
//! assert_eq!(
//!     h.join_blocking()?,
//!     Value::from(vec![Value::from("1.0"), Value::from("value of k7"), Value::from("NOT_FOUND")])
//! );
//! # Ok::<(), troupe::Error>(())
//! ```
//!
//! ## Messages, host mailboxes, monitors
//!
//! [`Runtime::mailbox`](crate::Runtime::mailbox) gives the host a pid of its
//! own: scripts `send` to it (by pid, or by a name it registers), the host
//! reads with an async `recv`, and it can monitor processes to get their
//! `DOWN` messages. [`ProcessHandle`](crate::ProcessHandle) has `send`,
//! `join` (async) / `join_blocking`, `kill` and `monitor`.
//!
//! ```
//! use troupe::{Class, Error, ErrorKind, LuaEngine, MemorySource, Policy, Runtime, Spawn, Value};
//!
//! let src = MemorySource::new().with(
//!     "echo.lua",
//!     r#"
//!     local process = require("process")
//!     local m = process.receive("ping")
//!     process.send(m.from, "pong", m.payload)
//!     process.send("audit", "seen", m.payload) -- by registered name
//!     error("done echoing")
//!     "#,
//! );
//! let rt = Runtime::builder()
//!     .source(src)
//!     .engine(LuaEngine::new())
//!     .default_policy(Policy::plugin().allow_class(Class::Process))
//!     .build()?;
//! rt.io().block_on(async {
//!     let inbox = rt.mailbox();
//!     inbox.register("audit")?;
//!     let h = rt.spawn(Spawn::script("echo.lua"))?;
//!     let r = h.monitor(&inbox)?;
//!     inbox.try_send(h.pid(), "ping", 42)?;
//!     assert_eq!(inbox.recv_topic("pong").await.payload, Value::Int(42));
//!     assert_eq!(inbox.recv_topic("seen").await.from, Some(h.pid()));
//!     let down = inbox.recv_topic("DOWN").await;
//!     assert_eq!(down.payload.get("ref"), Some(&Value::Int(r)));
//!     assert_eq!(h.join().await.unwrap_err().kind(), ErrorKind::Internal);
//!     Ok::<(), Error>(())
//! })?;
//! # Ok::<(), troupe::Error>(())
//! ```
//!
//! ## Supervisors
//!
//! [`Runtime::supervise`](crate::Runtime::supervise) starts an Erlang-style
//! supervisor; its handle lists the children and joins with the reason it
//! gave up.
//!
//! ```
//! use std::time::Duration;
//! use troupe::{
//!     ChildSpec, ErrorKind, LuaEngine, MemorySource, Runtime, Spawn, Strategy, Supervisor,
//! };
//!
//! let src = MemorySource::new()
//!     .with("steady.lua", "require('time').sleep(60000)")
//!     .with("crashy.lua", "error('boom')");
//! let rt = Runtime::builder().source(src).engine(LuaEngine::new()).build()?;
//! let sup = rt.supervise(
//!     Supervisor::new(Strategy::OneForOne)
//!         .intensity(2, Duration::from_secs(60))
//!         .child(ChildSpec::new("steady", Spawn::script("steady.lua")))
//!         .child(ChildSpec::new("crashy", Spawn::script("crashy.lua"))),
//! )?;
//! // crashy fails at once, is restarted twice, fails a third time: the
//! // supervisor terminates steady and gives up.
//! let e = sup.join_blocking().unwrap_err();
//! assert_eq!(e.kind(), ErrorKind::LimitExceeded);
//! assert!(e.message().contains("\"crashy\" exited with INTERNAL"));
//! assert!(sup.which_children().iter().all(|c| c.pid.is_none()));
//! # Ok::<(), troupe::Error>(())
//! ```
