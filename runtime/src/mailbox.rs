use std::collections::{BTreeMap, VecDeque};

use troupe_dispatcher::{Error, ErrorKind, Pid, Tag, Value};

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

/// A bounded FIFO of messages plus the receive that waits on it, if any.
#[derive(Debug)]
pub(crate) struct Mailbox {
    pub queue: VecDeque<Message>,
    pub capacity: usize,
    pub waiter: Option<Waiter>,
}

impl Mailbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            waiter: None,
        }
    }

    /// Queues `msg` for `owner`. A `bounded` send to a full mailbox is
    /// `RATE_LIMITED` (retryable); runtime notifications (`EXIT`, `DOWN`)
    /// are not bounded, so they are never lost.
    pub fn push(&mut self, owner: Pid, msg: Message, bounded: bool) -> Result<(), Error> {
        if bounded && self.queue.len() >= self.capacity {
            return Err(Error::new(
                ErrorKind::RateLimited,
                format!("mailbox of {owner} is full ({} messages)", self.capacity),
            ));
        }
        self.queue.push_back(msg);
        Ok(())
    }

    /// Removes and returns the first message on `topic` (any topic if `None`).
    pub fn take(&mut self, topic: Option<&str>) -> Option<Message> {
        let at = match topic {
            None => 0,
            Some(t) => self.queue.iter().position(|m| m.topic == t)?,
        };
        self.queue.remove(at)
    }
}
