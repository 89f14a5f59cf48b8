//! Alerts: what detection raises when an account behaves unlike itself, with a lifecycle (open,
//! acknowledged, resolved) and de-duplication (one alert for a burst, with a count and the first
//! and last time it was seen).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// How urgent an alert is. The numbers follow OCSF's `severity_id` (1 informational … 5 critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action expected.
    Info,
    /// Unusual but probably benign.
    Low,
    /// Should be looked at today.
    Medium,
    /// Should be looked at now.
    High,
    /// Likely compromise or abuse in progress.
    Critical,
}

impl Severity {
    /// As the API and config spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Self::Info => 1,
            Self::Low => 2,
            Self::Medium => 3,
            Self::High => 4,
            Self::Critical => 5,
        }
    }

    /// Parses `info`, `low`, `medium`, `high` or `critical`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody has looked at it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Closed.
    Resolved,
}

impl AlertStatus {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses `open`, `acknowledged` or `resolved`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// The most events an alert links to; later events of a burst only raise its count.
pub const MAX_LINKED_EVENTS: usize = 50;

/// One alert: a detector's finding about an account, de-duplicated over a burst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id (UUIDv7).
    pub id: Uuid,
    /// The detector that raised it (`new_source_network`, `rule:bulk-deletes`…).
    pub detector: String,
    /// How urgent.
    pub severity: Severity,
    /// Lifecycle state.
    pub status: AlertStatus,
    /// The account concerned, when there is one.
    pub account: Option<String>,
    /// The target concerned, when there is one.
    pub target: Option<String>,
    /// What, within the detector and account, the alert is about (the new network, the key id…);
    /// with `detector` and `account` it is the de-duplication key.
    pub subject: String,
    /// One sentence for a human.
    pub summary: String,
    /// How many findings this alert stands for.
    pub count: u64,
    /// The first finding's event time.
    pub first_seen: Timestamp,
    /// The latest finding's event time.
    pub last_seen: Timestamp,
    /// Ledger positions of the events that raised it (the first [`MAX_LINKED_EVENTS`]).
    pub seqs: Vec<u64>,
    /// Who acknowledged it, and when.
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<Timestamp>,
    /// The latest note left with an acknowledgement or resolution.
    pub note: Option<String>,
}
