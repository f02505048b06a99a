//! Reading histories back in tests.

use troupe_workflow::{Entry, WorkflowStore};

/// The command names of workflow `id`'s history, step 1 first.
pub fn names(store: &WorkflowStore, id: &str) -> Vec<String> {
    store
        .history(id)
        .unwrap()
        .into_iter()
        .map(|Entry::Command { name, .. }| name)
        .collect()
}
