//! Errors: [`SinkError`] when a sink cannot be built, [`DeliveryError`] when one delivery
//! attempt fails (the caller retries later).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A sink could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration is invalid; every problem is listed.
    #[error("invalid sink configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The webhook's secret file could not be read.
    #[error("sink `{sink}`: cannot read the secret file {}", path.display())]
    SecretFile {
        /// The sink.
        sink: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The webhook's secret environment variable is not set (or not UTF-8).
    #[error("sink `{sink}`: environment variable {var} is not set")]
    SecretEnv {
        /// The sink.
        sink: String,
        /// The variable.
        var: String,
    },
    /// The webhook's secret is too short to be a key.
    #[error("sink `{sink}`: the secret must be at least {min} bytes")]
    WeakSecret {
        /// The sink.
        sink: String,
        /// The minimum length.
        min: usize,
    },
    /// The JSON-lines file could not be opened or created.
    #[error("sink `{sink}`: cannot open {}", path.display())]
    File {
        /// The sink.
        sink: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The shared HTTP client could not be built (TLS initialisation).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// One delivery attempt to one sink failed.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink}`: {failure}")]
pub struct DeliveryError {
    /// The sink.
    pub sink: String,
    /// What went wrong.
    pub failure: Failure,
}

/// What went wrong with a delivery.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The sink did not complete within its timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint answered with a status other than 2xx.
    #[error("HTTP status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The HTTP request failed (connection refused, TLS, reset…). The URL is left out: it may
    /// hold a secret.
    #[error("HTTP request failed: {0}")]
    Http(#[source] reqwest::Error),
    /// A socket or file operation failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The delivery id cannot be sent as a header value.
    #[error("delivery id {0:?} is not a valid header value")]
    DeliveryId(String),
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e.without_url())
    }
}
