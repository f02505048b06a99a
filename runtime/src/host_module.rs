//! [`HostModule`]: a module a host makes from its own state.

use troupe_modules::ModuleDef;

/// A module a host builds from its own state (a root directory, a store,
/// a client): the definition scripts `require`, whose command handlers
/// capture that state. `troupe-io`'s `Fs`, `Http` and `Kv` are ones.
///
/// ```
/// use troupe_dispatcher::{Command, CommandId};
/// use troupe_modules::{Class, ModuleCommand, ModuleDef};
/// use troupe_runtime::{HostModule, Runtime};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Next;
/// impl Command for Next {
///     const ID: CommandId = CommandId(5100);
///     const NAME: &'static str = "counter.next";
///     type Output = u64;
/// }
/// impl ModuleCommand for Next {}
///
/// /// Hands out increasing numbers.
/// struct Counter(std::sync::Arc<std::sync::atomic::AtomicU64>);
///
/// impl HostModule for Counter {
///     fn module(&self) -> ModuleDef {
///         let n = self.0.clone();
///         ModuleDef::new("counter")
///             .class(Class::Nondeterministic)
///             .typed_command("next", |_cx, ()| Ok(Next))
///             .handle(move |_cx, Next| Ok(n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
///     }
/// }
///
/// let counter = Counter(Default::default());
/// let runtime = Runtime::builder().module(counter.module()).build()?;
/// # runtime.shutdown();
/// # Ok::<(), troupe_dispatcher::Error>(())
/// ```
pub trait HostModule {
    /// The module, with the handlers of its commands, for
    /// [`RuntimeBuilder::module`](crate::RuntimeBuilder::module).
    fn module(&self) -> ModuleDef;
}
