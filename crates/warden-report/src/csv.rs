//! The CSV rendering (RFC 4180: comma-separated, CRLF line ends, a header row, fields holding a
//! comma, a quote, CR or LF quoted with quotes doubled).

use crate::facts::Facts;
use crate::json::kind_str;
use crate::{ReportInput, ReportKind};

/// Columns of the access review: one row per account.
pub const ACCESS_REVIEW_COLUMNS: [&str; 21] = [
    "checkpoint_size",
    "checkpoint_root_hash",
    "account",
    "owner",
    "purpose",
    "status",
    "created_at",
    "last_used_at",
    "grants",
    "unused_grants",
    "wildcard_grants",
    "usable_keys",
    "oldest_key_days",
    "findings",
    "highest_severity",
    "risk",
    "finding_kinds",
    "review_decision",
    "review_justification",
    "decided_by",
    "decided_at",
];

/// Columns of the least-privilege and compliance reports: one row per finding.
pub const FINDING_COLUMNS: [&str; 10] = [
    "checkpoint_size",
    "checkpoint_root_hash",
    "severity",
    "kind",
    "account",
    "owner",
    "subject",
    "message",
    "controls",
    "review_decision",
];

/// The report as CSV.
///
/// The access review has one row per account with the columns of [`ACCESS_REVIEW_COLUMNS`];
/// the least-privilege and compliance reports one row per finding in scope with those of
/// [`FINDING_COLUMNS`]. Every row starts with the size and root hash (hex) of the ledger
/// checkpoint the report was computed from (empty when none was signed yet). Lists
/// (`finding_kinds`, `controls`) are joined with `; `; times are RFC 3339 UTC; absent values are
/// empty. A text field that a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or CR) is written with a leading `'`.
pub fn to_csv(input: &ReportInput) -> String {
    let facts = Facts::of(input);
    let (size, root) = facts.checkpoint_cells();
    let mut out = String::with_capacity(256 * (facts.accounts.len() + facts.findings.len() + 1));
    match input.kind {
        ReportKind::AccessReview => {
            row(&mut out, ACCESS_REVIEW_COLUMNS.iter().copied());
            for a in &facts.accounts {
                let r = a.report;
                let mut kinds: Vec<String> = a.findings.iter().map(|f| kind_str(f.kind)).collect();
                kinds.dedup();
                let d = a.decision;
                row(
                    &mut out,
                    [
                        size.as_str(),
                        root.as_str(),
                        &r.account,
                        &r.owner,
                        &r.purpose,
                        status_str(r.status),
                        &r.created_at.to_string(),
                        &opt(r.last_used_at),
                        &r.grants.len().to_string(),
                        &a.unused_grants.to_string(),
                        &a.wildcard_grants.to_string(),
                        &a.usable_keys.to_string(),
                        &opt(a.oldest_key_days),
                        &a.findings.len().to_string(),
                        a.highest.map_or("", |s| s.as_str()),
                        &r.risk.to_string(),
                        &kinds.join("; "),
                        d.map_or("", |d| d.decision.as_str()),
                        d.map_or("", |d| d.justification.as_str()),
                        d.map_or("", |d| d.decided_by.as_str()),
                        &opt(d.map(|d| d.decided_at)),
                    ],
                );
            }
        }
        ReportKind::LeastPrivilege | ReportKind::Compliance => {
            row(&mut out, FINDING_COLUMNS.iter().copied());
            let owners: std::collections::HashMap<&str, (&str, Option<&str>)> = facts
                .accounts
                .iter()
                .map(|a| {
                    (
                        a.report.account.as_str(),
                        (
                            a.report.owner.as_str(),
                            a.decision.map(|d| d.decision.as_str()),
                        ),
                    )
                })
                .collect();
            for f in &facts.findings {
                let (owner, decision) = owners.get(f.account.as_str()).copied().unwrap_or_default();
                row(
                    &mut out,
                    [
                        size.as_str(),
                        root.as_str(),
                        f.severity.as_str(),
                        &kind_str(f.kind),
                        &f.account,
                        owner,
                        &f.subject,
                        &f.message,
                        &f.controls.join("; "),
                        decision.unwrap_or(""),
                    ],
                );
            }
        }
    }
    out
}

fn status_str(s: warden_core::AccountStatus) -> &'static str {
    match s {
        warden_core::AccountStatus::Active => "active",
        warden_core::AccountStatus::Disabled => "disabled",
        warden_core::AccountStatus::Expired => "expired",
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Appends one record.
fn row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

/// Appends one field, quoted when it must be, defused when a spreadsheet would evaluate it.
pub(crate) fn field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || value.contains([',', '"', '\r', '\n']);
    if !quote {
        out.push_str(value);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}
