//! The facts every rendering shows, derived once from a [`ReportInput`] so that HTML, JSON and
//! CSV cannot disagree: the findings in scope, their counts, one row per account, activity per
//! day, and the evidence mapping of each control to the findings that bear on it.

use std::collections::{BTreeMap, HashMap};

use warden_access::{controls, AccountReport, Control, Finding, FindingKind};
use warden_core::{KeyState, Severity, Timestamp};

use crate::{ReportInput, ReviewDecision};

/// Severities, most serious first.
pub(crate) const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// The controls the ledger itself is evidence for (logging, monitoring, integrity): the signed
/// checkpoint shows every action was recorded in a tamper-evident log.
pub(crate) const LEDGER_CONTROLS: [&str; 7] = [
    "SOC 2 CC7.2",
    "ISO 27001 A.8.15",
    "ISO 27001 A.8.16",
    "PCI DSS 10.2",
    "PCI DSS 10.5.1",
    "HIPAA 164.312(b)",
    "GDPR Art. 5(1)(f)",
];

const DAY_US: i64 = 86_400_000_000;

/// What a report says.
pub(crate) struct Facts<'a> {
    /// The input.
    pub input: &'a ReportInput,
    /// One row per account, in the analysis' order (by name).
    pub accounts: Vec<AccountRow<'a>>,
    /// Findings in scope, most serious first, then by account, kind and subject.
    pub findings: Vec<&'a Finding>,
    /// Findings in scope per severity, in [`SEVERITIES`] order.
    pub by_severity: [(Severity, usize); 5],
    /// Findings in scope per kind (kinds without any left out).
    pub by_kind: BTreeMap<FindingKind, usize>,
    /// Grants in force that were not used in the window.
    pub unused_grants: usize,
    /// Grants in force whose rule has a wildcard.
    pub wildcard_grants: usize,
    /// Actions per day over the whole window (missing days as zero), oldest first.
    pub activity: Vec<(Timestamp, u64)>,
    /// The sum of `activity`.
    pub activity_total: u64,
    /// Every control of the catalogue and what bears on it.
    pub evidence: Vec<ControlEvidence>,
}

/// One account as the report shows it.
pub(crate) struct AccountRow<'a> {
    /// The analysis' report on it.
    pub report: &'a AccountReport,
    /// Its findings in scope.
    pub findings: Vec<&'a Finding>,
    /// The most serious of them.
    pub highest: Option<Severity>,
    /// Grants in force not used in the window.
    pub unused_grants: usize,
    /// Grants in force with a wildcard.
    pub wildcard_grants: usize,
    /// Keys that authenticate (active or rotating).
    pub usable_keys: usize,
    /// Age in days of its oldest usable key.
    pub oldest_key_days: Option<u64>,
    /// The review's decision about it.
    pub decision: Option<&'a ReviewDecision>,
}

/// One control and the evidence bearing on it.
pub(crate) struct ControlEvidence {
    /// The control.
    pub control: &'static Control,
    /// Whether any finding kind of this report can cite it, or the ledger evidences it.
    pub in_scope: bool,
    /// Whether the signed ledger checkpoint is evidence for it.
    pub ledger: bool,
    /// Findings citing it.
    pub findings: usize,
    /// Accounts with such findings.
    pub accounts: usize,
    /// Those findings by kind.
    pub by_kind: Vec<(FindingKind, usize)>,
    /// Up to [`SAMPLE_ACCOUNTS`] of those accounts, for the HTML.
    pub sample_accounts: Vec<String>,
}

/// How many accounts the HTML names per control.
pub(crate) const SAMPLE_ACCOUNTS: usize = 10;

impl ControlEvidence {
    /// `exceptions` (findings cite it), `no_exceptions` or `out_of_scope`.
    pub fn status(&self) -> &'static str {
        if self.findings > 0 {
            "exceptions"
        } else if self.in_scope {
            "no_exceptions"
        } else {
            "out_of_scope"
        }
    }
}

fn in_force(g: &warden_access::GrantUsage, now: Timestamp) -> bool {
    g.expires_at.is_none_or(|e| e > now)
}

impl<'a> Facts<'a> {
    /// Derives the facts of `input`.
    pub fn of(input: &'a ReportInput) -> Self {
        let kind = input.kind;
        let now = input.analysis.generated_at;
        let decisions: HashMap<&str, &ReviewDecision> = input
            .review
            .iter()
            .flat_map(|r| r.decisions.iter())
            .map(|d| (d.account.as_str(), d))
            .collect();

        let catalogue = controls();
        let index: HashMap<&str, usize> = catalogue
            .iter()
            .enumerate()
            .map(|(i, c)| (c.reference, i))
            .collect();
        let mut evidence: Vec<ControlEvidence> = catalogue
            .iter()
            .map(|c| {
                let ledger = LEDGER_CONTROLS.contains(&c.reference);
                let cited = FindingKind::ALL
                    .iter()
                    .any(|k| kind.includes(*k) && k.controls().iter().any(|kc| kc == c));
                ControlEvidence {
                    control: c,
                    in_scope: ledger || cited,
                    ledger,
                    findings: 0,
                    accounts: 0,
                    by_kind: Vec::new(),
                    sample_accounts: Vec::new(),
                }
            })
            .collect();
        let mut kinds_per_control: Vec<BTreeMap<FindingKind, usize>> =
            vec![BTreeMap::new(); catalogue.len()];
        let mut last_account: Vec<usize> = vec![usize::MAX; catalogue.len()];

        let mut accounts = Vec::with_capacity(input.analysis.accounts.len());
        let mut findings = Vec::new();
        let mut by_kind = BTreeMap::new();
        let (mut unused_grants, mut wildcard_grants) = (0, 0);
        for (ai, report) in input.analysis.accounts.iter().enumerate() {
            let own: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| kind.includes(f.kind))
                .collect();
            for f in &own {
                *by_kind.entry(f.kind).or_default() += 1;
                for r in &f.controls {
                    let Some(&ci) = index.get(r) else { continue };
                    let e = &mut evidence[ci];
                    e.findings += 1;
                    *kinds_per_control[ci].entry(f.kind).or_default() += 1;
                    if last_account[ci] != ai {
                        last_account[ci] = ai;
                        e.accounts += 1;
                        if e.sample_accounts.len() < SAMPLE_ACCOUNTS {
                            e.sample_accounts.push(report.account.clone());
                        }
                    }
                }
            }
            findings.extend(own.iter().copied());
            let active: Vec<_> = report.grants.iter().filter(|g| in_force(g, now)).collect();
            let unused = active.iter().filter(|g| !g.used).count();
            let wildcard = active.iter().filter(|g| g.wildcard).count();
            unused_grants += unused;
            wildcard_grants += wildcard;
            let usable: Vec<_> = report
                .keys
                .iter()
                .filter(|k| matches!(k.state, KeyState::Active | KeyState::Rotating))
                .collect();
            accounts.push(AccountRow {
                report,
                highest: own.iter().map(|f| f.severity).max(),
                findings: own,
                unused_grants: unused,
                wildcard_grants: wildcard,
                usable_keys: usable.len(),
                oldest_key_days: usable.iter().map(|k| k.age_days).max(),
                decision: decisions.get(report.account.as_str()).copied(),
            });
        }
        for (e, kinds) in evidence.iter_mut().zip(kinds_per_control) {
            e.by_kind = kinds.into_iter().collect();
        }
        findings.sort_by(|a, b| {
            (b.severity, &a.account, a.kind, &a.subject)
                .cmp(&(a.severity, &b.account, b.kind, &b.subject))
        });
        let mut by_severity = SEVERITIES.map(|s| (s, 0));
        for f in &findings {
            if let Some(slot) = by_severity.iter_mut().find(|(s, _)| *s == f.severity) {
                slot.1 += 1;
            }
        }
        let activity = daily(input);
        let activity_total = activity.iter().map(|(_, c)| c).sum();
        Facts {
            input,
            accounts,
            findings,
            by_severity,
            by_kind,
            unused_grants,
            wildcard_grants,
            activity,
            activity_total,
            evidence,
        }
    }

    /// The checkpoint's size and root hash as text (empty when there is none).
    pub fn checkpoint_cells(&self) -> (String, String) {
        match &self.input.checkpoint {
            Some(c) => (c.size.to_string(), c.root_hash.clone()),
            None => (String::new(), String::new()),
        }
    }
}

/// Actions per day over the window, every day of it present (zero when nothing happened).
fn daily(input: &ReportInput) -> Vec<(Timestamp, u64)> {
    let window = &input.analysis.window;
    let first = window.since.as_micros().div_euclid(DAY_US);
    let last = window.until.as_micros().div_euclid(DAY_US);
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for a in &input.activity {
        let d = a.day.as_micros().div_euclid(DAY_US);
        let slot = per_day.entry(d).or_default();
        *slot = slot.saturating_add(a.count);
    }
    // Days outside the window are kept (a clock running ahead, a caller's wider query), so
    // the chart's span is the union.
    let first = per_day.keys().next().map_or(first, |d| first.min(*d));
    let last = per_day.keys().next_back().map_or(last, |d| last.max(*d));
    if last - first > 3660 {
        // A degenerate window: show only the days that had activity.
        return per_day
            .into_iter()
            .map(|(d, c)| (Timestamp::from_micros(d * DAY_US), c))
            .collect();
    }
    (first..=last)
        .map(|d| {
            (
                Timestamp::from_micros(d * DAY_US),
                per_day.get(&d).copied().unwrap_or(0),
            )
        })
        .collect()
}
