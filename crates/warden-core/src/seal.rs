//! Encryption at rest for upstream credentials. A target's credentials are sealed with
//! XChaCha20-Poly1305 (random 192-bit nonce, so nonces never repeat in practice) under a master
//! key that lives in the data directory or `WARDEN_MASTER_KEY`, never in the database. The
//! target's name is authenticated as associated data, so a sealed value copied onto another
//! target does not open.
//!
//! Sealed text: `v1:` followed by base64 of nonce ‖ ciphertext ‖ tag.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 24;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not something this module sealed.
    #[error("not a sealed value")]
    Malformed,
    /// Wrong key, wrong target, or the ciphertext was altered.
    #[error("cannot decrypt: wrong master key, or the stored value was altered")]
    Rejected,
}

/// Seals and opens values under one master key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
}

impl Sealer {
    /// A sealer with a 256-bit master key.
    pub fn new(key: [u8; 32]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::new()
            .chain_update(b"warden master key fingerprint\n")
            .chain_update(key)
            .finalize();
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            fingerprint: hex::encode(&digest[..16]),
        }
    }

    /// A one-way fingerprint of the key, so instances can check they share one without
    /// revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Encrypts `plaintext`, binding it to `context` (the target's name).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // Encryption only fails for messages beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{VERSION}{}", STANDARD.encode(out))
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let bytes = sealed
            .strip_prefix(VERSION)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() >= NONCE_LEN + 16)
            .ok_or(SealError::Malformed)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Rejected)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Sealer::new([7; 32]);
        let sealed = s.seal(b"Authorization: Bearer upstream-secret", "orders");
        assert!(!sealed.contains("upstream-secret"));
        assert_eq!(
            s.open(&sealed, "orders").unwrap(),
            b"Authorization: Bearer upstream-secret"
        );
        assert_eq!(s.open(&sealed, "billing"), Err(SealError::Rejected));
        assert_eq!(
            Sealer::new([8; 32]).open(&sealed, "orders"),
            Err(SealError::Rejected)
        );
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = format!("v1:{}", STANDARD.encode(bytes));
        assert_eq!(s.open(&altered, "orders"), Err(SealError::Rejected));
        assert_eq!(s.open("plain", "orders"), Err(SealError::Malformed));
        // Fresh nonce every time.
        assert_ne!(s.seal(b"x", "t"), s.seal(b"x", "t"));
    }
}
