//! Warden's domain: the nouns every other crate shares, and the pure rules about them.
//!
//! - [`time`]: [`Timestamp`] (UTC, microseconds) and the injectable [`Clock`].
//! - [`alert`]: what detection raises, its severity and lifecycle.
//! - [`account`]: service accounts, their names, owners and status.
//! - [`credential`]: the secret-bearing tokens (service-account API keys, admin tokens): format,
//!   generation, digests and constant-time verification.
//! - [`key`]: an API key's stored record and its lifecycle state (active, in rotation grace,
//!   expired, revoked).
//! - [`admin`]: the humans who administer Warden.
//! - [`event`]: the one record every part of Warden shares.
//! - [`redact`]: keyed hashes that stand in for sensitive values.
//! - [`target`]: the upstream APIs and databases, and the credentials Warden injects.
//! - [`seal`]: encryption at rest for those credentials.
//! - [`grant`]: what an account may do on a target, and the deny-by-default decision.
//! - [`sql_rule`]: the classes of SQL statements and the rules that grant them on databases.
//!
//! This crate must not do I/O: no files, no network, no database. Everything here can be unit
//! tested with values alone.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod alert;
pub mod credential;
pub mod event;
pub mod grant;
pub mod key;
pub mod redact;
pub mod seal;
pub mod sql_rule;
pub mod target;
pub mod time;

pub use account::{Account, AccountName, AccountStatus, Email};
pub use admin::Admin;
pub use alert::{Alert, AlertStatus, Severity};
pub use credential::{Credential, CredentialKind, ParseCredentialError, SecretDigest};
pub use event::Event;
pub use grant::{
    decide_http, decide_sql, Grant, GrantSetVersion, GrantSpec, HttpRule, Rule, SqlDecision,
};
pub use key::{KeyRecord, KeyState};
pub use redact::Redactor;
pub use seal::{SealError, Sealer};
pub use sql_rule::{SqlClass, SqlRule};
pub use target::{Target, TargetKind, UpstreamCredentials};
pub use time::{elapsed_micros, Clock, ManualClock, SystemClock, Timestamp};

/// A field of a request failed validation; `field` names it so clients can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field that is wrong, as named in the API (`name`, `owner`, `labels.team`…).
    pub field: String,
    /// What is wrong with it, in a sentence a user can act on.
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
