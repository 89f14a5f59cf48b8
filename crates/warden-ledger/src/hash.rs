//! SHA-256 hashes and the RFC 6962 / RFC 9162 domain-separated leaf and node hashing.
//!
//! A leaf's hash is `SHA-256(0x00 || leaf bytes)` and an interior node's hash is
//! `SHA-256(0x01 || left || right)`; the different prefixes make it impossible to pass a node
//! off as a leaf (second-preimage protection). The root of the empty tree is `SHA-256("")`.
//!
//! [`Hash`](struct@Hash) is a 32-byte newtype that prints and serialises as 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Length in bytes of a [`Hash`](struct@Hash).
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
///
/// Displays, parses and serialises (serde) as 64 hex digits (lowercase on output, either case
/// accepted on input).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; HASH_LEN]);

/// The root hash of the empty tree: `SHA-256("")` =
/// `e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`.
pub const EMPTY_TREE_HASH: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Why a string or byte slice is not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashError {
    /// The input does not have the right length.
    #[error("hash must be {expected} {unit}, got {actual}")]
    Length {
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
        /// What was counted ("hex digits" or "bytes").
        unit: &'static str,
    },
    /// The input contains a character that is not a hex digit.
    #[error("hash contains a non-hex character at offset {offset}")]
    NotHex {
        /// Byte offset of the first bad character.
        offset: usize,
    },
}

impl Hash {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lowercase hex encoding (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, ParseHashError> {
        if s.len() != 2 * HASH_LEN {
            return Err(ParseHashError::Length {
                expected: 2 * HASH_LEN,
                actual: s.len(),
                unit: "hex digits",
            });
        }
        if let Some(offset) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(ParseHashError::NotHex { offset });
        }
        let mut out = [0u8; HASH_LEN];
        // Cannot fail: length and alphabet were checked above.
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError::NotHex { offset: 0 })?;
        Ok(Hash(out))
    }

    /// Copies a 32-byte slice into a hash.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseHashError> {
        let arr: [u8; HASH_LEN] = bytes.try_into().map_err(|_| ParseHashError::Length {
            expected: HASH_LEN,
            actual: bytes.len(),
            unit: "bytes",
        })?;
        Ok(Hash(arr))
    }
}

impl From<[u8; HASH_LEN]> for Hash {
    fn from(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }
}

impl From<Hash> for [u8; HASH_LEN] {
    fn from(h: Hash) -> Self {
        h.0
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 2 * HASH_LEN];
        // Cannot fail: the buffer is exactly twice the input length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        // Hex output is ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;

        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Hash;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-256 hash as 64 hex digits")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hash, E> {
                Hash::from_hex(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(HexVisitor)
    }
}

/// Hash of a leaf (an entry's canonical bytes): `SHA-256(0x00 || data)` (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 1 + 2 * HASH_LEN];
    buf[0] = 0x01;
    buf[1..1 + HASH_LEN].copy_from_slice(&left.0);
    buf[1 + HASH_LEN..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// Root hash of the empty tree, `SHA-256("")`; same as [`EMPTY_TREE_HASH`].
pub fn empty_tree_hash() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        assert_eq!(empty_tree_hash(), EMPTY_TREE_HASH);
        assert_eq!(
            EMPTY_TREE_HASH.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // RFC 6962 test vector: the leaf hash of the empty leaf.
        assert_eq!(
            leaf_hash(b"").to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let mut concat = Vec::new();
        concat.extend_from_slice(&a.0);
        concat.extend_from_slice(&b.0);
        assert_ne!(node_hash(&a, &b), leaf_hash(&concat));
        let mut prefixed = vec![0x01];
        prefixed.extend_from_slice(&concat);
        assert_eq!(node_hash(&a, &b), Hash(Sha256::digest(&prefixed).into()));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert_eq!(h.to_hex().parse::<Hash>(), Ok(h));
        assert!(matches!(
            Hash::from_hex("abc"),
            Err(ParseHashError::Length { actual: 3, .. })
        ));
        let mut bad = h.to_hex();
        bad.replace_range(10..11, "g");
        assert_eq!(
            Hash::from_hex(&bad),
            Err(ParseHashError::NotHex { offset: 10 })
        );
        // Multi-byte characters must not cause a panic on slicing.
        let weird = "é".repeat(32);
        assert!(Hash::from_hex(&weird).is_err());
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
        assert_eq!(Hash::from_slice(&[7u8; 32]), Ok(Hash([7u8; 32])));
        assert_eq!(format!("{h:?}"), format!("Hash({h})"));
    }

    #[test]
    fn serde_as_hex_string() {
        let h = leaf_hash(b"serde");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{h}\""));
        let back: Hash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        assert!(serde_json::from_str::<Hash>("\"00\"").is_err());
        assert!(serde_json::from_str::<Hash>("[1,2]").is_err());
    }
}
