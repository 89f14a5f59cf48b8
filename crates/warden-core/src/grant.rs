//! Grants: what a service account may do on a target. Deny by default: an action is allowed only
//! if a grant that has not expired matches it, and the decision names that grant.
//!
//! HTTP rules are `METHOD PATH-GLOB` (`GET /v1/orders/*`, `* /v1/reports/**`): the method is one
//! HTTP method or `*`; in the path, `*` matches within one segment and `**` across segments.
//! The glob is compiled by `globset` (with `/` as a literal separator) rather than by hand.
//!
//! Database rules are [`SqlRule`]s (`read`, `write:public.orders`, `read:analytics.*`); a
//! statement is allowed when every table it touches, in the way it touches it, is covered by an
//! active grant (see [`decide_sql`]).

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::event::Decision;
use crate::sql_rule::{SqlClass, SqlRule};
use crate::{TargetKind, Timestamp, ValidationError};

/// What a grant allows.
#[derive(Debug, Clone)]
pub struct HttpRule {
    method: Option<String>,
    path: String,
    matcher: GlobMatcher,
}

impl PartialEq for HttpRule {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method && self.path == other.path
    }
}

impl Eq for HttpRule {}

impl HttpRule {
    /// Parses `METHOD PATH-GLOB`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bad = |m: &str| ValidationError::new("allow", format!("`{s}`: {m}"));
        let (method, path) = s
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `METHOD /path` such as `GET /v1/orders/*` or `* /**`"))?;
        let path = path.trim();
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(m.to_owned())
            }
            _ => return Err(bad("the method must be an upper-case HTTP method or `*`")),
        };
        if !path.starts_with('/') {
            return Err(bad("the path must start with `/`"));
        }
        if path.len() > 1024 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "the path must be at most 1024 characters without spaces",
            ));
        }
        let matcher = GlobBuilder::new(path)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(&format!("invalid path pattern: {e}")))?
            .compile_matcher();
        Ok(Self {
            method,
            path: path.to_owned(),
            matcher,
        })
    }

    /// Whether the rule covers `method` on `path` (the request path below the target, without
    /// the query string).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && self.matcher.is_match(path)
    }

    /// Whether the rule contains a wildcard (for least-privilege findings).
    pub fn is_wildcard(&self) -> bool {
        self.method.is_none() || self.path.contains('*')
    }
}

impl fmt::Display for HttpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.as_deref().unwrap_or("*"), self.path)
    }
}

impl Serialize for HttpRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HttpRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// What a grant allows: an HTTP rule on an HTTP target, a SQL rule on a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `METHOD PATH-GLOB`.
    Http(HttpRule),
    /// `CLASS[:SCHEMA.TABLE-GLOB]`.
    Sql(SqlRule),
}

impl Rule {
    /// Parses a rule for a target of `kind`.
    pub fn parse(kind: TargetKind, s: &str) -> Result<Self, ValidationError> {
        match kind {
            TargetKind::Http => HttpRule::parse(s).map(Self::Http),
            TargetKind::Postgres => SqlRule::parse(s).map(Self::Sql),
        }
    }

    /// Parses a stored rule, telling the kinds apart by shape: HTTP rules always have a space
    /// between method and path, SQL rules never do.
    pub fn parse_stored(s: &str) -> Result<Self, ValidationError> {
        if s.trim().contains(char::is_whitespace) {
            HttpRule::parse(s).map(Self::Http)
        } else {
            SqlRule::parse(s).map(Self::Sql)
        }
    }

    /// Whether the rule contains a wildcard (for least-privilege findings).
    pub fn is_wildcard(&self) -> bool {
        match self {
            Self::Http(r) => r.is_wildcard(),
            Self::Sql(r) => r.is_wildcard(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(r) => r.fmt(f),
            Self::Sql(r) => r.fmt(f),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_stored(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique id (`g_` and 12 characters).
    pub id: String,
    /// The account it is for.
    pub account: String,
    /// The target it applies to.
    pub target: String,
    /// What it allows.
    pub rule: Rule,
    /// The admin who granted it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it stops applying (just-in-time access), if ever.
    pub expires_at: Option<Timestamp>,
    /// When it last allowed an action.
    pub last_used_at: Option<Timestamp>,
}

impl Grant {
    /// Whether the grant applies at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// One grant as a grant set version remembers it: enough to grant it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    /// The target.
    pub target: String,
    /// The rule, as text (`GET /v1/orders/*`, `read:analytics.daily`).
    pub rule: String,
    /// When it stops applying, if ever.
    pub expires_at: Option<Timestamp>,
}

/// An account's whole grant set as it was before a change that replaced several grants at once
/// (applying a recommendation, a rollback), so the change can be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSetVersion {
    /// The account.
    pub account: String,
    /// 1, 2, 3… per account.
    pub version: u64,
    /// The grants in force before the change.
    pub grants: Vec<GrantSpec>,
    /// What replaced them (`recommendation`, `rollback to 2`).
    pub reason: String,
    /// The admin who made the change.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
}

/// Decides an HTTP action against an account's grants on one target: the first active grant whose
/// rule matches allows it; otherwise it is denied, saying what was missing.
pub fn decide_http<'a>(
    grants: impl IntoIterator<Item = &'a Grant>,
    method: &str,
    path: &str,
    now: Timestamp,
) -> Decision {
    let mut expired = None;
    for g in grants {
        if matches!(&g.rule, Rule::Http(r) if r.matches(method, path)) {
            if g.is_active(now) {
                return Decision {
                    allowed: true,
                    grant_id: Some(g.id.clone()),
                    reason: Some(format!("grant {} allows `{}`", g.id, g.rule)),
                };
            }
            expired = Some(g.id.clone());
        }
    }
    let reason = match expired {
        Some(id) => format!("grant {id} for `{method} {path}` has expired"),
        None => format!("no grant allows `{method} {path}` on this target"),
    };
    Decision::deny(reason)
}

/// One thing a SQL statement needs: a class of access, to one table (`schema`, `name`) or to no
/// table in particular.
pub type SqlNeed<'a> = (SqlClass, Option<(&'a str, &'a str)>);

/// A SQL decision and every grant that contributed to it (each is noted as used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlDecision {
    /// The decision; its `grant_id` is the grant that covered the statement's main need.
    pub decision: Decision,
    /// Every grant that covered one of the needs.
    pub used: Vec<String>,
}

/// Decides a SQL statement against an account's grants on one database: allowed only when every
/// need is covered by an active grant. `tx` (transaction control and harmless session settings)
/// needs no grant. The first need should be the statement's main one (its own class): that is
/// the grant the decision names.
pub fn decide_sql<'a>(
    grants: impl IntoIterator<Item = &'a Grant> + Clone,
    needs: &[SqlNeed<'_>],
    now: Timestamp,
) -> SqlDecision {
    let mut used: Vec<String> = Vec::new();
    for &(class, table) in needs {
        if class == SqlClass::Tx {
            continue;
        }
        let mut expired = None;
        let covering = grants.clone().into_iter().find(|g| match &g.rule {
            Rule::Sql(r) if r.covers(class, table) => {
                if g.is_active(now) {
                    true
                } else {
                    expired = Some(g.id.clone());
                    false
                }
            }
            _ => false,
        });
        let what = match table {
            Some((schema, name)) => format!("`{}` on {schema}.{name}", class.as_str()),
            None => format!("`{}`", class.as_str()),
        };
        match covering {
            Some(g) => {
                if !used.contains(&g.id) {
                    used.push(g.id.clone());
                }
            }
            None => {
                let reason = match expired {
                    Some(id) => format!("grant {id} for {what} has expired"),
                    None => match table {
                        Some((schema, name)) => format!(
                            "no grant allows {what} (grant it with --allow '{}:{schema}.{name}')",
                            class.as_str()
                        ),
                        None => format!(
                            "no grant allows {what} (grant it with --allow {})",
                            class.as_str()
                        ),
                    },
                };
                return SqlDecision {
                    decision: Decision::deny(reason),
                    used: Vec::new(),
                };
            }
        }
    }
    let decision = match used.first() {
        None => Decision::allow("transaction control needs no grant"),
        Some(first) => Decision {
            allowed: true,
            grant_id: Some(first.clone()),
            reason: Some(if used.len() == 1 {
                format!("grant {first} allows it")
            } else {
                format!("grants {} allow it", used.join(", "))
            }),
        },
    };
    SqlDecision { decision, used }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(rule: &str, expires_at: Option<i64>) -> Grant {
        Grant {
            id: "g_test".into(),
            account: "svc".into(),
            target: "orders".into(),
            rule: Rule::parse_stored(rule).unwrap(),
            created_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            expires_at: expires_at.map(Timestamp::from_micros),
            last_used_at: None,
        }
    }

    #[test]
    fn globs_respect_segments() {
        let r = HttpRule::parse("GET /v1/orders/*").unwrap();
        assert!(r.matches("GET", "/v1/orders/42"));
        assert!(!r.matches("GET", "/v1/orders/42/items"));
        assert!(!r.matches("POST", "/v1/orders/42"));
        assert!(!r.matches("GET", "/v1/orders"));
        let deep = HttpRule::parse("* /v1/**").unwrap();
        assert!(deep.matches("DELETE", "/v1/a/b/c"));
        assert!(!deep.matches("GET", "/v2/a"));
        assert!(HttpRule::parse("GET /exact")
            .unwrap()
            .matches("GET", "/exact"));
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in [
            "",
            "GET",
            "get /x",
            "GET x",
            "GET /a b",
            "GET /[",
            "VERYLONGMETHODNAME1 /",
        ] {
            let e = HttpRule::parse(bad).unwrap_err();
            assert_eq!(e.field, "allow", "{bad}");
        }
    }

    #[test]
    fn deny_by_default_and_expiry() {
        let now = Timestamp::from_micros(100);
        let d = decide_http([], "GET", "/x", now);
        assert!(!d.allowed);
        let g = grant("GET /x", Some(50));
        let d = decide_http([&g], "GET", "/x", now);
        assert!(!d.allowed);
        assert!(d.reason.unwrap().contains("expired"));
        let g = grant("GET /x", Some(150));
        let d = decide_http([&g], "GET", "/x", now);
        assert!(d.allowed);
        assert_eq!(d.grant_id.as_deref(), Some("g_test"));
    }

    #[test]
    fn sql_needs_are_each_covered() {
        let now = Timestamp::from_micros(100);
        let mut read = grant("read:analytics.*", None);
        read.id = "g_read".into();
        let mut write = grant("write:public.orders", None);
        write.id = "g_write".into();
        let grants = [&read, &write];
        let d = decide_sql(
            grants,
            &[(SqlClass::Read, Some(("analytics", "daily")))],
            now,
        );
        assert!(d.decision.allowed);
        assert_eq!(d.decision.grant_id.as_deref(), Some("g_read"));
        let d = decide_sql(
            grants,
            &[
                (SqlClass::Write, Some(("public", "orders"))),
                (SqlClass::Read, Some(("analytics", "daily"))),
            ],
            now,
        );
        assert_eq!(d.used, ["g_write", "g_read"]);
        let d = decide_sql(
            grants,
            &[
                (SqlClass::Write, Some(("public", "orders"))),
                (SqlClass::Read, Some(("public", "users"))),
            ],
            now,
        );
        assert!(!d.decision.allowed);
        let reason = d.decision.reason.unwrap();
        assert!(reason.contains("read:public.users"), "{reason}");
        let d = decide_sql(grants, &[(SqlClass::Ddl, None)], now);
        assert!(!d.decision.allowed);
        let d = decide_sql(grants, &[(SqlClass::Tx, None)], now);
        assert!(d.decision.allowed && d.used.is_empty());
        // HTTP rules never allow SQL, and SQL rules never allow HTTP.
        let http = grant("* /**", None);
        assert!(
            !decide_sql([&http], &[(SqlClass::Read, None)], now)
                .decision
                .allowed
        );
        assert!(!decide_http([&read], "GET", "/", now).allowed);
    }

    #[test]
    fn rules_round_trip_as_text() {
        for text in ["* /v1/**", "GET /a", "read", "write:public.orders"] {
            let r = Rule::parse_stored(text).unwrap();
            assert_eq!(r.to_string(), text);
        }
        assert!(Rule::parse_stored("* /v1/**").unwrap().is_wildcard());
        assert!(!Rule::parse_stored("GET /a").unwrap().is_wildcard());
        assert!(Rule::parse(TargetKind::Http, "read").is_err());
        assert!(Rule::parse(TargetKind::Postgres, "GET /a").is_err());
    }
}
