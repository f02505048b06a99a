//! A host module written with Troupe's module SDK: `shop`, with
//!
//! - a pure function (`shop.price`),
//! - an async function that yields to a handler running as a tokio task on
//!   the runtime's IO pool (`shop.stock`), so no worker thread waits,
//! - a userdata type with methods, a field and metamethods (`Cart`),
//! - an action-level permission check (`shop.refund` needs a policy rule),
//! - and its type manifest (for `troupe types`-style editor definitions).
//!
//! ```sh
//! cargo run --release --example custom_module            # runs a script
//! cargo run --release --example custom_module -- types   # prints shop.lua
//! ```

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe::types::{Decl, Signature, Type, Types, lua_definitions};
use troupe::{
    Class, Command, CommandId, Error, LuaEngine, MemorySource, ModuleCommand, ModuleDef, Obj, Pid,
    Policy, RuleEffect, Runtime, Spawn, UserData, UserType, Value,
};

/// A shopping cart scripts hold as an object.
#[derive(Default)]
struct Cart {
    items: Mutex<Vec<(String, i64, f64)>>,
}

impl UserData for Cart {
    const NAME: &'static str = "Cart";
}

impl Cart {
    fn total(&self) -> f64 {
        self.lock()
            .iter()
            .map(|(_, qty, price)| *qty as f64 * price)
            .sum()
    }

    fn count(&self) -> i64 {
        self.lock().iter().map(|(_, qty, _)| qty).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, i64, f64)>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `shop.stock(sku)`: answered by an async handler.
#[derive(Clone, Serialize, Deserialize)]
pub struct Stock {
    sku: String,
}

impl Command for Stock {
    const ID: CommandId = CommandId(9001);
    const NAME: &'static str = "shop.stock";
    type Output = i64;
}

impl ModuleCommand for Stock {}

/// The handler: a plain async fn, run as a tokio task on the IO pool (a
/// real shop would query a database or a service here).
pub async fn stock(_pid: Pid, cmd: Stock) -> Result<i64, Error> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    match cmd.sku.as_str() {
        "apple" => Ok(12),
        "pear" => Ok(0),
        other => Err(Error::not_found(format!("unknown sku {other:?}"))),
    }
}

/// The `shop` module.
pub fn shop() -> ModuleDef {
    let cart = UserType::<Cart>::new()
        .method("add", |_cx, this, (sku, qty, price): (String, i64, f64)| {
            if qty <= 0 {
                return Err(Error::invalid(format!(
                    "Cart:add: quantity must be positive, got {qty}"
                ))
                .into());
            }
            this.lock().push((sku, qty, price));
            Ok(this.count())
        })
        .method("total", |_cx, this, ()| Ok(this.total()))
        .field("count", |this| Value::from(this.count()))
        .tostring(|this| format!("Cart({} items, {:.2})", this.count(), this.total()))
        .len(Cart::count);
    ModuleDef::new("shop")
        .describe("A tiny shop: prices, stock, carts and refunds")
        .with_classes(&[Class::Deterministic, Class::Nondeterministic])
        .userdata(&cart)
        .typed_function("price", |_cx, (amount, tax): (f64, Option<f64>)| {
            Ok((amount * (1.0 + tax.unwrap_or(0.2)) * 100.0).round() / 100.0)
        })
        .async_command("stock", |_cx, (sku,): (String,)| Ok(Stock { sku }), stock)
        .typed_function("cart", move |_cx, ()| Ok(cart.wrap(Cart::default())))
        .typed_function("refund", |cx, (cart, order): (Obj<Cart>, String)| {
            if !cx.is_allowed("shop.refund", &order) {
                return Err(Error::permission_denied(format!("shop.refund of {order}")).into());
            }
            Ok(cart.total())
        })
        .types(manifest())
}

/// The type manifest of `shop`.
fn manifest() -> Types {
    Types::new()
        .function(
            "price",
            Signature::new("The price with tax (default rate 20%), rounded to cents.")
                .param("amount", Type::Number)
                .optional("tax_rate", Type::Number)
                .returns(Type::Number),
        )
        .function(
            "stock",
            Signature::new("How many of an item are in stock; `nil, err` (NOT_FOUND) for an unknown one.")
                .param("sku", Type::String)
                .returns(Type::Integer)
                .fallible(),
        )
        .function(
            "cart",
            Signature::new("A new, empty cart.").returns(Type::named("Cart")),
        )
        .function(
            "refund",
            Signature::new(
                "Refunds an order paid with a cart; needs the policy rule `shop.refund` on the order id.",
            )
            .param("cart", Type::named("Cart"))
            .param("order", Type::String)
            .returns(Type::Number)
            .fallible(),
        )
        .decl(
            Decl::interface("Cart", "A shopping cart. `#cart` and `cart.count` are the item count.")
                .field(troupe::types::Field::new("count", Type::Integer))
                .method(
                    "add",
                    Signature::new("Adds items; returns the new item count.")
                        .param("sku", Type::String)
                        .param("qty", Type::Integer)
                        .param("price", Type::Number)
                        .returns(Type::Integer),
                )
                .method("total", Signature::new("The sum of the items.").returns(Type::Number)),
        )
}

/// The script `main` runs.
const SCRIPT: &str = r#"
local shop = require("shop")
local cart = shop.cart()
cart:add("apple", 3, 0.5)
cart:add("pear", 1, 2.0)
local apples = shop.stock("apple")        -- yields; the handler runs on the IO pool
local _, err = shop.stock("kiwi")
local refunded = shop.refund(cart, "order-7")
local _, denied = shop.refund(cart, "order-8")
return {
  gross = shop.price(cart:total()),
  cart = tostring(cart),
  items = #cart,
  apples_in_stock = apples,
  kiwi = err:kind(),
  refunded = refunded,
  refund_8 = denied:kind(),
}
"#;

/// The policy of the example's script: the module's classes, and refunds
/// only for `order-7`.
fn policy() -> Policy {
    Policy::deterministic()
        .allow_class(Class::Nondeterministic)
        .rule("shop.refund", "order-7", RuleEffect::Allow)
}

fn main() -> Result<(), Error> {
    if std::env::args().nth(1).as_deref() == Some("types") {
        print!("{}", lua_definitions(&shop()));
        return Ok(());
    }
    let rt = Runtime::builder()
        .source(MemorySource::new().with("main.lua", SCRIPT))
        .engine(LuaEngine::new())
        .module(shop())
        .build()?;
    let result = rt
        .spawn(Spawn::script("main.lua").policy(policy()))?
        .join_blocking();
    rt.shutdown();
    println!("{}", result?.to_json());
    Ok(())
}

#[cfg(test)]
mod tests {
    use troupe::testing::TestRuntime;
    use troupe::{ErrorKind, value};

    use super::*;

    fn runtime() -> TestRuntime {
        TestRuntime::builder()
            .module(shop())
            .policy(policy())
            .build()
            .expect("test runtime")
    }

    #[test]
    fn the_example_script_runs() {
        let v = runtime().run(SCRIPT).unwrap();
        assert_eq!(
            v,
            value!({
                "gross": 4.2,
                "cart": "Cart(4 items, 3.50)",
                "items": 4,
                "apples_in_stock": 12,
                "kiwi": "NOT_FOUND",
                "refunded": 3.5,
                "refund_8": "PERMISSION_DENIED",
            })
        );
    }

    #[test]
    fn misuse_is_invalid() {
        let t = runtime();
        for (code, message) in [
            (
                "return require('shop').price('ten')",
                "shop.price: argument #1 expected number, got string",
            ),
            (
                "return require('shop').refund({}, 'order-7')",
                "shop.refund: argument #1 expected Cart, got table",
            ),
            (
                "local c = require('shop').cart() return c.total('x')",
                "Cart:total: expected a Cart as self (call it as obj:method(...)), got string",
            ),
        ] {
            let err = t.run(code).unwrap_err();
            assert_eq!((err.kind(), err.message()), (ErrorKind::Invalid, message));
        }
        let err = t
            .run(
                "local c = require('shop').cart() local n, e = c:add('x', 0, 1) return e:message()",
            )
            .unwrap();
        assert_eq!(
            err,
            Value::from("Cart:add: quantity must be positive, got 0")
        );
    }

    #[test]
    fn the_manifest_is_true_to_the_code() {
        let m = shop();
        assert_eq!(troupe::types::check(&m), Vec::<String>::new());
        let defs = lua_definitions(&m);
        assert!(defs.contains("---@param tax_rate? number\n---@return number\nfunction shop.price(amount, tax_rate) end"));
        assert!(defs.contains("---@class shop.Cart\n---@field count integer\nlocal Cart = {}"));
        assert!(defs.contains("function Cart:add(sku, qty, price) end"));
    }
}
