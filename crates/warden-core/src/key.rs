//! An API key's stored record and its lifecycle. The record holds the digest, never the secret.
//!
//! Rotation does not delete anything: the previous key gets `superseded_by` and an `expires_at`
//! at the end of the grace period, so it keeps working until then and is refused after.

use serde::{Deserialize, Serialize};

use crate::{AccountName, SecretDigest, Timestamp};

/// An API key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public id, the middle part of `wdn_<id>_<secret>`.
    pub key_id: String,
    /// The account it authenticates.
    pub account: AccountName,
    /// Digest of the full key string.
    pub digest: SecretDigest,
    /// The admin who issued it.
    pub created_by: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working, if ever (set by `--expires-in`, or by rotation's grace).
    pub expires_at: Option<Timestamp>,
    /// When it was last used successfully.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// The key that replaced it in a rotation.
    pub superseded_by: Option<String>,
    /// A SCRAM-SHA-256 verifier derived from the key (PostgreSQL's `SCRAM-SHA-256$…` format),
    /// so database clients can prove they hold the key without sending it. Like the digest, it
    /// cannot be turned back into the key. `None` for keys issued before Warden kept them.
    pub scram: Option<String>,
}

/// Where a key is in its life, at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Valid.
    Active,
    /// Replaced by a rotation but still valid until its grace ends (`expires_at`).
    Rotating,
    /// Past `expires_at` (including a rotation's grace).
    Expired,
    /// Revoked by an admin.
    Revoked,
}

impl KeyState {
    /// Whether a key in this state authenticates.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Active | Self::Rotating)
    }

    /// The state as the API and CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotating => "rotating",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl KeyRecord {
    /// The key's state at `now`.
    pub fn state(&self, now: Timestamp) -> KeyState {
        if self.revoked_at.is_some_and(|r| r <= now) {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else if self.superseded_by.is_some() {
            KeyState::Rotating
        } else {
            KeyState::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credential, CredentialKind};

    fn record() -> KeyRecord {
        let c = Credential::generate(CredentialKind::ApiKey);
        KeyRecord {
            key_id: c.id().to_owned(),
            account: AccountName::parse("etl").unwrap(),
            digest: c.digest(),
            created_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            superseded_by: None,
            scram: None,
        }
    }

    #[test]
    fn rotation_grace_then_expiry() {
        let mut k = record();
        assert_eq!(k.state(Timestamp::from_micros(5)), KeyState::Active);
        k.superseded_by = Some("newkey".into());
        k.expires_at = Some(Timestamp::from_micros(100));
        assert_eq!(k.state(Timestamp::from_micros(99)), KeyState::Rotating);
        assert!(k.state(Timestamp::from_micros(99)).is_usable());
        assert_eq!(k.state(Timestamp::from_micros(100)), KeyState::Expired);
        assert!(!k.state(Timestamp::from_micros(100)).is_usable());
    }

    #[test]
    fn revocation_wins() {
        let mut k = record();
        k.revoked_at = Some(Timestamp::from_micros(10));
        k.expires_at = Some(Timestamp::from_micros(5));
        assert_eq!(k.state(Timestamp::from_micros(20)), KeyState::Revoked);
    }
}
