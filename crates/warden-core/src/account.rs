//! Service accounts: the non-human identities Warden holds accountable. Every account has a
//! name, an accountable human owner and a stated purpose; it may expire, and it can be disabled,
//! which stops all of its credentials at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Timestamp, ValidationError};

/// An account's name: a lowercase DNS label (1–63 of `a-z`, `0-9`, `-`, not starting or ending
/// with `-`), so it can appear in hostnames, URLs, Postgres user names and metrics labels unquoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    /// Validates `s` as an account name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        validate_label("name", s).map(|()| Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Checks that `s` is a lowercase DNS label; `field` names it in the error.
pub fn validate_label(field: &str, s: &str) -> Result<(), ValidationError> {
    let err = |m: &str| Err(ValidationError::new(field, format!("`{s}` {m}")));
    if s.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if s.len() > 63 {
        return err("is longer than 63 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return err("may only contain lowercase letters, digits and '-'");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return err("must not start or end with '-'");
    }
    Ok(())
}

/// The email address of an accountable human. Checked for shape only (one `@`, a dotted domain,
/// no spaces): deliverability is the owner's business, not a gateway's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates `s` as an email address; `field` names it in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new(field, format!("`{s}` is not an email address"));
        if s.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("owner", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an account may currently authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// It may authenticate.
    Active,
    /// An admin disabled it; see `disabled_reason`.
    Disabled,
    /// Its `expires_at` has passed.
    Expired,
}

impl AccountStatus {
    /// The status as the API and CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

/// A service account as stored. Its [`AccountStatus`] is derived from `disabled_reason`,
/// `expires_at` and the clock, so expiry needs no background job to take effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unique name.
    pub name: AccountName,
    /// The accountable human.
    pub owner: Email,
    /// Why the account exists.
    pub purpose: String,
    /// Free-form `key=value` labels (team, environment, system…).
    pub labels: BTreeMap<String, String>,
    /// The admin who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Why it was disabled, when it is.
    pub disabled_reason: Option<String>,
    /// When it last authenticated successfully.
    pub last_used_at: Option<Timestamp>,
}

impl Account {
    /// The account's status at `now`. Disabled wins over expired: the admin's reason is the more
    /// useful thing to show.
    pub fn status(&self, now: Timestamp) -> AccountStatus {
        if self.disabled_reason.is_some() {
            AccountStatus::Disabled
        } else if self.expires_at.is_some_and(|e| e <= now) {
            AccountStatus::Expired
        } else {
            AccountStatus::Active
        }
    }
}

/// Validates a purpose statement: required, one line, at most 500 characters.
pub fn validate_purpose(s: &str) -> Result<(), ValidationError> {
    validate_text("purpose", s, 500)
}

/// Validates a free-text field: non-blank, single line, at most `max` characters.
pub fn validate_text(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            "is required and must not be blank",
        ));
    }
    if s.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must be a single line without control characters",
        ));
    }
    Ok(())
}

/// Validates labels: keys are DNS labels, values are at most 200 characters, at most 64 labels.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if labels.len() > 64 {
        return Err(ValidationError::new(
            "labels",
            "at most 64 labels are allowed",
        ));
    }
    for (k, v) in labels {
        validate_label(&format!("labels.{k}"), k)?;
        if v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(ValidationError::new(
                format!("labels.{k}"),
                "value must be at most 200 characters, without control characters",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for ok in ["a", "billing-etl", "ci-7", &"x".repeat(63)] {
            assert!(AccountName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Billing",
            "-a",
            "a-",
            "a_b",
            "a.b",
            "ä",
            &"x".repeat(64),
        ] {
            let e = AccountName::parse(bad).unwrap_err();
            assert_eq!(e.field, "name");
        }
    }

    #[test]
    fn emails_have_a_shape() {
        assert!(Email::parse("owner", "ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.d",
        ] {
            assert!(Email::parse("owner", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_is_derived() {
        let mut a = Account {
            name: AccountName::parse("etl").unwrap(),
            owner: Email::parse("owner", "ada@example.com").unwrap(),
            purpose: "nightly load".into(),
            labels: BTreeMap::new(),
            created_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            expires_at: Some(Timestamp::from_micros(100)),
            disabled_reason: None,
            last_used_at: None,
        };
        assert_eq!(a.status(Timestamp::from_micros(99)), AccountStatus::Active);
        assert_eq!(
            a.status(Timestamp::from_micros(100)),
            AccountStatus::Expired
        );
        a.disabled_reason = Some("leaked".into());
        assert_eq!(a.status(Timestamp::from_micros(0)), AccountStatus::Disabled);
    }

    #[test]
    fn purpose_and_labels_are_checked() {
        assert!(validate_purpose("  ").is_err());
        assert!(validate_purpose("line\nbreak").is_err());
        let mut l = BTreeMap::new();
        l.insert("Team".to_string(), "x".to_string());
        assert_eq!(validate_labels(&l).unwrap_err().field, "labels.Team");
    }
}
