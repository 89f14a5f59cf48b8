//! Accountability analysis of service accounts: is every account owned, needed,
//! least-privileged and rotated? The answer a compliance lead asks for, with the controls of
//! SOC 2, ISO 27001, PCI DSS, HIPAA and GDPR each finding is evidence against.
//!
//! Pure and synchronous: the server loads a [`Population`] (accounts, keys, grants and daily
//! usage rollups from the ledger) and calls [`analyze`] or [`recommend()`] with the time of the
//! analysis; nothing here does I/O or reads the clock.
//!
//! - [`usage`]: the usage rollups ([`UsageRecord`]) and the [`Window`] considered.
//! - [`controls`](mod@controls): the catalogue of compliance controls findings cite.
//! - [`finding`]: finding kinds, their severities and controls.
//! - [`analysis`]: [`analyze`]: per-account reports, findings, risk and a summary.
//! - [`recommend`](mod@recommend): [`recommend()`]: least-privilege changes to one account's
//!   grants, as a diff.
//! - `action` and `plan` (private): what an observed action needs, and the per-grant judgement
//!   both of the above share.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Duration;

use warden_core::{Account, Grant, KeyRecord};

mod action;
pub mod analysis;
pub mod controls;
pub mod finding;
mod plan;
pub mod recommend;
pub mod usage;

pub use analysis::{analyze, AccountReport, Analysis, GrantUsage, KeyAge, StatusCounts, Summary};
pub use controls::{controls, Control};
pub use finding::{Finding, FindingKind};
pub use recommend::{recommend, GrantRef, Narrowing, NewGrant, Recommendation, Removal};
pub use usage::{ActionUse, UsageRecord, Window};

/// A day, the unit the options are usually given in.
const DAY: Duration = Duration::from_secs(86_400);

/// Thresholds of the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How far back usage is considered (default 90 days).
    pub window: Duration,
    /// An account or key unused this long is a finding (default 90 days, PCI DSS 8.2.6).
    pub unused_after: Duration,
    /// A key older than this is a finding (default 90 days, PCI DSS 8.3.9).
    pub max_key_age: Duration,
    /// Grants younger than this are never recommended for removal or narrowing, and accounts
    /// and keys younger than this are not yet "never used" (default 14 days).
    pub protect_new: Duration,
    /// Owner emails of the humans on record (an HR or directory export); empty skips the
    /// `owner_not_on_record` check.
    pub people: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: DAY * 90,
            unused_after: DAY * 90,
            max_key_age: DAY * 90,
            protect_new: DAY * 14,
            people: Vec::new(),
        }
    }
}

/// Everything the analysis looks at, loaded by the caller. Records of accounts not in
/// `accounts` are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Population<'a> {
    /// The service accounts.
    pub accounts: &'a [Account],
    /// Their API keys.
    pub keys: &'a [KeyRecord],
    /// Their grants.
    pub grants: &'a [Grant],
    /// Daily rollups of their allowed actions.
    pub usage: &'a [UsageRecord],
}

/// Why an analysis could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No account has this name.
    #[error("no account named `{0}`")]
    UnknownAccount(String),
}

#[cfg(test)]
mod tests;
