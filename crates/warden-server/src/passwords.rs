//! Admins' console passwords: argon2id hashes as PHC strings (the `argon2` crate with its default
//! parameters, which are OWASP's recommendation: 19 MiB, 2 passes, 1 lane), the rules a new
//! password must meet, and verification off the async runtime (a hash takes tens of
//! milliseconds of CPU on purpose).
//!
//! A sign-in for a name that has no password is verified against a fixed dummy hash, so the time
//! a failed attempt takes does not tell whether the admin exists.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use warden_core::ValidationError;

/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted (hashing cost does not grow with it, but a bound keeps requests
/// small and errors clear).
pub const MAX_CHARS: usize = 256;

/// Hashing failed (only on an internal fault: the parameters are fixed and valid).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Whether `password` may be set: `MIN_CHARS` to `MAX_CHARS` characters, not all the same one.
pub fn validate(password: &str) -> Result<(), ValidationError> {
    let chars = password.chars().count();
    let problem = if chars < MIN_CHARS {
        Some(format!("must be at least {MIN_CHARS} characters"))
    } else if chars > MAX_CHARS {
        Some(format!("must be at most {MAX_CHARS} characters"))
    } else if password.chars().all(|c| password.starts_with(c)) {
        Some("must not be one character repeated".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(ValidationError::new("password", p)),
        None => Ok(()),
    }
}

/// The PHC string of `password` with a fresh random salt.
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| HashError(e.to_string()))?
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `stored` (a PHC string); with no stored hash, the same work is
/// done against a dummy and the answer is no. The comparison inside is constant-time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy;
        let phc = match &stored {
            Some(s) => s.as_str(),
            None => {
                dummy = dummy_hash();
                dummy
            }
        };
        let matches = PasswordHash::new(phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        matches && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, made once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse batterz".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse battery".into(), None).await);
        assert!(!verify("anything".into(), Some("not a phc string".into())).await);
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash("correct horse battery".into()).await.unwrap());
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert!(validate("short")
            .unwrap_err()
            .to_string()
            .contains("at least 12"));
        assert!(validate("aaaaaaaaaaaaaaaa").is_err());
        assert!(validate(&"ab".repeat(200)).is_err());
        assert!(validate("a long enough passphrase").is_ok());
    }
}
