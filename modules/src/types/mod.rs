//! Type manifests: what a module exports, described well enough for an
//! editor to autocomplete and type-check scripts and for a reference page.
//!
//! A [`Types`] manifest lists a module's functions with their
//! [`Signature`]s and the named [`Decl`]arations (records, interfaces with
//! methods) those signatures mention. [`lua_definitions`] renders it as a
//! lua-language-server definition file (`---@meta`, `---@class`, `---@param`,
//! `---@return`), which `emmylua_check` and lua-language-server both read;
//! [`markdown`] renders a reference page.
//!
//! ```
//! use troupe_modules::types::{Signature, Type, Types};
//!
//! let types = Types::new().function(
//!     "hello",
//!     Signature::new("Greets someone.")
//!         .param("name", Type::String)
//!         .optional("greeting", Type::String)
//!         .returns(Type::String),
//! );
//! assert_eq!(types.signature("hello").unwrap().params.len(), 2);
//! ```

mod check;
mod lua;
mod markdown;

pub use check::check;

pub use lua::{ERROR_CLASS, lua_definitions, shared_definitions};
pub use markdown::markdown;

/// A type in a manifest.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Type {
    /// Anything.
    Any,
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Boolean,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// A string (text or bytes).
    String,
    /// A structured error object (`err:kind()`, `err:message()`, …).
    Error,
    /// The value or `nil`.
    Optional(Box<Type>),
    /// A sequence of values of one type.
    Array(Box<Type>),
    /// A table from keys of one type to values of another.
    Table(Box<Type>, Box<Type>),
    /// One of several types.
    Union(Vec<Type>),
    /// A function value.
    Function(Box<Signature>),
    /// An inline table with known fields.
    Record(Vec<Field>),
    /// A record or interface declared in the same manifest (by its short
    /// name, e.g. `"Program"`), or in another module (`"expr.Program"`).
    Named(String),
}

impl Type {
    /// `t` or `nil`.
    pub fn optional(t: Type) -> Type {
        match t {
            Type::Optional(_) => t,
            other => Type::Optional(Box::new(other)),
        }
    }

    /// A sequence of `t`.
    pub fn array(t: Type) -> Type {
        Type::Array(Box::new(t))
    }

    /// A table from `key` to `value`.
    pub fn table(key: Type, value: Type) -> Type {
        Type::Table(Box::new(key), Box::new(value))
    }

    /// A table with string keys and values of any type.
    pub fn map() -> Type {
        Type::table(Type::String, Type::Any)
    }

    /// A function value.
    pub fn function(sig: Signature) -> Type {
        Type::Function(Box::new(sig))
    }

    /// An inline record.
    pub fn record(fields: impl IntoIterator<Item = Field>) -> Type {
        Type::Record(fields.into_iter().collect())
    }

    /// A declared record or interface.
    pub fn named(name: impl Into<String>) -> Type {
        Type::Named(name.into())
    }

    /// One of `types`.
    pub fn union(types: impl IntoIterator<Item = Type>) -> Type {
        Type::Union(types.into_iter().collect())
    }
}

/// A named field of a record or interface.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its type; an [`Type::Optional`] field may be absent.
    pub ty: Type,
    /// What it holds.
    pub doc: String,
}

impl Field {
    /// A field `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self {
            name: name.into(),
            ty,
            doc: String::new(),
        }
    }

    /// A field that may be absent.
    pub fn optional(name: impl Into<String>, ty: Type) -> Self {
        Self::new(name, Type::optional(ty))
    }

    /// Sets the description.
    #[must_use]
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }
}

/// A parameter of a function.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Its type; an [`Type::Optional`] parameter may be omitted.
    pub ty: Type,
}

/// A return value of a function.
#[derive(Clone, Debug, PartialEq)]
pub struct Return {
    /// Its type.
    pub ty: Type,
    /// A name for it (e.g. `err`), or empty.
    pub name: String,
}

/// The signature of a function or method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signature {
    /// What the function does, in one or two sentences.
    pub doc: String,
    /// Fixed parameters, in order.
    pub params: Vec<Param>,
    /// The type of any further arguments (`...`), if it takes them.
    pub variadic: Option<Type>,
    /// Return values, in order.
    pub returns: Vec<Return>,
}

impl Signature {
    /// A function taking and returning nothing, described by `doc`.
    pub fn new(doc: impl Into<String>) -> Self {
        Self {
            doc: doc.into(),
            ..Self::default()
        }
    }

    /// Adds a required parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.params.push(Param {
            name: name.into(),
            ty,
        });
        self
    }

    /// Adds a parameter that may be omitted (or `nil`).
    #[must_use]
    pub fn optional(self, name: impl Into<String>, ty: Type) -> Self {
        self.param(name, Type::optional(ty))
    }

    /// Takes any number of further arguments of type `ty`.
    #[must_use]
    pub fn variadic(mut self, ty: Type) -> Self {
        self.variadic = Some(ty);
        self
    }

    /// Adds a return value.
    #[must_use]
    pub fn returns(mut self, ty: Type) -> Self {
        self.returns.push(Return {
            ty,
            name: String::new(),
        });
        self
    }

    /// Marks the function fallible the Troupe way: it returns its values, or
    /// `nil, err` with a structured error. The returns so far become optional
    /// (a function with none gets a `true` result) and an `err` return is
    /// appended.
    #[must_use]
    pub fn fallible(mut self) -> Self {
        if self.returns.is_empty() {
            self = self.returns(Type::Boolean);
        }
        for r in &mut self.returns {
            r.ty = Type::optional(r.ty.clone());
        }
        self.returns.push(Return {
            ty: Type::optional(Type::Error),
            name: "err".to_owned(),
        });
        self
    }
}

/// A named type a manifest declares.
#[derive(Clone, Debug, PartialEq)]
pub enum Decl {
    /// A table with known fields.
    Record {
        /// Short name, qualified by the module in output (`greet.Options`).
        name: String,
        /// What it is.
        doc: String,
        /// Its fields.
        fields: Vec<Field>,
    },
    /// An object with methods (called `obj:method(...)`) and fields, such as
    /// a userdata type.
    Interface {
        /// Short name, qualified by the module in output (`expr.Program`).
        name: String,
        /// What it is.
        doc: String,
        /// Readable fields.
        fields: Vec<Field>,
        /// Methods, by name.
        methods: Vec<(String, Signature)>,
    },
}

impl Decl {
    /// A record `name` with `fields`.
    pub fn record(
        name: impl Into<String>,
        doc: impl Into<String>,
        fields: impl IntoIterator<Item = Field>,
    ) -> Self {
        Decl::Record {
            name: name.into(),
            doc: doc.into(),
            fields: fields.into_iter().collect(),
        }
    }

    /// An interface `name` with no members yet; add them with
    /// [`Decl::method`] and [`Decl::field`].
    pub fn interface(name: impl Into<String>, doc: impl Into<String>) -> Self {
        Decl::Interface {
            name: name.into(),
            doc: doc.into(),
            fields: Vec::new(),
            methods: Vec::new(),
        }
    }

    /// Adds a method to an interface (a record ignores it).
    #[must_use]
    pub fn method(mut self, name: impl Into<String>, sig: Signature) -> Self {
        if let Decl::Interface { methods, .. } = &mut self {
            methods.push((name.into(), sig));
        }
        self
    }

    /// Adds a field.
    #[must_use]
    pub fn field(mut self, field: Field) -> Self {
        match &mut self {
            Decl::Record { fields, .. } | Decl::Interface { fields, .. } => fields.push(field),
        }
        self
    }

    /// The declared (short) name.
    pub fn name(&self) -> &str {
        match self {
            Decl::Record { name, .. } | Decl::Interface { name, .. } => name,
        }
    }
}

/// A module's type manifest: its functions' signatures and the types they
/// mention. Constants need no entry: their types come from their values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Types {
    functions: Vec<(String, Signature)>,
    decls: Vec<Decl>,
}

impl Types {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Describes the function `name` (replacing an earlier description).
    #[must_use]
    pub fn function(mut self, name: impl Into<String>, sig: Signature) -> Self {
        let name = name.into();
        self.functions.retain(|(n, _)| *n != name);
        self.functions.push((name, sig));
        self
    }

    /// Declares a record or interface.
    #[must_use]
    pub fn decl(mut self, decl: Decl) -> Self {
        self.decls.retain(|d| d.name() != decl.name());
        self.decls.push(decl);
        self
    }

    /// The signature of function `name`, if described.
    pub fn signature(&self, name: &str) -> Option<&Signature> {
        self.functions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// Every described function, in the order added.
    pub fn functions(&self) -> &[(String, Signature)] {
        &self.functions
    }

    /// Every declared type, in the order added.
    pub fn decls(&self) -> &[Decl] {
        &self.decls
    }

    /// Whether nothing is described.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty() && self.decls.is_empty()
    }
}

/// How a manifest's type names are written: declared short names are
/// qualified with the module's name, the error type has its shared name.
pub(crate) struct Namer<'a> {
    module: &'a str,
    types: &'a Types,
}

impl<'a> Namer<'a> {
    pub(crate) fn new(module: &'a str, types: &'a Types) -> Self {
        Self { module, types }
    }

    /// The qualified name of a declared or referenced type.
    pub(crate) fn qualify(&self, name: &str) -> String {
        if self.types.decls.iter().any(|d| d.name() == name) {
            format!("{}.{name}", self.module)
        } else {
            name.to_owned()
        }
    }

    /// `ty` in lua-language-server syntax (also used by the Markdown page).
    pub(crate) fn render(&self, ty: &Type) -> String {
        match ty {
            Type::Any => "any".to_owned(),
            Type::Nil => "nil".to_owned(),
            Type::Boolean => "boolean".to_owned(),
            Type::Integer => "integer".to_owned(),
            Type::Number => "number".to_owned(),
            Type::String => "string".to_owned(),
            Type::Error => ERROR_CLASS.to_owned(),
            Type::Optional(inner) => format!("{}?", self.atom(inner)),
            Type::Array(inner) => format!("{}[]", self.atom(inner)),
            Type::Table(k, v) => format!("table<{}, {}>", self.render(k), self.render(v)),
            Type::Union(types) => {
                let parts: Vec<String> = types.iter().map(|t| self.render(t)).collect();
                parts.join("|")
            }
            Type::Function(sig) => self.fun(sig),
            Type::Record(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|f| match &f.ty {
                        Type::Optional(inner) => format!("{}?: {}", f.name, self.render(inner)),
                        other => format!("{}: {}", f.name, self.render(other)),
                    })
                    .collect();
                format!("{{ {} }}", parts.join(", "))
            }
            Type::Named(name) => self.qualify(name),
        }
    }

    /// `ty`, parenthesised when a suffix (`?`, `[]`) would bind wrongly.
    fn atom(&self, ty: &Type) -> String {
        match ty {
            Type::Union(_) | Type::Function(_) => format!("({})", self.render(ty)),
            other => self.render(other),
        }
    }

    /// A function type: `fun(a: string, b?: integer, ...: any): string`.
    pub(crate) fn fun(&self, sig: &Signature) -> String {
        let mut params: Vec<String> = sig.params.iter().map(|p| self.param(p)).collect();
        if let Some(v) = &sig.variadic {
            params.push(format!("...: {}", self.render(v)));
        }
        let mut out = format!("fun({})", params.join(", "));
        if !sig.returns.is_empty() {
            let rets: Vec<String> = sig.returns.iter().map(|r| self.render(&r.ty)).collect();
            out.push_str(": ");
            out.push_str(&rets.join(", "));
        }
        out
    }

    /// `name: type`, or `name?: type` for an optional parameter.
    pub(crate) fn param(&self, p: &Param) -> String {
        match &p.ty {
            Type::Optional(inner) => format!("{}?: {}", p.name, self.render(inner)),
            other => format!("{}: {}", p.name, self.render(other)),
        }
    }
}

/// A module's classes as `a, b`.
pub(crate) fn class_list(classes: crate::ClassSet) -> String {
    let names: Vec<&str> = classes.iter().map(crate::Class::as_str).collect();
    if names.is_empty() {
        "none (loaded only when a policy allows it by name)".to_owned()
    } else {
        names.join(", ")
    }
}

/// The manifest type of a constant's value.
pub(crate) fn type_of_value(v: &troupe_dispatcher::Value) -> Type {
    use troupe_dispatcher::Value;
    match v {
        Value::Nil => Type::Nil,
        Value::Bool(_) => Type::Boolean,
        Value::Int(_) => Type::Integer,
        Value::Float(_) => Type::Number,
        Value::String(_) | Value::Bytes(_) => Type::String,
        Value::Array(_) => Type::array(Type::Any),
        Value::Map(_) => Type::map(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_render_in_language_server_syntax() {
        let types = Types::new().decl(Decl::record("Options", "", []));
        let n = Namer::new("greet", &types);
        assert_eq!(n.render(&Type::optional(Type::String)), "string?");
        assert_eq!(n.render(&Type::array(Type::Integer)), "integer[]");
        assert_eq!(n.render(&Type::map()), "table<string, any>");
        assert_eq!(
            n.render(&Type::optional(Type::union([Type::String, Type::Number]))),
            "(string|number)?"
        );
        assert_eq!(n.render(&Type::named("Options")), "greet.Options");
        assert_eq!(n.render(&Type::named("json.Other")), "json.Other");
        assert_eq!(
            n.render(&Type::record([
                Field::new("a", Type::String),
                Field::optional("b", Type::Integer)
            ])),
            "{ a: string, b?: integer }"
        );
        let f = Signature::new("")
            .param("x", Type::Number)
            .optional("y", Type::Boolean)
            .variadic(Type::Any)
            .returns(Type::String)
            .fallible();
        assert_eq!(
            n.render(&Type::function(f)),
            "fun(x: number, y?: boolean, ...: any): string?, troupe.Error?"
        );
        assert_eq!(
            n.render(&Type::optional(Type::function(Signature::new("")))),
            "(fun())?"
        );
    }
}
