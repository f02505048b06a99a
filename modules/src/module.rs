use std::future::Future;
use std::sync::Arc;

use troupe_dispatcher::{Call, Command, DispatcherBuilder, Error, HandlerCx, Pid, Value};

use crate::typed::{FromArgs, IntoRet, ModuleCommand, Yielded};
use crate::types::{Signature, Types};
use crate::{ArgError, Args, Class, ClassSet, Object, Policy, UserData, UserType, UserTypeShape};

/// What a module function sees of its caller.
pub struct FnCx<'a> {
    /// The calling process.
    pub pid: Pid,
    /// The process that spawned it, if any.
    pub parent: Option<Pid>,
    /// The caller's policy, for action-level checks.
    pub policy: &'a Policy,
}

impl FnCx<'_> {
    /// Whether the caller may perform `action` on `resource`.
    pub fn is_allowed(&self, action: &str, resource: &str) -> bool {
        self.policy.is_allowed(action, resource)
    }
}

/// What a module function gives back to the script.
#[derive(Debug)]
pub enum Ret {
    /// One value.
    Value(Value),
    /// Several values.
    Values(Vec<Value>),
    /// An error object as a value (what `errors.new` returns).
    Error(Error),
    /// A command for the dispatcher: the engine yields it and the script
    /// receives the handler's result (`value` or `nil, err`).
    Call(Call),
    /// A command for the dispatcher whose result goes through its own
    /// handling ([`Yielded::then`], [`ModuleCommand::handle_result`]) before
    /// the script sees it.
    Yield(Yielded),
    /// A userdata object.
    Object(Object),
}

impl From<Value> for Ret {
    fn from(v: Value) -> Self {
        Ret::Value(v)
    }
}

/// How a module function fails.
#[derive(Debug)]
pub enum CallError {
    /// An expected failure: the script receives `nil, err`.
    Fail(Error),
    /// Misuse (a wrong argument): raised as a script error.
    Raise(Error),
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Fail(e)
    }
}

impl From<ArgError> for CallError {
    fn from(e: ArgError) -> Self {
        CallError::Raise(e.into_error())
    }
}

type FnImpl = dyn Fn(&FnCx<'_>, Args) -> Result<Ret, CallError> + Send + Sync;

/// One function of a module.
#[derive(Clone)]
pub struct FunctionDef {
    name: String,
    qualified: Arc<str>,
    yields: bool,
    objects: bool,
    params: Option<Signature>,
    f: Arc<FnImpl>,
}

impl FunctionDef {
    /// The function's name within its module.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `module.function`, as errors name it.
    pub fn qualified(&self) -> &Arc<str> {
        &self.qualified
    }

    /// Whether the function may return [`Ret::Call`] (engines then call it
    /// from a context that can yield).
    pub fn yields(&self) -> bool {
        self.yields
    }

    /// The parameter types a typed function reads (named `arg1`, …), for
    /// checking the type manifest against the code; `None` for a function
    /// taking raw [`Args`].
    pub fn params(&self) -> Option<&Signature> {
        self.params.as_ref()
    }

    /// Whether its arguments take userdata objects (engines then pass them
    /// in [`Args::object`] instead of refusing them).
    pub fn takes_objects(&self) -> bool {
        self.objects
    }

    /// Calls the function.
    pub fn call(&self, cx: &FnCx<'_>, args: Vec<Value>) -> Result<Ret, CallError> {
        (self.f)(cx, Args::new(Arc::clone(&self.qualified), args))
    }

    /// Calls the function with prepared arguments (values and objects).
    pub fn call_with(&self, cx: &FnCx<'_>, args: Args) -> Result<Ret, CallError> {
        (self.f)(cx, args)
    }
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionDef")
            .field("name", &self.name)
            .field("yields", &self.yields)
            .finish()
    }
}

/// A module defined in Rust: a name, classes, functions and constants.
///
/// ```
/// use troupe_modules::{Class, ModuleDef, Ret};
/// use troupe_dispatcher::Value;
///
/// let greet = ModuleDef::new("greet")
///     .describe("Greetings")
///     .class(Class::Deterministic)
///     .function("hello", |_cx, args| {
///         let name = args.string(0)?;
///         let greeting = args.opt_string(1)?.unwrap_or_else(|| "hello".into());
///         Ok(Ret::Value(Value::from(format!("{greeting}, {name}"))))
///     });
/// assert_eq!(greet.functions().len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct ModuleDef {
    name: String,
    /// Other names `require` finds it by (see [`ModuleDef::alias`]).
    aliases: Vec<String>,
    description: String,
    classes: ClassSet,
    functions: Vec<FunctionDef>,
    constants: Vec<(String, Value)>,
    types: Types,
    handlers: Vec<Handler>,
    userdata: Vec<UserTypeShape>,
}

/// Registers one of a module's command handlers on a dispatcher.
type Register = dyn Fn(&mut DispatcherBuilder) -> Result<(), Error> + Send + Sync;

/// A command handler a module brings with it: the command's name and how
/// to register it.
#[derive(Clone)]
struct Handler {
    command: &'static str,
    register: Arc<Register>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.command)
    }
}

impl ModuleDef {
    /// An empty module called `name`, with no classes (so only a policy that
    /// allows it by name can load it until classes are added).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            aliases: Vec::new(),
            description: String::new(),
            classes: ClassSet::EMPTY,
            functions: Vec::new(),
            constants: Vec::new(),
            types: Types::new(),
            handlers: Vec::new(),
            userdata: Vec::new(),
        }
    }

    /// Another name the module answers to, in `require` and in a policy's
    /// module lists (e.g. `http_client` for `http`, the reference's name).
    #[must_use]
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.aliases.push(name.into());
        self
    }

    /// Sets the one-line description.
    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Adds a class.
    #[must_use]
    pub fn class(mut self, class: Class) -> Self {
        self.classes = self.classes.with(class);
        self
    }

    /// Adds several classes.
    #[must_use]
    pub fn with_classes(mut self, classes: &[Class]) -> Self {
        for c in classes {
            self.classes = self.classes.with(*c);
        }
        self
    }

    fn add(
        mut self,
        name: &str,
        yields: bool,
        (objects, params): (bool, Option<Signature>),
        f: Arc<FnImpl>,
    ) -> Self {
        let qualified: Arc<str> = format!("{}.{name}", self.name).into();
        self.functions.retain(|d| d.name != name);
        self.functions.push(FunctionDef {
            name: name.to_owned(),
            qualified,
            yields,
            objects,
            params,
            f,
        });
        self
    }

    /// Adds a function that computes its result inline.
    #[must_use]
    pub fn function<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&FnCx<'_>, Args) -> Result<Ret, CallError> + Send + Sync + 'static,
    {
        self.add(name, false, (false, None), Arc::new(f))
    }

    /// Adds a function that may return [`Ret::Call`]: the script yields the
    /// call and resumes with the handler's result.
    #[must_use]
    pub fn command<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&FnCx<'_>, Args) -> Result<Ret, CallError> + Send + Sync + 'static,
    {
        self.add(name, true, (false, None), Arc::new(f))
    }

    /// Adds a function with typed arguments and result: the arguments are
    /// read into a tuple of [`FromArg`](crate::FromArg) types (a wrong one is
    /// an `INVALID` error such as `greet.hello: argument #1 expected string,
    /// got nil`), and anything [`IntoRet`] comes back (a `String`, an
    /// `Option<i64>`, a [`Value`], an [`Object`], a [`Ret`]).
    ///
    /// ```
    /// use troupe_modules::{Class, ModuleDef};
    ///
    /// let greet = ModuleDef::new("greet").class(Class::Deterministic).typed_function(
    ///     "hello",
    ///     |_cx, (name, greeting): (String, Option<String>)| {
    ///         Ok(format!("{}, {name}", greeting.as_deref().unwrap_or("hello")))
    ///     },
    /// );
    /// # assert_eq!(greet.functions().len(), 1);
    /// ```
    #[must_use]
    pub fn typed_function<A, R, F>(self, name: &str, f: F) -> Self
    where
        A: FromArgs,
        R: IntoRet,
        F: Fn(&FnCx<'_>, A) -> Result<R, CallError> + Send + Sync + 'static,
    {
        self.add(
            name,
            false,
            (A::OBJECTS, A::signature()),
            Arc::new(move |cx: &FnCx<'_>, args: Args| Ok(f(cx, A::from_args(args)?)?.into_ret())),
        )
    }

    /// Adds a function with typed arguments that yields the typed command
    /// it returns: the script suspends until the command's handler (added
    /// with [`handle`](Self::handle) or [`handle_async`](Self::handle_async),
    /// or by the host) answers, then gets [`ModuleCommand::handle_result`]
    /// of the answer. The command travels typed: its handler gets it back
    /// as it was made.
    #[must_use]
    pub fn typed_command<A, C, F>(self, name: &str, f: F) -> Self
    where
        A: FromArgs,
        C: ModuleCommand + Clone,
        F: Fn(&FnCx<'_>, A) -> Result<C, CallError> + Send + Sync + 'static,
    {
        self.add(
            name,
            true,
            (A::OBJECTS, A::signature()),
            Arc::new(move |cx: &FnCx<'_>, args: Args| {
                let cmd = f(cx, A::from_args(args)?)?;
                Ok(Ret::Yield(Yielded::command(cmd)))
            }),
        )
    }

    /// Adds a function with typed arguments whose command `C` an async
    /// handler answers (a tokio future on the runtime's IO pool, while
    /// other processes run): [`typed_command`](Self::typed_command) and
    /// [`handle_async`](Self::handle_async) in one.
    ///
    /// ```
    /// use troupe_dispatcher::{Command, CommandId};
    /// use troupe_modules::{Class, ModuleCommand, ModuleDef};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Lookup {
    ///     key: String,
    /// }
    /// impl Command for Lookup {
    ///     const ID: CommandId = CommandId(5000);
    ///     const NAME: &'static str = "users.lookup";
    ///     type Output = Option<String>;
    /// }
    /// impl ModuleCommand for Lookup {}
    ///
    /// let users = ModuleDef::new("users").class(Class::Storage).async_command(
    ///     "lookup",
    ///     |_cx, (key,): (String,)| Ok(Lookup { key }),
    ///     |_pid, l: Lookup| async move { Ok((l.key == "ada").then(|| "Ada Lovelace".to_owned())) },
    /// );
    /// # assert_eq!(users.functions().len(), 1);
    /// ```
    #[must_use]
    pub fn async_command<A, C, D, F, Fut>(self, name: &str, decode: D, handler: F) -> Self
    where
        A: FromArgs,
        C: ModuleCommand + Clone,
        D: Fn(&FnCx<'_>, A) -> Result<C, CallError> + Send + Sync + 'static,
        F: Fn(Pid, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, Error>> + Send + 'static,
    {
        self.typed_command(name, decode).handle_async(handler)
    }

    fn with_handler(
        mut self,
        command: &'static str,
        register: impl Fn(&mut DispatcherBuilder) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.handlers.retain(|h| h.command != command);
        self.handlers.push(Handler {
            command,
            register: Arc::new(register),
        });
        self
    }

    /// Handles command `C` (yielded by one of this module's functions)
    /// with a quick, non-blocking function run on the worker that
    /// dispatches it. The runtime registers it when the module is added.
    #[must_use]
    pub fn handle<C, F>(self, f: F) -> Self
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.inline_handler(f, false)
    }

    /// Like [`handle`](Self::handle), for a handler that may also answer
    /// inside the script's call, without a yield (see
    /// [`DispatcherBuilder::immediate`]).
    #[must_use]
    pub fn immediate<C, F>(self, f: F) -> Self
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        self.inline_handler(f, true)
    }

    fn inline_handler<C, F>(self, f: F, immediate: bool) -> Self
    where
        C: Command,
        F: Fn(&HandlerCx<'_>, C) -> Result<C::Output, Error> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        self.with_handler(C::NAME, move |d| {
            let f = Arc::clone(&f);
            let run = move |cx: &HandlerCx<'_>, c: C| f(cx, c);
            let registered = if immediate {
                d.immediate::<C, _>(run)
            } else {
                d.command::<C, _>(run)
            };
            registered.map(drop)
        })
    }

    /// Handles command `C` with an async function: a tokio future on the
    /// runtime's IO pool, cancelled if the process dies first.
    #[must_use]
    pub fn handle_async<C, F, Fut>(self, f: F) -> Self
    where
        C: Command,
        F: Fn(Pid, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, Error>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.with_handler(C::NAME, move |d| {
            let f = Arc::clone(&f);
            d.async_command::<C, _, _>(move |pid, c| f(pid, c))
                .map(drop)
        })
    }

    /// Registers the handlers of the module's commands on `dispatcher`;
    /// `ALREADY_EXISTS` if a command id is taken.
    pub fn register_handlers(&self, dispatcher: &mut DispatcherBuilder) -> Result<(), Error> {
        self.handlers
            .iter()
            .try_for_each(|h| (h.register)(dispatcher))
    }

    /// Adds a constant field.
    #[must_use]
    pub fn constant(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.constants.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the type manifest: the signatures of the functions and the types
    /// they mention, for `troupe types` (editor definitions) and `troupe docs`.
    #[must_use]
    pub fn types(mut self, types: Types) -> Self {
        self.types = types;
        self
    }

    /// Records that the module's functions hand out objects of `ty`, so
    /// [`crate::types::check`] compares the manifest's interface of the same
    /// name with the type's methods and fields.
    #[must_use]
    pub fn userdata<T: UserData>(mut self, ty: &UserType<T>) -> Self {
        let shape = ty.shape();
        self.userdata.retain(|s| s.name != shape.name);
        self.userdata.push(shape);
        self
    }

    /// The userdata types recorded with [`ModuleDef::userdata`].
    pub fn userdata_types(&self) -> &[UserTypeShape] {
        &self.userdata
    }

    /// The module's name, as scripts `require` it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The other names it answers to ([`ModuleDef::alias`]).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// Its name and its aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The module's classes.
    pub fn classes(&self) -> ClassSet {
        self.classes
    }

    /// The functions.
    pub fn functions(&self) -> &[FunctionDef] {
        &self.functions
    }

    /// The constants.
    pub fn constants(&self) -> &[(String, Value)] {
        &self.constants
    }

    /// The type manifest.
    pub fn manifest(&self) -> &Types {
        &self.types
    }
}
