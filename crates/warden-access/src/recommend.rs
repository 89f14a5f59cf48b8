//! Least-privilege recommendations for one account, in the manner of cloud IAM recommenders and
//! `audit2rbac` but for Warden's own grants: keep what was used exactly, remove what allowed
//! nothing in the window, and replace a wildcard through which only some actions were seen by
//! rules for exactly those actions, on the same target.
//!
//! The recommended set never denies an action seen in the window through a grant still in
//! force; grants younger than `protect_new` are never touched (they are reported as
//! `protected`); grants that have expired are left out, since they no longer allow anything.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use warden_core::{Grant, Timestamp};

use crate::analysis::quoted_list;
use crate::plan::{Change, View};
use crate::usage::{ActionUse, Window};
use crate::{AccessError, Options, Population};

/// A grant, as a recommendation names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantRef {
    /// Its id.
    pub grant_id: String,
    /// The target it applies to.
    pub target: String,
    /// Its rule, as text.
    pub rule: String,
}

impl From<&Grant> for GrantRef {
    fn from(g: &Grant) -> Self {
        Self {
            grant_id: g.id.clone(),
            target: g.target.clone(),
            rule: g.rule.to_string(),
        }
    }
}

/// A grant to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The grant.
    pub grant: GrantRef,
    /// Why, in a sentence.
    pub reason: String,
}

/// A wildcard grant to replace by the rules of the actions seen through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Narrowing {
    /// The grant, which goes.
    pub grant: GrantRef,
    /// The rules that replace it, on the same target, sorted.
    pub into: Vec<String>,
    /// The actions seen through it in the window.
    pub actions: Vec<ActionUse>,
}

/// A grant to create.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NewGrant {
    /// The target.
    pub target: String,
    /// The rule, as text.
    pub rule: String,
}

/// What to change in one account's grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The account.
    pub account: String,
    /// When it was made.
    pub generated_at: Timestamp,
    /// The usage it rests on.
    pub window: Window,
    /// Grants that stay as they are.
    pub keep: Vec<GrantRef>,
    /// Grants that allowed nothing in the window.
    pub remove: Vec<Removal>,
    /// Wildcard grants to replace by narrower rules.
    pub narrow: Vec<Narrowing>,
    /// Grants that would be removed or narrowed but are younger than `protect_new`: they stay.
    pub protected: Vec<GrantRef>,
    /// Grants to create: the narrowings' rules not already granted, sorted.
    pub add: Vec<NewGrant>,
}

/// Recommends changes to `account`'s grants at `now`.
pub fn recommend(
    population: &Population,
    account: &str,
    now: Timestamp,
    options: &Options,
) -> Result<Recommendation, AccessError> {
    let view = View::gather(population, Some(account))
        .pop()
        .ok_or_else(|| AccessError::UnknownAccount(account.to_owned()))?;
    let window = Window::ending(now, options.window);
    let mut r = Recommendation {
        account: account.to_owned(),
        generated_at: now,
        window,
        keep: Vec::new(),
        remove: Vec::new(),
        narrow: Vec::new(),
        protected: Vec::new(),
        add: Vec::new(),
    };
    for plan in view.plan(now, options).into_iter().filter(|p| p.active) {
        let grant = GrantRef::from(plan.grant);
        match plan.change {
            None => r.keep.push(grant),
            Some(_) if plan.protected => r.protected.push(grant),
            Some(Change::Remove) => r.remove.push(Removal {
                reason: match plan.last_use {
                    Some(t) => format!(
                        "allowed nothing in the last {} days (last used {t})",
                        window.days
                    ),
                    None => format!(
                        "allowed nothing in the last {} days (never used)",
                        window.days
                    ),
                },
                grant,
            }),
            Some(Change::Narrow(into)) => r.narrow.push(Narrowing {
                grant,
                into,
                actions: plan.activity.actions,
            }),
        }
    }
    let granted: BTreeSet<(&str, &str)> = r.unchanged().collect();
    let add: BTreeSet<NewGrant> = r
        .narrow
        .iter()
        .flat_map(|n| {
            n.into
                .iter()
                .map(move |rule| (n.grant.target.as_str(), rule.as_str()))
        })
        .filter(|pair| !granted.contains(pair))
        .map(|(target, rule)| NewGrant {
            target: target.to_owned(),
            rule: rule.to_owned(),
        })
        .collect();
    r.add = add.into_iter().collect();
    Ok(r)
}

impl Recommendation {
    /// Whether applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.narrow.is_empty() && self.add.is_empty()
    }

    /// The grants that stay: kept and protected, as `(target, rule)`.
    fn unchanged(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keep
            .iter()
            .chain(&self.protected)
            .map(|g| (g.target.as_str(), g.rule.as_str()))
    }

    /// The account's grants once it is applied, as `(target, rule)`, sorted and de-duplicated.
    pub fn resulting(&self) -> Vec<(String, String)> {
        let added = self
            .add
            .iter()
            .map(|a| (a.target.as_str(), a.rule.as_str()));
        let all: BTreeSet<(&str, &str)> = self.unchanged().chain(added).collect();
        all.into_iter()
            .map(|(t, r)| (t.to_owned(), r.to_owned()))
            .collect()
    }

    /// The change as a unified-diff-like text: a `  keep`, `- remove` or `+ add` line per
    /// grant with its target, rule and the reason after `#`, sorted by target and rule.
    pub fn diff(&self) -> String {
        // (target, rule, order within the same rule, line)
        let mut lines: Vec<(String, String, u8, String)> = Vec::new();
        let mut line = |g: &GrantRef, order: u8, mark: &str, reason: String| {
            let text = format!("{mark} {} {}  # {}: {reason}", g.target, g.rule, g.grant_id);
            lines.push((g.target.clone(), g.rule.clone(), order, text));
        };
        for g in &self.keep {
            line(g, 0, "  keep", "used in the window".into());
        }
        for g in &self.protected {
            line(g, 0, "  keep", "protected: too new to judge".into());
        }
        for r in &self.remove {
            line(&r.grant, 1, "- remove", r.reason.clone());
        }
        for n in &self.narrow {
            let reason = format!("used only for {}", quoted_list(&n.into));
            line(&n.grant, 1, "- remove", reason);
        }
        for a in &self.add {
            let from: Vec<&str> = self
                .narrow
                .iter()
                .filter(|n| n.grant.target == a.target && n.into.contains(&a.rule))
                .map(|n| n.grant.grant_id.as_str())
                .collect();
            let text = format!(
                "+ add {} {}  # narrows {}",
                a.target,
                a.rule,
                from.join(", ")
            );
            lines.push((a.target.clone(), a.rule.clone(), 2, text));
        }
        lines.sort();
        let mut out = format!(
            "--- {} (current grants)\n+++ {} (recommended, from {} days of use)\n",
            self.account, self.account, self.window.days
        );
        for (.., text) in lines {
            out.push_str(&text);
            out.push('\n');
        }
        out
    }
}
