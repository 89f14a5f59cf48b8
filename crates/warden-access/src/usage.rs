//! What accounts actually did: the server's daily rollups of allowed actions ([`UsageRecord`]),
//! the [`Window`] of time the analysis considers, and their aggregation per grant
//! ([`ActionUse`]), which repeats across days and is summed here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_core::Timestamp;

/// One rollup row: how often an account did one kind of action through one grant, and when.
/// Rows for the same key may repeat (one per day); they are summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The account that acted.
    pub account: String,
    /// The target it acted on.
    pub target: String,
    /// The grant that allowed the actions.
    pub grant_id: String,
    /// The narrowest grant rule text allowing exactly this kind of action: HTTP `GET
    /// /v1/orders/*` (id-like path segments as `*`), SQL `read:public.orders`
    /// (`class:schema.table`), or the class alone for statements that touch no table (`read`,
    /// `tx`).
    pub action: String,
    /// How many actions.
    pub count: u64,
    /// The first of them.
    pub first_at: Timestamp,
    /// The last of them.
    pub last_at: Timestamp,
}

/// The span of time whose usage was considered: rows whose `last_at` is at or after `since`
/// (rows stamped after `until`, from a clock running ahead, are counted too: ignoring them could
/// only make a recommendation deny something that was seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start (inclusive).
    pub since: Timestamp,
    /// End: the time of the analysis.
    pub until: Timestamp,
    /// Its length in whole days.
    pub days: u64,
}

impl Window {
    /// The `length` of time ending at `now`.
    pub fn ending(now: Timestamp, length: Duration) -> Self {
        Self {
            since: now.saturating_sub(length),
            until: now,
            days: whole_days(length),
        }
    }
}

/// Whole days in `d`.
pub(crate) fn whole_days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

/// Whole days from `from` to `to` (zero when `to` is earlier).
pub(crate) fn days_between(from: Timestamp, to: Timestamp) -> u64 {
    let micros = to.as_micros().saturating_sub(from.as_micros()).max(0);
    u64::try_from(micros / 86_400_000_000).unwrap_or(0)
}

/// One kind of action seen through a grant in the window, summed over its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionUse {
    /// The action, as [`UsageRecord::action`] spells it.
    pub action: String,
    /// How many times.
    pub count: u64,
    /// The last time.
    pub last_at: Timestamp,
}

/// A grant's activity: its actions in the window and its last use ever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Activity {
    /// Actions in the window, sorted by action text.
    pub actions: Vec<ActionUse>,
    /// The latest `last_at` of any of its rows, in the window or not.
    pub last_at: Option<Timestamp>,
}

impl Activity {
    /// Sums `rows` (all for one grant), keeping per-action totals only for rows in `window`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a UsageRecord>, window: &Window) -> Self {
        let mut actions: BTreeMap<&str, ActionUse> = BTreeMap::new();
        let mut last_at = None;
        for row in rows {
            last_at = last_at.max(Some(row.last_at));
            if row.last_at < window.since {
                continue;
            }
            let entry = actions.entry(&row.action).or_insert_with(|| ActionUse {
                action: row.action.clone(),
                count: 0,
                last_at: row.last_at,
            });
            entry.count = entry.count.saturating_add(row.count);
            entry.last_at = entry.last_at.max(row.last_at);
        }
        Self {
            actions: actions.into_values().collect(),
            last_at,
        }
    }

    /// Actions in the window, summed.
    pub fn uses(&self) -> u64 {
        self.actions
            .iter()
            .fold(0, |sum, a| sum.saturating_add(a.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn row(action: &str, count: u64, day: i64) -> UsageRecord {
        UsageRecord {
            account: "etl".into(),
            target: "warehouse".into(),
            grant_id: "g_1".into(),
            action: action.into(),
            count,
            first_at: Timestamp::from_micros(day * DAY),
            last_at: Timestamp::from_micros(day * DAY + 3_600_000_000),
        }
    }

    #[test]
    fn repeated_rows_are_summed_within_the_window() {
        let window = Window::ending(
            Timestamp::from_micros(100 * DAY),
            Duration::from_secs(30 * 86_400),
        );
        assert_eq!(window.days, 30);
        let rows = [
            row("read:analytics.daily", 5, 80),
            row("read:analytics.daily", 7, 90),
            row("read:analytics.daily", 100, 10),
            row("write:public.orders", 1, 20),
            row("read", 2, 95),
        ];
        let a = Activity::of(&rows, &window);
        assert_eq!(a.uses(), 14);
        assert_eq!(
            a.actions
                .iter()
                .map(|a| a.action.as_str())
                .collect::<Vec<_>>(),
            ["read", "read:analytics.daily"]
        );
        assert_eq!(a.actions[1].count, 12);
        assert_eq!(a.actions[1].last_at, rows[1].last_at);
        assert_eq!(a.last_at, Some(rows[4].last_at));
        assert_eq!(days_between(rows[0].first_at, rows[1].first_at), 10);
        assert_eq!(days_between(rows[1].first_at, rows[0].first_at), 0);
    }
}
