//! The outbox: invalidations a write could not publish (backplane down, slow or its breaker
//! open), kept until the subscriber can send them.
//!
//! Bounded and deduplicated: one entry per (action, subject), since receiving a key's
//! invalidation twice does what receiving it once does; a queued clear makes every other
//! entry redundant. When more than `capacity` distinct entries are waiting, the queue is
//! dropped and replaced by one clear of the cache, sent when the backplane is back: every
//! instance then drops its L1, which is correct whatever was lost.

use std::collections::HashSet;

use crate::message::Action;

pub(crate) struct Outbox {
    pending: Vec<(Action, Vec<u8>)>,
    seen: HashSet<(Action, Vec<u8>)>,
    capacity: usize,
    /// Overflowed: a clear replaces what was lost.
    overflowed: bool,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            pending: Vec::new(),
            seen: HashSet::new(),
            capacity: capacity.max(1),
            overflowed: false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether the queue overflowed since it was last drained (and holds a clear for it).
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn only_clear(&mut self) {
        self.pending.clear();
        self.seen.clear();
        self.pending.push((Action::Clear, Vec::new()));
        self.seen.insert((Action::Clear, Vec::new()));
    }

    pub(crate) fn push(&mut self, action: Action, subject: &[u8]) {
        if self.seen.contains(&(Action::Clear, Vec::new())) {
            return;
        }
        if action == Action::Clear {
            return self.only_clear();
        }
        let entry = (action, subject.to_vec());
        if self.seen.contains(&entry) {
            return;
        }
        if self.pending.len() >= self.capacity {
            self.overflowed = true;
            return self.only_clear();
        }
        self.seen.insert(entry.clone());
        self.pending.push(entry);
    }

    /// The oldest entry, if any (left in place until [`sent`](Self::sent)).
    pub(crate) fn front(&self) -> Option<(Action, Vec<u8>)> {
        self.pending.first().cloned()
    }

    /// The oldest entry was published.
    pub(crate) fn sent(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let entry = self.pending.remove(0);
        self.seen.remove(&entry);
        if self.pending.is_empty() {
            self.overflowed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_keeps_order_and_overflows_into_one_clear() {
        let mut o = Outbox::new(3);
        o.push(Action::Remove, b"a");
        o.push(Action::Set, b"b");
        o.push(Action::Remove, b"a");
        o.push(Action::Tag, b"t");
        assert_eq!(o.len(), 3, "the second remove of a is the same message");
        assert_eq!(o.front(), Some((Action::Remove, b"a".to_vec())));
        o.sent();
        assert_eq!(o.front(), Some((Action::Set, b"b".to_vec())));
        o.push(Action::Remove, b"a");
        o.push(Action::Remove, b"c");
        assert!(o.overflowed(), "a 4th distinct entry over a capacity of 3");
        assert_eq!(o.len(), 1);
        assert_eq!(o.front(), Some((Action::Clear, Vec::new())));
        o.push(Action::Remove, b"d");
        assert_eq!(o.len(), 1, "a queued clear covers everything");
        o.sent();
        assert!(o.is_empty() && !o.overflowed());
        o.push(Action::Remove, b"x");
        o.push(Action::Clear, b"");
        assert_eq!(o.front(), Some((Action::Clear, Vec::new())));
        assert_eq!(o.len(), 1);
    }
}
