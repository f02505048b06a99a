//! Per-thread allocation accounting for the memory limit of the Python and
//! TCL engines.
//!
//! RustPython and molt allocate through Rust's global allocator and have
//! no hook of their own, but every Python or TCL run stays on one thread.
//! [`CountingAllocator`] wraps mimalloc (the CLI's allocator in every
//! build) and keeps, per thread,
//! the bytes allocated minus the bytes freed; the engines' hooks compare the
//! growth since the run started with `max_memory`.
//!
//! A library cannot choose the program's allocator, so the binary does:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: troupe_engines::python::CountingAllocator =
//!     troupe_engines::python::CountingAllocator;
//! ```
//!
//! The `troupe` CLI does this. Without it, a Python or TCL process spawned
//! with `max_memory` fails `UNAVAILABLE` instead of running unlimited.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc, counting each thread's live bytes.
pub struct CountingAllocator;

/// Set once the counting allocator has served an allocation.
static ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static HELD: Cell<isize> = const { Cell::new(0) };
}

/// Adds `delta` to this thread's count (nothing during thread teardown).
fn account(delta: isize) {
    let _ = HELD.try_with(|held| held.set(held.get().wrapping_add(delta)));
}

/// A size as a signed count (sizes never exceed `isize::MAX`).
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every method forwards to `MiMalloc` with the caller's arguments and
// only adds bookkeeping on a thread-local counter, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            account(signed(layout.size()));
            if !ACTIVE.load(Ordering::Relaxed) {
                ACTIVE.store(true, Ordering::Relaxed);
            }
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            account(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        account(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            account(signed(new_size).wrapping_sub(signed(layout.size())));
        }
        new
    }
}

/// Whether the program installed [`CountingAllocator`] (it has served an
/// allocation, which every program does before a script runs).
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// This thread's live bytes (meaningful as a difference between two reads).
pub(crate) fn held() -> isize {
    HELD.try_with(Cell::get).unwrap_or(0)
}
