//! Warden's wiring: configuration, the control-plane REST API, metrics and the serve loop. This
//! crate connects the store, the ledger writer (`warden-ledger`) and the authenticator to HTTP; it holds no business
//! rules of its own (those live in `warden-core`).
//!
//! - [`config`]: layered configuration (defaults, `warden.toml`, `WARDEN_*`, flags).
//! - [`server`]: starting and stopping a server; the data directory and bootstrap admin.
//! - [`api`]: the REST API, problem documents, health and metrics endpoints.
//! - [`console`]: the web console (server-rendered pages for admins) on the API address.
//! - [`jobs`]: background jobs (credential use, ledger retention).
//! - [`follow`]: reading the ledger as it grows.
//! - [`detection`]: baselines and detectors following the ledger.
//! - [`alerts`]: de-duplicated alerts, their lifecycle, and delivery through durable outboxes.
//! - [`export`]: every event as OCSF JSON lines for SIEMs.
//! - [`lifecycle`]: policies that disable, expire and rotate on a schedule.
//! - [`usage`]: daily counts of what each grant was used for, for least-privilege analysis.
//! - [`passwords`]: admins' console passwords (argon2id).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod config;
pub mod console;
pub mod detection;
pub mod export;
pub mod follow;
pub mod jobs;
pub mod lifecycle;
pub mod passwords;
pub mod server;
pub mod usage;

pub use config::{Config, ConfigError, Overrides};
pub use server::{Running, ServeError};
