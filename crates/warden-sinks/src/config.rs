//! Sink configuration as operators write it (`[[alerts.sinks]]` tables), and its validation.
//!
//! Validation is pure and reports every problem at once; reading secret files and opening
//! output files happens only in [`crate::build`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use warden_core::Severity;

use crate::error::SinkError;

/// One sink. `kind` selects the variant: `webhook`, `slack`, `syslog` or `jsonl_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkConfig {
    /// A signed JSON POST to an HTTP endpoint.
    Webhook(WebhookConfig),
    /// A Slack (or compatible: Mattermost, Rocket.Chat) incoming webhook.
    Slack(SlackConfig),
    /// RFC 5424 syslog over UDP or TCP.
    Syslog(SyslogConfig),
    /// OCSF objects appended to a JSON-lines file, for SIEM file collectors.
    JsonlFile(JsonlFileConfig),
}

/// A signed JSON webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name of the sink (`[a-z0-9-]+`), used in logs, metrics and delivery ids.
    pub name: String,
    /// Where to POST (`http` or `https`).
    pub url: SinkUrl,
    /// A file holding the HMAC-SHA256 key (at least 16 bytes; surrounding whitespace is
    /// ignored). Exactly one of `secret_file` and `secret_env` is required.
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the HMAC-SHA256 key, instead of `secret_file`.
    pub secret_env: Option<String>,
    /// How long one delivery may take (e.g. `"5s"`, `"500ms"`; at most 60s). Default 5s.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration",
        serialize_with = "duration_text"
    )]
    pub timeout: Duration,
    /// The least severe alert delivered. Default `low`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

/// A Slack-compatible incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Unique name of the sink (`[a-z0-9-]+`).
    pub name: String,
    /// The incoming webhook URL. It is a secret: logs show only its host.
    pub url: SinkUrl,
    /// How long one delivery may take. Default 5s.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration",
        serialize_with = "duration_text"
    )]
    pub timeout: Duration,
    /// The least severe alert delivered. Default `low`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

/// RFC 5424 syslog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Unique name of the sink (`[a-z0-9-]+`).
    pub name: String,
    /// The collector, `host:port` (`[::1]:514` for IPv6).
    pub address: String,
    /// `udp` (RFC 5426) or `tcp` (RFC 6587, octet-counting framing). Default `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// Syslog facility. Default `auth`.
    #[serde(default)]
    pub facility: Facility,
    /// APP-NAME of the messages (1 to 48 printable ASCII characters). Default `warden`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of the messages. Default: this machine's host name.
    pub hostname: Option<String>,
    /// How long one delivery (connecting included) may take. Default 5s.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration",
        serialize_with = "duration_text"
    )]
    pub timeout: Duration,
    /// The least severe alert delivered. Default `low`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

/// A JSON-lines file of OCSF objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlFileConfig {
    /// Unique name of the sink (`[a-z0-9-]+`).
    pub name: String,
    /// The file, created with mode 0600 when absent; every ledger event is appended as one
    /// line (alerts arrive as their lifecycle events).
    pub path: PathBuf,
}

/// Syslog transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// One datagram per message.
    #[default]
    Udp,
    /// One connection per sink, kept open; messages framed by octet counting.
    Tcp,
}

/// Syslog facilities Warden may log to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Facility {
    /// `user` (1).
    User,
    /// `daemon` (3).
    Daemon,
    /// `auth` (4), security and authorisation messages.
    #[default]
    Auth,
    /// `authpriv` (10), private security and authorisation messages.
    Authpriv,
    /// `local0` (16).
    Local0,
    /// `local1` (17).
    Local1,
    /// `local2` (18).
    Local2,
    /// `local3` (19).
    Local3,
    /// `local4` (20).
    Local4,
    /// `local5` (21).
    Local5,
    /// `local6` (22).
    Local6,
    /// `local7` (23).
    Local7,
}

impl Facility {
    /// The facility's number (RFC 5424 §6.2.1).
    pub fn code(self) -> u8 {
        match self {
            Self::User => 1,
            Self::Daemon => 3,
            Self::Auth => 4,
            Self::Authpriv => 10,
            Self::Local0 => 16,
            Self::Local1 => 17,
            Self::Local2 => 18,
            Self::Local3 => 19,
            Self::Local4 => 20,
            Self::Local5 => 21,
            Self::Local6 => 22,
            Self::Local7 => 23,
        }
    }
}

/// A sink's URL as configured. Webhook URLs often carry a secret (Slack's do, in their path),
/// so `Debug` shows only the scheme and host.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SinkUrl(String);

impl SinkUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed URL, if it is an `http` or `https` URL with a host.
    pub(crate) fn parse(&self) -> Result<url::Url, String> {
        let url = url::Url::parse(&self.0).map_err(|e| format!("url is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url must be http or https, not {}", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("url has no host".to_owned());
        }
        Ok(url)
    }
}

impl From<&str> for SinkUrl {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(u) => write!(f, "{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
            Err(_) => f.write_str("<invalid url>"),
        }
    }
}

impl SinkConfig {
    /// The sink's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(c) => &c.name,
            Self::Slack(c) => &c.name,
            Self::Syslog(c) => &c.name,
            Self::JsonlFile(c) => &c.name,
        }
    }

    /// The least severe alert the sink takes; `None` for a `jsonl_file` sink, which takes every
    /// event rather than deliveries.
    pub fn min_severity(&self) -> Option<Severity> {
        match self {
            Self::Webhook(c) => Some(c.min_severity),
            Self::Slack(c) => Some(c.min_severity),
            Self::Syslog(c) => Some(c.min_severity),
            Self::JsonlFile(_) => None,
        }
    }

    /// Every problem with this sink's configuration, each prefixed with the sink's name.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(p) = check_name(self.name()) {
            problems.push(p);
        }
        match self {
            Self::Webhook(c) => {
                problems.extend(c.url.parse().err());
                problems.extend(check_timeout(c.timeout));
                match (&c.secret_file, &c.secret_env) {
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => problems.push("set exactly one of secret_file and secret_env".into()),
                }
            }
            Self::Slack(c) => {
                problems.extend(c.url.parse().err());
                problems.extend(check_timeout(c.timeout));
            }
            Self::Syslog(c) => {
                problems.extend(check_address(&c.address));
                problems.extend(check_timeout(c.timeout));
                problems.extend(check_header_field("app_name", &c.app_name, 48));
                if let Some(host) = &c.hostname {
                    problems.extend(check_header_field("hostname", host, 255));
                }
            }
            Self::JsonlFile(c) => {
                if c.path.as_os_str().is_empty() {
                    problems.push("path is empty".into());
                }
            }
        }
        problems
            .into_iter()
            .map(|p| format!("sink `{}`: {p}", self.name()))
            .collect()
    }
}

/// Checks a list of sinks: every sink's own problems, and names used twice.
pub fn validate(configs: &[SinkConfig]) -> Result<(), SinkError> {
    let mut problems: Vec<String> = configs.iter().flat_map(SinkConfig::problems).collect();
    for (i, c) in configs.iter().enumerate() {
        if configs[..i]
            .iter()
            .any(|earlier| earlier.name() == c.name())
        {
            problems.push(format!("sink `{}`: name used by another sink", c.name()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SinkError::Invalid(problems))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("name `{name}` must be 1 to 64 of a-z, 0-9 and -"))
    }
}

fn check_timeout(timeout: Duration) -> Option<String> {
    (timeout.is_zero() || timeout > Duration::from_secs(60))
        .then(|| "timeout must be more than 0 and at most 60s".to_owned())
}

fn check_address(address: &str) -> Option<String> {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    (!ok).then(|| format!("address `{address}` must be host:port"))
}

/// A syslog header field: printable ASCII without spaces (RFC 5424 PRINTUSASCII), bounded.
fn check_header_field(field: &str, value: &str, max: usize) -> Option<String> {
    let ok =
        !value.is_empty() && value.len() <= max && value.bytes().all(|b| (33..=126).contains(&b));
    (!ok).then(|| format!("{field} must be 1 to {max} printable ASCII characters without spaces"))
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_min_severity() -> Severity {
    Severity::Low
}

fn default_app_name() -> String {
    "warden".to_owned()
}

/// A humantime duration (`"5s"`, `"1m 30s"`).
fn duration_text<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<SinkConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_apply() {
        let c =
            parse(json!({"kind": "syslog", "name": "siem", "address": "127.0.0.1:514"})).unwrap();
        let SinkConfig::Syslog(c) = c else {
            panic!("not syslog")
        };
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.facility, Facility::Auth);
        assert_eq!(c.app_name, "warden");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.min_severity, Severity::Low);
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let e = parse(json!({"kind": "slack", "name": "s", "url": "https://x", "colour": "red"}));
        assert!(e.unwrap_err().to_string().contains("colour"));
        assert!(parse(json!({"kind": "pager", "name": "p"})).is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let configs = vec![
            parse(
                json!({"kind": "webhook", "name": "Bad Name", "url": "ftp://x",
                "timeout": "0s"}),
            )
            .unwrap(),
            parse(json!({"kind": "syslog", "name": "a", "address": "nohost", "app_name": "a b"}))
                .unwrap(),
            parse(json!({"kind": "jsonl_file", "name": "a", "path": "/tmp/x"})).unwrap(),
        ];
        let SinkError::Invalid(problems) = validate(&configs).unwrap_err() else {
            panic!("not invalid")
        };
        let all = problems.join("\n");
        for needle in [
            "name `Bad Name`",
            "http or https",
            "timeout",
            "exactly one of secret_file and secret_env",
            "address `nohost`",
            "app_name",
            "sink `a`: name used by another sink",
        ] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
        assert_eq!(problems.len(), 7, "{all}");
    }

    #[test]
    fn url_debug_hides_path_and_query() {
        let url = SinkUrl::from("https://hooks.slack.com/services/T0/B0/secret?token=x");
        let shown = format!("{url:?}");
        assert_eq!(shown, "https://hooks.slack.com/…");
    }
}
