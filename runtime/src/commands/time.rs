//! Handlers of `time`: the wall clock, the runtime's monotonic clock and
//! sleeps on the timer wheel.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use troupe_dispatcher::{Call, Dispatched, Value};
use troupe_modules::builtin::time::{Monotonic, Now, Sleep};

use super::{Answer, Builtin, Cx, millis, ready};
use crate::timers::TimerAction;

impl Builtin for Now {
    fn now(_cx: &Cx<'_>, _call: Call) -> Answer {
        Ok(Ok(wall_clock_ms()))
    }

    fn handle(self, _cx: &Cx<'_>) -> Dispatched {
        Dispatched::Ready(Ok(wall_clock_ms()))
    }
}

fn wall_clock_ms() -> Value {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3);
    Value::Float(ms)
}

impl Builtin for Sleep {
    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        if self.ms.is_nan() || self.ms <= 0.0 {
            return Dispatched::Ready(Ok(Value::Nil));
        }
        let action = TimerAction::Wake {
            pid: cx.entry.pid,
            tag: cx.tag,
        };
        let key = cx.sched.add_timer(millis(self.ms), action);
        cx.entry.sleep_timer.store(key.to_bits(), Ordering::Release);
        Dispatched::Pending(None)
    }
}

impl Builtin for Monotonic {
    fn now(cx: &Cx<'_>, _call: Call) -> Answer {
        Ok(Ok(monotonic_ms(cx)))
    }

    fn handle(self, cx: &Cx<'_>) -> Dispatched {
        ready(Ok(monotonic_ms(cx)))
    }
}

/// Milliseconds since the runtime started.
fn monotonic_ms(cx: &Cx<'_>) -> Value {
    Value::Float(cx.sched.started.elapsed().as_secs_f64() * 1e3)
}
