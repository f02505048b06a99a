//! The bottom layer of Troupe: the neutral [`Value`] every engine, message,
//! command and journal entry is made of; the structured [`Error`] every script
//! and host sees; [`Pid`]s; the [`Call`] a process yields and the typed
//! [`Command`] trait behind it; and the [`Dispatcher`], a frozen registry of
//! handlers that turns a call into a result, inline on the calling worker or
//! later on the tokio [`IoPool`] through a [`Completer`].
//!
//! This crate knows nothing of processes, schedulers, scripts or engines: the
//! runtime plugs in through [`CompletionSink`].

mod command;
mod dispatcher;
mod error;
mod io;
mod pid;
mod value;
pub mod value_serde;

pub use command::{Call, Command, CommandId};
pub use dispatcher::{
    Completer, Completion, CompletionSink, Dispatched, Dispatcher, DispatcherBuilder, HandlerCx,
    Tag,
};
pub use error::{Error, ErrorKind};
pub use io::IoPool;
pub use pid::{Pid, nodes};
pub use value::Value;
pub use value_serde::{from_value, to_value};

/// Builds a [`Value`] from JSON-like syntax: `value!({"n": 3, "tags": ["a"]})`.
#[macro_export]
macro_rules! value {
    ($($json:tt)+) => {
        $crate::Value::from($crate::__private::serde_json::json!($($json)+))
    };
}

#[doc(hidden)]
pub mod __private {
    pub use serde_json;
}
