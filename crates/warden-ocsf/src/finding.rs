//! Detection Finding (2004): alerts, and the ledger entries of their lifecycle (`alert.open`,
//! `alert.ack`, `alert.resolve`). The finding's activity and status follow the lifecycle:
//! open → Create / New, acknowledged → Update / In Progress, resolved → Close / Resolved.

use serde_json::{json, Value};
use warden_core::{Alert, AlertStatus, Event, Severity};

use crate::base::{detail_str, finish, metadata, millis, Mapped};
use crate::class::{Activity, Class};

const CREATE: Activity<'static> = Activity::new(1, "Create");
const UPDATE: Activity<'static> = Activity::new(2, "Update");
const CLOSE: Activity<'static> = Activity::new(3, "Close");

/// The activity, `status_id` and `status` of a finding in lifecycle state `status`.
fn lifecycle(status: AlertStatus) -> (Activity<'static>, u8, &'static str) {
    match status {
        AlertStatus::Open => (CREATE, 1, "New"),
        AlertStatus::Acknowledged => (UPDATE, 2, "In Progress"),
        AlertStatus::Resolved => (CLOSE, 4, "Resolved"),
    }
}

/// The lifecycle state an alert event's verb moves the alert to.
fn status_of_verb(verb: &str) -> Option<AlertStatus> {
    match verb {
        "alert.open" => Some(AlertStatus::Open),
        "alert.ack" => Some(AlertStatus::Acknowledged),
        "alert.resolve" => Some(AlertStatus::Resolved),
        _ => None,
    }
}

/// The `analytic` that raised a finding: configured rules (`rule:NAME`) or a built-in
/// behavioural detector.
fn analytic(detector: &str) -> Value {
    let (type_id, type_name) = if detector.starts_with("rule:") {
        (1, "Rule")
    } else {
        (2, "Behavioral")
    };
    json!({ "name": detector, "type_id": type_id, "type": type_name })
}

/// Maps an alert. `time` is its latest change (last finding, acknowledgement or resolution).
pub(crate) fn map_alert(a: &Alert) -> Value {
    let (activity, status_id, status) = lifecycle(a.status);
    let modified = [Some(a.last_seen), a.acknowledged_at, a.resolved_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(a.last_seen);
    let account = a.account.as_deref().unwrap_or("no account");
    let o = json!({
        "time": millis(modified),
        "severity_id": a.severity.ocsf_id(),
        "status_id": status_id,
        "status": status,
        "count": a.count,
        "message": a.summary,
        "finding_info": {
            "uid": a.id.to_string(),
            "title": a.summary,
            "desc": format!(
                "{} on {account} about {}: {} finding(s)",
                a.detector, a.subject, a.count
            ),
            "types": [a.detector],
            "analytic": analytic(&a.detector),
            "created_time": millis(a.first_seen),
            "first_seen_time": millis(a.first_seen),
            "last_seen_time": millis(a.last_seen),
            "modified_time": millis(modified),
            // `uid` is the ledger position: the `metadata.sequence` of the event's object.
            "related_events": a.seqs.iter().map(|s| json!({ "uid": s.to_string() })).collect::<Vec<_>>(),
        },
        "resources": resources(a.account.as_deref(), a.target.as_deref()),
        "metadata": metadata(a.id, None, "alerts"),
        "unmapped": {
            "subject": a.subject,
            "account": a.account,
            "target": a.target,
            "seqs": a.seqs,
            "acknowledged_by": a.acknowledged_by,
            "acknowledged_at": a.acknowledged_at,
            "resolved_by": a.resolved_by,
            "resolved_at": a.resolved_at,
            "note": a.note,
        },
    });
    finish(Class::DetectionFinding, activity, o)
}

/// The account and target an alert is about, as `resources`.
fn resources(account: Option<&str>, target: Option<&str>) -> Value {
    let list: Vec<Value> = [("account", account), ("target", target)]
        .into_iter()
        .filter_map(|(kind, name)| name.map(|n| json!({ "type": kind, "name": n })))
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

/// Maps an alert lifecycle entry of the ledger. Its `action.detail` may carry the alert's
/// `detector`, `summary` and `severity`; its resource is `alert/ID`.
pub(crate) fn map_event(e: &Event) -> Mapped<'_> {
    let uid = e
        .action
        .resource
        .as_deref()
        .map(|r| r.strip_prefix("alert/").unwrap_or(r));
    let detector = detail_str(e, "detector");
    let mut attrs = json!({
        "finding_info": {
            "uid": uid,
            "title": detail_str(e, "summary").unwrap_or(&e.action.verb),
            "types": detector.map(|d| vec![d]),
            "analytic": detector.map(analytic),
        },
    });
    let activity = match status_of_verb(&e.action.verb) {
        Some(status) => {
            let (activity, status_id, status) = lifecycle(status);
            attrs["status_id"] = json!(status_id);
            attrs["status"] = json!(status);
            activity
        }
        None => Activity::other(&e.action.verb),
    };
    if let Some(severity) = detail_str(e, "severity").and_then(Severity::parse) {
        attrs["severity_id"] = json!(severity.ocsf_id());
    }
    Mapped {
        class: Class::DetectionFinding,
        activity,
        attrs,
        mapped_detail: &["detector", "summary", "severity"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warden_core::event::Category;
    use warden_core::Timestamp;

    use super::*;
    use crate::base::tests::{sample_alert, sample_event, T};

    #[test]
    fn open_alert_is_a_new_finding() {
        let a = sample_alert();
        let o = crate::alert(&a);
        assert_eq!(o["class_uid"], 2004);
        assert_eq!(o["category_uid"], 2);
        assert_eq!(o["activity_id"], 1);
        assert_eq!(o["type_uid"], 200401);
        assert_eq!(o["severity_id"], 4);
        assert_eq!(o["severity"], "High");
        assert_eq!(o["status_id"], 1);
        assert_eq!(o["status"], "New");
        assert_eq!(o["count"], 3);
        assert_eq!(o["time"], (T + 60_000_000) / 1_000);
        let info = &o["finding_info"];
        assert_eq!(info["uid"], a.id.to_string());
        assert_eq!(info["title"], a.summary);
        assert_eq!(info["types"], json!(["new_source_network"]));
        assert_eq!(info["analytic"]["type"], "Behavioral");
        assert_eq!(info["first_seen_time"], T / 1_000);
        assert_eq!(info["last_seen_time"], (T + 60_000_000) / 1_000);
        assert_eq!(
            info["related_events"],
            json!([{"uid": "7"}, {"uid": "9"}, {"uid": "12"}])
        );
        assert_eq!(
            o["resources"][0],
            json!({"type": "account", "name": "billing-etl"})
        );
        assert_eq!(o["metadata"]["uid"], a.id.to_string());
        assert_eq!(o["metadata"]["log_name"], "alerts");
        assert_eq!(o["unmapped"]["subject"], "203.0.113.0/24");
    }

    #[test]
    fn lifecycle_moves_activity_and_status() {
        let mut a = sample_alert();
        a.status = AlertStatus::Acknowledged;
        a.acknowledged_by = Some("alice".into());
        a.acknowledged_at = Some(Timestamp::from_micros(T + 120_000_000));
        let o = crate::alert(&a);
        assert_eq!(
            (o["activity_id"].as_u64(), o["status_id"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(o["time"], (T + 120_000_000) / 1_000);
        assert_eq!(o["unmapped"]["acknowledged_by"], "alice");

        a.status = AlertStatus::Resolved;
        let o = crate::alert(&a);
        assert_eq!(
            (o["activity_id"].as_u64(), o["status_id"].as_u64()),
            (Some(3), Some(4))
        );
    }

    #[test]
    fn alert_without_account_or_target_has_no_resources() {
        let mut a = sample_alert();
        a.account = None;
        a.target = None;
        a.detector = "rule:bulk-deletes".into();
        let o = crate::alert(&a);
        assert!(o.get("resources").is_none());
        assert_eq!(o["finding_info"]["analytic"]["type_id"], 1);
    }

    #[test]
    fn alert_lifecycle_event_is_a_finding() {
        let mut e = sample_event(
            Category::Alert,
            "alert.resolve",
            Some(json!({"detector": "new_source_network", "severity": "high", "summary": "s"})),
        );
        e.action.resource = Some("alert/0190".into());
        let o = crate::event(&e);
        assert_eq!(o["class_uid"], 2004);
        assert_eq!(o["activity_id"], 3);
        assert_eq!(o["status_id"], 4);
        assert_eq!(o["severity_id"], 4);
        assert_eq!(o["finding_info"]["uid"], "0190");
        assert_eq!(o["finding_info"]["title"], "s");
        assert_eq!(o["finding_info"]["types"], json!(["new_source_network"]));
        assert_eq!(o["metadata"]["sequence"], 42);
    }
}
