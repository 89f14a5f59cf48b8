//! Warden's events and alerts as OCSF 1.3 JSON (<https://schema.ocsf.io/1.3.0>), the shape SIEMs
//! and security data lakes ingest. Pure: values in, JSON out, no I/O.
//!
//! - [`event`] maps one ledger [`Event`] to the OCSF class of its category:
//!   HTTP and Kubernetes requests and control-plane changes that are not about accounts →
//!   API Activity (6003); authentication attempts → Authentication (3002); account, key, grant
//!   and admin changes → Account Change (3001); SQL statements → Datastore Activity (6005);
//!   alert lifecycle entries → Detection Finding (2004).
//! - [`alert`] maps an [`Alert`] to a Detection Finding (2004).
//!
//! Modules:
//!
//! - `class`: the OCSF classes Warden emits and their activities.
//! - `base`: attributes every object shares (time, metadata, actor, endpoint, status…) and the
//!   final assembly, which computes `type_uid` and drops absent (null) attributes.
//! - `api`, `authentication`, `account_change`, `datastore`, `finding`: one module per class.
//!
//! Warden-specific fields that OCSF has no attribute for (the decision, the verb, the session,
//! unmapped `action.detail` keys) go under `unmapped`. No object ever carries a `null`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod account_change;
mod api;
mod authentication;
mod base;
mod class;
mod datastore;
mod finding;

use serde_json::Value;
use warden_core::event::Category;
use warden_core::{Alert, Event};

/// The OCSF schema version the produced objects follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF object for a ledger event.
pub fn event(e: &Event) -> Value {
    let mapped = match e.action.category {
        Category::Http | Category::K8s => api::map(e),
        Category::Auth => authentication::map(e),
        Category::Admin if account_change::applies(&e.action.verb) => account_change::map(e),
        Category::Admin => api::map(e),
        Category::Sql => datastore::map(e),
        Category::Alert => finding::map_event(e),
    };
    base::event_object(e, mapped)
}

/// The OCSF Detection Finding for an alert, in its current lifecycle state.
pub fn alert(a: &Alert) -> Value {
    finding::map_alert(a)
}

#[cfg(test)]
mod tests {
    //! Invariants every produced object satisfies, whatever its class.

    use serde_json::json;
    use warden_core::{AlertStatus, Severity};

    use super::*;
    use crate::base::tests::{admin_event, http_event, sample_alert, sample_event};

    fn all_samples() -> Vec<Value> {
        let mut out = vec![
            event(&http_event("GET", "/v1/orders/1", Some("200"))),
            event(&http_event("DELETE", "/v1/orders/1", None)),
            event(&sample_event(Category::Auth, "http.authenticate", None)),
            event(&sample_event(Category::Auth, "oauth.token", None)),
            event(&sample_event(
                Category::Sql,
                "SELECT",
                Some(json!({"sql": "SELECT 1", "class": "read", "tables": []})),
            )),
            event(&sample_event(Category::K8s, "list", None)),
            event(&sample_event(Category::Alert, "alert.ack", None)),
            event(&admin_event("account.create", "account/etl")),
            event(&admin_event("target.rotate", "target/shop")),
        ];
        let mut denied = sample_event(Category::Http, "POST", None);
        denied.decision = warden_core::event::Decision::deny("no grant");
        out.push(event(&denied));
        for status in [
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
        ] {
            let mut a = sample_alert();
            a.status = status;
            a.severity = Severity::Critical;
            out.push(alert(&a));
        }
        out
    }

    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(items) => items.iter().any(has_null),
            Value::Object(map) => map.values().any(has_null),
            _ => false,
        }
    }

    #[test]
    fn every_object_has_consistent_class_category_and_type() {
        for o in all_samples() {
            let class = o["class_uid"].as_u64().unwrap();
            let category = o["category_uid"].as_u64().unwrap();
            let activity = o["activity_id"].as_u64().unwrap();
            assert_eq!(category, class / 1000, "{o}");
            assert_eq!(
                o["type_uid"].as_u64().unwrap(),
                class * 100 + activity,
                "{o}"
            );
            assert!(o["class_name"].is_string() && o["category_name"].is_string());
            assert!(o["activity_name"].is_string() && o["type_name"].is_string());
            assert!(o["time"].as_i64().unwrap() > 1_500_000_000_000, "{o}");
            let severity = o["severity_id"].as_u64().unwrap();
            assert!((1..=5).contains(&severity), "{o}");
            assert!(o["severity"].is_string());
            assert_eq!(o["metadata"]["version"], OCSF_VERSION);
            assert_eq!(o["metadata"]["product"]["name"], "Warden");
            assert_eq!(o["metadata"]["product"]["vendor_name"], "Warden");
            assert!(o["metadata"]["uid"].is_string());
            assert!(!has_null(&o), "null in {o}");
        }
    }
}
