//! Ed25519 note keys: [`Signer`] and [`Verifier`], their key IDs and their key strings.
//!
//! A verifier key string is `<name>+<8 hex key ID>+<base64(0x01 || public key)>`; a signer key
//! string is `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>` (the formats
//! of Go's `golang.org/x/mod/sumdb/note`). The key ID is the first four bytes, big endian, of
//! `SHA-256(name || "\n" || 0x01 || public key)`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{KeyKind, KeyRef, NoteError, ALG_ED25519};

/// Whether `name` may name a key: non-empty, no Unicode whitespace, no `+`, no control
/// characters.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName {
            name: name.to_owned(),
        })
    }
}

/// The key ID of an Ed25519 key: the first four bytes, big endian, of
/// `SHA-256(name || 0x0A || 0x01 || public_key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Parses an 8-hex-digit key ID.
fn parse_key_id(s: &str, kind: KeyKind) -> Result<u32, NoteError> {
    let malformed = NoteError::MalformedKey {
        kind,
        reason: "key ID must be 8 hex digits",
    };
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed);
    }
    u32::from_str_radix(s, 16).map_err(|_| malformed)
}

/// Decodes `base64(0x01 || 32 bytes)`.
fn parse_key_bytes(s: &str, kind: KeyKind) -> Result<[u8; 32], NoteError> {
    let bytes = BASE64.decode(s).map_err(|_| NoteError::MalformedKey {
        kind,
        reason: "key is not valid standard base64",
    })?;
    let Some((&alg, key)) = bytes.split_first() else {
        return Err(NoteError::MalformedKey {
            kind,
            reason: "key is empty",
        });
    };
    if alg != ALG_ED25519 {
        return Err(NoteError::UnsupportedAlgorithm { kind, alg });
    }
    key.try_into().map_err(|_| NoteError::MalformedKey {
        kind,
        reason: "Ed25519 key must be 32 bytes",
    })
}

fn encode_key_bytes(key: &[u8; 32]) -> String {
    let mut bytes = [0u8; 33];
    bytes[0] = ALG_ED25519;
    bytes[1..].copy_from_slice(key);
    BASE64.encode(bytes)
}

/// An Ed25519 signing key with its name. Its `Debug` output hides the key.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Signer {
    /// A new random key named `name`, from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::generate_with(name, &mut rand::rngs::OsRng)
    }

    /// A new random key named `name`, from `rng`.
    pub fn generate_with<R: rand::CryptoRng + rand::RngCore>(
        name: &str,
        rng: &mut R,
    ) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(name, seed)
    }

    /// The key named `name` with the 32-byte Ed25519 seed `seed` (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Signer {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || seed)>`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let kind = KeyKind::Signer;
        let mut parts = s.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id), Some(key)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(NoteError::MalformedKey {
                kind,
                reason: "expected PRIVATE+KEY+<name>+<key ID>+<key>",
            });
        };
        check_name(name)?;
        let stated = parse_key_id(id, kind)?;
        let seed = parse_key_bytes(key, kind)?;
        let signer = Self::from_seed(name, seed)?;
        if signer.key_id != stated {
            return Err(NoteError::KeyIdMismatch {
                kind,
                name: name.to_owned(),
                stated,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The secret key string `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)>`. Keep it
    /// secret: it is the signing key.
    pub fn to_key_string(&self) -> String {
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key_bytes(self.key.as_bytes())
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message` with Ed25519.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl FromStr for Signer {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Signer::parse(s)
    }
}

/// An Ed25519 public key with its name. `Display` gives the verifier key string.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// The verifier named `name` for the Ed25519 public key `public_key`.
    pub fn from_public_key(name: &str, public_key: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key =
            VerifyingKey::from_bytes(&public_key).map_err(|_| NoteError::InvalidPublicKey {
                name: name.to_owned(),
            })?;
        Ok(Verifier {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            key,
        })
    }

    /// Parses `<name>+<8 hex key ID>+<base64(0x01 || public key)>`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let kind = KeyKind::Verifier;
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey {
                kind,
                reason: "expected <name>+<key ID>+<key>",
            });
        };
        check_name(name)?;
        let stated = parse_key_id(id, kind)?;
        let public_key = parse_key_bytes(key, kind)?;
        let verifier = Self::from_public_key(name, public_key)?;
        if verifier.key_id != stated {
            return Err(NoteError::KeyIdMismatch {
                kind,
                name: name.to_owned(),
                stated,
                computed: verifier.key_id,
            });
        }
        Ok(verifier)
    }

    /// The verifier key string `<name>+<key ID>+<base64(0x01 || public key)>`.
    pub fn to_key_string(&self) -> String {
        self.to_string()
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is a valid (strict RFC 8032) Ed25519 signature of `message`.
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    pub(super) fn key_ref(&self) -> KeyRef {
        KeyRef {
            name: self.name.clone(),
            key_id: self.key_id,
        }
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_key_bytes(self.key.as_bytes())
        )
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({self})")
    }
}

impl FromStr for Verifier {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verifier::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{open, sign};

    const NAME: &str = "warden.example/ledger";

    fn zero_signer() -> Signer {
        Signer::from_seed(NAME, [0u8; 32]).unwrap()
    }

    #[test]
    fn key_strings_round_trip() {
        let s = zero_signer();
        let skey = s.to_key_string();
        assert!(skey.starts_with(&format!("PRIVATE+KEY+{NAME}+{:08x}+", s.key_id())));
        let parsed = Signer::parse(&skey).unwrap();
        assert_eq!(parsed.key_id(), s.key_id());
        assert_eq!(parsed.verifier(), s.verifier());
        let vkey = s.verifier().to_string();
        assert_eq!(Verifier::parse(&vkey).unwrap(), s.verifier());
        assert_eq!(vkey.parse::<Verifier>().unwrap(), s.verifier());
        // Upper-case hex key IDs are accepted, as in Go's note package.
        let upper = vkey.replacen(
            &format!("{:08x}", s.key_id()),
            &format!("{:08X}", s.key_id()),
            1,
        );
        assert_eq!(Verifier::parse(&upper).unwrap(), s.verifier());
        assert!(!format!("{s:?}").contains(&skey[skey.len() - 20..]));
    }

    #[test]
    fn generated_keys_work() {
        let s = Signer::generate("a.example/log").unwrap();
        let note = sign("hello\n", &s).unwrap();
        assert_eq!(open(&note, &[s.verifier()]).unwrap().text, "hello\n");
        let t = Signer::generate("a.example/log").unwrap();
        assert_ne!(s.key_id(), t.key_id());
    }

    #[test]
    fn key_names_are_checked() {
        for bad in ["", "a b", "a+b", "a\tb", "a\u{a0}b", "a\u{7f}b", "a\nb"] {
            assert!(!is_valid_key_name(bad), "{bad:?}");
            assert!(matches!(
                Signer::from_seed(bad, [0; 32]),
                Err(NoteError::InvalidKeyName { .. })
            ));
        }
        assert!(is_valid_key_name("example.com/log-1"));
        assert!(is_valid_key_name("héllo/ключ"));
    }

    #[test]
    fn bad_key_strings_are_rejected() {
        let s = zero_signer();
        let vkey = s.verifier().to_string();
        let skey = s.to_key_string();
        let (name_id, key64) = vkey.rsplit_once('+').unwrap();
        let wrong_id = format!("{NAME}+00000000+{key64}");
        assert!(matches!(
            Verifier::parse(&wrong_id),
            Err(NoteError::KeyIdMismatch { .. })
        ));
        let other_name = vkey.replacen(NAME, "other.example/log", 1);
        assert!(matches!(
            Verifier::parse(&other_name),
            Err(NoteError::KeyIdMismatch { .. })
        ));
        let alg2 = format!("{name_id}+{}", BASE64.encode([2u8; 33]));
        assert!(matches!(
            Verifier::parse(&alg2),
            Err(NoteError::UnsupportedAlgorithm { alg: 2, .. })
        ));
        for bad in [
            "",
            "name",
            "name+1234",
            "name+1234567+AQ==",
            "name+123456789+AQ==",
            "name++1234567+AQ==",
            "name+1234567g+AQ==",
            "name+12345678+",
            "name+12345678+AQ",
            "name+12345678+AQ==",
            "na me+12345678+AQ==",
        ] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Signer::parse(&vkey).is_err());
        assert!(Verifier::parse(&skey).is_err());
        for bad in [
            "PRIVATE+KEY+",
            "PRIVATE+KEY+name+12345678",
            "private+key+name+12345678+AQ==",
        ] {
            assert!(Signer::parse(bad).is_err(), "{bad:?}");
        }
        let tampered_seed = format!(
            "PRIVATE+KEY+{NAME}+{:08x}+{}",
            s.key_id(),
            BASE64.encode([1u8; 33])
        );
        let err = Signer::parse(&tampered_seed).unwrap_err();
        assert!(matches!(err, NoteError::KeyIdMismatch { .. }));
        // Errors about signer keys never echo the key.
        assert!(!err.to_string().contains(&BASE64.encode([1u8; 33])));
    }
}
