//! Configuration: built-in defaults, overridden by `warden.toml`, overridden by `WARDEN_*`
//! environment variables, overridden by command-line flags.
//!
//! Environment variables name a key in upper case with the `WARDEN_` prefix; nested keys join
//! with a double underscore (`WARDEN_AUTH__CACHE_TTL=2s`). Unknown keys are errors, and every
//! error names the file (or variable) and the key. Loading does no I/O beyond reading the file;
//! the data directory and the database are touched only when the server starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Environment variables that belong to the CLI, not to the server's configuration.
/// (`WARDEN_LOG` is read by the binary's logger, `WARDEN_TEST_PG` by the test suite, and
/// `WARDEN_MASTER_KEY` by the server directly so that it never sits in a config file.)
const CLI_ONLY_VARS: &[&str] = &["url", "token", "log", "test_pg", "master_key"];

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where Warden keeps its SQLite database, admin token and keys.
    pub data_dir: PathBuf,
    /// Where the keys live (ledger signing key, token signing key, hashing key, master key),
    /// each created on first start with mode 0600. Default: `data_dir`. Instances sharing one
    /// database must share these keys: point them all at one (secured) directory.
    pub keys_dir: Option<PathBuf>,
    /// A `postgres://` URL to use PostgreSQL instead of the embedded SQLite database.
    pub database_url: Option<String>,
    /// Address of the REST API (`host:port`; port 0 picks a free one).
    pub api_addr: SocketAddr,
    /// Address of the HTTP gateway.
    pub http_addr: SocketAddr,
    /// Address of the PostgreSQL gateway.
    pub postgres_addr: SocketAddr,
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Ledger writer settings.
    pub ledger: LedgerConfig,
    /// Gateway settings.
    pub gateway: GatewayConfig,
    /// PostgreSQL gateway settings.
    pub postgres: PostgresConfig,
    /// Detection: baselines, detector thresholds, per-account switches and custom rules.
    pub detection: warden_detect::DetectConfig,
    /// Alerts: de-duplication, delivery retries and the sinks alerts go to.
    pub alerts: AlertsConfig,
    /// Accountability analysis settings.
    pub accountability: AccountabilityConfig,
    /// Lifecycle policies (each off by default).
    pub lifecycle: crate::lifecycle::LifecycleConfig,
}

/// Accountability analysis settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountabilityConfig {
    /// Emails of the humans on record (from HR or the directory): an account owned by anyone
    /// else is a finding. Empty: that check is skipped.
    pub people: Vec<String>,
}

/// Alert settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Run detection in this instance. Instances sharing one database should run it in one of
    /// them only (each would raise its own alerts).
    pub enabled: bool,
    /// How much of the ledger rebuilds the baselines on start (e.g. `"30d"`).
    #[serde(with = "humantime_serde_str")]
    pub history: Duration,
    /// A finding joins an unresolved alert of the same detector, account and subject last seen
    /// within this long; after it, it opens a new alert.
    #[serde(with = "humantime_serde_str")]
    pub dedup_window: Duration,
    /// Longest wait between delivery attempts to a sink that is down (the wait doubles from
    /// half a second up to this).
    #[serde(with = "humantime_serde_str")]
    pub retry_max_backoff: Duration,
    /// Where alerts go: `webhook`, `slack`, `syslog` or `jsonl_file` sinks (a `jsonl_file` sink
    /// receives every event as OCSF too).
    pub sinks: Vec<warden_sinks::SinkConfig>,
}

/// How database clients log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgAuthMethod {
    /// The key or token as a cleartext password.
    Password,
    /// SCRAM-SHA-256 against a verifier of the key.
    ScramSha256,
}

/// PostgreSQL gateway settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Refuse clients that are not on loopback unless they use TLS.
    pub require_tls: bool,
    /// How clients log in: `password` (the API key or an access token as the password, inside
    /// TLS) or `scram-sha-256` (a proof of the API key; the key never crosses the wire, and
    /// access tokens cannot be used).
    pub auth_method: PgAuthMethod,
    /// The certificate (PEM chain) Warden presents to clients. Default: a self-signed one,
    /// `<data_dir>/pg-tls.crt`, created on first start.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM). Default: `<data_dir>/pg-tls.key` (mode 0600).
    pub tls_key_file: Option<PathBuf>,
    /// Largest protocol message accepted, in bytes (larger ones close the connection).
    pub max_message_bytes: usize,
    /// Close sessions idle this long (e.g. `"1h"`); `"0s"` never.
    #[serde(with = "humantime_serde_str")]
    pub idle_timeout: Duration,
    /// Cancel statements that run longer than this; `"0s"` never.
    #[serde(with = "humantime_serde_str")]
    pub statement_timeout: Duration,
    /// Most concurrent sessions per account; `0` unlimited.
    pub max_sessions_per_account: usize,
    /// On shutdown, how long running statements get to finish.
    #[serde(with = "humantime_serde_str")]
    pub shutdown_grace: Duration,
    /// How often targets are checked for a due scheduled rotation (`rotation_period`).
    #[serde(with = "humantime_serde_str")]
    pub rotation_check: Duration,
}

impl Config {
    /// The PostgreSQL front door's settings (TLS is set up by the server).
    pub fn pg_config(&self) -> warden_gateway::postgres::PgGatewayConfig {
        let p = &self.postgres;
        warden_gateway::postgres::PgGatewayConfig {
            max_message_bytes: p.max_message_bytes,
            require_tls: p.require_tls,
            password_auth: match p.auth_method {
                PgAuthMethod::Password => warden_gateway::postgres::PasswordAuth::Cleartext,
                PgAuthMethod::ScramSha256 => warden_gateway::postgres::PasswordAuth::ScramSha256,
            },
            connect_timeout: self.gateway.connect_timeout,
            idle_timeout: (!p.idle_timeout.is_zero()).then_some(p.idle_timeout),
            statement_timeout: (!p.statement_timeout.is_zero()).then_some(p.statement_timeout),
            max_sessions_per_account: (p.max_sessions_per_account > 0)
                .then_some(p.max_sessions_per_account),
            shutdown_grace: p.shutdown_grace,
        }
    }
}

/// Gateway settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Longest wait to connect to an upstream.
    #[serde(with = "humantime_serde_str")]
    pub connect_timeout: Duration,
    /// Longest wait for an upstream's response head (502/504 after).
    #[serde(with = "humantime_serde_str")]
    pub response_timeout: Duration,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Query parameters recorded only as keyed hashes.
    pub sensitive_params: Vec<String>,
    /// Requests per second allowed per account; `0` turns the limit off.
    pub rate_limit_per_second: u32,
}

impl GatewayConfig {
    /// The HTTP front door's settings.
    pub fn http_config(&self) -> warden_gateway::http::HttpGatewayConfig {
        warden_gateway::http::HttpGatewayConfig {
            connect_timeout: self.connect_timeout,
            response_timeout: self.response_timeout,
            trusted_proxies: self.trusted_proxies.clone(),
            sensitive_params: self.sensitive_params.clone(),
            rate_limit: std::num::NonZeroU32::new(self.rate_limit_per_second),
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a key record may be served from the in-process cache. Changes made through this
    /// instance apply immediately regardless; this bounds how long another instance sharing the
    /// database may lag.
    #[serde(with = "humantime_serde_str")]
    pub cache_ttl: Duration,
    /// Lifetime of the access tokens `POST /oauth/token` issues (e.g. `"15m"`; 1s to 24h).
    /// Revoking the key or disabling the account stops a live token at once regardless.
    #[serde(with = "humantime_serde_str")]
    pub token_ttl: Duration,
}

/// Ledger writer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// When an event counts as written: `fsync` (flushed to disk; survives power loss; the
    /// default) or `os` (handed to the operating system; survives Warden crashing or being
    /// killed, not the machine losing power, and saves one disk flush per batch).
    pub durability: warden_store::Durability,
    /// How long a request waits for its event to be durable before it is refused.
    #[serde(with = "humantime_serde_str")]
    pub write_timeout: Duration,
    /// The checkpoint signing key (a `PRIVATE+KEY+…` signed-note key). Default:
    /// `<keys_dir>/ledger-signing-key`, created on first start. Never stored in the database.
    pub signing_key_file: Option<PathBuf>,
    /// Sign a checkpoint after this many new entries…
    pub checkpoint_every: u64,
    /// …or after this long, whichever comes first.
    #[serde(with = "humantime_serde_str")]
    pub checkpoint_interval: Duration,
    /// Also copy every checkpoint into this directory, so a copy lives outside Warden's database.
    pub checkpoint_dir: Option<PathBuf>,
    /// Also POST every new checkpoint (the signed note, `text/plain`) to this URL, so a copy
    /// lives with someone else (a witness, a monitoring system). Retried until it succeeds.
    pub checkpoint_url: Option<String>,
    /// Remove the bodies of events older than this (e.g. `"400d"`), keeping the hashes that
    /// verification and consistency proofs need. Default: keep everything.
    #[serde(default, with = "humantime_serde_opt")]
    pub retention: Option<Duration>,
    /// How often the retention job runs.
    #[serde(with = "humantime_serde_str")]
    pub retention_check: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("warden-data"),
            keys_dir: None,
            database_url: None,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8470)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8471)),
            postgres_addr: SocketAddr::from(([127, 0, 0, 1], 15432)),
            max_body_bytes: 64 * 1024,
            auth: AuthConfig {
                cache_ttl: Duration::from_secs(2),
                token_ttl: Duration::from_secs(15 * 60),
            },
            ledger: LedgerConfig {
                max_batch: 4096,
                durability: warden_store::Durability::Fsync,
                write_timeout: Duration::from_secs(5),
                signing_key_file: None,
                checkpoint_every: 1000,
                checkpoint_interval: Duration::from_secs(10),
                checkpoint_dir: None,
                checkpoint_url: None,
                retention: None,
                retention_check: Duration::from_secs(3600),
            },
            gateway: GatewayConfig {
                connect_timeout: Duration::from_secs(5),
                response_timeout: Duration::from_secs(30),
                trusted_proxies: Vec::new(),
                sensitive_params: [
                    "token",
                    "access_token",
                    "api_key",
                    "apikey",
                    "key",
                    "password",
                    "secret",
                    "signature",
                    "sig",
                ]
                .map(String::from)
                .to_vec(),
                rate_limit_per_second: 0,
            },
            postgres: PostgresConfig {
                require_tls: true,
                auth_method: PgAuthMethod::Password,
                tls_cert_file: None,
                tls_key_file: None,
                max_message_bytes: warden_gateway::postgres::DEFAULT_MAX_MESSAGE,
                idle_timeout: Duration::ZERO,
                statement_timeout: Duration::ZERO,
                max_sessions_per_account: 0,
                shutdown_grace: Duration::from_secs(10),
                rotation_check: Duration::from_secs(30),
            },
            detection: warden_detect::DetectConfig::default(),
            accountability: AccountabilityConfig::default(),
            lifecycle: crate::lifecycle::LifecycleConfig::default(),
            alerts: AlertsConfig {
                enabled: true,
                history: Duration::from_secs(30 * 24 * 3600),
                dedup_window: Duration::from_secs(3600),
                retry_max_backoff: Duration::from_secs(300),
                sinks: Vec::new(),
            },
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--api-addr`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<SocketAddr>,
    /// `--http-addr`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// `--postgres-addr`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_addr: Option<SocketAddr>,
}

/// A configuration that cannot be used; the message names the source and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the configuration. `file` is the `--config` path; without it `./warden.toml` is read
    /// if it exists. A named file that does not exist is an error.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("warden.toml").exists() => {
                figment = figment.merge(Toml::file_exact("warden.toml"));
            }
            None => {}
        }
        figment = figment
            .merge(Env::prefixed("WARDEN_").split("__").filter(|k| {
                !CLI_ONLY_VARS
                    .iter()
                    .any(|v| k.as_str().eq_ignore_ascii_case(v))
            }))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot, reporting every problem at once.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems
                    .push("database_url: must start with postgres:// or postgresql://".to_owned());
            }
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes: must be at least 1024".to_owned());
        }
        if self.postgres.max_message_bytes < 8192 {
            problems.push("postgres.max_message_bytes: must be at least 8192".to_owned());
        }
        if self.postgres.tls_cert_file.is_some() != self.postgres.tls_key_file.is_some() {
            problems.push(
                "postgres.tls_cert_file and postgres.tls_key_file: set both or neither".to_owned(),
            );
        }
        if self.ledger.max_batch == 0 {
            problems.push("ledger.max_batch: must be at least 1".to_owned());
        }
        if let Some(url) = &self.ledger.checkpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems
                    .push("ledger.checkpoint_url: must be an http:// or https:// URL".to_owned());
            }
        }
        if self.ledger.checkpoint_every == 0 {
            problems.push("ledger.checkpoint_every: must be at least 1".to_owned());
        }
        if self.ledger.checkpoint_interval.is_zero() {
            problems.push("ledger.checkpoint_interval: must be longer than 0s".to_owned());
        }
        if self.postgres.rotation_check.is_zero() {
            problems.push("postgres.rotation_check: must be longer than 0s".to_owned());
        }
        if self.ledger.write_timeout.is_zero() {
            problems.push("ledger.write_timeout: must be longer than 0s".to_owned());
        }
        if self.auth.token_ttl < Duration::from_secs(1)
            || self.auth.token_ttl > Duration::from_secs(24 * 3600)
        {
            problems.push("auth.token_ttl: must be between 1s and 24h".to_owned());
        }
        if let Err(e) = self.detection.validate() {
            problems.push(format!("detection: {e}"));
        }
        if self.alerts.retry_max_backoff < Duration::from_secs(1) {
            problems.push("alerts.retry_max_backoff: must be at least 1s".to_owned());
        }
        problems.extend(self.lifecycle.problems());
        if let Err(e) = warden_sinks::validate(&self.alerts.sinks) {
            problems.push(format!("alerts.sinks: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "invalid configuration: {}",
                problems.join("; ")
            )))
        }
    }

    /// The directory of the key files.
    pub fn keys_dir(&self) -> &Path {
        self.keys_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// Where the checkpoint signing key is kept.
    pub fn signing_key_path(&self) -> PathBuf {
        self.ledger
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.keys_dir().join("ledger-signing-key"))
    }

    /// The SQLite database file inside the data directory.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("warden.db")
    }
}

/// One line per figment error: the key, what is wrong, and where the value came from.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("key `{}`: ", e.path.join("."))
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (in {src})"),
                    None => format!(" (in {})", m.name),
                })
                .unwrap_or_default();
            format!("invalid configuration: {key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Durations as human text (`"2s"`, `"5m"`, `"24h"`) in the config file and environment.
pub(crate) mod humantime_serde_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}")))
    }
}

/// Optional durations as human text.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::humantime_serde_str::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(contents: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, contents).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn file_values_apply() {
        let c = with_file("api_addr = \"127.0.0.1:0\"\n[ledger]\nretention = \"400d\"\n[auth]\ncache_ttl = \"250ms\"\n").unwrap();
        assert_eq!(c.ledger.retention, Some(Duration::from_secs(400 * 86400)));
        assert_eq!(c.api_addr.port(), 0);
        assert_eq!(c.auth.cache_ttl, Duration::from_millis(250));
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = with_file("api_addr = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_addr") && e.contains("warden.toml"), "{e}");
        let e = with_file("[auth]\ncache_tt = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache_tt"), "{e}");
        let e = with_file("[ledger]\nwrite_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ledger.write_timeout") && e.contains("soon"),
            "{e}"
        );
        let e = with_file("api_addr = [").unwrap_err().to_string();
        assert!(e.contains("warden.toml"), "{e}");
    }

    #[test]
    fn durability_is_named() {
        let c = with_file("[ledger]\ndurability = \"os\"\n").unwrap();
        assert_eq!(c.ledger.durability, warden_store::Durability::Os);
        let e = with_file("[ledger]\ndurability = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ledger.durability"), "{e}");
    }

    #[test]
    fn missing_named_file_is_an_error() {
        let e = Config::load(
            Some(Path::new("/nonexistent/warden.toml")),
            &Overrides::default(),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/warden.toml"));
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, "data_dir = \"/from/file\"\n").unwrap();
        let o = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        assert_eq!(
            Config::load(Some(&path), &o).unwrap().data_dir,
            PathBuf::from("/from/flag")
        );
    }

    #[test]
    fn token_ttl_is_bounded() {
        assert_eq!(
            with_file("").unwrap().auth.token_ttl,
            Duration::from_secs(900)
        );
        assert_eq!(
            with_file("[auth]\ntoken_ttl = \"5m\"\n")
                .unwrap()
                .auth
                .token_ttl,
            Duration::from_secs(300)
        );
        for bad in ["0s", "500ms", "25h"] {
            let e = with_file(&format!("[auth]\ntoken_ttl = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("auth.token_ttl"), "{e}");
        }
    }

    #[test]
    fn semantic_problems_are_reported_together() {
        let e = with_file("database_url = \"mysql://x\"\nmax_body_bytes = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database_url") && e.contains("max_body_bytes"),
            "{e}"
        );
    }
}
