//! Warden's front doors: where service accounts come in. Each front door authenticates the
//! caller, decides against its grants, records the action on the ledger before forwarding it
//! (fail closed), and records the outcome when it completes. Every front door produces the same
//! `Event`.
//!
//! - [`auth`]: verifying API keys, access tokens and admin tokens (shared with the control-plane
//!   API).
//! - [`token`]: short-lived EdDSA JWT access tokens (OAuth 2.0 client credentials) and their JWKS.
//! - [`policy`]: targets and grants, cached, and grant use.
//! - [`http`]: the HTTP front door (`/<target>/<path>` on port 8471).
//! - [`postgres`]: the PostgreSQL front door (wire protocol 3.0 on port 15432).
//! - [`tls`]: TLS to upstreams, shared by both.
//!
//! This crate reaches the database only through the `Store` trait and never decides what a grant
//! means (that is `warden-core`'s).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod http;
pub mod policy;
pub mod postgres;
pub mod tls;
pub mod token;

use std::sync::Arc;

/// What every front door shares: who is calling ([`auth::Authenticator`]), what they may do
/// ([`policy::Policy`]), where actions are recorded, the clock, and the keyed hash for sensitive
/// values. Cheap to clone.
#[derive(Clone)]
pub struct FrontDoor {
    /// Verifies credentials.
    pub auth: Arc<auth::Authenticator>,
    /// Targets and grants.
    pub policy: Arc<policy::Policy>,
    /// The one ledger writer.
    pub ledger: warden_ledger::LedgerWriter,
    /// Where "now" comes from.
    pub clock: Arc<dyn warden_core::Clock>,
    /// Hashes sensitive values (query parameters, bind parameters).
    pub redactor: warden_core::Redactor,
}
