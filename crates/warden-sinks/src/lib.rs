//! Alert delivery: telling people. Each [`Sink`] takes an [`Alert`](warden_core::Alert) to one
//! place (a signed webhook, a Slack channel, a syslog collector, a JSON-lines file) in one
//! attempt with a timeout. Storage, the outbox and retry scheduling belong to the server: it
//! calls [`Sink::deliver`] and, on error, tries again later with the same delivery id.
//!
//! - [`config`]: the `[[alerts.sinks]]` tables and their pure validation.
//! - [`sink`]: [`build`] and [`Sink`], the built sink.
//! - [`webhook`]: signed JSON POSTs, with [`verify_signature`] for receivers.
//! - [`slack`]: Slack-compatible incoming webhooks.
//! - [`syslog`]: RFC 5424 over UDP or TCP.
//! - [`jsonl`]: OCSF objects appended to a file, for alerts and for every event.
//! - `http`: the HTTP client and POST shared by webhooks and Slack.
//! - [`error`]: build and delivery errors.
//!
//! Secrets (webhook keys, Slack URLs) never appear in `Debug` output or errors.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
mod http;
pub mod jsonl;
pub mod sink;
pub mod slack;
pub mod syslog;
pub mod webhook;

pub use config::{validate, Facility, SinkConfig, SinkUrl, Transport};
pub use error::{DeliveryError, Failure, SinkError};
pub use jsonl::JsonlFile;
pub use sink::{build, Built, EventFile, Sink};
pub use webhook::{payload, verify_signature};
