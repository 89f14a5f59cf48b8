//! Warden's wiring: configuration, the control-plane REST API, metrics and the serve loop. This
//! crate connects the store, the ledger writer (`warden-ledger`) and the authenticator to HTTP; it holds no business
//! rules of its own (those live in `warden-core`).
//!
//! - [`config`]: layered configuration (defaults, `warden.toml`, `WARDEN_*`, flags).
//! - [`server`]: starting and stopping a server; the data directory and bootstrap admin.
//! - [`api`]: the REST API, problem documents, health and metrics endpoints.
//! - [`jobs`]: background jobs (credential use, ledger retention).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod jobs;
pub mod server;

pub use config::{Config, ConfigError, Overrides};
pub use server::{Running, ServeError};
