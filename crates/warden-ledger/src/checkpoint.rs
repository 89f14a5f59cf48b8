//! C2SP tlog checkpoints (<https://c2sp.org/tlog-checkpoint>): a signed statement of a log's
//! size and root hash.
//!
//! The body is the text of a [signed note](crate::note):
//!
//! ```text
//! <origin>\n
//! <tree size, decimal, no leading zeros>\n
//! <root hash, standard base64 with padding>\n
//! [<extension line>\n]…
//! ```
//!
//! Parsing is strict: the origin is non-empty, the size is plain ASCII digits (`0` or no leading
//! zero), the root hash decodes to exactly 32 bytes from canonical base64, extension lines are
//! non-empty, and the body ends with a newline. [`Checkpoint::open`] checks the signature but
//! not that the origin is the one the caller expects: compare [`Checkpoint::origin`] yourself.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::hash::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

/// A log's size and root hash at one moment, as its operator signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log; conventionally the log's key name, e.g. `warden.example/ledger`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: Hash,
    /// Extension lines after the root hash, without their newlines (usually none).
    pub extensions: Vec<String>,
}

/// Why a checkpoint body or signed checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around the checkpoint was rejected.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The body does not end with a newline.
    #[error("checkpoint body does not end with a newline")]
    MissingFinalNewline,
    /// The body has fewer than three lines.
    #[error("checkpoint body has no {0} line")]
    MissingLine(&'static str),
    /// The origin line is empty or has a control character.
    #[error("checkpoint origin must be non-empty and free of control characters")]
    InvalidOrigin,
    /// The size line is not a canonical decimal `u64`.
    #[error(
        "checkpoint size {0:?} is not a decimal number without leading zeros that fits in 64 bits"
    )]
    InvalidSize(String),
    /// The root hash line is not base64 of 32 bytes.
    #[error("checkpoint root hash {0:?} is not standard base64 of 32 bytes")]
    InvalidRootHash(String),
    /// An extension line is empty or has a control character.
    #[error("checkpoint extension line {0} is empty or has a control character")]
    InvalidExtension(usize),
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Checks the fields can be written as a body that [`Checkpoint::parse_body`] reads back.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() || has_control(&self.origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.is_empty() || has_control(ext) {
                return Err(CheckpointError::InvalidExtension(i + 1));
            }
        }
        Ok(())
    }

    /// The checkpoint body: origin, size, base64 root hash and extension lines, each ending in
    /// a newline. Call [`Checkpoint::validate`] first if the fields are untrusted.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.as_bytes())
        );
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body strictly (see the module documentation).
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let body = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() || has_control(origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        let size = lines.next().ok_or(CheckpointError::MissingLine("size"))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::MissingLine("root hash"))?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let mut extensions = Vec::new();
        for (i, ext) in lines.enumerate() {
            if ext.is_empty() || has_control(ext) {
                return Err(CheckpointError::InvalidExtension(i + 1));
            }
            extensions.push(ext.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The signed note: the body followed by `signer`'s signature line.
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        self.validate()?;
        Ok(note::sign(&self.to_body(), signer)?)
    }

    /// Verifies a signed checkpoint with `verifier` (other signatures, e.g. witnesses', are
    /// ignored) and parses its body.
    pub fn open(note: impl AsRef<[u8]>, verifier: &Verifier) -> Result<Self, CheckpointError> {
        let opened = note::open(note, std::slice::from_ref(verifier))?;
        Checkpoint::parse_body(&opened.text)
    }
}

fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    let invalid = || CheckpointError::InvalidSize(s.chars().take(40).collect());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(invalid());
    }
    s.parse().map_err(|_| invalid())
}

fn parse_root(s: &str) -> Result<Hash, CheckpointError> {
    let invalid = || CheckpointError::InvalidRootHash(s.chars().take(60).collect());
    // 32 bytes are 44 base64 characters; checking first bounds the work on hostile input.
    if s.len() != 44 {
        return Err(invalid());
    }
    let bytes = BASE64.decode(s).map_err(|_| invalid())?;
    Hash::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{leaf_hash, EMPTY_TREE_HASH};

    fn signer() -> Signer {
        Signer::from_seed("warden.example/ledger", [0u8; 32]).unwrap()
    }

    #[test]
    fn body_format() {
        let c = Checkpoint::new("warden.example/ledger", 0, EMPTY_TREE_HASH);
        assert_eq!(
            c.to_body(),
            "warden.example/ledger\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        );
        assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);
        let mut e = Checkpoint::new("o", 12345, leaf_hash(b"x"));
        e.extensions = vec!["ext one".into(), "— two".into()];
        assert_eq!(Checkpoint::parse_body(&e.to_body()).unwrap(), e);
    }

    #[test]
    fn strict_parsing() {
        let root = BASE64.encode(EMPTY_TREE_HASH.as_bytes());
        let ok = |size: &str| format!("origin\n{size}\n{root}\n");
        assert_eq!(Checkpoint::parse_body(&ok("0")).unwrap().size, 0);
        assert_eq!(
            Checkpoint::parse_body(&ok("18446744073709551615"))
                .unwrap()
                .size,
            u64::MAX
        );
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "0x10",
            "18446744073709551616",
            "١",
        ] {
            assert!(
                matches!(
                    Checkpoint::parse_body(&ok(bad)),
                    Err(CheckpointError::InvalidSize(_))
                ),
                "{bad:?}"
            );
        }
        let short = BASE64.encode([0u8; 31]);
        let long = BASE64.encode([0u8; 33]);
        let unpadded = root.trim_end_matches('=').to_owned();
        let urlsafe = root.replace('+', "-").replace('/', "_");
        // Non-canonical final character: same length, non-zero trailing bits.
        let noncanonical = format!("{}V=", &root[..42]);
        for bad in [
            short,
            long,
            unpadded,
            urlsafe,
            noncanonical,
            "hash".into(),
            String::new(),
        ] {
            let body = format!("origin\n5\n{bad}\n");
            assert!(
                matches!(
                    Checkpoint::parse_body(&body),
                    Err(CheckpointError::InvalidRootHash(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("\n5\n{root}\n")),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            Checkpoint::parse_body(&format!("origin\n5\n{root}")),
            Err(CheckpointError::MissingFinalNewline)
        );
        assert_eq!(
            Checkpoint::parse_body("origin\n5\n"),
            Err(CheckpointError::MissingLine("root hash"))
        );
        assert_eq!(
            Checkpoint::parse_body("origin\n"),
            Err(CheckpointError::MissingLine("size"))
        );
        assert_eq!(
            Checkpoint::parse_body(""),
            Err(CheckpointError::MissingFinalNewline)
        );
        assert_eq!(
            Checkpoint::parse_body("\n"),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            Checkpoint::parse_body(&format!("origin\n5\n{root}\n\n")),
            Err(CheckpointError::InvalidExtension(1))
        );
    }

    #[test]
    fn sign_and_open() {
        let s = signer();
        let c = Checkpoint::new(s.name(), 3, leaf_hash(b"root"));
        let note = c.sign(&s).unwrap();
        assert!(note.starts_with(&c.to_body()));
        assert_eq!(Checkpoint::open(&note, &s.verifier()).unwrap(), c);

        // Tampered size.
        let tampered = note.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            Checkpoint::open(&tampered, &s.verifier()),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
        // Wrong key.
        let other = Signer::from_seed(s.name(), [1u8; 32]).unwrap();
        assert!(matches!(
            Checkpoint::open(&note, &other.verifier()),
            Err(CheckpointError::Note(NoteError::NoKnownSignature { .. }))
        ));
        // Truncated.
        assert!(Checkpoint::open(&note[..note.len() / 2], &s.verifier()).is_err());
        assert!(Checkpoint::open(&note[..note.len() - 1], &s.verifier()).is_err());

        // A signed note whose text is not a checkpoint.
        let not_checkpoint = note::sign("hello\n", &s).unwrap();
        assert_eq!(
            Checkpoint::open(&not_checkpoint, &s.verifier()),
            Err(CheckpointError::MissingLine("size"))
        );
        // Invalid fields are refused before signing.
        assert_eq!(
            Checkpoint::new("", 1, EMPTY_TREE_HASH).sign(&s),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            Checkpoint::new("a\nb", 1, EMPTY_TREE_HASH).sign(&s),
            Err(CheckpointError::InvalidOrigin)
        );
    }

    #[test]
    fn witness_cosignature_is_ignored() {
        let s = signer();
        let w = Signer::from_seed("witness.example", [3u8; 32]).unwrap();
        let c = Checkpoint::new(s.name(), 10, leaf_hash(b"r"));
        let cosigned = note::sign_all(&c.to_body(), &[s.clone(), w]).unwrap();
        assert_eq!(Checkpoint::open(&cosigned, &s.verifier()).unwrap(), c);
    }
}
