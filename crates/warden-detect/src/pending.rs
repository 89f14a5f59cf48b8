//! Allowed events waiting for their outcome. The outcome of an HTTP request or SQL statement is a
//! separate ledger entry that arrives later; to judge its size against the right baseline the
//! engine remembers, per event id, whose action it was. The map is bounded: beyond the bound the
//! oldest waiting event is forgotten (its outcome is then ignored).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use uuid::Uuid;

/// What an outcome needs to know about its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Awaiting {
    /// Interned account.
    pub account: u32,
    /// Hash of the event's (first) action key.
    pub action: u64,
    /// Interned target.
    pub target: Option<u32>,
}

/// Bounded map of event id → [`Awaiting`], oldest dropped first.
#[derive(Debug)]
pub(crate) struct Pending {
    map: FxHashMap<Uuid, Awaiting>,
    /// Insertion order; may hold ids already taken, which are skipped and compacted away.
    order: VecDeque<Uuid>,
    max: usize,
}

impl Pending {
    /// An empty map holding at most `max` events.
    pub fn new(max: usize) -> Self {
        Self {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Remembers `id`, dropping the oldest beyond the bound.
    pub fn insert(&mut self, id: Uuid, awaiting: Awaiting) {
        if self.map.insert(id, awaiting).is_none() {
            self.order.push_back(id);
        }
        while self.map.len() > self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
    }

    /// Takes the event `id`, if it is still waiting.
    pub fn take(&mut self, id: &Uuid) -> Option<Awaiting> {
        self.map.remove(id)
    }

    /// How many events are waiting.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes.
    pub fn approx_bytes(&self) -> usize {
        self.map.capacity() * (size_of::<(Uuid, Awaiting)>() + 1)
            + self.order.capacity() * size_of::<Uuid>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awaiting(account: u32) -> Awaiting {
        Awaiting {
            account,
            action: 0,
            target: None,
        }
    }

    #[test]
    fn oldest_is_dropped_beyond_the_bound() {
        let mut p = Pending::new(2);
        let ids: Vec<Uuid> = (0..3u128).map(Uuid::from_u128).collect();
        for (i, id) in ids.iter().enumerate() {
            p.insert(*id, awaiting(i as u32));
        }
        assert_eq!(p.len(), 2);
        assert_eq!(p.take(&ids[0]), None);
        assert_eq!(p.take(&ids[2]), Some(awaiting(2)));
        assert_eq!(p.take(&ids[2]), None);
    }

    #[test]
    fn order_stays_bounded_when_outcomes_arrive() {
        let mut p = Pending::new(10);
        // One event never completes; all others do.
        p.insert(Uuid::from_u128(u128::MAX), awaiting(0));
        for i in 0..100_000u128 {
            let id = Uuid::from_u128(i);
            p.insert(id, awaiting(1));
            assert!(p.take(&id).is_some());
        }
        assert_eq!(p.len(), 1);
        assert!(p.order.len() <= 2 * p.len() + 1025);
    }
}
