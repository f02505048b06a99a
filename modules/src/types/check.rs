//! Keeping a manifest true to the code it describes.

use super::{Decl, Signature, Type};
use crate::{ModuleDef, UserTypeShape};

/// Whether a manifest type `described` may stand for what the code reads
/// as `read`. Code that reads any value accepts every description; a table
/// the code reads may be described as any table-like type.
fn compatible(described: &Type, read: &Type) -> bool {
    match (described, read) {
        (_, Type::Any) => true,
        (Type::Optional(d), Type::Optional(r)) => compatible(d, r),
        (
            Type::Table(..) | Type::Array(_) | Type::Record(_) | Type::Named(_),
            Type::Table(..) | Type::Array(_),
        ) => true,
        (Type::Named(d), Type::Named(r)) => d == r || d.rsplit('.').next() == Some(r.as_str()),
        (Type::Integer, Type::Number) => true,
        (d, r) => d == r,
    }
}

/// The declared names a type mentions.
fn named<'a>(ty: &'a Type, out: &mut Vec<&'a str>) {
    match ty {
        Type::Named(n) => out.push(n),
        Type::Optional(t) | Type::Array(t) => named(t, out),
        Type::Table(k, v) => {
            named(k, out);
            named(v, out);
        }
        Type::Union(ts) => ts.iter().for_each(|t| named(t, out)),
        Type::Record(fields) => fields.iter().for_each(|f| named(&f.ty, out)),
        Type::Function(sig) => sig_names(sig, out),
        _ => {}
    }
}

fn sig_names<'a>(sig: &'a Signature, out: &mut Vec<&'a str>) {
    for p in &sig.params {
        named(&p.ty, out);
    }
    if let Some(v) = &sig.variadic {
        named(v, out);
    }
    for r in &sig.returns {
        named(&r.ty, out);
    }
}

/// A problem if the parameters described for `qualified` differ from the
/// ones its code reads.
fn mismatch(
    module: &ModuleDef,
    qualified: &str,
    described: &Signature,
    read: &Signature,
) -> Option<String> {
    let namer = super::Namer::new(module.name(), module.manifest());
    let shown = |s: &Signature| {
        namer.fun(&Signature {
            returns: Vec::new(),
            ..s.clone()
        })
    };
    let same_arity = described.params.len() == read.params.len()
        && described.variadic.is_some() == read.variadic.is_some();
    let same_types = described
        .params
        .iter()
        .zip(&read.params)
        .all(|(d, r)| compatible(&d.ty, &r.ty));
    (!(same_arity && same_types)).then(|| {
        format!(
            "{qualified}: described as {} but its code reads {}",
            shown(described),
            shown(read)
        )
    })
}

/// Compares a userdata type with the manifest's interface of its name.
fn check_userdata(module: &ModuleDef, shape: &UserTypeShape) -> Vec<String> {
    let name = shape.name;
    let found = module.manifest().decls().iter().find_map(|d| match d {
        Decl::Interface {
            name: n,
            fields,
            methods,
            ..
        } if n == name => Some((fields, methods)),
        _ => None,
    });
    let Some((fields, methods)) = found else {
        return vec![format!(
            "{}: userdata type {name} has no Decl::interface(\"{name}\", ..) in the manifest",
            module.name()
        )];
    };
    let mut problems = Vec::new();
    for (m, read) in &shape.methods {
        let qualified = format!("{name}:{m}");
        match methods.iter().find(|(n, _)| n == m) {
            None => problems.push(format!("{qualified}: method not described")),
            Some((_, sig)) => {
                if let Some(read) = read {
                    problems.extend(mismatch(module, &qualified, sig, read));
                }
            }
        }
    }
    for (m, _) in methods {
        if !shape.methods.iter().any(|(n, _)| n == m) {
            problems.push(format!("{name}:{m}: described but not defined"));
        }
    }
    for f in &shape.fields {
        if !fields.iter().any(|d| d.name == *f) {
            problems.push(format!("{name}.{f}: field not described"));
        }
    }
    for d in fields {
        if !shape.fields.contains(&d.name) {
            problems.push(format!(
                "{name}.{}: field described but not defined",
                d.name
            ));
        }
    }
    problems
}

/// Where `module`'s type manifest disagrees with the module: a function
/// not described or described but not defined, a typed function whose
/// described parameters differ from the types its code reads, or a
/// reference to a type nobody declares. Empty when the manifest is true.
pub fn check(module: &ModuleDef) -> Vec<String> {
    let types = module.manifest();
    let mut problems = Vec::new();
    for f in module.functions() {
        let Some(sig) = types.signature(f.name()) else {
            problems.push(format!(
                "{}: not described in the module's .types(...) manifest",
                f.qualified()
            ));
            continue;
        };
        if let Some(read) = f.params() {
            problems.extend(mismatch(module, f.qualified(), sig, read));
        }
    }
    for (name, _) in types.functions() {
        if !module.functions().iter().any(|f| f.name() == name) {
            problems.push(format!(
                "{}.{name}: described in the manifest but not defined",
                module.name()
            ));
        }
    }
    for shape in module.userdata_types() {
        problems.extend(check_userdata(module, shape));
    }
    let mut names = Vec::new();
    for (_, sig) in types.functions() {
        sig_names(sig, &mut names);
    }
    for d in types.decls() {
        match d {
            Decl::Record { fields, .. } => fields.iter().for_each(|f| named(&f.ty, &mut names)),
            Decl::Interface {
                fields, methods, ..
            } => {
                fields.iter().for_each(|f| named(&f.ty, &mut names));
                methods.iter().for_each(|(_, s)| sig_names(s, &mut names));
            }
        }
    }
    for n in names {
        let declared = types.decls().iter().any(|d| d.name() == n);
        if !declared && !n.contains('.') {
            problems.push(format!(
                "{}: type {n:?} is used but not declared (add a Decl, or qualify it as module.{n})",
                module.name()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Types;
    use crate::{Class, ModuleDef};

    struct Card;
    impl crate::UserData for Card {
        const NAME: &'static str = "Card";
    }

    #[test]
    fn a_manifest_that_drifts_from_the_code_is_reported() {
        let m = ModuleDef::new("greet")
            .class(Class::Deterministic)
            .typed_function("hello", |_cx, (name, n): (String, Option<i64>)| {
                Ok(format!("{name}{n:?}"))
            })
            .typed_function("quiet", |_cx, ()| Ok(1))
            .userdata(
                &crate::UserType::<Card>::new()
                    .method("text", |_cx, _this, ()| Ok("hi"))
                    .method("sign", |_cx, _this, (_by,): (String,)| Ok(true))
                    .field("size", |_| 1.into()),
            )
            .types(
                Types::new()
                    .function(
                        "hello",
                        Signature::new("")
                            .param("name", Type::String)
                            .optional("n", Type::String),
                    )
                    .function("gone", Signature::new(""))
                    .function("quiet", Signature::new("").returns(Type::named("Missing")))
                    .decl(
                        Decl::interface("Card", "")
                            .method("text", Signature::new(""))
                            .method("sign", Signature::new("").param("by", Type::Integer))
                            .method("burn", Signature::new("")),
                    ),
            );
        assert_eq!(
            check(&m),
            [
                "greet.hello: described as fun(name: string, n?: string) but its code reads fun(arg1: string, arg2?: integer)",
                "greet.gone: described in the manifest but not defined",
                "Card:sign: described as fun(by: integer) but its code reads fun(arg1: string)",
                "Card:burn: described but not defined",
                "Card.size: field not described",
                "greet: type \"Missing\" is used but not declared (add a Decl, or qualify it as module.Missing)",
            ]
        );
    }
}
