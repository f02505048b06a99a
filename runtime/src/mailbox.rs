//! Bounded mailboxes with backpressure.
//!
//! A mailbox holds at most `capacity` queued messages. A `send` that finds
//! it full does not fail and does not drop anything: the sender is
//! suspended, its message parked beside the queue in a FIFO of
//! [`BlockedSend`]s. Each time the owner takes a message, the first blocked
//! send is admitted into the freed place and its sender woken ([`Taken`]
//! carries the [`SendWaker`] the caller completes once the lock is gone).
//! So a queue with blocked senders behind it is always full, a sender that
//! waits is never overtaken by a later one, and nobody polls.
//!
//! A selective `receive(topic)` that finds no match in the queue also looks
//! at the blocked messages: a receiver waiting for a reply behind a full
//! queue of other topics must not deadlock.
//!
//! A mailbox is also bounded in bytes (the [`Message::weight`] of its queued
//! messages): a message that would take it past its byte cap waits like
//! one that finds it full, and one larger than the cap is refused with
//! `LIMIT_EXCEEDED`. Queued bytes are charged to the receiver's spawn
//! tree ([`Quota`]): a mailbox is its owner's memory, as in Erlang, and a
//! send that would take the receiver's tree past its `max_memory` fails
//! with `LIMIT_EXCEEDED`. A blocked send's message is still its sender's.
//!
//! Runtime notifications (`EXIT`, `DOWN`) are never bounded, and
//! `try_send` refuses at once with `RATE_LIMITED` instead of waiting
//! (`send.rs` holds the scheduler's side).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use troupe_dispatcher::{Error, ErrorKind, Pid, Tag, Value};

use crate::quota::Quota;
use crate::timers::TimerKey;

/// A message in a mailbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The sender; `None` for the host.
    pub from: Option<Pid>,
    /// What the message is about; `receive(topic)` selects on it.
    pub topic: String,
    /// The deep-copied payload.
    pub payload: Value,
}

impl Message {
    /// The bytes this message counts for in a mailbox (and on its way to
    /// another node): its topic and payload, roughly as laid out in memory.
    pub fn weight(&self) -> usize {
        self.topic.len().saturating_add(self.payload.approx_size())
    }

    /// The `{from, topic, payload}` map scripts receive.
    pub fn to_value(&self) -> Value {
        self.clone().into_value()
    }

    /// The `{from, topic, payload}` map scripts receive, moving the payload
    /// (a delivered message is not copied again).
    pub fn into_value(self) -> Value {
        // Three inserts into one leaf: cheaper than collecting, which sorts
        // and bulk-builds.
        let mut m = BTreeMap::new();
        let from = self.from.map_or(Value::Nil, |p| Value::from(p.to_string()));
        m.insert("from".to_owned(), from);
        m.insert("payload".to_owned(), self.payload);
        m.insert("topic".to_owned(), Value::String(self.topic));
        Value::Map(m)
    }
}

/// A queued message and its [`Message::weight`], taken once when it is queued.
#[derive(Debug)]
struct Queued {
    msg: Message,
    size: usize,
}

/// A process blocked in `receive`.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub topic: Option<String>,
    pub tag: Tag,
    /// The receive's timeout, cancelled when a message comes first.
    pub timer: Option<TimerKey>,
}

impl Waiter {
    pub fn wants(&self, msg: &Message) -> bool {
        self.topic.as_deref().is_none_or(|t| t == msg.topic)
    }
}

/// Who waits for a blocked send to go through.
#[derive(Debug)]
pub(crate) enum SendWaker {
    /// A process suspended in `process.send`: its yield `tag` completes
    /// with `true`, or with an error.
    Process { pid: Pid, tag: Tag },
    /// The host awaiting `ProcessHandle::send` / `Runtime::send`.
    Host(tokio::sync::oneshot::Sender<Result<(), Error>>),
    /// One of the messages another node delivered that wait together.
    Parked(Arc<crate::send::ParkedSends>),
}

/// A send waiting for room, with its message.
#[derive(Debug)]
pub(crate) struct BlockedSend {
    pub msg: Message,
    pub waker: SendWaker,
}

/// A message taken out of a mailbox, and the blocked sender its place went
/// to, to be woken (outside the mailbox's lock) with [`SendWaker`].
#[derive(Debug)]
pub(crate) struct Taken {
    pub msg: Message,
    pub admitted: Option<SendWaker>,
}

/// What [`Mailbox::offer`] did with a message.
#[derive(Debug)]
pub(crate) enum Offered {
    /// Queued.
    Queued,
    /// The mailbox is full: here is the message back.
    Full(Message),
}

/// A bounded FIFO of messages, the sends waiting for room in it, and the
/// receive that waits on it, if any.
#[derive(Debug)]
pub(crate) struct Mailbox {
    queue: VecDeque<Queued>,
    pub capacity: usize,
    /// The [`Message::weight`] of the queued messages, charged to `quota`.
    held: usize,
    /// The most bytes the queue may hold.
    max_bytes: usize,
    /// The owner's spawn tree (`None` for the host's mailboxes).
    quota: Option<Arc<Quota>>,
    pub waiter: Option<Waiter>,
    /// Sends suspended on a full queue, first come first admitted (made on
    /// the first, since most mailboxes never fill: 8 bytes, not 32).
    blocked: Option<Box<Blocked>>,
}

/// The FIFO of blocked sends, boxed by its mailbox: a pointer there
/// instead of a `VecDeque`'s four words.
#[derive(Debug, Default)]
struct Blocked(VecDeque<BlockedSend>);

impl Mailbox {
    /// An empty mailbox of `capacity` messages and `max_bytes` bytes whose
    /// queued bytes are charged to `quota`.
    pub fn new(capacity: usize, max_bytes: usize, quota: Option<Arc<Quota>>) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            held: 0,
            max_bytes,
            quota,
            waiter: None,
            blocked: None,
        }
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The bytes the queued messages count for.
    pub fn bytes(&self) -> usize {
        self.held
    }

    /// How many sends wait for room.
    pub fn blocked_sends(&self) -> usize {
        self.blocked.as_ref().map_or(0, |b| b.0.len())
    }

    /// The topics of the first `n` queued messages, oldest first.
    pub fn topics(&self, n: usize) -> Vec<String> {
        self.queue
            .iter()
            .take(n)
            .map(|q| q.msg.topic.clone())
            .collect()
    }

    /// Queues `msg` of weight `size`, already charged.
    fn enqueue(&mut self, msg: Message, size: usize) {
        self.held = self.held.saturating_add(size);
        self.queue.push_back(Queued { msg, size });
    }

    /// Queues `msg` of weight `size`, charged whatever the caps.
    fn push(&mut self, msg: Message, size: usize) {
        if let Some(q) = &self.quota {
            q.force(size);
        }
        self.enqueue(msg, size);
    }

    /// Queues `msg` past every cap: a runtime notification.
    pub fn push_unbounded(&mut self, msg: Message) {
        let size = msg.weight();
        self.push(msg, size);
    }

    /// Removes the queued message at `at`, giving its bytes back.
    fn remove(&mut self, at: usize) -> Option<Message> {
        let Queued { msg, size } = self.queue.remove(at)?;
        self.held = self.held.saturating_sub(size);
        if let Some(q) = &self.quota {
            q.refund(size);
        }
        Some(msg)
    }

    /// Whether a message of `size` bytes finds room in the queue now.
    fn has_room(&self, size: usize) -> bool {
        self.queue.len() < self.capacity
            && (self.queue.is_empty() || self.held.saturating_add(size) <= self.max_bytes)
    }

    /// The blocked sends, if there ever were any.
    fn blocked(&mut self) -> Option<&mut VecDeque<BlockedSend>> {
        self.blocked.as_deref_mut().map(|b| &mut b.0)
    }

    /// The `RATE_LIMITED` error of a full mailbox of `owner`.
    pub fn full(&self, owner: Pid) -> Error {
        Error::new(
            ErrorKind::RateLimited,
            format!(
                "mailbox of {owner} is full ({} messages, {} bytes queued; it holds {} messages \
                 or {} bytes)",
                self.queue.len(),
                self.held,
                self.capacity,
                self.max_bytes
            ),
        )
    }

    /// Queues `msg` if there is room (and no earlier send waits for it).
    /// `LIMIT_EXCEEDED` for a message larger than the mailbox's byte cap
    /// (it would never fit), or one that would take the owner's spawn
    /// tree past its memory limit.
    pub fn offer(&mut self, msg: Message) -> Result<Offered, Error> {
        let size = msg.weight();
        if size > self.max_bytes {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "a message of {size} bytes is larger than a mailbox holds ({} bytes)",
                    self.max_bytes
                ),
            ));
        }
        let blocked = self.blocked.as_ref().is_some_and(|b| !b.0.is_empty());
        if blocked || !self.has_room(size) {
            return Ok(Offered::Full(msg));
        }
        if let Some(q) = &self.quota {
            q.charge(size, "a message to this mailbox")?;
        }
        self.enqueue(msg, size);
        Ok(Offered::Queued)
    }

    /// Parks a send until there is room for its message.
    pub fn block(&mut self, blocked: BlockedSend) {
        self.blocked.get_or_insert_default().0.push_back(blocked);
    }

    /// Removes and returns the first message on `topic` (any topic if
    /// `None`): from the queue, else from the blocked sends. The place it
    /// frees goes to the first blocked send, whose waker comes back to be
    /// woken.
    pub fn take(&mut self, topic: Option<&str>) -> Option<Taken> {
        let queued = match topic {
            None => Some(0),
            Some(t) => self.queue.iter().position(|q| q.msg.topic == t),
        };
        if let Some(msg) = queued.and_then(|at| self.remove(at)) {
            let admitted = self.admit();
            return Some(Taken { msg, admitted });
        }
        // Nothing queued: the message may still be waiting for room.
        let blocked = self.blocked()?;
        let at = match topic {
            None => 0,
            Some(t) => blocked.iter().position(|b| b.msg.topic == t)?,
        };
        let BlockedSend { msg, waker } = blocked.remove(at)?;
        Some(Taken {
            msg,
            admitted: Some(waker),
        })
    }

    /// Moves the first blocked send into the queue if there is room.
    fn admit(&mut self) -> Option<SendWaker> {
        let size = self.blocked.as_ref()?.0.front()?.msg.weight();
        if !self.has_room(size) {
            return None;
        }
        let BlockedSend { msg, waker } = self.blocked()?.pop_front()?;
        self.push(msg, size);
        Some(waker)
    }

    /// Takes back the blocked send of process `pid` waiting on yield `tag`
    /// (its timeout fired); false if it went through meanwhile.
    pub fn unblock(&mut self, pid: Pid, tag: Tag) -> bool {
        let Some(blocked) = self.blocked() else {
            return false;
        };
        let at = blocked.iter().position(
            |b| matches!(b.waker, SendWaker::Process { pid: p, tag: t } if p == pid && t == tag),
        );
        at.and_then(|at| blocked.remove(at)).is_some()
    }

    /// Empties the mailbox of an owner that ended, giving back the wakers
    /// of the sends still waiting (they fail with `NOT_FOUND`).
    pub fn close(&mut self) -> Vec<SendWaker> {
        self.queue.clear();
        if let Some(q) = &self.quota {
            q.refund(self.held);
        }
        self.held = 0;
        self.blocked
            .take()
            .map_or_else(Vec::new, |b| b.0.into_iter().map(|b| b.waker).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Caps, Quota};

    fn msg(topic: &str, n: i64) -> Message {
        Message {
            from: None,
            topic: topic.to_owned(),
            payload: Value::Int(n),
        }
    }

    fn blocked(topic: &str, n: i64, tag: Tag) -> BlockedSend {
        BlockedSend {
            msg: msg(topic, n),
            waker: SendWaker::Process {
                pid: Pid::new(0, 9),
                tag,
            },
        }
    }

    fn tag_of(w: Option<SendWaker>) -> Option<Tag> {
        match w {
            Some(SendWaker::Process { tag, .. }) => Some(tag),
            _ => None,
        }
    }

    #[test]
    fn a_taken_message_admits_the_first_blocked_send_in_order() {
        let mut mb = Mailbox::new(1, usize::MAX, None);
        assert!(matches!(mb.offer(msg("a", 1)).unwrap(), Offered::Queued));
        assert!(matches!(mb.offer(msg("a", 2)).unwrap(), Offered::Full(_)));
        mb.block(blocked("a", 2, 1));
        mb.block(blocked("a", 3, 2));
        // A newcomer never overtakes the blocked sends.
        assert!(matches!(mb.offer(msg("a", 4)).unwrap(), Offered::Full(_)));
        let t = mb.take(None).unwrap();
        assert_eq!(
            (t.msg.payload, tag_of(t.admitted)),
            (Value::Int(1), Some(1))
        );
        let t = mb.take(None).unwrap();
        assert_eq!(
            (t.msg.payload, tag_of(t.admitted)),
            (Value::Int(2), Some(2))
        );
        let t = mb.take(None).unwrap();
        assert_eq!((t.msg.payload, tag_of(t.admitted)), (Value::Int(3), None));
        assert!(mb.take(None).is_none());
    }

    #[test]
    fn a_selective_receive_finds_a_blocked_message_behind_a_full_queue() {
        let mut mb = Mailbox::new(1, usize::MAX, None);
        assert!(matches!(
            mb.offer(msg("noise", 1)).unwrap(),
            Offered::Queued
        ));
        mb.block(blocked("reply", 2, 7));
        let t = mb.take(Some("reply")).unwrap();
        assert_eq!(
            (t.msg.payload, tag_of(t.admitted)),
            (Value::Int(2), Some(7))
        );
        assert_eq!(mb.queue.len(), 1);
    }

    fn sized(topic: &str, bytes: usize) -> Message {
        Message {
            from: None,
            topic: topic.to_owned(),
            payload: Value::String("x".repeat(bytes)),
        }
    }

    /// A runtime quota without caps, and a tree under it with `memory`
    /// bytes.
    fn tree_of(memory: usize) -> (Arc<Quota>, Arc<Quota>) {
        let rt = Quota::runtime(Caps::default());
        let caps = Caps {
            processes: None,
            memory: std::num::NonZeroUsize::new(memory),
        };
        let tree = Quota::tree(caps, &rt, "0.1".into());
        (rt, tree)
    }

    #[test]
    fn bytes_bound_the_queue_and_are_charged_to_the_owners_tree() {
        let (rt, tree) = tree_of(2_500);
        let mut mb = Mailbox::new(100, 1_000, Some(Arc::clone(&tree)));
        // Larger than the mailbox can ever hold: refused, not parked.
        let e = mb.offer(sized("a", 5_000)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(matches!(
            mb.offer(sized("a", 600)).unwrap(),
            Offered::Queued
        ));
        // Past the byte cap: the sender waits, as on a full queue.
        assert!(matches!(
            mb.offer(sized("a", 600)).unwrap(),
            Offered::Full(_)
        ));
        let charged = tree.memory();
        assert!(charged > 600, "{charged}");
        mb.block(BlockedSend {
            msg: sized("a", 600),
            waker: SendWaker::Process {
                pid: Pid::new(0, 9),
                tag: 1,
            },
        });
        // Taking the first admits the blocked one: still one message's worth.
        let t = mb.take(None).unwrap();
        assert!(t.admitted.is_some());
        assert_eq!(tree.memory(), charged);
        assert_eq!(rt.memory(), charged);
        mb.close();
        assert_eq!((tree.memory(), rt.memory()), (0, 0));
    }

    #[test]
    fn a_send_past_the_receivers_tree_memory_is_refused() {
        let (_rt, tree) = tree_of(1_000);
        let mut a = Mailbox::new(100, 800, Some(Arc::clone(&tree)));
        let mut b = Mailbox::new(100, 800, Some(Arc::clone(&tree)));
        assert!(matches!(a.offer(sized("a", 600)).unwrap(), Offered::Queued));
        let e = b.offer(sized("a", 600)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(e.message().contains("spawn tree of 0.1"), "{e}");
        assert!(b.queue.is_empty());
    }

    #[test]
    fn timeouts_and_closing_give_blocked_sends_back() {
        let mut mb = Mailbox::new(1, usize::MAX, None);
        assert!(matches!(mb.offer(msg("a", 1)).unwrap(), Offered::Queued));
        mb.block(blocked("a", 2, 1));
        mb.block(blocked("a", 3, 2));
        assert!(mb.unblock(Pid::new(0, 9), 1));
        assert!(!mb.unblock(Pid::new(0, 9), 1));
        assert_eq!(mb.close().len(), 1);
        assert!(mb.queue.is_empty());
    }
}
