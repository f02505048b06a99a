//! The hierarchical timing wheel under the runtime's timers (`timers.rs`).
//!
//! Design (after tokio's `runtime/time/wheel`, simplified):
//!
//! - Time is counted in whole-millisecond *ticks* since the wheel was made.
//!   A timer due at tick `t` fires once a worker observes a tick `>= t`, so
//!   it never fires before its deadline (deadlines round up to the next
//!   millisecond).
//! - [`LEVELS`] levels of 64 slots each: level `l` slot `s` holds timers
//!   whose tick, relative to the last processed tick, differs first in the
//!   6-bit group `l` and has the digit `s` there. Level 0 covers the next
//!   64 ms one tick per slot, level 5 about 2.2 years. A timer further away
//!   than [`HORIZON`] waits in the top level and is moved again when its
//!   slot comes up.
//! - Timers live in a slab; each slot is an intrusive doubly-linked list of
//!   slab indices, and a 64-bit mask per level says which slots are
//!   occupied. Adding, cancelling and firing a timer are O(1); finding the
//!   next occupied slot is a `trailing_zeros` per level. A million sleepers
//!   cost a million slab entries (about 50 MB), no task or thread each.
//! - A [`TimerKey`] (slab index + a generation unique per added timer)
//!   cancels a timer in O(1); a stale key (the timer fired or was already
//!   cancelled) cancels nothing.

/// Bits of a tick per level.
const BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << BITS;
/// Levels of the wheel.
const LEVELS: usize = 6;
/// The farthest a timer is placed ahead of the wheel's time, in ticks: half
/// the top level's range, so a top-level slot is never ambiguous.
const HORIZON: u64 = 1 << (BITS as usize * LEVELS - 1);
/// No slab index.
const NIL: u32 = u32::MAX;
/// No pending timer, as [`Wheel::next_tick`] gives it.
pub(crate) const NONE: u64 = u64::MAX;
/// A slab this large is given back to the allocator when it empties.
const SHRINK_ABOVE: usize = 4096;

/// Identifies one added timer, for [`Wheel::cancel`]. Packs into a `u64`
/// (never 0) so it can live in an atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u32,
}

impl TimerKey {
    /// The key as a non-zero `u64`.
    pub fn to_bits(self) -> u64 {
        (u64::from(self.generation) << 32) | (u64::from(self.index.wrapping_add(1)))
    }

    /// The key from [`TimerKey::to_bits`]; `None` for 0.
    pub fn from_bits(bits: u64) -> Option<Self> {
        if bits == 0 {
            return None;
        }
        Some(Self {
            index: (bits as u32).wrapping_sub(1),
            generation: (bits >> 32) as u32,
        })
    }
}

/// One slab entry: a pending timer, or a free cell.
struct Node<T> {
    /// Due tick (the real one; the slot may be nearer, see [`HORIZON`]).
    when: u64,
    action: Option<T>,
    generation: u32,
    /// Where the node is linked: `level * SLOTS + slot`.
    slot: u16,
    prev: u32,
    next: u32,
}

/// The wheel proper; all times in ticks.
pub(crate) struct Wheel<T> {
    nodes: Vec<Node<T>>,
    free: u32,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    /// The last tick processed: every pending timer is due after it.
    elapsed: u64,
    len: usize,
    generation: u32,
}

impl<T> Wheel<T> {
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            free: NIL,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
            generation: 0,
        }
    }

    /// Adds a timer due at tick `when`.
    pub fn insert(&mut self, when: u64, action: T) -> TimerKey {
        self.generation = self.generation.wrapping_add(1);
        let node = Node {
            when,
            action: Some(action),
            generation: self.generation,
            slot: 0,
            prev: NIL,
            next: NIL,
        };
        let index = if self.free == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        };
        self.len += 1;
        self.link(index);
        TimerKey {
            index,
            generation: self.generation,
        }
    }

    /// Links node `i` into the slot its deadline falls in, relative to
    /// `elapsed` (a deadline already past goes to the current slot, which
    /// the next poll processes).
    fn link(&mut self, i: u32) {
        let when = self.nodes[i as usize].when;
        let at = when.clamp(self.elapsed, self.elapsed + HORIZON);
        let level = (((self.elapsed ^ at) | (SLOTS as u64 - 1)).ilog2() / BITS) as usize;
        let level = level.min(LEVELS - 1);
        let slot = ((at >> (level as u32 * BITS)) & (SLOTS as u64 - 1)) as usize;
        let head = self.heads[level][slot];
        if head != NIL {
            self.nodes[head as usize].prev = i;
        }
        let node = &mut self.nodes[i as usize];
        node.slot = (level * SLOTS + slot) as u16;
        node.prev = NIL;
        node.next = head;
        self.heads[level][slot] = i;
        self.occupied[level] |= 1 << slot;
    }

    /// Unlinks node `i` from its slot's list.
    fn unlink(&mut self, i: u32) {
        let (slot, prev, next) = {
            let n = &self.nodes[i as usize];
            (n.slot as usize, n.prev, n.next)
        };
        let (level, slot) = (slot / SLOTS, slot % SLOTS);
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// Frees node `i` (already unlinked) and returns its action.
    fn release(&mut self, i: u32) -> Option<T> {
        let node = &mut self.nodes[i as usize];
        let action = node.action.take();
        node.next = self.free;
        self.free = i;
        self.len -= 1;
        if self.len == 0 && self.nodes.len() > SHRINK_ABOVE {
            // A burst is over: give its memory back. Keys handed out stay
            // stale because generations keep counting.
            self.nodes = Vec::new();
            self.free = NIL;
        }
        action
    }

    /// Cancels the timer `key`; false if it already fired or was cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> bool {
        let live = self
            .nodes
            .get(key.index as usize)
            .is_some_and(|n| n.generation == key.generation && n.action.is_some());
        if live {
            self.unlink(key.index);
            self.release(key.index);
        }
        live
    }

    /// The tick timer `key` is due at; `None` if it fired or was
    /// cancelled.
    pub fn due(&self, key: TimerKey) -> Option<u64> {
        self.nodes
            .get(key.index as usize)
            .filter(|n| n.generation == key.generation && n.action.is_some())
            .map(|n| n.when)
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The earliest occupied slot: `(level, slot, the tick it starts at)`.
    /// Every timer in it is due at or after that tick; every timer elsewhere
    /// is due later.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * BITS;
            let digit = (self.elapsed >> shift) & (SLOTS as u64 - 1);
            let range = 1u64 << (shift + BITS);
            let start = self.elapsed & !(range - 1);
            // Slots at or after the current digit first; below it, only the
            // top level holds timers, of the next turn of the wheel.
            let ahead = occupied & (u64::MAX << digit);
            let (slot, start) = if ahead != 0 {
                (u64::from(ahead.trailing_zeros()), start)
            } else {
                (u64::from(occupied.trailing_zeros()), start + range)
            };
            return Some((level, slot as usize, start + (slot << shift)));
        }
        None
    }

    /// The tick of the earliest slot, or [`NONE`].
    pub fn next_tick(&self) -> u64 {
        self.next_slot()
            .map_or(NONE, |(_, _, at)| at.max(self.elapsed))
    }

    /// Fires (moves to `due`) timers due at or before `now`, at most
    /// `limit`, in deadline order by slot.
    pub fn poll(&mut self, now: u64, limit: usize, due: &mut Vec<T>) {
        let mut fired = 0;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            // Take the slot's list, then fire or re-link each timer.
            let mut i = self.heads[level][slot];
            self.heads[level][slot] = NIL;
            self.occupied[level] &= !(1 << slot);
            while i != NIL {
                let next = self.nodes[i as usize].next;
                if self.nodes[i as usize].when <= self.elapsed && fired < limit {
                    if let Some(a) = self.release(i) {
                        due.push(a);
                    }
                    fired += 1;
                } else {
                    self.link(i);
                }
                i = next;
            }
            if fired >= limit {
                return;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Most timers fired by one poll in these tests.
    const LIMIT: usize = 1024;

    fn wake(n: u64) -> u64 {
        n
    }

    fn tag(a: &u64) -> u64 {
        *a
    }

    /// Polls tick by tick up to `to`, recording the tick each timer fired at.
    fn run(w: &mut Wheel<u64>, from: u64, to: u64, step: u64) -> Vec<(u64, u64)> {
        let mut fired = Vec::new();
        let mut due = Vec::new();
        let mut now = from;
        while now <= to {
            loop {
                w.poll(now, LIMIT, &mut due);
                if due.is_empty() {
                    break;
                }
                fired.extend(due.drain(..).map(|a| (tag(&a), now)));
            }
            now += step;
        }
        fired
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let mut w = Wheel::<u64>::new();
        let deadlines = [1, 2, 63, 64, 65, 100, 4095, 4096, 4097, 70_000, 300_000];
        for (i, d) in deadlines.iter().enumerate() {
            w.insert(*d, wake(i as u64));
        }
        let fired = run(&mut w, 0, 400_000, 1);
        assert_eq!(fired.len(), deadlines.len());
        for (i, at) in fired {
            // Polled every tick: each fires exactly at its deadline.
            assert_eq!(at, deadlines[i as usize]);
        }
        assert_eq!(w.len, 0);
    }

    #[test]
    fn coarse_polls_fire_late_but_never_early() {
        let mut w = Wheel::<u64>::new();
        let deadline = |i: u64| i * 37 + 1;
        for i in 0..2000u64 {
            w.insert(deadline(i), wake(i));
        }
        let fired = run(&mut w, 0, 80_000, 97);
        assert_eq!(fired.len(), 2000);
        for (i, at) in fired {
            assert!(at >= deadline(i), "timer {i} fired at {at}");
        }
    }

    #[test]
    fn cancelled_timers_do_not_fire_and_free_their_cell() {
        let mut w = Wheel::<u64>::new();
        let keep = w.insert(10, wake(1));
        let gone = w.insert(10, wake(2));
        let far = w.insert(1 << 20, wake(3));
        assert!(w.cancel(gone));
        assert!(!w.cancel(gone), "a key cancels once");
        assert!(w.cancel(far));
        assert_eq!(w.len, 1);
        let fired = run(&mut w, 0, 2 << 20, 1000);
        assert_eq!(fired, vec![(1, 1000)]);
        assert!(!w.cancel(keep), "a fired timer's key is stale");
        // The freed cells are reused, and the stale keys do not reach the
        // new timers there.
        let again = w.insert(w.elapsed + 5, wake(4));
        assert!(again.index <= 2);
        assert!(!w.cancel(gone) && !w.cancel(far) && !w.cancel(keep));
        assert_eq!(w.len, 1);
    }

    #[test]
    fn many_equal_deadlines_fire_in_batches() {
        let mut w = Wheel::<u64>::new();
        let n = 10 * LIMIT as u64 + 7;
        for i in 0..n {
            w.insert(500, wake(i));
        }
        let mut due = Vec::new();
        w.poll(499, LIMIT, &mut due);
        assert!(due.is_empty());
        let mut all = Vec::new();
        loop {
            w.poll(500, LIMIT, &mut due);
            assert!(due.len() <= LIMIT);
            if due.is_empty() {
                break;
            }
            all.append(&mut due);
        }
        let mut tags: Vec<u64> = all.iter().map(tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, (0..n).collect::<Vec<_>>());
        assert_eq!(w.len, 0);
    }

    #[test]
    fn far_future_timers_cascade_through_every_level() {
        let mut w = Wheel::<u64>::new();
        let year = 365 * 24 * 3600 * 1000u64;
        let deadlines = [HORIZON - 1, HORIZON + 5, 3 * year, 20 * year + 1];
        for (i, d) in deadlines.iter().enumerate() {
            w.insert(*d, wake(i as u64));
        }
        // Jump close to each deadline, then walk past it.
        for (i, d) in deadlines.iter().enumerate() {
            let mut due = Vec::new();
            w.poll(d - 1, LIMIT, &mut due);
            assert!(due.is_empty(), "timer {i} fired early: {due:?}");
            w.poll(*d, LIMIT, &mut due);
            assert_eq!(due.iter().map(tag).collect::<Vec<_>>(), vec![i as u64]);
        }
        assert_eq!(w.len, 0);
        assert_eq!(w.next_tick(), NONE);
    }

    #[test]
    fn timers_added_after_time_moved_on() {
        let mut w = Wheel::<u64>::new();
        let mut due = Vec::new();
        w.poll(1_000_003, LIMIT, &mut due);
        w.insert(1_000_010, wake(1));
        w.insert(1_000_003, wake(2)); // due now
        w.insert(5, wake(3)); // long past
        assert_eq!(w.next_tick(), 1_000_003);
        w.poll(1_000_003, LIMIT, &mut due);
        let mut tags: Vec<u64> = due.iter().map(tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, vec![2, 3]);
        due.clear();
        w.poll(1_000_009, LIMIT, &mut due);
        assert!(due.is_empty());
        w.poll(1_000_010, LIMIT, &mut due);
        assert_eq!(due.len(), 1);
    }

    #[test]
    fn a_drained_slab_is_given_back() {
        let mut w = Wheel::<u64>::new();
        let keys: Vec<TimerKey> = (0..2 * SHRINK_ABOVE as u64)
            .map(|i| w.insert(100 + i, wake(i)))
            .collect();
        for k in &keys {
            assert!(w.cancel(*k));
        }
        assert_eq!(w.len, 0);
        assert_eq!(w.nodes.capacity(), 0);
        assert!(!w.cancel(keys[0]));
    }

    #[test]
    fn keys_round_trip_through_bits() {
        for key in [
            TimerKey {
                index: 0,
                generation: 0,
            },
            TimerKey {
                index: 7,
                generation: u32::MAX,
            },
            TimerKey {
                index: u32::MAX - 1,
                generation: 3,
            },
        ] {
            assert_ne!(key.to_bits(), 0);
            assert_eq!(TimerKey::from_bits(key.to_bits()), Some(key));
        }
        assert_eq!(TimerKey::from_bits(0), None);
    }
}
