//! The accountability analysis: for every account, its grants and how they were used, its keys
//! and their age, the findings, a risk score, and a summary over all accounts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_core::{AccountStatus, KeyRecord, KeyState, Severity, Timestamp};

use crate::finding::{Finding, FindingKind};
use crate::plan::{Change, GrantPlan, View};
use crate::usage::{days_between, whole_days, ActionUse, Window};
use crate::{Options, Population};

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// When it was made.
    pub generated_at: Timestamp,
    /// The usage it considered.
    pub window: Window,
    /// One report per account, sorted by name.
    pub accounts: Vec<AccountReport>,
    /// Totals over all accounts.
    pub summary: Summary,
}

/// Everything about one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReport {
    /// Its name.
    pub account: String,
    /// The accountable human.
    pub owner: String,
    /// Why it exists.
    pub purpose: String,
    /// Whether it may authenticate.
    pub status: AccountStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated, used a key or acted, whichever is latest.
    pub last_used_at: Option<Timestamp>,
    /// Its grants (expired ones included), sorted by target and rule.
    pub grants: Vec<GrantUsage>,
    /// Its keys, oldest first.
    pub keys: Vec<KeyAge>,
    /// What to act on, most severe first.
    pub findings: Vec<Finding>,
    /// The sum of the findings' weights ([`Finding::weight`]).
    pub risk: u32,
}

/// One grant and how it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantUsage {
    /// Its id.
    pub grant_id: String,
    /// The target it applies to.
    pub target: String,
    /// Its rule, as text.
    pub rule: String,
    /// When it was granted.
    pub created_at: Timestamp,
    /// When it stops applying, if ever.
    pub expires_at: Option<Timestamp>,
    /// Actions it allowed in the window.
    pub uses: u64,
    /// Its last use ever, from the usage rows or the grant's own record.
    pub last_use: Option<Timestamp>,
    /// The actions it allowed in the window, by kind.
    pub actions: Vec<ActionUse>,
    /// Whether its rule has a wildcard.
    pub wildcard: bool,
    /// Whether it was used in the window.
    pub used: bool,
}

/// One key and its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAge {
    /// Its public id.
    pub key_id: String,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was issued.
    pub created_at: Timestamp,
    /// Whole days since then.
    pub age_days: u64,
    /// When it was last used.
    pub last_used_at: Option<Timestamp>,
    /// Whether it took part in a rotation: it replaced an earlier key, or was replaced.
    pub rotated: bool,
}

/// Totals over all accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Accounts analysed.
    pub accounts: usize,
    /// Of those, how many are active, disabled or expired.
    pub by_status: StatusCounts,
    /// Findings in all.
    pub findings: usize,
    /// Findings by kind (kinds without findings are left out).
    pub by_kind: BTreeMap<FindingKind, usize>,
    /// Findings by severity (severities without findings are left out).
    pub by_severity: BTreeMap<Severity, usize>,
    /// Accounts with at least one finding.
    pub accounts_with_findings: usize,
    /// Accounts with at least one `unused_grant`.
    pub accounts_with_unused_grants: usize,
    /// Accounts with at least one `broad_grant`.
    pub accounts_with_broad_grants: usize,
    /// Accounts with at least one key finding (`unused_key`, `old_key`, `never_rotated_key`).
    pub accounts_with_key_findings: usize,
    /// Grants still in force.
    pub active_grants: usize,
    /// Keys that authenticate (active or in rotation grace).
    pub usable_keys: usize,
}

/// Accounts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// May authenticate.
    pub active: usize,
    /// Disabled by an admin.
    pub disabled: usize,
    /// Past their expiry.
    pub expired: usize,
}

/// Analyses every account of `population` at `now`.
pub fn analyze(population: &Population, now: Timestamp, options: &Options) -> Analysis {
    let window = Window::ending(now, options.window);
    let accounts: Vec<AccountReport> = View::gather(population, None)
        .iter()
        .map(|view| report(view, now, options))
        .collect();
    let summary = summarize(&accounts, population, now);
    Analysis {
        generated_at: now,
        window,
        accounts,
        summary,
    }
}

/// The report on one account.
fn report(view: &View, now: Timestamp, options: &Options) -> AccountReport {
    let account = view.account;
    let name = account.name.as_str();
    let status = account.status(now);
    let last_used_at = view.last_used_at();
    let plans = view.plan(now, options);
    let mut keys: Vec<&KeyRecord> = view.keys.clone();
    keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));

    let mut findings =
        ownership_findings(name, &account.owner.to_string(), &account.purpose, options);
    if status == AccountStatus::Active {
        findings.extend(activity_finding(
            name,
            account.created_at,
            last_used_at,
            now,
            options,
        ));
        findings.extend(plans.iter().flat_map(|p| grant_findings(name, p, options)));
        findings.extend(key_findings(name, &keys, now, options));
    }
    findings
        .sort_by(|a, b| (b.severity, a.kind, &a.subject).cmp(&(a.severity, b.kind, &b.subject)));
    let risk = findings.iter().map(Finding::weight).sum();

    AccountReport {
        account: name.to_owned(),
        owner: account.owner.to_string(),
        purpose: account.purpose.clone(),
        status,
        created_at: account.created_at,
        last_used_at,
        grants: plans.iter().map(grant_usage).collect(),
        keys: keys.iter().map(|k| key_age(k, &keys, now)).collect(),
        findings,
        risk,
    }
}

fn grant_usage(plan: &GrantPlan) -> GrantUsage {
    let g = plan.grant;
    GrantUsage {
        grant_id: g.id.clone(),
        target: g.target.clone(),
        rule: g.rule.to_string(),
        created_at: g.created_at,
        expires_at: g.expires_at,
        uses: plan.activity.uses(),
        last_use: plan.last_use,
        actions: plan.activity.actions.clone(),
        wildcard: g.rule.is_wildcard(),
        used: plan.used,
    }
}

fn key_age(key: &KeyRecord, keys: &[&KeyRecord], now: Timestamp) -> KeyAge {
    let replaced_one = keys
        .iter()
        .any(|o| o.superseded_by.as_deref() == Some(key.key_id.as_str()));
    KeyAge {
        key_id: key.key_id.clone(),
        state: key.state(now),
        created_at: key.created_at,
        age_days: days_between(key.created_at, now),
        last_used_at: key.last_used_at,
        rotated: replaced_one || key.superseded_by.is_some(),
    }
}

/// Local parts and domains of addresses that stand for nobody in particular.
const PLACEHOLDER_LOCAL_PARTS: &[&str] = &[
    "nobody", "noreply", "no-reply", "unknown", "none", "owner", "todo", "tbd", "changeme",
    "example", "test",
];
const PLACEHOLDER_DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];
/// A purpose shorter than this says nothing useful.
const MIN_PURPOSE_CHARS: usize = 10;

fn is_placeholder_owner(owner: &str) -> bool {
    let owner = owner.trim().to_lowercase();
    match owner.split_once('@') {
        None => true,
        Some((local, domain)) => {
            local.is_empty()
                || PLACEHOLDER_LOCAL_PARTS.contains(&local)
                || PLACEHOLDER_DOMAINS.contains(&domain)
                || domain.ends_with(".invalid")
                || domain.ends_with(".example")
        }
    }
}

fn ownership_findings(name: &str, owner: &str, purpose: &str, options: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    if is_placeholder_owner(owner) {
        findings.push(Finding::new(
            FindingKind::NoOwner,
            name,
            name,
            format!("Account {name} has no accountable owner: `{owner}` stands for nobody in particular."),
        ));
    } else if !options.people.is_empty()
        && !options
            .people
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case(owner.trim()))
    {
        findings.push(Finding::new(
            FindingKind::OwnerNotOnRecord,
            name,
            name,
            format!("Account {name} is owned by {owner}, who is not among the people on record."),
        ));
    }
    if purpose.trim().chars().count() < MIN_PURPOSE_CHARS {
        findings.push(Finding::new(
            FindingKind::NoPurpose,
            name,
            name,
            format!(
                "Account {name} does not say why it exists (purpose: `{}`).",
                purpose.trim()
            ),
        ));
    }
    findings
}

/// How long something has sat unused, if that is worth a finding.
enum Idle {
    /// Never used, and older than `protect_new`.
    Never { age_days: u64 },
    /// Last used longer than `unused_after` ago.
    Since { last: Timestamp, days: u64 },
}

fn idle(
    created_at: Timestamp,
    last_used: Option<Timestamp>,
    now: Timestamp,
    options: &Options,
) -> Option<Idle> {
    match last_used {
        None if created_at <= now.saturating_sub(options.protect_new) => Some(Idle::Never {
            age_days: days_between(created_at, now),
        }),
        Some(last) if last < now.saturating_sub(options.unused_after) => Some(Idle::Since {
            last,
            days: days_between(last, now),
        }),
        _ => None,
    }
}

fn activity_finding(
    name: &str,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    now: Timestamp,
    options: &Options,
) -> Option<Finding> {
    Some(match idle(created_at, last_used_at, now, options)? {
        Idle::Never { age_days } => Finding::new(
            FindingKind::NeverUsedAccount,
            name,
            name,
            format!("Account {name} was created {age_days} days ago and has never been used."),
        ),
        Idle::Since { last, days } => Finding::new(
            FindingKind::InactiveAccount,
            name,
            name,
            format!(
                "Account {name} was last used {days} days ago ({last}), more than {} days ago.",
                whole_days(options.unused_after)
            ),
        ),
    })
}

fn grant_findings(name: &str, plan: &GrantPlan, options: &Options) -> Vec<Finding> {
    let g = plan.grant;
    let mut findings = Vec::new();
    if !plan.active {
        return findings;
    }
    let what = format!("Grant {} (`{}` on {})", g.id, g.rule, g.target);
    let days = whole_days(options.window);
    match (&plan.change, plan.protected) {
        (Some(Change::Remove), false) => findings.push(Finding::new(
            FindingKind::UnusedGrant,
            name,
            &g.id,
            format!("{what} allowed nothing in the last {days} days."),
        )),
        (Some(Change::Narrow(into)), false) => findings.push(Finding::new(
            FindingKind::BroadGrant,
            name,
            &g.id,
            format!(
                "{what} was used only for {} in the last {days} days.",
                quoted_list(into)
            ),
        )),
        _ => {}
    }
    if g.rule.is_wildcard() {
        findings.push(Finding::new(
            FindingKind::WildcardGrant,
            name,
            &g.id,
            format!("{what} has a wildcard, so it allows actions nobody reviewed one by one."),
        ));
    }
    findings
}

fn key_findings(
    name: &str,
    keys: &[&KeyRecord],
    now: Timestamp,
    options: &Options,
) -> Vec<Finding> {
    let ever_rotated = keys.iter().any(|k| k.superseded_by.is_some());
    let too_old = now.saturating_sub(options.max_key_age);
    let max_days = whole_days(options.max_key_age);
    let mut findings = Vec::new();
    for k in keys.iter().filter(|k| k.state(now) == KeyState::Active) {
        let id = k.key_id.as_str();
        match idle(k.created_at, k.last_used_at, now, options) {
            Some(Idle::Never { age_days }) => findings.push(Finding::new(
                FindingKind::UnusedKey,
                name,
                id,
                format!(
                    "Key {id} of {name} was issued {age_days} days ago and has never been used."
                ),
            )),
            Some(Idle::Since { last, days }) => findings.push(Finding::new(
                FindingKind::UnusedKey,
                name,
                id,
                format!("Key {id} of {name} was last used {days} days ago ({last})."),
            )),
            None => {}
        }
        if k.created_at < too_old {
            let age = days_between(k.created_at, now);
            findings.push(Finding::new(
                FindingKind::OldKey,
                name,
                id,
                format!(
                    "Key {id} of {name} is {age} days old, older than the {max_days}-day maximum."
                ),
            ));
            if !ever_rotated {
                findings.push(Finding::new(
                    FindingKind::NeverRotatedKey,
                    name,
                    id,
                    format!(
                        "Key {id} of {name} is {age} days old and {name} has never rotated a key."
                    ),
                ));
            }
        }
    }
    findings
}

/// `a`, `a` and `b`, or `a`, `b` and `c`, each in backquotes.
pub(crate) fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn summarize(accounts: &[AccountReport], population: &Population, now: Timestamp) -> Summary {
    let mut s = Summary {
        accounts: accounts.len(),
        active_grants: population
            .grants
            .iter()
            .filter(|g| g.is_active(now))
            .count(),
        usable_keys: population
            .keys
            .iter()
            .filter(|k| k.state(now).is_usable())
            .count(),
        ..Summary::default()
    };
    for a in accounts {
        match a.status {
            AccountStatus::Active => s.by_status.active += 1,
            AccountStatus::Disabled => s.by_status.disabled += 1,
            AccountStatus::Expired => s.by_status.expired += 1,
        }
        for f in &a.findings {
            *s.by_kind.entry(f.kind).or_default() += 1;
            *s.by_severity.entry(f.severity).or_default() += 1;
        }
        s.findings += a.findings.len();
        let has = |kinds: &[FindingKind]| a.findings.iter().any(|f| kinds.contains(&f.kind));
        s.accounts_with_findings += usize::from(!a.findings.is_empty());
        s.accounts_with_unused_grants += usize::from(has(&[FindingKind::UnusedGrant]));
        s.accounts_with_broad_grants += usize::from(has(&[FindingKind::BroadGrant]));
        s.accounts_with_key_findings += usize::from(has(&[
            FindingKind::UnusedKey,
            FindingKind::OldKey,
            FindingKind::NeverRotatedKey,
        ]));
    }
    s
}
