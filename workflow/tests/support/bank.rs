//! `bank`, a host module with an outside effect the workflow tests count
//! (included with `#[path = "support/bank.rs"]`).

use std::sync::mpsc::Sender;

use parking_lot::Mutex;
use troupe_dispatcher::{Command, CommandId, Error, ErrorKind};
use troupe_modules::{Class, ModuleCommand, ModuleDef};

/// `bank.charge(n)`: journaled as `n` itself.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Charge(i64);

impl Command for Charge {
    const ID: CommandId = CommandId(2000);
    const NAME: &'static str = "bank.charge";
    type Output = i64;
}

impl ModuleCommand for Charge {}

/// A host module with an outside effect: `bank.charge(n)` returns `n * 10`
/// and reports `n` on the channel. A negative `n` is refused after it is
/// reported: `UNAVAILABLE` (retryable), or `INVALID` from -100 down.
pub fn bank(charges: &Sender<i64>) -> ModuleDef {
    let charges = Mutex::new(charges.clone());
    ModuleDef::new("bank")
        .class(Class::Network)
        .typed_command("charge", |_cx, (n,): (i64,)| Ok(Charge(n)))
        .handle(move |_, Charge(n)| {
            let _ = charges.lock().send(n);
            match n {
                ..=-100 => Err(Error::invalid("refused")),
                -99..=-1 => Err(Error::new(ErrorKind::Unavailable, "try again")),
                _ => Ok(n * 10),
            }
        })
}
