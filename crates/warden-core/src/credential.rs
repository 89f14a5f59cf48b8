//! Bearer credentials: service-account API keys (`wdn_<id>_<secret>`) and admin tokens
//! (`wda_<id>_<secret>`).
//!
//! The fixed prefix lets secret scanners recognise a leaked credential; the id is public and
//! indexes the stored record (so verification is one primary-key lookup, never a scan); the
//! secret is 256 bits from the operating system's CSPRNG. Only a SHA-256 digest of the whole
//! credential string is stored. A plain (unsalted, fast) hash is the right tool here, unlike for
//! passwords: the input has 256 bits of entropy, so there is nothing to brute-force, and
//! verification stays cheap on the hot path. Digests are compared in constant time.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Which kind of principal a credential authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A service account's API key.
    ApiKey,
    /// A human admin's token for the control-plane API.
    AdminToken,
}

impl CredentialKind {
    /// The fixed prefix that starts every credential of this kind.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "wdn",
            Self::AdminToken => "wda",
        }
    }
}

/// Length of a credential id: 12 characters of lowercase base32, 60 bits.
pub const ID_LEN: usize = 12;
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const SECRET_BYTES: usize = 32;

/// Why a presented string is not a well-formed credential. The message never echoes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseCredentialError {
    /// Wrong prefix, wrong separators or wrong lengths.
    #[error("not a Warden credential (expected `<prefix>_<id>_<secret>`)")]
    Malformed,
}

/// A credential with its secret. `Debug` hides the secret; only [`Credential::expose`] reveals it,
/// for the one time it is shown to its holder.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    kind: CredentialKind,
    id: String,
    secret: String,
}

impl Credential {
    /// A new credential of `kind` with a fresh random id and secret.
    pub fn generate(kind: CredentialKind) -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut id_bytes = [0u8; ID_LEN];
        rng.fill_bytes(&mut id_bytes);
        let id = id_bytes
            .iter()
            .map(|b| char::from(ID_ALPHABET[usize::from(b & 31)]))
            .collect();
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut secret);
        Self {
            kind,
            id,
            secret: hex::encode(secret),
        }
    }

    /// Parses a presented credential of `kind`. Length and alphabet are checked before anything
    /// else so arbitrary input cannot reach a lookup.
    pub fn parse(kind: CredentialKind, s: &str) -> Result<Self, ParseCredentialError> {
        let rest = s
            .strip_prefix(kind.prefix())
            .and_then(|r| r.strip_prefix('_'))
            .ok_or(ParseCredentialError::Malformed)?;
        let (id, secret) = rest
            .split_once('_')
            .ok_or(ParseCredentialError::Malformed)?;
        let id_ok = id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b));
        let secret_ok = secret.len() == SECRET_BYTES * 2
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok || !secret_ok {
            return Err(ParseCredentialError::Malformed);
        }
        Ok(Self {
            kind,
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// Which kind it is.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The public id that names the stored record.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The full credential string, secret included. Call only to show it to its holder once.
    pub fn expose(&self) -> String {
        format!("{}_{}_{}", self.kind.prefix(), self.id, self.secret)
    }

    /// The digest that is stored in place of the secret.
    pub fn digest(&self) -> SecretDigest {
        let mut h = Sha256::new();
        h.update(self.kind.prefix().as_bytes());
        h.update(b"_");
        h.update(self.id.as_bytes());
        h.update(b"_");
        h.update(self.secret.as_bytes());
        SecretDigest(h.finalize().into())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_<redacted>", self.kind.prefix(), self.id)
    }
}

/// SHA-256 of a credential string; what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// Constant-time comparison with the digest of `presented`.
    pub fn matches(&self, presented: &Credential) -> bool {
        self.0.ct_eq(&presented.digest().0).into()
    }

    /// Lowercase hex, for storage.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the stored hex form.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }

    /// A digest that matches no credential, compared against when a presented id is unknown so
    /// that unknown and wrong keys cost the same work.
    pub const fn unmatchable() -> Self {
        Self([0u8; 32])
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigest({})", self.to_hex())
    }
}

impl From<SecretDigest> for String {
    fn from(d: SecretDigest) -> Self {
        d.to_hex()
    }
}

impl TryFrom<String> for SecretDigest {
    type Error = hex::FromHexError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_hex(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_credentials_round_trip() {
        for kind in [CredentialKind::ApiKey, CredentialKind::AdminToken] {
            let c = Credential::generate(kind);
            let s = c.expose();
            assert!(s.starts_with(kind.prefix()));
            assert_eq!(s.len(), 3 + 1 + ID_LEN + 1 + 64);
            let parsed = Credential::parse(kind, &s).unwrap();
            assert_eq!(parsed, c);
            assert!(c.digest().matches(&parsed));
        }
    }

    #[test]
    fn kinds_do_not_cross() {
        let c = Credential::generate(CredentialKind::ApiKey);
        assert!(Credential::parse(CredentialKind::AdminToken, &c.expose()).is_err());
    }

    #[test]
    fn wrong_secret_does_not_match() {
        let c = Credential::generate(CredentialKind::ApiKey);
        let mut s = c.expose();
        let last = s.pop().unwrap();
        s.push(if last == '0' { '1' } else { '0' });
        let forged = Credential::parse(CredentialKind::ApiKey, &s).unwrap();
        assert!(!c.digest().matches(&forged));
        assert!(!SecretDigest::unmatchable().matches(&c));
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = Credential::generate(CredentialKind::ApiKey);
        let secret = c.expose().rsplit('_').next().unwrap().to_owned();
        assert!(!format!("{c:?}").contains(&secret));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = Credential::parse(CredentialKind::ApiKey, &s);
        }

        #[test]
        fn digest_hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let d = SecretDigest(bytes);
            prop_assert_eq!(SecretDigest::from_hex(&d.to_hex()).unwrap(), d);
        }
    }
}
