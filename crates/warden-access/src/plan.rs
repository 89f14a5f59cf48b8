//! The judgement both the analysis and the recommendation rest on, made once: each account's
//! records gathered into a [`View`], and for each of its grants whether it was used in the
//! window, and whether it should go, be narrowed, or stay ([`GrantPlan`]).

use std::collections::BTreeMap;

use warden_core::{Account, Grant, KeyRecord, Timestamp};

use crate::action::narrowed;
use crate::usage::{Activity, UsageRecord, Window};
use crate::{Options, Population};

/// One account and everything recorded about it.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub account: &'a Account,
    /// Its grants, sorted by target, rule and id.
    pub grants: Vec<&'a Grant>,
    pub keys: Vec<&'a KeyRecord>,
    /// Its usage rows, by the grant they went through.
    pub usage: BTreeMap<&'a str, Vec<&'a UsageRecord>>,
}

impl<'a> View<'a> {
    /// The views of every account (or only of `only`), sorted by account name.
    pub fn gather(population: &Population<'a>, only: Option<&str>) -> Vec<View<'a>> {
        let mut views: BTreeMap<&str, View<'a>> = population
            .accounts
            .iter()
            .filter(|a| only.is_none_or(|o| a.name.as_str() == o))
            .map(|account| {
                let view = View {
                    account,
                    grants: Vec::new(),
                    keys: Vec::new(),
                    usage: BTreeMap::new(),
                };
                (account.name.as_str(), view)
            })
            .collect();
        for g in population.grants {
            if let Some(v) = views.get_mut(g.account.as_str()) {
                v.grants.push(g);
            }
        }
        for k in population.keys {
            if let Some(v) = views.get_mut(k.account.as_str()) {
                v.keys.push(k);
            }
        }
        for u in population.usage {
            if let Some(v) = views.get_mut(u.account.as_str()) {
                v.usage.entry(u.grant_id.as_str()).or_default().push(u);
            }
        }
        let mut views: Vec<View<'a>> = views.into_values().collect();
        for v in &mut views {
            v.grants
                .sort_by_cached_key(|g| (&g.target, g.rule.to_string(), &g.id));
        }
        views
    }

    /// When the account last did anything: authenticated, used a key, or acted.
    pub fn last_used_at(&self) -> Option<Timestamp> {
        let keys = self.keys.iter().filter_map(|k| k.last_used_at);
        let actions = self.usage.values().flatten().map(|u| u.last_at);
        keys.chain(actions)
            .fold(self.account.last_used_at, |a, t| a.max(Some(t)))
    }

    /// The plan for each of its grants, in the order of `grants`.
    pub fn plan(&self, now: Timestamp, options: &Options) -> Vec<GrantPlan<'a>> {
        let window = Window::ending(now, options.window);
        let protect_since = now.saturating_sub(options.protect_new);
        self.grants
            .iter()
            .map(|&grant| {
                let rows = self.usage.get(grant.id.as_str()).into_iter().flatten();
                // Rows that name the grant but another target are someone's mistake: ignored.
                let activity =
                    Activity::of(rows.copied().filter(|u| u.target == grant.target), &window);
                let last_use = activity.last_at.max(grant.last_used_at);
                let used = last_use.is_some_and(|t| t >= window.since);
                let active = grant.is_active(now);
                let change = if !active {
                    None
                } else if !used {
                    Some(Change::Remove)
                } else {
                    narrowed(&grant.rule, &activity.actions).map(Change::Narrow)
                };
                GrantPlan {
                    grant,
                    protected: change.is_some() && grant.created_at > protect_since,
                    activity,
                    active,
                    last_use,
                    used,
                    change,
                }
            })
            .collect()
    }
}

/// What should happen to a grant that is still active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// It allowed nothing in the window.
    Remove,
    /// It is a wildcard through which only these rules' actions were seen.
    Narrow(Vec<String>),
}

/// One grant, its activity and what should happen to it.
#[derive(Debug)]
pub(crate) struct GrantPlan<'a> {
    pub grant: &'a Grant,
    /// Its actions in the window.
    pub activity: Activity,
    /// Whether it is still in force (not expired).
    pub active: bool,
    /// Its last use ever, from the rollups or the grant's own record.
    pub last_use: Option<Timestamp>,
    /// Whether it was used in the window.
    pub used: bool,
    /// `None` when it should stay as it is (or has expired, and no longer matters).
    pub change: Option<Change>,
    /// Whether the change is held back because the grant is younger than `protect_new`.
    pub protected: bool,
}
