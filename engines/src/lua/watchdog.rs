//! Time-based preemption. Lua 5.4 sends every instruction through
//! `luaG_traceexec` while a thread has any hook set, whatever its count, so
//! a process without an instruction limit runs with no hook at all: while
//! it runs, its thread is published in its OS thread's [`Slot`], and a
//! watchdog thread that ticks every [`TICK`] installs a count-1 hook on a
//! thread that has been running for more than one full tick (Lua permits
//! `lua_sethook` while the thread runs: its loops re-read the trap flag).
//! The hook then yields at the next instruction as the counting hook would.
//!
//! A slot's state word is the running thread, [`IDLE`], [`ARMING`] or
//! [`ARMED`]; the watchdog claims a running thread by swapping it to
//! `ARMING` (then `ARMED` once the hook is in), and a step
//! only ends once it has taken its thread back, so the watchdog never
//! touches a thread after its step ended. The watchdog parks when no step
//! has run for a while and is woken by the next one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use mlua::ffi;
use parking_lot::{Condvar, Mutex};

/// How often the watchdog looks at the running steps; a step is preempted
/// after running between one and two ticks.
const TICK: Duration = Duration::from_millis(1);

/// Ticks without any running step before the watchdog parks.
const IDLE_TICKS: u32 = 100;

const IDLE: usize = 0;
const ARMING: usize = 1;
/// The step's thread has its hook: nothing more to do until it ends.
const ARMED: usize = 2;

/// One OS thread's running step, if any.
struct Slot {
    /// The running `lua_State` (as an address), [`IDLE`], [`ARMING`] or
    /// [`ARMED`].
    state: AtomicUsize,
    /// The watchdog tick at which the current step started.
    since: AtomicU64,
    /// The hook to install (mlua's global hook procedure of the state).
    hook: AtomicUsize,
    /// The watchdog installed the hook during the current step.
    armed: AtomicBool,
}

struct Watchdog {
    slots: Mutex<Vec<Weak<Slot>>>,
    tick: AtomicU64,
    parked: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

static WATCHDOG: LazyLock<Arc<Watchdog>> = LazyLock::new(|| {
    let wd = Arc::new(Watchdog {
        slots: Mutex::new(Vec::new()),
        tick: AtomicU64::new(0),
        parked: AtomicBool::new(false),
        wake: Condvar::new(),
        wake_lock: Mutex::new(()),
    });
    let run = Arc::clone(&wd);
    if let Err(e) = std::thread::Builder::new()
        .name("troupe-lua-watchdog".into())
        .spawn(move || run.run())
    {
        tracing::error!("cannot start the Lua preemption watchdog: {e}");
    }
    wd
});

thread_local! {
    static SLOT: Arc<Slot> = {
        let slot = Arc::new(Slot {
            state: AtomicUsize::new(IDLE),
            since: AtomicU64::new(0),
            hook: AtomicUsize::new(0),
            armed: AtomicBool::new(false),
        });
        WATCHDOG.slots.lock().push(Arc::downgrade(&slot));
        slot
    };
}

impl Watchdog {
    fn run(&self) {
        let mut idle = 0;
        loop {
            std::thread::sleep(TICK);
            let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
            if self.scan(now) {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle >= IDLE_TICKS {
                idle = 0;
                self.park();
            }
        }
    }

    /// Arms the steps that started before the previous tick; whether any
    /// step is running.
    fn scan(&self, now: u64) -> bool {
        let mut any = false;
        self.slots.lock().retain(|weak| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            let state = slot.state.load(Ordering::SeqCst);
            if state > ARMED {
                any = true;
                if slot.since.load(Ordering::Acquire) + 2 <= now {
                    slot.arm(state);
                }
            }
            true
        });
        any
    }

    fn park(&self) {
        let mut guard = self.wake_lock.lock();
        self.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // A step that started before `parked` was visible is seen here.
        if self.scan(self.tick.load(Ordering::Relaxed)) {
            self.parked.store(false, Ordering::SeqCst);
            return;
        }
        while self.parked.load(Ordering::SeqCst) {
            self.wake.wait(&mut guard);
        }
    }

    fn unpark(&self) {
        let _guard = self.wake_lock.lock();
        self.parked.store(false, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

impl Slot {
    /// Installs the count-1 hook on `state` unless its step ended meanwhile.
    fn arm(&self, state: usize) {
        if self
            .state
            .compare_exchange(state, ARMING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let hook = self.hook.load(Ordering::Acquire);
        if hook != 0 {
            // SAFETY: `hook` was read from `lua_gethook` by the step (a
            // `lua_Hook`); the step cannot end while the slot says ARMING,
            // so `state` is alive; `lua_sethook` may be called while the
            // thread runs (Lua's VM re-reads the trap flag in its loops).
            unsafe {
                let hook = std::mem::transmute::<usize, ffi::lua_Hook>(hook);
                ffi::lua_sethook(
                    state as *mut ffi::lua_State,
                    Some(hook),
                    ffi::LUA_MASKCOUNT,
                    1,
                );
            }
            self.armed.store(true, Ordering::Release);
        }
        self.state.store(ARMED, Ordering::Release);
    }
}

/// Runs `f` (one resume of `state`) watched by the watchdog: if it runs for
/// more than a tick, `hook` is installed on `state` with a count of 1. Also
/// returns whether the hook was installed: the caller removes it then
/// (through mlua, which must know that a hook-yielded thread lost its hook).
/// Steps do not nest on one OS thread's slot: a nested step is not watched.
pub(crate) fn watched<R>(
    state: *mut ffi::lua_State,
    hook: ffi::lua_Hook,
    f: impl FnOnce() -> R,
) -> (R, bool) {
    let Ok(slot) = SLOT.try_with(Arc::clone) else {
        return (f(), false);
    };
    if slot.state.load(Ordering::Relaxed) != IDLE {
        return (f(), false);
    }
    let wd = &*WATCHDOG;
    slot.hook.store(hook as usize, Ordering::Relaxed);
    slot.since
        .store(wd.tick.load(Ordering::Relaxed), Ordering::Release);
    slot.state.store(state as usize, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if wd.parked.load(Ordering::SeqCst) {
        wd.unpark();
    }
    let out = f();
    // Take the thread back; wait while the watchdog is installing a hook.
    loop {
        let current = slot.state.load(Ordering::Acquire);
        if current == ARMING {
            std::hint::spin_loop();
        } else if slot
            .state
            .compare_exchange(current, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            break;
        }
    }
    (out, slot.armed.swap(false, Ordering::AcqRel))
}
