//! The HTML rendering: one self-contained file (inline CSS, inline SVG charts, no script, no
//! external asset) printable to PDF, from the askama template `templates/report.html`. Askama
//! escapes every value the template writes, so account names, owners, purposes, messages and
//! the checkpoint note cannot inject markup.

use askama::Template;
use warden_access::Finding;
use warden_core::{AccountStatus, Timestamp};

use crate::chart::{self, Chart};
use crate::facts::{AccountRow, Facts};
use crate::json::kind_str;
use crate::{ReportInput, ReportKind, ReviewSection};

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    title: &'static str,
    kind: &'static str,
    generated_at: String,
    generated_by: &'a str,
    window: String,
    scope: String,
    checkpoint: Option<CheckpointView<'a>>,
    cards: Vec<(&'static str, String)>,
    severity_chart: Chart,
    activity_chart: Chart,
    activity_days: usize,
    activity_total: u64,
    groups: Vec<Group<'a>>,
    findings_total: usize,
    accounts: Vec<AccountView<'a>>,
    review: Option<&'a ReviewSection>,
    review_first: bool,
    frameworks: Vec<FrameworkView>,
}

struct CheckpointView<'a> {
    size: u64,
    root_hash: &'a str,
    note: &'a str,
    signed_at: String,
}

struct Group<'a> {
    severity: &'static str,
    findings: Vec<FindingView<'a>>,
}

struct FindingView<'a> {
    kind: String,
    account: &'a str,
    subject: &'a str,
    message: &'a str,
    controls: String,
}

struct AccountView<'a> {
    name: &'a str,
    owner: &'a str,
    purpose: &'a str,
    status: &'static str,
    last_used: String,
    grants: Vec<GrantView<'a>>,
    keys: String,
    findings: usize,
    highest: &'static str,
    risk: u32,
    decision: String,
}

struct GrantView<'a> {
    target: &'a str,
    rule: &'a str,
    uses: u64,
    used: bool,
}

struct FrameworkView {
    name: &'static str,
    controls: Vec<ControlView>,
}

struct ControlView {
    id: &'static str,
    reference: &'static str,
    title: &'static str,
    status: &'static str,
    status_text: &'static str,
    findings: usize,
    accounts: usize,
    kinds: String,
    samples: String,
    ledger: bool,
}

fn day(t: Timestamp) -> String {
    t.to_string().chars().take(10).collect()
}

fn minute(t: Timestamp) -> String {
    let s = t.to_string();
    match (s.get(..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

fn status_str(s: AccountStatus) -> &'static str {
    match s {
        AccountStatus::Active => "active",
        AccountStatus::Disabled => "disabled",
        AccountStatus::Expired => "expired",
    }
}

fn finding_view(f: &Finding) -> FindingView<'_> {
    FindingView {
        kind: kind_str(f.kind),
        account: &f.account,
        subject: &f.subject,
        message: &f.message,
        controls: f.controls.join(", "),
    }
}

fn account_view<'a>(row: &AccountRow<'a>) -> AccountView<'a> {
    let r = row.report;
    AccountView {
        name: &r.account,
        owner: &r.owner,
        purpose: &r.purpose,
        status: status_str(r.status),
        last_used: r.last_used_at.map_or_else(|| "never".to_owned(), day),
        grants: r
            .grants
            .iter()
            .map(|g| GrantView {
                target: &g.target,
                rule: &g.rule,
                uses: g.uses,
                used: g.used,
            })
            .collect(),
        keys: match row.oldest_key_days {
            Some(age) => format!("{} (oldest {age} d)", row.usable_keys),
            None => "0".to_owned(),
        },
        findings: row.findings.len(),
        highest: row.highest.map_or("", |s| s.as_str()),
        risk: r.risk,
        decision: row
            .decision
            .map(|d| {
                format!(
                    "{} by {} on {}",
                    d.decision,
                    d.decided_by,
                    day(d.decided_at)
                )
            })
            .unwrap_or_default(),
    }
}

/// The report as one self-contained HTML document.
pub fn to_html(input: &ReportInput) -> String {
    let facts = Facts::of(input);
    let a = &input.analysis;
    let severity_items: Vec<(String, u64, &'static str)> = facts
        .by_severity
        .iter()
        .map(|(s, n)| {
            let class = match s {
                warden_core::Severity::Critical => "sev-critical",
                warden_core::Severity::High => "sev-high",
                warden_core::Severity::Medium => "sev-medium",
                warden_core::Severity::Low => "sev-low",
                warden_core::Severity::Info => "sev-info",
            };
            (s.as_str().to_owned(), *n as u64, class)
        })
        .collect();
    let activity_items: Vec<(String, u64)> =
        facts.activity.iter().map(|(d, c)| (day(*d), *c)).collect();
    let groups = facts
        .by_severity
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, _)| Group {
            severity: s.as_str(),
            findings: facts
                .findings
                .iter()
                .filter(|f| f.severity == *s)
                .map(|f| finding_view(f))
                .collect(),
        })
        .collect();
    let mut frameworks: Vec<FrameworkView> = Vec::new();
    for e in &facts.evidence {
        let view = ControlView {
            id: e.control.id,
            reference: e.control.reference,
            title: e.control.title,
            status: e.status(),
            status_text: match e.status() {
                "exceptions" => "Exceptions found",
                "no_exceptions" => "No exceptions",
                _ => "Not covered by this report",
            },
            findings: e.findings,
            accounts: e.accounts,
            kinds: e
                .by_kind
                .iter()
                .map(|(k, n)| format!("{} ({n})", kind_str(*k)))
                .collect::<Vec<_>>()
                .join(", "),
            samples: {
                let mut s = e.sample_accounts.join(", ");
                if e.accounts > e.sample_accounts.len() {
                    s.push_str(&format!(
                        " and {} more",
                        e.accounts - e.sample_accounts.len()
                    ));
                }
                s
            },
            ledger: e.ledger,
        };
        match frameworks.last_mut() {
            Some(f) if f.name == e.control.framework => f.controls.push(view),
            _ => frameworks.push(FrameworkView {
                name: e.control.framework,
                controls: vec![view],
            }),
        }
    }
    let scope = match input.kind {
        ReportKind::LeastPrivilege => {
            "Grant findings only: unused grants, grants broader than their use, wildcard grants."
        }
        _ => "Every finding of the accountability analysis.",
    };
    let page = Page {
        title: input.kind.title(),
        kind: input.kind.as_str(),
        generated_at: minute(input.generated_at),
        generated_by: &input.generated_by,
        window: format!(
            "{} to {} ({} days)",
            day(a.window.since),
            day(a.window.until),
            a.window.days
        ),
        scope: scope.to_owned(),
        checkpoint: input.checkpoint.as_ref().map(|c| CheckpointView {
            size: c.size,
            root_hash: &c.root_hash,
            note: &c.note,
            signed_at: c.signed_at.map(minute).unwrap_or_default(),
        }),
        cards: vec![
            ("Accounts", a.accounts.len().to_string()),
            ("Active accounts", a.summary.by_status.active.to_string()),
            ("Findings", facts.findings.len().to_string()),
            (
                "Accounts with findings",
                facts
                    .accounts
                    .iter()
                    .filter(|r| !r.findings.is_empty())
                    .count()
                    .to_string(),
            ),
            ("Grants in force", a.summary.active_grants.to_string()),
            ("Unused grants", facts.unused_grants.to_string()),
            ("Wildcard grants", facts.wildcard_grants.to_string()),
            ("Usable keys", a.summary.usable_keys.to_string()),
            ("Actions in window", facts.activity_total.to_string()),
        ],
        severity_chart: chart::horizontal(&severity_items),
        activity_chart: chart::columns(&activity_items),
        activity_days: activity_items.len(),
        activity_total: facts.activity_total,
        groups,
        findings_total: facts.findings.len(),
        accounts: facts.accounts.iter().map(account_view).collect(),
        review: input.review.as_ref(),
        review_first: input.kind == ReportKind::AccessReview,
        frameworks,
    };
    page.render().unwrap_or_else(|e| {
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Report failed</title></head><body><p>The report could not be rendered: {}</p></body></html>",
            e.to_string().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
        )
    })
}
