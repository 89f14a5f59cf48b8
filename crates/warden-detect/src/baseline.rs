//! One account's learned behaviour: when it is active, from which networks, on which targets,
//! doing what, at what rate and with what result sizes. Sets are bounded; memory is reported.
//!
//! Targets and actions are stored as small ids and 64-bit hashes, never strings, so a baseline
//! costs a few hundred bytes; the engine keeps the names once for all accounts.

use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;
use warden_core::event::Outcome;
use warden_core::Timestamp;

use crate::config::LargeResultConfig;
use crate::shape::Network;
use crate::window::{Burst, RateWindow};

/// A bounded set refused a new item.
pub(crate) const SATURATED_TARGETS: u8 = 1;
/// See [`SATURATED_TARGETS`].
pub(crate) const SATURATED_ACTIONS: u8 = 2;
/// See [`SATURATED_TARGETS`].
pub(crate) const SATURATED_NETWORKS: u8 = 4;

/// Results of an action needed before its mean counts as a baseline for `large_result`.
pub(crate) const MIN_RESULT_SAMPLES: u32 = 5;

/// After this many samples the mean moves like an exponential average, so it can follow change.
const MEAN_HORIZON: u32 = 1000;

/// What learning an item found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learned {
    /// Already known.
    Known,
    /// New, and now learned.
    New,
    /// New, but the set is full: not learned, not to be reported.
    Full,
}

/// A running mean of one result measure (rows or bytes) for one action.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Mean {
    samples: u32,
    mean: f32,
}

impl Mean {
    /// Adds `value`; returns the previous mean when `value` is at least `floor` and more than
    /// `factor` times that mean, with enough samples to judge.
    pub fn add(&mut self, value: u64, floor: u64, factor: f64) -> Option<f64> {
        let before = f64::from(self.mean);
        let large =
            self.samples >= MIN_RESULT_SAMPLES && value >= floor && value as f64 > factor * before;
        self.samples = self.samples.saturating_add(1);
        let n = self.samples.min(MEAN_HORIZON);
        self.mean += ((value as f64 - before) / f64::from(n)) as f32;
        large.then_some(before)
    }
}

/// A result far above its action's mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Large {
    /// The result's size.
    pub value: u64,
    /// The mean before it.
    pub mean: f64,
    /// `rows` or `bytes`.
    pub unit: &'static str,
}

/// Result sizes of one action.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ActionStats {
    pub rows: Mean,
    pub bytes: Mean,
}

/// Actions kept in a list inside the baseline, scanned in place.
const FEW_ACTIONS: usize = 4;
/// Beyond this many actions, a hash map.
const MAX_LISTED_ACTIONS: usize = 16;

/// An account's actions: action key hash → result sizes. A short list while small, so that the
/// hot path has no pointer to chase for most accounts; a hash map beyond.
#[derive(Debug)]
pub(crate) enum Actions {
    /// Up to [`MAX_LISTED_ACTIONS`], the first [`FEW_ACTIONS`] inline.
    Few(SmallVec<[(u64, ActionStats); FEW_ACTIONS]>),
    /// More.
    Many(FxHashMap<u64, ActionStats>),
}

impl Actions {
    /// The stats of action `key`, if known.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut ActionStats> {
        match self {
            Self::Few(list) => list.iter_mut().find(|(k, _)| *k == key).map(|(_, s)| s),
            Self::Many(map) => map.get_mut(&key),
        }
    }

    /// Adds action `key`, known to be absent.
    fn insert(&mut self, key: u64) {
        match self {
            Self::Few(list) if list.len() < MAX_LISTED_ACTIONS => {
                list.push((key, ActionStats::default()));
            }
            Self::Few(list) => {
                let mut map: FxHashMap<u64, ActionStats> = list.drain(..).collect();
                map.insert(key, ActionStats::default());
                *self = Self::Many(map);
            }
            Self::Many(map) => {
                map.insert(key, ActionStats::default());
            }
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Self::Few(list) => list.len(),
            Self::Many(map) => map.len(),
        }
    }

    /// Up to `n` of the keys.
    pub fn sample(&self, n: usize) -> Vec<u64> {
        match self {
            Self::Few(list) => list.iter().take(n).map(|(k, _)| *k).collect(),
            Self::Many(map) => map.keys().take(n).copied().collect(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Self::Few(list) => spilled(list),
            Self::Many(map) => map.capacity() * (size_of::<(u64, ActionStats)>() + 1),
        }
    }
}

/// One account's baseline.
#[derive(Debug)]
pub(crate) struct AccountBaseline {
    pub first_seen: i64,
    pub last_seen: i64,
    /// Bit `h` is set when the account was active in UTC hour `h`.
    pub hours: u32,
    /// Interned target ids (inline while few, to spare a cache miss per event).
    pub targets: SmallVec<[u32; 4]>,
    /// Action key hash → result sizes.
    pub actions: Actions,
    /// Source networks (inline while few).
    pub networks: SmallVec<[Network; 3]>,
    pub rate: RateWindow,
    pub denied: Burst,
    /// `SATURATED_*` bits.
    pub saturated: u8,
}

impl AccountBaseline {
    /// A baseline first seen at `time`.
    pub fn new(time: i64) -> Self {
        Self {
            first_seen: time,
            last_seen: time,
            hours: 0,
            targets: SmallVec::new(),
            actions: Actions::Few(SmallVec::new()),
            networks: SmallVec::new(),
            rate: RateWindow::default(),
            denied: Burst::default(),
            saturated: 0,
        }
    }

    /// Learns target `id`.
    pub fn learn_target(&mut self, id: u32, max: usize) -> Learned {
        self.learn(id, max, SATURATED_TARGETS, |b| &mut b.targets)
    }

    /// Learns network `net`.
    pub fn learn_network(&mut self, net: Network, max: usize) -> Learned {
        self.learn(net, max, SATURATED_NETWORKS, |b| &mut b.networks)
    }

    fn learn<A: smallvec::Array>(
        &mut self,
        item: A::Item,
        max: usize,
        flag: u8,
        set: impl FnOnce(&mut Self) -> &mut SmallVec<A>,
    ) -> Learned
    where
        A::Item: PartialEq,
    {
        let items = set(self);
        if items.contains(&item) {
            return Learned::Known;
        }
        if items.len() >= max {
            self.saturated |= flag;
            return Learned::Full;
        }
        items.push(item);
        Learned::New
    }

    /// Learns action key hash `key`.
    pub fn learn_action(&mut self, key: u64, max: usize) -> Learned {
        if self.actions.get_mut(key).is_some() {
            return Learned::Known;
        }
        if self.actions.len() >= max {
            self.saturated |= SATURATED_ACTIONS;
            return Learned::Full;
        }
        self.actions.insert(key);
        Learned::New
    }

    /// Adds an outcome's rows and bytes sent to the means of action `key`; returns the large
    /// measure, rows first, when one is.
    pub fn judge_result(
        &mut self,
        key: u64,
        outcome: &Outcome,
        limits: &LargeResultConfig,
    ) -> Option<Large> {
        let stats = self.actions.get_mut(key)?;
        let rows = outcome.rows.and_then(|value| {
            let mean = stats.rows.add(value, limits.min_rows, limits.factor)?;
            Some(Large {
                value,
                mean,
                unit: "rows",
            })
        });
        let bytes = outcome.bytes_out.and_then(|value| {
            let mean = stats.bytes.add(value, limits.min_bytes, limits.factor)?;
            Some(Large {
                value,
                mean,
                unit: "bytes",
            })
        });
        rows.or(bytes)
    }

    /// Marks UTC hour `hour` active; true when it was not before.
    pub fn learn_hour(&mut self, hour: u32) -> bool {
        let bit = 1u32 << hour;
        let new = self.hours & bit == 0;
        self.hours |= bit;
        new
    }

    /// Approximate bytes, struct included.
    pub fn approx_bytes(&self) -> usize {
        size_of::<Self>()
            + spilled(&self.targets)
            + self.actions.heap_bytes()
            + spilled(&self.networks)
            + self.denied.approx_bytes()
    }

    /// The names of the saturated sets.
    pub fn saturated_sets(&self) -> Vec<&'static str> {
        [
            (SATURATED_TARGETS, "targets"),
            (SATURATED_ACTIONS, "actions"),
            (SATURATED_NETWORKS, "networks"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.saturated & flag != 0)
        .map(|(_, name)| name)
        .collect()
    }

    /// The UTC hours marked active.
    pub fn active_hours(&self) -> Vec<u8> {
        (0u8..24).filter(|h| self.hours & (1 << h) != 0).collect()
    }
}

/// Heap bytes of a small vector that outgrew its inline space.
fn spilled<A: smallvec::Array>(v: &SmallVec<A>) -> usize {
    if v.spilled() {
        v.capacity() * size_of::<A::Item>()
    } else {
        0
    }
}

/// What the engine has learned about one account, for the API and operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineSummary {
    /// The account.
    pub account: String,
    /// Its first observed event.
    pub first_seen: Timestamp,
    /// Its latest observed event.
    pub last_seen: Timestamp,
    /// When its learning period ends (or ended).
    pub learning_until: Timestamp,
    /// Targets it used.
    pub targets: Vec<String>,
    /// How many distinct action keys it performed.
    pub actions: usize,
    /// Some of them, sorted (at most 20).
    pub action_sample: Vec<String>,
    /// Source networks it came from.
    pub networks: Vec<String>,
    /// UTC hours of the day in which it was active.
    pub active_hours: Vec<u8>,
    /// Moving average of events per rate window, over its active windows.
    pub rate_per_window: f64,
    /// How many active windows that average covers.
    pub rate_windows: u32,
    /// Sets that reached their bound (`targets`, `actions`, `networks`): new items there are no
    /// longer learned or reported.
    pub saturated: Vec<&'static str>,
    /// Approximate memory of this baseline.
    pub approx_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_stop_at_their_bound_and_say_so() {
        let mut b = AccountBaseline::new(0);
        assert_eq!(b.learn_network(1, 2), Learned::New);
        assert_eq!(b.learn_network(1, 2), Learned::Known);
        assert_eq!(b.learn_network(2, 2), Learned::New);
        assert_eq!(b.learn_network(3, 2), Learned::Full);
        assert_eq!(b.networks.len(), 2);
        assert_eq!(b.learn_action(7, 1), Learned::New);
        assert_eq!(b.learn_action(8, 1), Learned::Full);
        assert_eq!(b.saturated_sets(), vec!["actions", "networks"]);
    }

    #[test]
    fn actions_move_from_list_to_map_keeping_their_stats() {
        let mut b = AccountBaseline::new(0);
        for key in 0..40u64 {
            assert_eq!(b.learn_action(key, 100), Learned::New);
            b.actions.get_mut(key).unwrap().rows.add(key, 0, 2.0);
        }
        assert!(matches!(b.actions, Actions::Many(_)));
        assert_eq!(b.actions.len(), 40);
        for key in 0..40u64 {
            assert_eq!(b.learn_action(key, 100), Learned::Known);
            assert_eq!(b.actions.get_mut(key).unwrap().rows.mean, key as f32);
        }
        assert_eq!(b.actions.sample(5).len(), 5);
    }

    #[test]
    fn mean_flags_only_large_values_after_enough_samples() {
        let mut m = Mean::default();
        for _ in 0..MIN_RESULT_SAMPLES {
            assert_eq!(m.add(100_000, 10, 2.0), None);
        }
        assert_eq!(m.add(150_000, 10, 2.0), None);
        let mean = m.add(10_000_000, 10, 2.0).unwrap();
        assert!((100_000.0..110_000.0).contains(&mean));
        // Below the floor, never large.
        let mut small = Mean::default();
        for _ in 0..10 {
            small.add(1, 0, 2.0);
        }
        assert_eq!(small.add(50, 100, 2.0), None);
    }
}
