//! Test helpers shared by the engine tests.

use std::sync::Arc;

use troupe_dispatcher::Error;
use troupe_engines::ScriptEngine;
use troupe_engines::cancel::CancellationToken;
use troupe_modules::{ModuleRegistry, Policy};
use troupe_runtime::Limits;

/// An engine with no optional capability whose `reset` fails when asked to.
pub struct Stub {
    /// `reset` fails `INTERNAL`.
    pub reset_fails: bool,
}

impl ScriptEngine for Stub {
    fn kind(&self) -> &'static str {
        "stub"
    }
    fn init(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn last_error(&self) -> Option<&Error> {
        None
    }
    fn reset(&mut self) -> Result<(), Error> {
        match self.reset_fails {
            true => Err(Error::internal("cannot reset")),
            false => Ok(()),
        }
    }
    fn set_policy(&mut self, _: Arc<Policy>, _: Arc<ModuleRegistry>) -> Result<(), Error> {
        Ok(())
    }
    fn set_limits(&mut self, _: Limits) -> Result<(), Error> {
        Ok(())
    }
    fn set_cancel(&mut self, _: Option<CancellationToken>) {}
}
