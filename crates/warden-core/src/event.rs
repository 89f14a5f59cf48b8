//! The event: the one record every part of Warden shares. Front doors produce events; the ledger
//! sequences and stores them; everything downstream (detectors, reports, exports) reads them.
//!
//! Field order is part of the format: an event's canonical bytes are its JSON serialisation in
//! declaration order, and those bytes are what the ledger hashes. Secrets never enter an event.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// One action by one actor, with Warden's decision and, once known, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (UUIDv7, so ids sort by creation time).
    pub id: Uuid,
    /// Position in the ledger, assigned when the event is sequenced.
    pub seq: Option<u64>,
    /// When the action happened.
    pub time: Timestamp,
    /// Who acted.
    pub actor: Actor,
    /// Where the request came from.
    pub source: Source,
    /// What was acted on, when it is a registered target.
    pub target: Option<TargetRef>,
    /// What was done.
    pub action: Action,
    /// What Warden decided.
    pub decision: Decision,
    /// How it turned out, when known.
    pub outcome: Option<Outcome>,
    /// The session (connection) the action belongs to, for protocols that have one.
    pub session_id: Option<Uuid>,
}

impl Event {
    /// A new event at `time` with a fresh UUIDv7 id, not yet sequenced, without outcome.
    pub fn new(
        time: Timestamp,
        actor: Actor,
        source: Source,
        action: Action,
        decision: Decision,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            seq: None,
            time,
            actor,
            source,
            target: None,
            action,
            decision,
            outcome: None,
            session_id: None,
        }
    }

    /// The event's canonical bytes: compact JSON in field declaration order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising plain structs, strings and numbers to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of principal.
    pub kind: ActorKind,
    /// The service account or admin name, when known.
    pub account: Option<String>,
    /// The credential id presented, when one was.
    pub key_id: Option<String>,
    /// How the actor authenticated.
    pub auth: AuthMethod,
}

impl Actor {
    /// Warden itself: the actor of its scheduled jobs, policies and alerts.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            account: None,
            key_id: None,
            auth: AuthMethod::None,
        }
    }
}

/// Kinds of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A service account.
    Service,
    /// A human (an admin).
    Human,
    /// A Kubernetes identity (ingested).
    Kubernetes,
    /// A cloud identity (ingested).
    Cloud,
    /// Warden itself (scheduled jobs such as retention).
    System,
}

/// How an actor authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An API key or admin token.
    ApiKey,
    /// A short-lived token.
    Token,
    /// A TLS client certificate.
    Tls,
    /// Nothing valid was presented.
    None,
}

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Source {
    /// Client IP address.
    pub ip: Option<String>,
    /// Client port.
    pub port: Option<u16>,
    /// Client's user agent, when the protocol has one.
    pub user_agent: Option<String>,
}

/// A registered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    /// `http`, `postgres`…
    pub kind: String,
    /// The target's name.
    pub name: String,
}

/// Categories of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Authentication attempts and token issuance.
    Auth,
    /// HTTP requests through the gateway.
    Http,
    /// SQL statements through the gateway.
    Sql,
    /// Kubernetes audit records (ingested).
    K8s,
    /// Changes made through the control-plane API.
    Admin,
    /// Alerts raised by detection, and their acknowledgement and resolution.
    Alert,
}

impl Category {
    /// The category as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Http => "http",
            Self::Sql => "sql",
            Self::K8s => "k8s",
            Self::Admin => "admin",
            Self::Alert => "alert",
        }
    }
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Broad category.
    pub category: Category,
    /// The verb (`account.create`, `whoami`, `GET`, `SELECT`…).
    pub verb: String,
    /// The object acted on (`account/billing-etl`, a path, a table…).
    pub resource: Option<String>,
    /// Extra structured detail (never secrets).
    pub detail: Option<serde_json::Value>,
}

/// What Warden decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the action was allowed.
    pub allowed: bool,
    /// The grant that allowed it, if a grant was involved.
    pub grant_id: Option<String>,
    /// Why, in words.
    pub reason: Option<String>,
}

impl Decision {
    /// An allowed decision with a reason.
    pub fn allow(reason: impl Into<String>) -> Self {
        Self {
            allowed: true,
            grant_id: None,
            reason: Some(reason.into()),
        }
    }

    /// A denied decision with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            allowed: false,
            grant_id: None,
            reason: Some(reason.into()),
        }
    }
}

/// How an action turned out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Protocol status (HTTP status code, SQLSTATE class…), as text.
    pub status: String,
    /// Error message, when it failed.
    pub error: Option<String>,
    /// Rows affected or returned.
    pub rows: Option<u64>,
    /// Bytes received from the client.
    pub bytes_in: Option<u64>,
    /// Bytes sent to the client.
    pub bytes_out: Option<u64>,
    /// How long it took.
    pub duration_us: Option<u64>,
}

/// The ledger entry that records how an earlier event ended. It is a separate append-only entry,
/// linked by `event_id`, so nothing in the ledger is ever updated in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The event this completes.
    pub event_id: Uuid,
    /// This entry's own ledger position, assigned when sequenced.
    pub seq: Option<u64>,
    /// When the action completed.
    pub time: Timestamp,
    /// How it ended.
    pub outcome: Outcome,
}

impl OutcomeRecord {
    /// Canonical bytes, as for [`Event::canonical_bytes`].
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_follow_declaration_order() {
        let e = Event::new(
            Timestamp::from_micros(1),
            Actor {
                kind: ActorKind::Human,
                account: Some("admin".into()),
                key_id: None,
                auth: AuthMethod::ApiKey,
            },
            Source::default(),
            Action {
                category: Category::Admin,
                verb: "account.create".into(),
                resource: Some("account/etl".into()),
                detail: None,
            },
            Decision::allow("admin"),
        );
        let s = String::from_utf8(e.canonical_bytes()).unwrap();
        let id = s.find("\"id\"").unwrap();
        let seq = s.find("\"seq\"").unwrap();
        let actor = s.find("\"actor\"").unwrap();
        assert!(id < seq && seq < actor);
        let back: Event = serde_json::from_str(&s).unwrap();
        assert_eq!(back, e);
    }
}
