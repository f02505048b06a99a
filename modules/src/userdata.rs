//! Userdata types: Rust values scripts hold as opaque objects with methods
//! (`obj:method(...)`), read-only fields (`obj.field`) and metamethods
//! (`tostring(obj)`, `obj == other`, `#obj`).
//!
//! A [`UserType`] is registered once, with everything an object of it can
//! do; engines build one immutable metatable from it per script state and
//! cache it. An [`Object`] is a shared, immutable handle (`Arc`): a type that
//! changes state uses interior mutability. Objects travel as arguments and
//! return values of module functions, not inside tables or messages.
//!
//! ```
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use troupe_modules::{Obj, UserData, UserType};
//!
//! struct Counter(AtomicI64);
//! impl UserData for Counter {
//!     const NAME: &'static str = "Counter";
//! }
//!
//! let counter = UserType::<Counter>::new()
//!     .method("add", |_cx, this, (n,): (i64,)| Ok(this.0.fetch_add(n, Ordering::Relaxed) + n))
//!     .field("value", |this| this.0.load(Ordering::Relaxed).into())
//!     .tostring(|this| format!("Counter({})", this.0.load(Ordering::Relaxed)));
//! let obj = counter.wrap(Counter(AtomicI64::new(1)));
//! assert_eq!(obj.type_name(), "Counter");
//! assert_eq!(obj.to_display(), "Counter(1)");
//! assert!(Obj::<Counter>::from_object(&obj).is_some());
//! ```

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use troupe_dispatcher::Value;

use crate::typed::{FromArgs, IntoRet};
use crate::types::Signature;
use crate::{Args, CallError, FnCx, Ret};

/// A Rust type scripts can hold as a userdata object.
pub trait UserData: Send + Sync + 'static {
    /// The type's name in scripts and errors (`"Counter"`).
    const NAME: &'static str;
}

type MethodFn = dyn Fn(&FnCx<'_>, &Object, Args) -> Result<Ret, CallError> + Send + Sync;
type FieldFn = dyn Fn(&Object) -> Value + Send + Sync;
type DisplayFn = dyn Fn(&Object) -> String + Send + Sync;
type EqFn = dyn Fn(&Object, &Object) -> bool + Send + Sync;
type LenFn = dyn Fn(&Object) -> i64 + Send + Sync;

/// A method: its `Type:name` for errors, whether it takes objects, the code.
#[derive(Clone)]
pub struct Method {
    qualified: Arc<str>,
    objects: bool,
    params: Option<Signature>,
    f: Arc<MethodFn>,
}

impl Method {
    /// `Type:name`, as errors name it.
    pub fn qualified(&self) -> &Arc<str> {
        &self.qualified
    }

    /// Whether its arguments take userdata objects (see [`crate::FromArg::OBJECT`]).
    pub fn takes_objects(&self) -> bool {
        self.objects
    }

    /// Calls the method on `this` with `args` (the arguments after `self`).
    pub fn call(&self, cx: &FnCx<'_>, this: &Object, args: Args) -> Result<Ret, CallError> {
        (self.f)(cx, this, args)
    }
}

#[derive(Clone)]
struct TypeInner {
    name: &'static str,
    methods: Vec<(String, Method)>,
    fields: Vec<(String, Arc<FieldFn>)>,
    display: Option<Arc<DisplayFn>>,
    eq: Option<Arc<EqFn>>,
    len: Option<Arc<LenFn>>,
}

/// The definition of userdata type `T`: its methods, fields and
/// metamethods. Build it once and clone it (cheap) into the module functions
/// that create objects with [`UserType::wrap`].
pub struct UserType<T: UserData> {
    inner: Arc<TypeInner>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: UserData> Clone for UserType<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _marker: PhantomData,
        }
    }
}

impl<T: UserData> Default for UserType<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn data<T: UserData>(obj: &Object) -> Option<&T> {
    obj.data.downcast_ref::<T>()
}

impl<T: UserData> UserType<T> {
    /// A type with no methods yet; `tostring` shows `NAME: 0x…`, `==` is
    /// identity.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(TypeInner {
                name: T::NAME,
                methods: Vec::new(),
                fields: Vec::new(),
                display: None,
                eq: None,
                len: None,
            }),
            _marker: PhantomData,
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut TypeInner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Adds a method called as `obj:name(...)`, with typed arguments like
    /// [`crate::ModuleDef::typed_function`]. Calling it on anything but a
    /// `T` is an `INVALID` error.
    #[must_use]
    pub fn method<A, R, F>(self, name: &str, f: F) -> Self
    where
        A: FromArgs,
        R: IntoRet,
        F: Fn(&FnCx<'_>, &T, A) -> Result<R, CallError> + Send + Sync + 'static,
    {
        let qualified: Arc<str> = format!("{}:{name}", T::NAME).into();
        let q = Arc::clone(&qualified);
        let method = Method {
            qualified,
            objects: A::OBJECTS,
            params: A::signature(),
            f: Arc::new(move |cx, this, args| {
                let this = data::<T>(this).ok_or_else(|| {
                    CallError::Raise(troupe_dispatcher::Error::invalid(format!(
                        "{q}: expected a {} as self, got {}",
                        T::NAME,
                        this.type_name()
                    )))
                })?;
                Ok(f(cx, this, A::from_args(args)?)?.into_ret())
            }),
        };
        let name = name.to_owned();
        self.edit(move |t| {
            t.methods.retain(|(n, _)| *n != name);
            t.methods.push((name, method));
        })
    }

    /// Adds a read-only field `obj.name`, computed on each read.
    #[must_use]
    pub fn field(self, name: &str, f: impl Fn(&T) -> Value + Send + Sync + 'static) -> Self {
        let name = name.to_owned();
        self.edit(move |t| {
            t.fields.retain(|(n, _)| *n != name);
            t.fields.push((
                name,
                Arc::new(move |o: &Object| data::<T>(o).map_or(Value::Nil, &f)),
            ));
        })
    }

    /// `tostring(obj)`.
    #[must_use]
    pub fn tostring(self, f: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.edit(move |t| {
            t.display = Some(Arc::new(move |o: &Object| {
                data::<T>(o).map_or_else(String::new, &f)
            }));
        })
    }

    /// `a == b` between two objects of this type (default: identity).
    #[must_use]
    pub fn eq(self, f: impl Fn(&T, &T) -> bool + Send + Sync + 'static) -> Self {
        self.edit(move |t| {
            t.eq = Some(Arc::new(move |a: &Object, b: &Object| {
                match (data::<T>(a), data::<T>(b)) {
                    (Some(a), Some(b)) => f(a, b),
                    _ => false,
                }
            }));
        })
    }

    /// `#obj`.
    #[must_use]
    pub fn len(self, f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        self.edit(move |t| {
            t.len = Some(Arc::new(move |o: &Object| data::<T>(o).map_or(0, &f)));
        })
    }

    /// Wraps `value` as an object scripts can hold.
    pub fn wrap(&self, value: T) -> Object {
        Object {
            ty: Arc::clone(&self.inner),
            data: Arc::new(value),
        }
    }

    /// What a type manifest can be checked against: the type's name, its
    /// methods with the parameter types they read, and its field names.
    pub fn shape(&self) -> UserTypeShape {
        UserTypeShape {
            name: T::NAME,
            methods: self
                .inner
                .methods
                .iter()
                .map(|(n, m)| (n.clone(), m.params.clone()))
                .collect(),
            fields: self.inner.fields.iter().map(|(n, _)| n.clone()).collect(),
        }
    }
}

/// The outline of a userdata type (names and parameter types, no code), as
/// [`crate::ModuleDef::userdata`] records it for [`crate::types::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct UserTypeShape {
    /// The type's name.
    pub name: &'static str,
    /// Methods with the parameter types they read.
    pub methods: Vec<(String, Option<Signature>)>,
    /// Field names.
    pub fields: Vec<String>,
}

/// A userdata object: a shared handle to a Rust value and its type.
#[derive(Clone)]
pub struct Object {
    ty: Arc<TypeInner>,
    data: Arc<dyn Any + Send + Sync>,
}

/// Identifies an object's type (compared by identity), e.g. to cache
/// per-type method functions.
#[derive(Clone)]
pub struct TypeKey(Arc<TypeInner>);

impl PartialEq for TypeKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TypeKey {}

impl std::hash::Hash for TypeKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

impl Object {
    /// The type's name.
    pub fn type_name(&self) -> &'static str {
        self.ty.name
    }

    /// Its type, for identity comparisons and caches.
    pub fn type_key(&self) -> TypeKey {
        TypeKey(Arc::clone(&self.ty))
    }

    /// Whether `other` has the same type.
    pub fn same_type(&self, other: &Object) -> bool {
        Arc::ptr_eq(&self.ty, &other.ty)
    }

    /// Method `name`.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.ty
            .methods
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
    }

    /// Field `name`'s current value, if the type has that field.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.ty
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f(self))
    }

    /// What `tostring` shows.
    pub fn to_display(&self) -> String {
        match &self.ty.display {
            Some(f) => f(self),
            None => format!("{}: {:p}", self.ty.name, Arc::as_ptr(&self.data)),
        }
    }

    /// `self == other`: the type's equality for two objects of the same
    /// type, identity otherwise.
    pub fn equals(&self, other: &Object) -> bool {
        if Arc::ptr_eq(&self.data, &other.data) {
            return true;
        }
        match &self.ty.eq {
            Some(f) if self.same_type(other) => f(self, other),
            _ => false,
        }
    }

    /// `#self`, if the type defines a length.
    pub fn length(&self) -> Option<i64> {
        self.ty.len.as_ref().map(|f| f(self))
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_display())
    }
}

/// A typed reference to an object's value, as a typed function's argument:
/// `|cx, (counter, n): (Obj<Counter>, i64)|`.
pub struct Obj<T: UserData> {
    object: Object,
    value: Arc<T>,
}

impl<T: UserData> Obj<T> {
    /// The object as a `T`, if it is one.
    pub fn from_object(object: &Object) -> Option<Self> {
        let value = Arc::clone(&object.data).downcast::<T>().ok()?;
        Some(Self {
            object: object.clone(),
            value,
        })
    }

    /// The untyped object (to return it again).
    pub fn object(&self) -> &Object {
        &self.object
    }
}

impl<T: UserData> std::ops::Deref for Obj<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}
