//! The JSON rendering: the report's facts for other tools, in the shape
//! `docs/schemas/report.schema.json` describes (draft 2020-12).

use serde::Serialize;
use serde_json::{json, Map, Value};
use warden_access::{Finding, GrantUsage, KeyAge};
use warden_core::{AccountStatus, Timestamp};

use crate::facts::{AccountRow, Facts};
use crate::{ReportInput, ReviewDecision, JSON_VERSION};

#[derive(Serialize)]
struct AccountJson<'a> {
    account: &'a str,
    owner: &'a str,
    purpose: &'a str,
    status: AccountStatus,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    risk: u32,
    highest_severity: Option<&'static str>,
    unused_grants: usize,
    wildcard_grants: usize,
    usable_keys: usize,
    oldest_key_days: Option<u64>,
    grants: &'a [GrantUsage],
    keys: &'a [KeyAge],
    findings: &'a [&'a Finding],
    review_decision: Option<&'a ReviewDecision>,
}

impl<'a> AccountJson<'a> {
    fn of(row: &'a AccountRow<'a>) -> Self {
        let r = row.report;
        Self {
            account: &r.account,
            owner: &r.owner,
            purpose: &r.purpose,
            status: r.status,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            risk: r.risk,
            highest_severity: row.highest.map(|s| s.as_str()),
            unused_grants: row.unused_grants,
            wildcard_grants: row.wildcard_grants,
            usable_keys: row.usable_keys,
            oldest_key_days: row.oldest_key_days,
            grants: &r.grants,
            keys: &r.keys,
            findings: &row.findings,
            review_decision: row.decision,
        }
    }
}

/// The report as JSON: `kind`, `title`, `generated_at`/`generated_by`, the analysis `window`,
/// the `checkpoint` it was computed from (`null` when none was signed yet), the `scope`
/// (finding kinds included), a `summary`, the `accounts` (grants, keys, findings in scope, the
/// review decision), `activity` per day, the `evidence` mapping of every control, and the
/// `review` (or `null`).
pub fn to_json(input: &ReportInput) -> Value {
    let facts = Facts::of(input);
    let a = &input.analysis;
    let by_status = &a.summary.by_status;
    let by_severity: Map<String, Value> = facts
        .by_severity
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    let by_kind: Map<String, Value> = facts
        .by_kind
        .iter()
        .map(|(k, n)| (kind_str(*k), json!(n)))
        .collect();
    let scope: Vec<String> = warden_access::FindingKind::ALL
        .into_iter()
        .filter(|k| input.kind.includes(*k))
        .map(kind_str)
        .collect();
    let accounts: Vec<AccountJson> = facts.accounts.iter().map(AccountJson::of).collect();
    let evidence: Vec<Value> = facts
        .evidence
        .iter()
        .map(|e| {
            let kinds: Map<String, Value> = e
                .by_kind
                .iter()
                .map(|(k, n)| (kind_str(*k), json!(n)))
                .collect();
            json!({
                "framework": e.control.framework,
                "id": e.control.id,
                "reference": e.control.reference,
                "title": e.control.title,
                "status": e.status(),
                "in_scope": e.in_scope,
                "findings": e.findings,
                "accounts": e.accounts,
                "findings_by_kind": kinds,
                "ledger_evidence": e.ledger,
            })
        })
        .collect();
    let activity: Vec<Value> = facts
        .activity
        .iter()
        .map(|(day, count)| json!({"day": day, "count": count}))
        .collect();
    json!({
        "version": JSON_VERSION,
        "kind": input.kind.as_str(),
        "title": input.kind.title(),
        "generated_at": input.generated_at,
        "generated_by": input.generated_by,
        "window": a.window,
        "checkpoint": input.checkpoint,
        "scope": { "finding_kinds": scope },
        "summary": {
            "accounts": a.accounts.len(),
            "by_status": {
                "active": by_status.active,
                "disabled": by_status.disabled,
                "expired": by_status.expired,
            },
            "findings": facts.findings.len(),
            "findings_by_severity": by_severity,
            "findings_by_kind": by_kind,
            "accounts_with_findings": facts.accounts.iter().filter(|r| !r.findings.is_empty()).count(),
            "active_grants": a.summary.active_grants,
            "unused_grants": facts.unused_grants,
            "wildcard_grants": facts.wildcard_grants,
            "usable_keys": a.summary.usable_keys,
            "activity_total": facts.activity_total,
        },
        "accounts": accounts,
        "activity": activity,
        "evidence": evidence,
        "review": input.review,
    })
}

/// A finding kind as JSON spells it (`unused_grant`).
pub(crate) fn kind_str(kind: warden_access::FindingKind) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => s,
        _ => format!("{kind:?}"),
    }
}
