//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A signed note is UTF-8 text ending in a newline, a blank line, then one signature line per
//! signature:
//!
//! ```text
//! <text, ending in "\n">
//! <blank line>
//! — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>
//! ```
//!
//! The dash is U+2014 EM DASH followed by a space. The signature covers exactly the text bytes
//! (with its final newline, without the blank line). A key's ID is the first four bytes, big
//! endian, of `SHA-256(name || "\n" || 0x01 || 32-byte public key)`.
//!
//! Keys travel as strings: a verifier key is `<name>+<8 hex key ID>+<base64(0x01 || public
//! key)>` and a signer key is `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte
//! seed)>`. Key names must be non-empty and contain no whitespace, no `+` and no control
//! characters.
//!
//! [`open`] treats its input as hostile: it bounds sizes and signature counts, rejects control
//! characters other than newline (so CRLF notes are rejected), malformed lines and bad
//! signatures, ignores signatures by keys it does not know, and fails unless at least one known
//! key signed.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

mod key;

pub use key::{is_valid_key_name, key_id, Signer, Verifier};

/// Largest note text [`sign`] and [`open`] accept: 1 MiB.
pub const MAX_TEXT_LEN: usize = 1 << 20;

/// Largest whole note (text plus signature block) [`open`] reads before rejecting it unparsed.
pub const MAX_NOTE_LEN: usize = MAX_TEXT_LEN + (64 << 10);

/// Most signature lines [`open`] accepts on one note.
pub const MAX_SIGNATURES: usize = 100;

/// The algorithm byte of Ed25519 keys in key strings and key IDs.
pub const ALG_ED25519: u8 = 0x01;

/// Starts every signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Which kind of key string an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A `<name>+<id>+<key>` verifier key.
    Verifier,
    /// A `PRIVATE+KEY+<name>+<id>+<key>` signer key.
    Signer,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Verifier => "verifier key",
            KeyKind::Signer => "signer key",
        })
    }
}

/// Why a key string could not be used or a note could not be signed or opened.
///
/// No variant ever contains private key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key name breaks the naming rules.
    #[error(
        "invalid key name {name:?}: it must be non-empty and contain no whitespace, '+' or control characters"
    )]
    InvalidKeyName {
        /// The rejected name.
        name: String,
    },
    /// A key string does not have the expected shape.
    #[error("malformed {kind}: {reason}")]
    MalformedKey {
        /// Verifier or signer key.
        kind: KeyKind,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key string names an algorithm other than Ed25519.
    #[error("{kind} uses unsupported algorithm {alg:#04x} (only 0x01, Ed25519, is supported)")]
    UnsupportedAlgorithm {
        /// Verifier or signer key.
        kind: KeyKind,
        /// The algorithm byte found.
        alg: u8,
    },
    /// A verifier key's public key is not a valid Ed25519 point.
    #[error("public key of {name} is not a valid Ed25519 public key")]
    InvalidPublicKey {
        /// The key's name.
        name: String,
    },
    /// A key string's key ID does not match its name and key.
    #[error("{kind} {name} states key ID {stated:08x} but its key ID is {computed:08x}")]
    KeyIdMismatch {
        /// Verifier or signer key.
        kind: KeyKind,
        /// The key's name.
        name: String,
        /// Key ID written in the key string.
        stated: u32,
        /// Key ID computed from name and public key.
        computed: u32,
    },
    /// Text to sign does not end with a newline.
    #[error("note text must end with a newline")]
    TextMissingNewline,
    /// Text to sign or a note's text is larger than [`MAX_TEXT_LEN`].
    #[error("note text is {len} bytes, more than the maximum of {max}", max = MAX_TEXT_LEN)]
    TextTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// A note is larger than [`MAX_NOTE_LEN`].
    #[error("note is {len} bytes, more than the maximum of {max}", max = MAX_NOTE_LEN)]
    NoteTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// A note is not valid UTF-8.
    #[error("note is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// A note or text contains a control character other than newline.
    #[error("note contains control character {byte:#04x} at byte {offset}")]
    ControlCharacter {
        /// Byte offset.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// A note does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// A note has no blank line between text and signatures.
    #[error("note has no blank line separating its text from its signatures")]
    NoSignatureBlock,
    /// A note has a blank line but no signature after it.
    #[error("note has no signature lines")]
    NoSignatures,
    /// A signature line is malformed.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignature {
        /// 1-based line number within the signature block.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {max} signature lines", max = MAX_SIGNATURES)]
    TooManySignatures,
    /// A signature by a known key does not verify.
    #[error("signature by {name} (key ID {key_id:08x}) does not verify")]
    BadSignature {
        /// The signing key's name.
        name: String,
        /// The signing key's ID.
        key_id: u32,
    },
    /// No signature is by a known key.
    #[error("note is not signed by any known key (it has signatures by: {})", format_keys(.unknown))]
    NoKnownSignature {
        /// The keys that did sign.
        unknown: Vec<KeyRef>,
    },
}

fn format_keys(keys: &[KeyRef]) -> String {
    keys.iter()
        .map(KeyRef::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key's name and ID, as written on a signature line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}", self.name, self.key_id)
    }
}
/// Rejects text [`open`] would reject: too large, a control character, no final newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(NoteError::TextTooLarge { len: text.len() });
    }
    check_control(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::TextMissingNewline);
    }
    Ok(())
}

fn check_control(s: &str) -> Result<(), NoteError> {
    match s.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: s.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

fn signature_line(signer: &Signer, text: &str) -> String {
    let mut sig = Vec::with_capacity(68);
    sig.extend_from_slice(&signer.key_id().to_be_bytes());
    sig.extend_from_slice(&signer.sign_bytes(text.as_bytes()));
    format!("{SIG_PREFIX}{} {}\n", signer.name(), BASE64.encode(sig))
}

/// Signs `text` (which must end with a newline) and returns the signed note.
pub fn sign(text: &str, signer: &Signer) -> Result<String, NoteError> {
    sign_all(text, std::slice::from_ref(signer))
}

/// Signs `text` with every signer in turn (e.g. a log key and witness keys); signature lines
/// appear in the order given.
pub fn sign_all(text: &str, signers: &[Signer]) -> Result<String, NoteError> {
    check_text(text)?;
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 128);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        note.push_str(&signature_line(signer, text));
    }
    Ok(note)
}

/// A note whose signatures [`open`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The note's text, ending with a newline.
    pub text: String,
    /// The known keys whose signatures verified, in note order (at least one).
    pub verified_by: Vec<KeyRef>,
    /// Signatures by keys not among the verifiers; not checked.
    pub unverified: Vec<KeyRef>,
}

/// Parses a signed note and checks its signatures against `verifiers`.
///
/// Succeeds when every signature by a known key (same name and key ID) verifies and there is at
/// least one; signatures by other keys are listed in [`VerifiedNote::unverified`] unchecked.
pub fn open(note: impl AsRef<[u8]>, verifiers: &[Verifier]) -> Result<VerifiedNote, NoteError> {
    let bytes = note.as_ref();
    if bytes.len() > MAX_NOTE_LEN {
        return Err(NoteError::NoteTooLarge { len: bytes.len() });
    }
    let msg = std::str::from_utf8(bytes).map_err(|e| NoteError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    check_control(msg)?;
    if !msg.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    let split = msg.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if text.len() > MAX_TEXT_LEN {
        return Err(NoteError::TextTooLarge { len: text.len() });
    }
    if sigs.is_empty() {
        return Err(NoteError::NoSignatures);
    }

    let mut verified_by: Vec<KeyRef> = Vec::new();
    let mut unverified: Vec<KeyRef> = Vec::new();
    let mut seen_unverified: Vec<&str> = Vec::new();
    for (i, line) in sigs.split_terminator('\n').enumerate() {
        let line_no = i + 1;
        if line_no > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let malformed = |reason| NoteError::MalformedSignature {
            line: line_no,
            reason,
        };
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed("it does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("no space between key name and signature"))?;
        if !is_valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        if b64.is_empty() {
            return Err(malformed("empty signature"));
        }
        let sig = BASE64
            .decode(b64)
            .map_err(|_| malformed("signature is not valid standard base64"))?;
        let Some((id, sig)) = sig.split_first_chunk::<4>() else {
            return Err(malformed("signature is shorter than a key ID"));
        };
        if sig.is_empty() {
            return Err(malformed("signature has a key ID but no signature bytes"));
        }
        let key = KeyRef {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
        };
        let Some(verifier) = verifiers
            .iter()
            .find(|v| v.key_id() == key.key_id && v.name() == key.name)
        else {
            if !seen_unverified.contains(&line) {
                seen_unverified.push(line);
                unverified.push(key);
            }
            continue;
        };
        if verified_by.contains(&key) {
            // A repeated signature by the same key is ignored, as in Go's note package.
            continue;
        }
        let ok = <&[u8; 64]>::try_from(sig)
            .map(|sig| verifier.verify_bytes(text.as_bytes(), sig))
            .unwrap_or(false);
        if !ok {
            return Err(NoteError::BadSignature {
                name: key.name,
                key_id: key.key_id,
            });
        }
        verified_by.push(verifier.key_ref());
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoKnownSignature {
            unknown: unverified,
        });
    }
    Ok(VerifiedNote {
        text: text.to_owned(),
        verified_by,
        unverified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "warden.example/ledger";

    fn zero_signer() -> Signer {
        Signer::from_seed(NAME, [0u8; 32]).unwrap()
    }

    #[test]
    fn sign_and_open() {
        let s = zero_signer();
        let note = sign("a\nb\n", &s).unwrap();
        assert!(note.starts_with("a\nb\n\n\u{2014} warden.example/ledger "));
        let opened = open(note.as_bytes(), &[s.verifier()]).unwrap();
        assert_eq!(opened.text, "a\nb\n");
        assert_eq!(opened.verified_by, vec![s.verifier().key_ref()]);
        assert!(opened.unverified.is_empty());
        // The signature line is exactly name, space, base64 of 68 bytes.
        let line = note.lines().last().unwrap();
        let b64 = line.rsplit_once(' ').unwrap().1;
        let raw = BASE64.decode(b64).unwrap();
        assert_eq!(raw.len(), 68);
        assert_eq!(raw[..4], s.key_id().to_be_bytes());
    }

    #[test]
    fn text_rules_for_signing() {
        let s = zero_signer();
        assert_eq!(sign("no newline", &s), Err(NoteError::TextMissingNewline));
        assert!(matches!(
            sign("tab\there\n", &s),
            Err(NoteError::ControlCharacter { byte: 9, .. })
        ));
        assert!(matches!(
            sign("crlf\r\n", &s),
            Err(NoteError::ControlCharacter { byte: 13, .. })
        ));
        let big = "x".repeat(MAX_TEXT_LEN) + "\n";
        assert!(matches!(
            sign(&big, &s),
            Err(NoteError::TextTooLarge { .. })
        ));
        // A text with blank lines is fine: the last blank line separates the signatures.
        let note = sign("a\n\nb\n\n", &s).unwrap();
        assert_eq!(open(&note, &[s.verifier()]).unwrap().text, "a\n\nb\n\n");
        let max = "y".repeat(MAX_TEXT_LEN - 1) + "\n";
        let note = sign(&max, &s).unwrap();
        assert_eq!(
            open(&note, &[s.verifier()]).unwrap().text.len(),
            MAX_TEXT_LEN
        );
    }

    #[test]
    fn tampering_is_detected() {
        let s = zero_signer();
        let v = [s.verifier()];
        let note = sign("size 5\n", &s).unwrap();
        // Tampered text.
        let t = note.replacen("5", "6", 1);
        assert!(matches!(open(&t, &v), Err(NoteError::BadSignature { .. })));
        // Tampered signature (flip a base64 character in the signature bytes).
        let line_start = note.find('\u{2014}').unwrap();
        let mut chars: Vec<char> = note.chars().collect();
        let pos = note[..line_start].chars().count() + 40;
        chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
        let t: String = chars.into_iter().collect();
        assert!(matches!(open(&t, &v), Err(NoteError::BadSignature { .. })));
        // Wrong key: same name, different key -> different key ID -> unknown.
        let other = Signer::from_seed(NAME, [9u8; 32]).unwrap();
        assert!(matches!(
            open(&note, &[other.verifier()]),
            Err(NoteError::NoKnownSignature { .. })
        ));
        // Truncated notes.
        assert_eq!(
            open(&note[..note.len() - 1], &v),
            Err(NoteError::MissingFinalNewline)
        );
        assert_eq!(open("size 5\n", &v), Err(NoteError::NoSignatureBlock));
        assert_eq!(open("size 5\n\n", &v), Err(NoteError::NoSignatures));
        let cut = &note[..note.len() - 10];
        assert!(open(format!("{cut}\n"), &v).is_err());
        // Empty verifier list.
        assert!(matches!(
            open(&note, &[]),
            Err(NoteError::NoKnownSignature { .. })
        ));
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let s = zero_signer();
        let v = [s.verifier()];
        let note = sign("text\n", &s).unwrap();
        let sig_line = note.lines().last().unwrap().to_owned();
        let b64 = sig_line.rsplit_once(' ').unwrap().1.to_owned();
        let cases: Vec<(String, &str)> = vec![
            (format!("text\n\n- {NAME} {b64}\n"), "ascii dash"),
            (
                format!("text\n\n\u{2014}{NAME} {b64}\n"),
                "no space after dash",
            ),
            (
                format!("text\n\n\u{2014} {NAME}{b64}\n"),
                "no space before sig",
            ),
            (format!("text\n\n\u{2014} {NAME} \n"), "empty sig"),
            (format!("text\n\n\u{2014} {NAME} !!!!\n"), "bad base64"),
            (format!("text\n\n\u{2014} {NAME} AAAA\n"), "too short"),
            (format!("text\n\n\u{2014} {NAME} AAAAAA==\n"), "only key id"),
            (format!("text\n\n\u{2014}  {b64}\n"), "empty name"),
            (
                format!("text\n\n\u{2014} {NAME} {b64} extra\n"),
                "extra field",
            ),
            (format!("text\n\n{sig_line}\n\n"), "trailing blank"),
            (format!("text\n\n{sig_line}\r\n"), "crlf"),
            (format!("te\u{0}xt\n\n{sig_line}\n"), "nul"),
        ];
        for (bad, what) in cases {
            assert!(open(&bad, &v).is_err(), "{what}");
        }
        let mut invalid_utf8 = note.clone().into_bytes();
        invalid_utf8[1] = 0xff;
        assert_eq!(
            open(&invalid_utf8, &v),
            Err(NoteError::InvalidUtf8 { offset: 1 })
        );
        // A known key with a signature of the wrong length is a bad signature.
        let short = BASE64.encode([&s.key_id().to_be_bytes()[..], &[0u8; 10]].concat());
        assert!(matches!(
            open(format!("text\n\n\u{2014} {NAME} {short}\n"), &v),
            Err(NoteError::BadSignature { .. })
        ));
        // Size limits.
        let huge = vec![b'a'; MAX_NOTE_LEN + 1];
        assert!(matches!(
            open(&huge, &v),
            Err(NoteError::NoteTooLarge { .. })
        ));
        let big_text = format!("{}\n\n{sig_line}\n", "b".repeat(MAX_TEXT_LEN + 1));
        assert!(matches!(
            open(&big_text, &v),
            Err(NoteError::TextTooLarge { .. })
        ));
        let many = format!(
            "text\n\n{}",
            format!("{sig_line}\n").repeat(MAX_SIGNATURES + 1)
        );
        assert_eq!(open(&many, &v), Err(NoteError::TooManySignatures));
    }

    #[test]
    fn unknown_signatures_are_ignored_when_a_known_one_verifies() {
        let log = zero_signer();
        let witness = Signer::from_seed("witness.example/w1", [7u8; 32]).unwrap();
        let note = sign_all("cosigned\n", &[witness.clone(), log.clone()]).unwrap();
        let opened = open(&note, &[log.verifier()]).unwrap();
        assert_eq!(opened.text, "cosigned\n");
        assert_eq!(opened.verified_by, vec![log.verifier().key_ref()]);
        assert_eq!(opened.unverified, vec![witness.verifier().key_ref()]);
        // Only unknown signatures: rejected, naming them.
        let only_witness = sign("cosigned\n", &witness).unwrap();
        let err = open(&only_witness, &[log.verifier()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "note is not signed by any known key (it has signatures by: witness.example/w1+{:08x})",
                witness.key_id()
            )
        );
        // Both known: both verified.
        let both = open(&note, &[log.verifier(), witness.verifier()]).unwrap();
        assert_eq!(both.verified_by.len(), 2);
        // A bad signature by a known key fails even when another known key signed correctly.
        let other_text = sign("other\n", &log).unwrap();
        let stolen_line = other_text.lines().last().unwrap();
        let franken = format!(
            "cosigned\n\n{}\n{stolen_line}\n",
            note.lines().nth(2).unwrap()
        );
        assert!(matches!(
            open(&franken, &[log.verifier(), witness.verifier()]),
            Err(NoteError::BadSignature { .. })
        ));
    }
}
