//! Detection settings: the raw [`DetectConfig`] as written in the server's configuration file,
//! its validation (pure, reporting every problem at once), and the compiled `Settings` the
//! engine runs on (globs built, durations in microseconds).
//!
//! `detect.example.toml`, next to this crate's `Cargo.toml`, shows every key with its default as
//! it appears in the server's configuration (under `[detection]`); a test keeps it parseable.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use warden_core::event::Category;
use warden_core::{Severity, SqlClass, ValidationError};

use crate::catalogue::Detector;
use crate::rules::Rule;

/// The largest `count` or `threshold` accepted: counters keep that many timestamps.
pub const MAX_COUNT: u32 = 10_000;

/// Why a [`DetectConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One or more settings are invalid; every problem found is listed.
    #[error("invalid detection configuration: {}", join(.0))]
    Invalid(Vec<ValidationError>),
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Detection settings. Every field has a production default, so an empty section is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// How long after an account's first observed event the novelty detectors (`new_target`,
    /// `new_action`, `new_source_network`, `unusual_hour`) and `rate_spike` stay silent while
    /// they learn. Default `7d`.
    #[serde(with = "human_duration")]
    pub learning_period: Duration,
    /// Silence after which an account's next event is a `dormant_wakeup`. Default `30d`.
    #[serde(with = "human_duration")]
    pub dormant_after: Duration,
    /// IPv4 prefix length that makes a source network. Default 24.
    pub network_prefix_v4: u8,
    /// IPv6 prefix length that makes a source network. Default 64.
    pub network_prefix_v6: u8,
    /// `rate_spike` settings.
    pub rate: RateConfig,
    /// `denied_burst`: denied HTTP and SQL actions per account. Default 10 in `1m`.
    pub denied_burst: BurstConfig<10>,
    /// `auth_failure_burst`: failed authentications per presented key id, or per source address
    /// when no key id was presented. Default 5 in `1m`.
    pub auth_failure_burst: BurstConfig<5>,
    /// `large_result` settings.
    pub large_result: LargeResultConfig,
    /// Globs over `schema.table` (`public.users`, `hr.*`), matched case-insensitively; any access
    /// to a matching table is a `sensitive_action`. A table named without a schema is taken to be
    /// in `public`.
    pub sensitive_tables: Vec<String>,
    /// Detectors turned off for every account: built-in names or `rule:NAME`.
    pub disabled: Vec<String>,
    /// Detectors turned off for one account: account name → detector names.
    pub accounts: BTreeMap<String, Vec<String>>,
    /// Custom rules.
    pub rules: Vec<RuleConfig>,
    /// Most targets remembered per account. Once full, further new targets are neither learned
    /// nor reported (the baseline summary says it is saturated). Default 64.
    pub max_targets: usize,
    /// Most action keys remembered per account, with the same rule. Default 512.
    pub max_actions: usize,
    /// Most source networks remembered per account, with the same rule. Default 64.
    pub max_networks: usize,
    /// Most allowed events kept waiting for their outcome (for `large_result`); the oldest is
    /// dropped beyond it. Default 100000.
    pub max_pending_outcomes: usize,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            learning_period: Duration::from_secs(7 * 86_400),
            dormant_after: Duration::from_secs(30 * 86_400),
            network_prefix_v4: 24,
            network_prefix_v6: 64,
            rate: RateConfig::default(),
            denied_burst: BurstConfig::default(),
            auth_failure_burst: BurstConfig::default(),
            large_result: LargeResultConfig::default(),
            sensitive_tables: Vec::new(),
            disabled: Vec::new(),
            accounts: BTreeMap::new(),
            rules: Vec::new(),
            max_targets: 64,
            max_actions: 512,
            max_networks: 64,
            max_pending_outcomes: 100_000,
        }
    }
}

/// `rate_spike`: a window whose event count is at least `min_events` and at least `factor` times
/// the account's moving average (an exponentially weighted average over its past active windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateConfig {
    /// Window length; windows are aligned on event time. Default `1m`.
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// How many times the average a window must reach. Default 10.
    pub factor: f64,
    /// The fewest events a spike window must have. Default 100.
    pub min_events: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            factor: 10.0,
            min_events: 100,
        }
    }
}

/// A burst: `count` events within `window`. `DEFAULT_COUNT` is the default `count`, which differs
/// between the detectors that use it; either field may be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstConfig<const DEFAULT_COUNT: u32> {
    /// How many events make a burst.
    pub count: u32,
    /// Within how long. Default `1m`.
    pub window: Duration,
}

impl<const DEFAULT_COUNT: u32> Default for BurstConfig<DEFAULT_COUNT> {
    fn default() -> Self {
        Self {
            count: DEFAULT_COUNT,
            window: Duration::from_secs(60),
        }
    }
}

/// [`BurstConfig`] as written, before defaults (serde's derive does not handle const generics).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    count: Option<u32>,
    window: Option<String>,
}

impl<'de, const DEFAULT_COUNT: u32> Deserialize<'de> for BurstConfig<DEFAULT_COUNT> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawBurst::deserialize(d)?;
        let default = Self::default();
        let window = match raw.window {
            None => default.window,
            Some(s) => human_duration::parse(&s).map_err(serde::de::Error::custom)?,
        };
        Ok(Self {
            count: raw.count.unwrap_or(default.count),
            window,
        })
    }
}

impl<const DEFAULT_COUNT: u32> Serialize for BurstConfig<DEFAULT_COUNT> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawBurst {
            count: Some(self.count),
            window: Some(humantime::format_duration(self.window).to_string()),
        }
        .serialize(s)
    }
}

/// `large_result`: rows or bytes sent above both a floor and `factor` times the account's running
/// mean for the same action key. An action needs 5 earlier results before its mean is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LargeResultConfig {
    /// How many times the mean. Default 20.
    pub factor: f64,
    /// Rows below this are never large. Default 10000.
    pub min_rows: u64,
    /// Bytes sent below this are never large. Default 10 MiB (10485760).
    pub min_bytes: u64,
}

impl Default for LargeResultConfig {
    fn default() -> Self {
        Self {
            factor: 20.0,
            min_rows: 10_000,
            min_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A custom rule: events matching `match` are counted per account (events without an account
/// share one counter); when `threshold` of them fall within `window`, a finding `rule:NAME` is
/// raised and the count starts again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name; findings are `rule:NAME`.
    pub name: String,
    /// Severity of its findings. Default `medium`.
    #[serde(default = "default_rule_severity")]
    pub severity: Severity,
    /// What it means, for humans.
    #[serde(default)]
    pub description: String,
    /// Which events count. At least one field must be set.
    #[serde(rename = "match")]
    pub matches: RuleMatch,
    /// How many matching events within `window` raise a finding. Default 1.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Default `1m`.
    #[serde(default = "default_window", with = "human_duration")]
    pub window: Duration,
}

fn default_rule_severity() -> Severity {
    Severity::Medium
}

fn default_threshold() -> u32 {
    1
}

fn default_window() -> Duration {
    Duration::from_secs(60)
}

/// Which events a rule counts; every field set must match. Alert events never match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleMatch {
    /// `auth`, `http`, `sql`, `k8s` or `admin`.
    pub category: Option<Category>,
    /// The verb, compared case-insensitively (`DELETE`, `oauth.token`).
    pub verb: Option<String>,
    /// The target's name, exactly.
    pub target: Option<String>,
    /// The actor's account name, exactly.
    pub account: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<RuleDecision>,
    /// A glob over the resource (`/v1/admin/**`, `public.*`); `*` stays within one `/` segment.
    pub resource: Option<String>,
    /// SQL class: `read`, `write`, `ddl`, `admin` or `tx`.
    pub class: Option<SqlClass>,
}

/// The decision a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleDecision {
    /// Allowed actions.
    Allow,
    /// Denied actions.
    Deny,
}

impl DetectConfig {
    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Settings::compile(self).map(drop)
    }
}

/// A duration in microseconds, saturating.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A duration in microseconds as human text, to the second (`1m`, `30days`).
pub(crate) fn human(us: i64) -> String {
    let secs = u64::try_from(us / 1_000_000).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The compiled settings the engine runs on.
#[derive(Debug)]
pub(crate) struct Settings {
    pub config: DetectConfig,
    pub learning_us: i64,
    pub dormant_us: i64,
    pub rate_window_us: i64,
    pub sensitive: GlobSet,
    pub rules: Vec<Rule>,
    disabled: FxHashSet<String>,
}

impl Settings {
    /// Validates `config` and builds what the engine needs from it.
    pub fn compile(config: &DetectConfig) -> Result<Settings, ConfigError> {
        let mut errors = Vec::new();
        let mut bad = |field: String, message: String| {
            errors.push(ValidationError::new(field, message));
        };
        if config.dormant_after.is_zero() {
            bad("dormant_after".into(), "must be longer than zero".into());
        }
        if config.network_prefix_v4 > 32 {
            bad("network_prefix_v4".into(), "must be at most 32".into());
        }
        if config.network_prefix_v6 > 128 {
            bad("network_prefix_v6".into(), "must be at most 128".into());
        }
        if config.rate.window.is_zero() {
            bad("rate.window".into(), "must be longer than zero".into());
        }
        if !(config.rate.factor.is_finite() && config.rate.factor > 1.0) {
            bad("rate.factor".into(), "must be a number above 1".into());
        }
        if config.rate.min_events == 0 {
            bad("rate.min_events".into(), "must be at least 1".into());
        }
        for (field, count, window) in [
            (
                "denied_burst",
                config.denied_burst.count,
                config.denied_burst.window,
            ),
            (
                "auth_failure_burst",
                config.auth_failure_burst.count,
                config.auth_failure_burst.window,
            ),
        ] {
            check_counter(&mut bad, field, "count", count, window);
        }
        if !(config.large_result.factor.is_finite() && config.large_result.factor > 1.0) {
            bad(
                "large_result.factor".into(),
                "must be a number above 1".into(),
            );
        }
        for (field, value) in [
            ("max_targets", config.max_targets),
            ("max_actions", config.max_actions),
            ("max_networks", config.max_networks),
            ("max_pending_outcomes", config.max_pending_outcomes),
        ] {
            if value == 0 {
                bad(field.into(), "must be at least 1".into());
            }
        }
        let mut sensitive = GlobSetBuilder::new();
        for (i, pattern) in config.sensitive_tables.iter().enumerate() {
            let field = format!("sensitive_tables[{i}]");
            if !pattern.contains('.') {
                bad(
                    field,
                    format!(
                        "`{pattern}` needs a schema: write `schema.table`, e.g. `public.users`"
                    ),
                );
                continue;
            }
            match GlobBuilder::new(pattern).case_insensitive(true).build() {
                Ok(glob) => {
                    sensitive.add(glob);
                }
                Err(e) => bad(field, e.kind().to_string()),
            }
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(config.rules.len());
        for (i, rule) in config.rules.iter().enumerate() {
            let field = format!("rules[{i}]");
            if rule.name.trim().is_empty() || rule.name.chars().any(char::is_whitespace) {
                bad(
                    format!("{field}.name"),
                    "must be a non-empty name without spaces".into(),
                );
            } else if config.rules[..i].iter().any(|r| r.name == rule.name) {
                bad(
                    format!("{field}.name"),
                    format!("`{}` is used by an earlier rule", rule.name),
                );
            }
            check_counter(&mut bad, &field, "threshold", rule.threshold, rule.window);
            if let Some(compiled) = Rule::compile(rule, &field, &mut bad) {
                rules.push(compiled);
            }
        }
        let known = |name: &str| match name.strip_prefix("rule:") {
            Some(rule) => config.rules.iter().any(|r| r.name == rule),
            None => Detector::from_name(name).is_some(),
        };
        let names = config
            .disabled
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("disabled[{i}]"), n));
        let per_account = config.accounts.iter().flat_map(|(account, names)| {
            names
                .iter()
                .enumerate()
                .map(move |(i, n)| (format!("accounts.{account}[{i}]"), n))
        });
        for (field, name) in names.chain(per_account) {
            if !known(name) {
                bad(
                    field,
                    format!(
                        "`{name}` is neither a built-in detector nor `rule:` and a rule's name"
                    ),
                );
            }
        }
        let sensitive = match sensitive.build() {
            Ok(set) => set,
            Err(e) => {
                bad("sensitive_tables".into(), e.to_string());
                GlobSet::empty()
            }
        };
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(Settings {
            config: config.clone(),
            learning_us: micros(config.learning_period),
            dormant_us: micros(config.dormant_after),
            rate_window_us: micros(config.rate.window),
            sensitive,
            rules,
            disabled: config.disabled.iter().cloned().collect(),
        })
    }

    /// Whether findings of `detector` (a built-in name or `rule:NAME`) are wanted for `account`.
    pub fn enabled(&self, detector: &str, account: Option<&str>) -> bool {
        if self.disabled.contains(detector) {
            return false;
        }
        let off_for_account = account
            .and_then(|a| self.config.accounts.get(a))
            .is_some_and(|names| names.iter().any(|n| n == detector));
        !off_for_account
    }
}

fn check_counter(
    bad: &mut impl FnMut(String, String),
    field: &str,
    count_name: &str,
    count: u32,
    window: Duration,
) {
    if !(1..=MAX_COUNT).contains(&count) {
        bad(
            format!("{field}.{count_name}"),
            format!("must be between 1 and {MAX_COUNT}"),
        );
    }
    if window.is_zero() {
        bad(format!("{field}.window"), "must be longer than zero".into());
    }
}

/// Durations as human text (`"90s"`, `"1m"`, `"7d"`).
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    pub fn parse(s: &str) -> Result<Duration, String> {
        humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<DetectConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn empty_config_is_the_valid_default() {
        let c = parse(serde_json::json!({})).unwrap();
        assert_eq!(c, DetectConfig::default());
        c.validate().unwrap();
        assert_eq!(c.auth_failure_burst.count, 5);
        assert_eq!(c.denied_burst.count, 10);
    }

    #[test]
    fn partial_sections_keep_their_own_defaults() {
        let c = parse(serde_json::json!({
            "learning_period": "2d",
            "auth_failure_burst": { "window": "5m" },
            "rules": [{ "name": "deletes", "match": { "verb": "DELETE" } }],
        }))
        .unwrap();
        assert_eq!(c.learning_period, Duration::from_secs(2 * 86_400));
        assert_eq!(c.auth_failure_burst.count, 5);
        assert_eq!(c.auth_failure_burst.window, Duration::from_secs(300));
        assert_eq!(c.rules[0].threshold, 1);
        assert_eq!(c.rules[0].severity, Severity::Medium);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_rejected() {
        assert!(parse(serde_json::json!({ "learning": "7d" })).is_err());
        assert!(parse(serde_json::json!({ "rate": { "window": "soon" } })).is_err());
        assert!(parse(serde_json::json!({ "rules": [{ "name": "x", "match": { "verb": "GET", "colour": "red" } }] })).is_err());
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = parse(serde_json::json!({
            "network_prefix_v4": 33,
            "rate": { "factor": 0.5, "min_events": 0 },
            "denied_burst": { "count": 0 },
            "sensitive_tables": ["users", "hr.["],
            "disabled": ["new_target", "nonsense", "rule:missing"],
            "accounts": { "etl": ["rate_spike", "bogus"] },
            "max_actions": 0,
            "rules": [
                { "name": "a", "match": {} },
                { "name": "a", "match": { "resource": "[" }, "threshold": 0 },
            ],
        }))
        .unwrap();
        let ConfigError::Invalid(errors) = c.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "network_prefix_v4",
            "rate.factor",
            "rate.min_events",
            "denied_burst.count",
            "sensitive_tables[0]",
            "sensitive_tables[1]",
            "disabled[1]",
            "disabled[2]",
            "accounts.etl[1]",
            "max_actions",
            "rules[0].match",
            "rules[1].name",
            "rules[1].threshold",
            "rules[1].match.resource",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
        assert_eq!(errors.len(), 14, "{errors:?}");
    }

    #[test]
    fn example_file_parses_and_shows_the_defaults() {
        #[derive(Deserialize)]
        struct File {
            detection: DetectConfig,
        }
        let text = include_str!("../detect.example.toml");
        let example = toml::from_str::<File>(text).unwrap().detection;
        example.validate().unwrap();
        let defaults = DetectConfig {
            sensitive_tables: example.sensitive_tables.clone(),
            disabled: example.disabled.clone(),
            accounts: example.accounts.clone(),
            rules: example.rules.clone(),
            ..DetectConfig::default()
        };
        assert_eq!(example, defaults);
        assert_eq!(example.rules[0].threshold, 50);
    }

    #[test]
    fn config_round_trips_through_serialisation() {
        let c = parse(serde_json::json!({
            "rules": [{ "name": "x", "match": { "verb": "GET" }, "window": "90s" }],
            "denied_burst": { "window": "2m" },
        }))
        .unwrap();
        let back = parse(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.rules[0].window, Duration::from_secs(90));
    }

    #[test]
    fn rule_names_can_be_disabled() {
        let c = parse(serde_json::json!({
            "disabled": ["rule:deletes"],
            "rules": [{ "name": "deletes", "match": { "verb": "DELETE" } }],
        }))
        .unwrap();
        let s = Settings::compile(&c).unwrap();
        assert!(!s.enabled("rule:deletes", Some("etl")));
        assert!(s.enabled("new_target", Some("etl")));
    }

    #[test]
    fn alert_category_cannot_be_matched() {
        let c = parse(serde_json::json!({
            "rules": [{ "name": "loop", "match": { "category": "alert" } }],
        }))
        .unwrap();
        let ConfigError::Invalid(errors) = c.validate().unwrap_err();
        assert_eq!(errors[0].field, "rules[0].match.category");
    }
}
