//! Warden's front doors: where service accounts come in. Each front door authenticates the
//! caller, decides against its grants, records the action on the ledger before forwarding it
//! (fail closed), and records the outcome when it completes. Every front door produces the same
//! `Event`.
//!
//! - [`auth`]: verifying API keys and admin tokens (shared with the control-plane API).
//!
//! This crate reaches the database only through the `Store` trait and never decides what a grant
//! means (that is `warden-core`'s).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
