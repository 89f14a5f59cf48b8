//! Warden's detection: per-account behaviour baselines and the detectors that turn ledger
//! entries into findings. Pure and synchronous: no I/O, no clock; the server feeds every ledger
//! entry in sequence order and turns findings into de-duplicated alerts.
//!
//! - [`config`]: [`DetectConfig`], its defaults and validation.
//! - [`catalogue`](mod@catalogue): the built-in detectors, their names, severities and rationale.
//! - [`engine`]: [`Engine`], which learns and detects, and reports its memory.
//! - [`finding`]: [`Finding`], what a detector reports.
//! - [`baseline`]: one account's learned behaviour and its [`BaselineSummary`].
//! - [`shape`]: action keys and route shapes ([`route_shape`]), source networks.
//! - `window`, `pending`, `rules`: counting in time, events awaiting their outcome, custom rules.
//!
//! Choices that shape the findings (details in [`engine`] and [`config`]):
//!
//! - Baselines are per service account. Admin and alert events, humans and Warden itself teach
//!   nothing; failed authentications teach nothing but feed `dead_credential` and
//!   `auth_failure_burst`.
//! - Every authenticated event (allowed or denied) teaches activity: hours, networks, rate. Only
//!   allowed actions teach targets, action keys and result sizes.
//! - Novelty detectors and `rate_spike` learn silently for `learning_period` after an account's
//!   first event.
//! - Per-account sets are bounded (`max_targets`, `max_actions`, `max_networks`); a full set
//!   learns and reports nothing new, and the baseline summary lists it as saturated.
//! - Time is always the entry's own time, so replaying the ledger rebuilds the same state.
//!
//! ```
//! use warden_detect::{DetectConfig, Engine};
//! let engine = Engine::new(DetectConfig::default()).unwrap();
//! assert_eq!(engine.stats().accounts, 0);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod baseline;
pub mod catalogue;
pub mod config;
pub mod engine;
pub mod finding;
mod pending;
mod rules;
pub mod shape;
mod window;

#[cfg(test)]
mod tests;

pub use baseline::BaselineSummary;
pub use catalogue::{catalogue, Detector, DetectorInfo};
pub use config::{
    BurstConfig, ConfigError, DetectConfig, LargeResultConfig, RateConfig, RuleConfig,
    RuleDecision, RuleMatch,
};
pub use engine::{Engine, EngineStats};
pub use finding::Finding;
pub use shape::route_shape;
