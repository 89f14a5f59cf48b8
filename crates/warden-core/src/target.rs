//! Targets: the databases and APIs service accounts reach through Warden, with the upstream
//! credentials Warden injects so that programs never hold them. Credentials are only ever held
//! sealed (see [`crate::seal`]) outside the request that uses them, and their `Debug` output
//! hides every value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::account::validate_label;
use crate::{Timestamp, ValidationError};

/// What protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// An HTTP API, reached through the HTTP gateway.
    Http,
    /// A PostgreSQL database, reached through the Postgres gateway.
    Postgres,
}

impl TargetKind {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Postgres => "postgres",
        }
    }

    /// Parses `http` or `postgres`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "http" => Ok(Self::Http),
            "postgres" => Ok(Self::Postgres),
            _ => Err(ValidationError::new(
                "kind",
                format!("`{s}` is not a target kind (http or postgres)"),
            )),
        }
    }
}

/// A target as stored. `credentials` is sealed text, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Unique name (a lowercase DNS label); the first path segment on the HTTP gateway.
    pub name: String,
    /// Protocol.
    pub kind: TargetKind,
    /// Base URL of the upstream (`https://api.internal:443/base`).
    pub upstream: String,
    /// Extra CA certificates (PEM) trusted for the upstream, besides the system roots.
    pub ca_bundle: Option<String>,
    /// Sealed [`UpstreamCredentials`].
    pub credentials: Option<String>,
    /// The admin who registered it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// Rotate the upstream password automatically this often (database targets), in seconds.
    pub rotation_period_secs: Option<u64>,
    /// When the upstream password was last rotated.
    pub rotated_at: Option<Timestamp>,
}

impl Target {
    /// When the next scheduled rotation is due, if the target rotates on a schedule.
    pub fn rotation_due(&self) -> Option<Timestamp> {
        let period = self.rotation_period_secs?;
        let since = self.rotated_at.unwrap_or(self.created_at);
        Some(since.saturating_add(std::time::Duration::from_secs(period)))
    }
}

/// Validates a target's name and upstream URL, returning the URL normalised (no trailing `/`).
pub fn validate_target(
    name: &str,
    kind: TargetKind,
    upstream: &str,
) -> Result<String, ValidationError> {
    validate_label("name", name)?;
    let url = url::Url::parse(upstream)
        .map_err(|e| ValidationError::new("upstream", format!("`{upstream}` is not a URL: {e}")))?;
    let schemes: &[&str] = match kind {
        TargetKind::Http => &["http", "https"],
        TargetKind::Postgres => &["postgres", "postgresql"],
    };
    if !schemes.contains(&url.scheme()) {
        return Err(ValidationError::new(
            "upstream",
            format!(
                "a {} target's upstream must use {}",
                kind.as_str(),
                schemes.join(" or ")
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(
            "upstream",
            "the upstream URL needs a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValidationError::new(
            "upstream",
            "put credentials in --inject-header or --basic-auth, not in the URL (they would be stored in the clear)",
        ));
    }
    let query_allowed = match (kind, url.query()) {
        (_, None) => true,
        // The one connection option of a database upstream: `sslmode=disable` turns TLS off
        // (for a database on a trusted network); the default verifies the server's certificate.
        (TargetKind::Postgres, Some(q)) => q == "sslmode=disable" || q == "sslmode=verify-full",
        (TargetKind::Http, Some(_)) => false,
    };
    if !query_allowed || url.fragment().is_some() {
        return Err(ValidationError::new(
            "upstream",
            match kind {
                TargetKind::Http => "the upstream URL must not have a query or fragment",
                TargetKind::Postgres => {
                    "the upstream URL may only have `?sslmode=disable` or `?sslmode=verify-full`"
                }
            },
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The secrets Warden adds to requests it forwards to a target.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCredentials {
    /// Headers set on every forwarded request (`Authorization: Bearer …`, `X-Api-Key: …`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// HTTP basic authentication (user, password), or the database user and password.
    #[serde(default)]
    pub basic: Option<(String, String)>,
}

impl UpstreamCredentials {
    /// Parses `Name: value` header lines and an optional `user:password`.
    pub fn parse(headers: &[String], basic: Option<&str>) -> Result<Self, ValidationError> {
        let mut out = Self::default();
        for h in headers {
            let (name, value) = h.split_once(':').ok_or_else(|| {
                ValidationError::new("inject_headers", "each header must look like `Name: value`")
            })?;
            let name = name.trim();
            let value = value.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || value.is_empty()
                || value.chars().any(char::is_control)
            {
                return Err(ValidationError::new(
                    "inject_headers",
                    format!(
                        "header `{name}` must have a token name and a non-empty single-line value"
                    ),
                ));
            }
            out.headers.push((name.to_owned(), value.to_owned()));
        }
        if let Some(b) = basic {
            let (user, password) = b.split_once(':').ok_or_else(|| {
                ValidationError::new("basic_auth", "must look like `user:password`")
            })?;
            if user.is_empty() {
                return Err(ValidationError::new(
                    "basic_auth",
                    "the user must not be empty",
                ));
            }
            out.basic = Some((user.to_owned(), password.to_owned()));
        }
        Ok(out)
    }

    /// Whether there is nothing to inject.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.basic.is_none()
    }

    /// The names of the injected headers (safe to show).
    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.headers.iter().map(|(n, _)| n.clone()).collect();
        if self.basic.is_some() {
            names.push("Authorization (basic)".to_owned());
        }
        names
    }
}

impl fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UpstreamCredentials({:?}, values redacted)",
            self.header_names()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_checked() {
        assert_eq!(
            validate_target(
                "orders",
                TargetKind::Http,
                "https://api.internal:8443/base/"
            )
            .unwrap(),
            "https://api.internal:8443/base"
        );
        for bad in [
            "ftp://x",
            "https://user:pw@x",
            "not a url",
            "https://x/?q=1",
        ] {
            assert_eq!(
                validate_target("orders", TargetKind::Http, bad)
                    .unwrap_err()
                    .field,
                "upstream",
                "{bad}"
            );
        }
        assert_eq!(
            validate_target("Orders", TargetKind::Http, "https://x")
                .unwrap_err()
                .field,
            "name"
        );
        assert!(validate_target(
            "db",
            TargetKind::Postgres,
            "postgres://db.internal:5432/app"
        )
        .is_ok());
    }

    #[test]
    fn credentials_parse_and_hide() {
        let c =
            UpstreamCredentials::parse(&["Authorization: Bearer s3cret".into()], Some("bot:pa:ss"))
                .unwrap();
        assert_eq!(
            c.headers[0],
            ("Authorization".into(), "Bearer s3cret".into())
        );
        assert_eq!(c.basic, Some(("bot".into(), "pa:ss".into())));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(UpstreamCredentials::parse(&["NoColon".into()], None).is_err());
        assert!(UpstreamCredentials::parse(&["Bad Name: x".into()], None).is_err());
        assert!(UpstreamCredentials::parse(&[], Some(":pw")).is_err());
    }
}
