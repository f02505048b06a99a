//! The name registry: one name per process (or host mailbox), one process
//! per name, freed when the process ends. `send`, `link`, `monitor` and
//! `kill` accept a registered name wherever they take a pid.

use dashmap::mapref::entry::Entry as Slot;
use troupe_dispatcher::{Error, ErrorKind, Pid};

use crate::table::ProcessTable;

/// Checks that `name` can be registered: not empty, not too long, and not
/// something that reads as a pid.
fn validate(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::invalid(
            "a registered name must be 1 to 255 bytes long",
        ));
    }
    if name.starts_with('<') {
        return Err(Error::invalid(format!(
            "{name:?} cannot be a registered name: names starting with '<' are pids"
        )));
    }
    Ok(())
}

impl ProcessTable {
    /// Registers `pid` under `name`. `ALREADY_EXISTS` if the name is taken
    /// or `pid` already has another name.
    pub(crate) fn register(&self, pid: Pid, name: &str) -> Result<(), Error> {
        validate(name)?;
        let ep = self
            .endpoint(pid)
            .ok_or_else(|| Error::not_found(format!("{pid} is not alive")))?;
        let mut st = ep.links().lock();
        if st.dead {
            return Err(Error::not_found(format!("{pid} is not alive")));
        }
        match st.name() {
            Some(own) if own == name => return Ok(()),
            Some(own) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{pid} is already registered as {own:?}"),
                ));
            }
            None => {}
        }
        match self.names.entry(name.to_owned()) {
            Slot::Occupied(o) => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("the name {name:?} is already registered by {}", o.get()),
            )),
            Slot::Vacant(v) => {
                v.insert(pid);
                st.sets().name = Some(name.to_owned());
                Ok(())
            }
        }
    }

    /// Frees `name`, which must be `pid`'s own: `NOT_FOUND` if nobody holds
    /// it, `PERMISSION_DENIED` if another process does.
    pub(crate) fn unregister(&self, pid: Pid, name: &str) -> Result<(), Error> {
        match self.whereis(name) {
            None => Err(Error::not_found(format!(
                "no process is registered as {name:?}"
            ))),
            Some(owner) if owner != pid => Err(Error::permission_denied(format!(
                "{name:?} is registered by {owner}, not by {pid}"
            ))),
            Some(_) => {
                if let Some(ep) = self.endpoint(pid) {
                    ep.links().lock().sets().name = None;
                }
                self.names.remove_if(name, |_, owner| *owner == pid);
                Ok(())
            }
        }
    }

    /// The pid registered under `name`.
    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.names.get(name).map(|p| *p)
    }

    /// A pid in its text form (`<0.42>`) or a registered name.
    pub(crate) fn resolve(&self, dest: &str) -> Result<Pid, Error> {
        if dest.starts_with('<') {
            return dest.parse();
        }
        self.whereis(dest)
            .ok_or_else(|| Error::not_found(format!("no process is registered as {dest:?}")))
    }
}
