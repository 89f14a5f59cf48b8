//! The SCRAM-SHA-256 secret a server keeps: derivation from a password, and PostgreSQL's text
//! form.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ScramError;

/// PostgreSQL's default iteration count (`scram_iterations`). Every client connection pays for
/// these PBKDF2 rounds; Warden's keys are long and random, so they need no more.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// The salt length PostgreSQL uses (`SCRAM_DEFAULT_SALT_LEN`).
pub const SALT_LEN: usize = 16;

/// A new random salt.
pub fn generate_salt<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> [u8; SALT_LEN] {
    let mut salt = [0; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

/// HMAC-SHA-256 of `data` under `key`.
pub(super) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// What a server stores to check a SCRAM-SHA-256 password without knowing it.
///
/// `Display` and `FromStr` use PostgreSQL's form (as in `pg_authid.rolpassword`):
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`. That text
/// is secret: with it, one can impersonate the server to a client. `Debug` leaves the keys out.
#[derive(Clone)]
pub struct Verifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// SHA-256(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl Verifier {
    /// Derives the verifier of `password` (used as raw bytes, see the module docs on SASLprep).
    ///
    /// An iteration count of 0 is taken as 1: PBKDF2 always runs at least one round, and the
    /// text form requires a positive count.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Verifier {
        let iterations = iterations.max(1);
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Whether `password` is the one this verifier was derived from (for a cleartext password
    /// sent over TLS), compared in constant time.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let other = Verifier::derive(password, &self.salt, self.iterations);
        bool::from(self.keys_eq(&other))
    }

    /// Both keys equal, in constant time.
    fn keys_eq(&self, other: &Verifier) -> subtle::Choice {
        self.stored_key.ct_eq(&other.stored_key) & self.server_key.ct_eq(&other.server_key)
    }
}

impl PartialEq for Verifier {
    fn eq(&self, other: &Self) -> bool {
        self.iterations == other.iterations
            && self.salt == other.salt
            && bool::from(self.keys_eq(other))
    }
}

impl Eq for Verifier {}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .field("salt", &B64.encode(&self.salt))
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

impl FromStr for Verifier {
    type Err = ScramError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = ScramError::InvalidVerifier;
        let rest = s
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(bad("does not start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(bad("missing '$' before the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(bad("missing ':' after the iteration count"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or(bad("missing ':' between the keys"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is zero"));
        }
        let salt = B64.decode(salt).map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad("salt is empty"));
        }
        Ok(Verifier {
            iterations,
            salt,
            stored_key: key(stored_key).ok_or(bad("StoredKey is not 32 bytes of base64"))?,
            server_key: key(server_key).ok_or(bad("ServerKey is not 32 bytes of base64"))?,
        })
    }
}

/// A base64-encoded 32-byte key.
fn key(b64: &str) -> Option<[u8; 32]> {
    B64.decode(b64).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced by PostgreSQL 15 for `CREATE ROLE … PASSWORD 'pencil'` with
    /// `password_encryption = 'scram-sha-256'`.
    const POSTGRES_PENCIL: &str = "SCRAM-SHA-256$4096:spJWavwh/ESd2C4lcYAEpQ==$\
        8MONIBZmS5m/rK6I6kp7YdzWDjbtL8TfnNkSloLRN0E=:zW9MZgdomaIh1QVW2cLt0JuuA6ynoCOXqiVfOhQpR/U=";

    #[test]
    fn derive_matches_a_verifier_made_by_postgres() {
        let stored: Verifier = POSTGRES_PENCIL.parse().unwrap();
        assert_eq!(stored.iterations, 4096);
        assert_eq!(stored.salt.len(), SALT_LEN);
        let derived = Verifier::derive(b"pencil", &stored.salt, stored.iterations);
        assert_eq!(derived, stored);
        assert_eq!(derived.to_string(), POSTGRES_PENCIL);
        assert!(stored.verify_password(b"pencil"));
        assert!(!stored.verify_password(b"pencil "));
    }

    #[test]
    fn debug_leaves_the_keys_out() {
        let v: Verifier = POSTGRES_PENCIL.parse().unwrap();
        let debug = format!("{v:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("8MONIBZ"));
        assert!(!debug.contains("zW9MZgdo"));
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$4096:c2FsdA==",
            "SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$0:c2FsdA==$8MONIBZmS5m/rK6I6kp7YdzWDjbtL8TfnNkSloLRN0E=:zW9MZgdomaIh1QVW2cLt0JuuA6ynoCOXqiVfOhQpR/U=",
            "SCRAM-SHA-256$4096:$8MONIBZmS5m/rK6I6kp7YdzWDjbtL8TfnNkSloLRN0E=:zW9MZgdomaIh1QVW2cLt0JuuA6ynoCOXqiVfOhQpR/U=",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:zW9MZgdomaIh1QVW2cLt0JuuA6ynoCOXqiVfOhQpR/U=",
            "SCRAM-SHA-256$4096:c2FsdA==$8MONIBZmS5m/rK6I6kp7YdzWDjbtL8TfnNkSloLRN0E=",
            "SCRAM-SHA-256$4096:!!$8MONIBZmS5m/rK6I6kp7YdzWDjbtL8TfnNkSloLRN0E=:zW9MZgdomaIh1QVW2cLt0JuuA6ynoCOXqiVfOhQpR/U=",
        ] {
            assert!(
                matches!(bad.parse::<Verifier>(), Err(ScramError::InvalidVerifier(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn zero_iterations_are_taken_as_one() {
        let v = Verifier::derive(b"k", b"salt", 0);
        assert_eq!(v.iterations, 1);
        assert_eq!(v, Verifier::derive(b"k", b"salt", 1));
        assert_eq!(v.to_string().parse::<Verifier>().unwrap(), v);
    }

    #[test]
    fn salts_are_random() {
        let mut rng = rand::thread_rng();
        assert_ne!(generate_salt(&mut rng), generate_salt(&mut rng));
    }
}
