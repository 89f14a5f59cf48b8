//! A built sink: configuration checked, secrets read, files opened, the shared HTTP client in
//! hand. An alert sink's [`Sink::deliver`] makes one attempt, bounded by the sink's timeout; a
//! `jsonl_file` sink is an [`EventFile`] the server appends every ledger event to.

use std::future::Future;
use std::time::Duration;

use warden_core::{Alert, Severity};

use crate::config::{SinkConfig, SinkUrl};
use crate::error::{DeliveryError, Failure, SinkError};
use crate::http::{self, Endpoint};
use crate::jsonl::JsonlFile;
use crate::slack::Slack;
use crate::syslog::{Header, Syslog};
use crate::webhook::{Secret, Webhook, MIN_SECRET_LEN};

/// A built sink: one that alerts are delivered to, or a file every event is exported to.
#[derive(Debug)]
pub enum Built {
    /// A webhook, Slack or syslog sink.
    Alerts(Sink),
    /// A `jsonl_file` sink.
    Events(EventFile),
}

/// A `jsonl_file` sink: its name (which keys its export position) and its file.
#[derive(Debug)]
pub struct EventFile {
    /// The sink's configured name.
    pub name: String,
    /// The file.
    pub file: JsonlFile,
}

/// A sink alerts are delivered to.
#[derive(Debug)]
pub struct Sink {
    name: String,
    min_severity: Severity,
    /// How long one attempt may take.
    timeout: Duration,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Webhook(Webhook),
    Slack(Slack),
    Syslog(Syslog),
}

/// Builds a sink: validates `config`, reads the webhook secret, opens the JSON-lines file.
pub fn build(config: &SinkConfig) -> Result<Built, SinkError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(SinkError::Invalid(problems));
    }
    let name = config.name().to_owned();
    let (timeout, min_severity, kind) = match config {
        SinkConfig::Webhook(c) => {
            let secret = read_secret(&name, c.secret_file.as_deref(), c.secret_env.as_deref())?;
            let webhook = Webhook {
                endpoint: endpoint(&name, &c.url)?,
                secret,
            };
            (c.timeout, c.min_severity, Kind::Webhook(webhook))
        }
        SinkConfig::Slack(c) => {
            let slack = Slack {
                endpoint: endpoint(&name, &c.url)?,
            };
            (c.timeout, c.min_severity, Kind::Slack(slack))
        }
        SinkConfig::Syslog(c) => {
            let header = Header {
                facility: c.facility,
                hostname: c.hostname.clone().unwrap_or_else(local_hostname),
                app_name: c.app_name.clone(),
                procid: std::process::id(),
            };
            let syslog = Syslog {
                address: c.address.clone(),
                transport: c.transport,
                header,
                connection: tokio::sync::Mutex::new(None),
            };
            (c.timeout, c.min_severity, Kind::Syslog(syslog))
        }
        SinkConfig::JsonlFile(c) => {
            let file = JsonlFile::open(&c.path).map_err(|source| SinkError::File {
                sink: name.clone(),
                path: c.path.clone(),
                source,
            })?;
            return Ok(Built::Events(EventFile { name, file }));
        }
    };
    Ok(Built::Alerts(Sink {
        name,
        min_severity,
        timeout,
        kind,
    }))
}

impl Sink {
    /// The sink's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the sink takes alerts of `severity`.
    pub fn wants(&self, severity: Severity) -> bool {
        severity >= self.min_severity
    }

    /// One attempt to deliver `alert`. `delivery_id` identifies this alert at this sink across
    /// retries (webhooks send it as `X-Warden-Delivery`). Network sinks give up after their
    /// timeout; the caller retries later on any error.
    pub async fn deliver(&self, alert: &Alert, delivery_id: &str) -> Result<(), DeliveryError> {
        let attempt = async {
            match &self.kind {
                Kind::Webhook(w) => w.deliver(alert, delivery_id).await,
                Kind::Slack(s) => s.deliver(alert).await,
                Kind::Syslog(s) => s.deliver(alert).await,
            }
        };
        within(self.timeout, attempt)
            .await
            .map_err(|failure| DeliveryError {
                sink: self.name.clone(),
                failure,
            })
    }
}

/// The HTTP endpoint of a webhook or Slack sink.
fn endpoint(sink: &str, url: &SinkUrl) -> Result<Endpoint, SinkError> {
    // Validation has parsed the URL already; this only keeps the parsed form.
    let url = url
        .parse()
        .map_err(|p| SinkError::Invalid(vec![format!("sink `{sink}`: {p}")]))?;
    let client = http::client().map_err(SinkError::Client)?;
    Ok(Endpoint { client, url })
}

/// Runs `attempt`, failing with [`Failure::Timeout`] if it takes longer than `timeout`.
async fn within(
    timeout: Duration,
    attempt: impl Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(Failure::Timeout(timeout)))
}

fn read_secret(
    sink: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<Secret, SinkError> {
    let raw = match (file, env) {
        (Some(path), _) => std::fs::read(path).map_err(|source| SinkError::SecretFile {
            sink: sink.to_owned(),
            path: path.to_owned(),
            source,
        })?,
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| SinkError::SecretEnv {
                sink: sink.to_owned(),
                var: var.to_owned(),
            })?
            .into_bytes(),
        // Validation requires exactly one of the two.
        (None, None) => Vec::new(),
    };
    Secret::new(&raw).ok_or_else(|| SinkError::WeakSecret {
        sink: sink.to_owned(),
        min: MIN_SECRET_LEN,
    })
}

/// This machine's host name for syslog headers, or `-` (RFC 5424's nil value) if unknown.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".to_owned())
}
