//! The gateway's answers when it does not forward: RFC 9457 problem documents with the same
//! `type` URIs as the control-plane API (`urn:warden:problem:<slug>`). A 401 never says why.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// Why the gateway answered instead of the upstream.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No valid credential.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// An admin token was presented; the gateway is for service accounts.
    #[error("admin tokens cannot use the gateway; use a service account's API key")]
    AdminToken,
    /// The path names no target.
    #[error("the path must start with a target name: /<target>/<path>")]
    NoTarget,
    /// The path has `.` or `..` segments, which could step outside what a grant allows.
    #[error("the path must not contain `.` or `..` segments")]
    DotSegment,
    /// No HTTP target by that name.
    #[error("no HTTP target named `{0}`")]
    UnknownTarget(String),
    /// The account's rate limit is exhausted.
    #[error("rate limit exceeded for this account")]
    RateLimited,
    /// No grant allows this.
    #[error("{0}")]
    Forbidden(String),
    /// The ledger could not record the request, so it is not forwarded.
    #[error("the audit ledger cannot record this request: {0}")]
    Ledger(String),
    /// The credential or policy store failed.
    #[error("the gateway cannot check this request right now")]
    Unavailable,
    /// The upstream could not be reached.
    #[error("upstream unreachable: {0}")]
    UpstreamUnreachable(String),
    /// The upstream did not answer in time.
    #[error("upstream did not respond within {0:?}")]
    UpstreamTimeout(Duration),
    /// The target's configuration cannot be used.
    #[error("target misconfigured: {0}")]
    BadTarget(String),
}

impl GatewayError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AdminToken | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::DotSegment => StatusCode::BAD_REQUEST,
            Self::NoTarget | Self::UnknownTarget(_) => StatusCode::NOT_FOUND,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Ledger(_) | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnreachable(_) | Self::BadTarget(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable problem type slug.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::AdminToken | Self::Forbidden(_) => "forbidden",
            Self::DotSegment => "bad-request",
            Self::NoTarget | Self::UnknownTarget(_) => "not-found",
            Self::RateLimited => "rate-limited",
            Self::Ledger(_) => "ledger-unavailable",
            Self::Unavailable => "store-unavailable",
            Self::UpstreamUnreachable(_) | Self::BadTarget(_) => "bad-gateway",
            Self::UpstreamTimeout(_) => "gateway-timeout",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "type": format!("urn:warden:problem:{}", self.slug()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let mut response = (status, body.to_string()).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::Unauthorized => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
