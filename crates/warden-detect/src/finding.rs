//! Findings: what a detector reports about one event. The server turns them into de-duplicated
//! alerts keyed by detector, account and subject.

use serde::Serialize;
use uuid::Uuid;
use warden_core::{Severity, Timestamp};

/// One detector's report about one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The detector's name (`new_source_network`, `rule:bulk-deletes`…).
    pub detector: String,
    /// How urgent.
    pub severity: Severity,
    /// The account concerned, when known.
    pub account: Option<String>,
    /// The key id presented, when known.
    pub key_id: Option<String>,
    /// The target concerned, when there is one.
    pub target: Option<String>,
    /// What the finding is about within the detector and account (the network `10.1.2.0/24`,
    /// the action key, the key id, the table, the hour `03`, the rule name); with `detector` and
    /// `account` it is the de-duplication key.
    pub subject: String,
    /// One sentence for a human.
    pub summary: String,
    /// The event concerned (for `large_result`, the event whose outcome was large).
    pub event_id: Uuid,
    /// Ledger position of the entry that raised it.
    pub seq: u64,
    /// The entry's time.
    pub time: Timestamp,
    /// The source address, when known.
    pub source_ip: Option<String>,
}

/// The ledger entry a finding is about, borrowed from the event or pending outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub account: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub event_id: Uuid,
    pub seq: u64,
    pub time: Timestamp,
    pub source_ip: Option<&'a str>,
}

impl Origin<'_> {
    /// A finding about this entry.
    pub fn finding(
        &self,
        detector: &str,
        severity: Severity,
        subject: String,
        summary: String,
    ) -> Finding {
        Finding {
            detector: detector.to_owned(),
            severity,
            account: self.account.map(str::to_owned),
            key_id: self.key_id.map(str::to_owned),
            target: self.target.map(str::to_owned),
            subject,
            summary,
            event_id: self.event_id,
            seq: self.seq,
            time: self.time,
            source_ip: self.source_ip.map(str::to_owned),
        }
    }

    /// Who, for summaries: the account, else the key id, else `an unknown client`.
    pub fn who(&self) -> &str {
        self.account.or(self.key_id).unwrap_or("an unknown client")
    }
}
