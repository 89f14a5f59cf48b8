//! Attributes every OCSF object shares, and the final assembly: classification (`class_uid`,
//! `category_uid`, `activity_id`, `type_uid` and their captions), then the removal of absent
//! attributes so that no attribute is ever `null`.

use serde_json::{json, Map, Value};
use uuid::Uuid;
use warden_core::event::{ActorKind, Category};
use warden_core::{Event, Timestamp};

use crate::class::{Activity, Class};
use crate::OCSF_VERSION;

/// What a class module decided about one event.
pub(crate) struct Mapped<'a> {
    /// The OCSF class.
    pub class: Class,
    /// The activity within it.
    pub activity: Activity<'a>,
    /// Class-specific attributes, deep-merged over the common ones (so a class may refine
    /// `http_request` or override `status_id`).
    pub attrs: Value,
    /// Keys of `action.detail` mapped to OCSF attributes, left out of `unmapped.detail`.
    pub mapped_detail: &'static [&'static str],
}

/// `severity_id` of an allowed event.
const INFORMATIONAL: u8 = 1;
/// `severity_id` of a denied event: a refusal is worth a look.
const MEDIUM: u8 = 3;

/// The OCSF object for `e`, from the common attributes and the class's own.
pub(crate) fn event_object(e: &Event, mapped: Mapped<'_>) -> Value {
    let (status_id, status) = status(e);
    let outcome = e.outcome.as_ref();
    let mut o = json!({
        "time": millis(e.time),
        "severity_id": if e.decision.allowed { INFORMATIONAL } else { MEDIUM },
        "status_id": status_id,
        "status": status,
        "status_code": outcome.map(|o| &o.status),
        "status_detail": status_detail(e),
        "duration": outcome.and_then(|o| o.duration_us).map(|us| us / 1_000),
        "message": message(e),
        "actor": {
            "user": user(e.actor.account.as_deref(), e.actor.key_id.as_deref(), e.actor.kind),
            "session": { "uid": e.session_id.map(|id| id.to_string()) },
            "authorizations": [{
                "decision": if e.decision.allowed { "Allowed" } else { "Denied" },
                "policy": { "uid": e.decision.grant_id },
            }],
        },
        "src_endpoint": { "ip": e.source.ip, "port": e.source.port },
        "http_request": { "user_agent": e.source.user_agent },
        "metadata": metadata(e.id, e.seq, "ledger"),
        "unmapped": unmapped(e, mapped.mapped_detail),
    });
    merge(&mut o, mapped.attrs);
    finish(mapped.class, mapped.activity, o)
}

/// Adds the classification to `o` and removes absent attributes.
pub(crate) fn finish(class: Class, activity: Activity<'_>, mut o: Value) -> Value {
    let severity = o["severity_id"].as_u64().map(severity_name);
    merge(
        &mut o,
        json!({
            "class_uid": class.uid(),
            "class_name": class.name(),
            "category_uid": class.category_uid(),
            "category_name": class.category_name(),
            "activity_id": activity.id,
            "activity_name": activity.name,
            "type_uid": u64::from(class.uid()) * 100 + u64::from(activity.id),
            "type_name": format!("{}: {}", class.name(), activity.name),
            "severity": severity,
        }),
    );
    prune(&mut o);
    o
}

/// OCSF `time`: milliseconds since the Unix epoch.
pub(crate) fn millis(t: Timestamp) -> i64 {
    t.as_micros().div_euclid(1_000)
}

/// The `metadata` object: schema version, product, the record's id and ledger position.
pub(crate) fn metadata(uid: Uuid, sequence: Option<u64>, log_name: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {
            "name": "Warden",
            "vendor_name": "Warden",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "uid": uid.to_string(),
        "sequence": sequence,
        "log_name": log_name,
    })
}

/// A `user` object. `credential_uid` is the API key id, as OCSF has it for access key ids.
pub(crate) fn user(name: Option<&str>, credential_uid: Option<&str>, kind: ActorKind) -> Value {
    // OCSF 1.3 user types: 1 User, 2 Admin, 3 System, 99 Other (with `type` as the label).
    let (type_id, type_name) = match kind {
        ActorKind::Human => (2, "Admin"),
        ActorKind::System => (3, "System"),
        ActorKind::Service => (99, "Service"),
        ActorKind::Kubernetes => (99, "Kubernetes"),
        ActorKind::Cloud => (99, "Cloud"),
    };
    json!({
        "name": name,
        "credential_uid": credential_uid,
        "type_id": type_id,
        "type": type_name,
    })
}

/// A string field of `action.detail`, when there is one.
pub(crate) fn detail_str<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.action.detail.as_ref()?.get(key)?.as_str()
}

/// `severity` caption of a `severity_id`.
fn severity_name(id: u64) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}

/// `status_id` and `status`: a denial or an error is a failure; an allowed authentication is a
/// success on its own; other events succeed once an outcome says so, and are unknown until then.
fn status(e: &Event) -> (u8, &'static str) {
    const UNKNOWN: (u8, &str) = (0, "Unknown");
    const SUCCESS: (u8, &str) = (1, "Success");
    const FAILURE: (u8, &str) = (2, "Failure");
    if !e.decision.allowed {
        return FAILURE;
    }
    match &e.outcome {
        None if e.action.category == Category::Auth => SUCCESS,
        None => UNKNOWN,
        Some(o) if o.error.is_some() => FAILURE,
        Some(o) if e.action.category == Category::Http && http_failed(&o.status) => FAILURE,
        Some(_) => SUCCESS,
    }
}

/// Whether an HTTP status (as text) is an error (4xx or 5xx).
fn http_failed(status: &str) -> bool {
    status.parse::<u16>().is_ok_and(|code| code >= 400)
}

/// `status_detail`: why it was refused, else what went wrong, else why it was allowed.
fn status_detail(e: &Event) -> Option<&str> {
    let reason = e.decision.reason.as_deref();
    let error = e.outcome.as_ref().and_then(|o| o.error.as_deref());
    if e.decision.allowed {
        error.or(reason)
    } else {
        reason.or(error)
    }
}

/// `message`: one line for a human, e.g. `etl GET /v1/orders/1: allowed`.
fn message(e: &Event) -> String {
    let who = e
        .actor
        .account
        .as_deref()
        .or(e.actor.key_id.as_deref())
        .unwrap_or("unknown");
    let mut m = format!("{who} {}", e.action.verb);
    if let Some(resource) = &e.action.resource {
        m.push(' ');
        m.push_str(resource);
    }
    m.push_str(if e.decision.allowed {
        ": allowed"
    } else {
        ": denied"
    });
    m
}

/// `unmapped`: Warden's own fields without an OCSF attribute.
fn unmapped(e: &Event, mapped_detail: &[&str]) -> Value {
    let detail = e.action.detail.as_ref().map(|d| match d {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !mapped_detail.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    });
    let outcome = e.outcome.as_ref();
    json!({
        "category": e.action.category.as_str(),
        "verb": e.action.verb,
        "resource": e.action.resource,
        "decision": e.decision,
        "target": e.target,
        "session_id": e.session_id.map(|id| id.to_string()),
        "outcome": {
            "rows": outcome.and_then(|o| o.rows),
            "bytes_in": outcome.and_then(|o| o.bytes_in),
            "bytes_out": outcome.and_then(|o| o.bytes_out),
        },
        "detail": detail,
    })
}

/// Deep-merges `from` into `into`: objects merge key by key, anything else replaces.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, from) => *into = from,
    }
}

/// Removes `null` attributes and objects left empty, at every depth. Array elements stay where
/// they are (a `null` SQL parameter is data, not an absent attribute).
fn prune(v: &mut Value) {
    match v {
        Value::Object(map) => prune_map(map),
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn prune_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(prune);
    map.retain(|_, v| match v {
        Value::Null => false,
        Value::Object(inner) => !inner.is_empty(),
        _ => true,
    });
}

#[cfg(test)]
pub(crate) mod tests {
    //! Sample events and alerts shared by the class modules' tests.

    use warden_core::event::{Action, Actor, AuthMethod, Decision, Outcome, Source, TargetRef};
    use warden_core::{Alert, AlertStatus, Severity};

    use super::*;

    /// 2026-11-27T08:00:00.123456Z.
    pub(crate) const T: i64 = 1_795_766_400_123_456;

    pub(crate) fn sample_event(category: Category, verb: &str, detail: Option<Value>) -> Event {
        let mut e = Event::new(
            Timestamp::from_micros(T),
            Actor {
                kind: ActorKind::Service,
                account: Some("billing-etl".into()),
                key_id: Some("wk_01".into()),
                auth: AuthMethod::ApiKey,
            },
            Source {
                ip: Some("10.0.0.7".into()),
                port: Some(50123),
                user_agent: Some("etl/1.0".into()),
            },
            Action {
                category,
                verb: verb.into(),
                resource: None,
                detail,
            },
            Decision::allow("grant g1"),
        );
        e.seq = Some(42);
        e
    }

    pub(crate) fn http_event(method: &str, path: &str, status: Option<&str>) -> Event {
        let mut e = sample_event(Category::Http, method, Some(json!({"query": "a=1"})));
        e.action.resource = Some(path.into());
        e.target = Some(TargetRef {
            kind: "http".into(),
            name: "shop".into(),
        });
        e.outcome = status.map(|s| Outcome {
            status: s.into(),
            duration_us: Some(12_345),
            ..Outcome::default()
        });
        e
    }

    pub(crate) fn admin_event(verb: &str, resource: &str) -> Event {
        let mut e = sample_event(Category::Admin, verb, None);
        e.actor = Actor {
            kind: ActorKind::Human,
            account: Some("alice".into()),
            key_id: None,
            auth: AuthMethod::ApiKey,
        };
        e.action.resource = Some(resource.into());
        e
    }

    pub(crate) fn sample_alert() -> Alert {
        Alert {
            id: Uuid::now_v7(),
            detector: "new_source_network".into(),
            severity: Severity::High,
            status: AlertStatus::Open,
            account: Some("billing-etl".into()),
            target: Some("shop".into()),
            subject: "203.0.113.0/24".into(),
            summary: "billing-etl used from a new network 203.0.113.0/24".into(),
            count: 3,
            first_seen: Timestamp::from_micros(T),
            last_seen: Timestamp::from_micros(T + 60_000_000),
            seqs: vec![7, 9, 12],
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            note: None,
        }
    }

    #[test]
    fn common_attributes_are_filled() {
        let mut e = http_event("GET", "/v1/orders/1", Some("200"));
        e.decision.grant_id = Some("g1".into());
        let o = crate::event(&e);
        assert_eq!(o["time"], T / 1_000);
        assert_eq!(o["severity_id"], 1);
        assert_eq!(o["severity"], "Informational");
        assert_eq!(o["status_id"], 1);
        assert_eq!(o["status_code"], "200");
        assert_eq!(o["duration"], 12);
        assert_eq!(o["message"], "billing-etl GET /v1/orders/1: allowed");
        assert_eq!(o["actor"]["user"]["name"], "billing-etl");
        assert_eq!(o["actor"]["user"]["credential_uid"], "wk_01");
        assert_eq!(o["actor"]["user"]["type"], "Service");
        assert_eq!(o["actor"]["authorizations"][0]["policy"]["uid"], "g1");
        assert_eq!(o["src_endpoint"], json!({"ip": "10.0.0.7", "port": 50123}));
        assert_eq!(o["metadata"]["uid"], e.id.to_string());
        assert_eq!(o["metadata"]["sequence"], 42);
        assert_eq!(o["metadata"]["log_name"], "ledger");
        assert_eq!(o["unmapped"]["decision"]["grant_id"], "g1");
        assert_eq!(o["unmapped"]["target"]["name"], "shop");
        // Absent fields are left out, not null.
        assert!(o["actor"].get("session").is_none());
        assert!(o.get("unmapped").unwrap().get("session_id").is_none());
    }

    #[test]
    fn denied_events_fail_with_medium_severity_and_the_reason() {
        let mut e = http_event("POST", "/v1/refunds", Some("403"));
        e.decision = Decision::deny("no grant allows POST /v1/refunds");
        let o = crate::event(&e);
        assert_eq!(o["severity_id"], 3);
        assert_eq!(o["status_id"], 2);
        assert_eq!(o["status"], "Failure");
        assert_eq!(o["status_detail"], "no grant allows POST /v1/refunds");
        assert_eq!(o["actor"]["authorizations"][0]["decision"], "Denied");
    }

    #[test]
    fn prune_drops_nulls_and_empty_objects_but_keeps_array_elements() {
        let mut v = json!({"a": null, "b": {"c": null}, "d": [null, 1], "e": {"f": 0}});
        prune(&mut v);
        assert_eq!(v, json!({"d": [null, 1], "e": {"f": 0}}));
    }
}
