//! The audit bundle: a whole ledger in one self-contained JSON Lines file that an auditor can
//! verify offline, with no server and no database (`warden audit verify --bundle FILE`).
//!
//! Every line is one JSON object followed by `\n` (`docs/LEDGER.md`, "The audit bundle"):
//!
//! ```text
//! {"format":"warden-ledger-bundle/1","origin":"<log origin>","key":"<verifier key>","size":N,"exported_at":"<RFC 3339>"}
//! {"checkpoint":"<signed checkpoint note>"}                      one per checkpoint, ascending size
//! {"seq":0,"body":"<entry body as a JSON string>","leaf_hash":"<64 hex>"}   one per entry, in order
//! {"seq":1,"body":"","leaf_hash":"<64 hex>","pruned":true}           an entry whose body retention removed
//! ```
//!
//! Nothing in a bundle is trusted because it is in the bundle: the header's key is a convenience
//! (an auditor should obtain the key independently), and entries and checkpoints are checked by
//! [`crate::verify::Audit`]. This module only reads and writes the format, with `std::io` and
//! nothing else. [`BundleReader`] streams (one line in memory at a time), bounds line length,
//! and reports every malformed line with its number; it never panics on hostile input.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::note::Verifier;

/// The value of the header's `format` field for this version of the format.
pub const FORMAT: &str = "warden-ledger-bundle/1";

/// Longest line [`BundleReader::open`] accepts, newline included: 16 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 16 << 20;

/// Line 1 of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The log's origin (its signing key's name), as in its checkpoints.
    pub origin: String,
    /// The verifier key string of the log's signing key, as the exporter saw it. Unauthenticated:
    /// an auditor should compare it with a key obtained independently.
    pub key: String,
    /// How many entry lines follow the checkpoints.
    pub size: u64,
    /// When the bundle was written (RFC 3339).
    pub exported_at: String,
}

impl BundleHeader {
    /// The header of a bundle of `size` entries from the log signed by `verifier`.
    pub fn new(verifier: &Verifier, size: u64, exported_at: impl Into<String>) -> Self {
        BundleHeader {
            format: FORMAT.to_owned(),
            origin: verifier.name().to_owned(),
            key: verifier.to_key_string(),
            size,
            exported_at: exported_at.into(),
        }
    }
}

/// One entry line: a ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEntry {
    /// Its position, as the store listed it.
    pub seq: u64,
    /// Its exact body (the bytes hashed are this string's UTF-8); empty if pruned.
    pub body: String,
    /// The leaf hash stored with it.
    pub leaf_hash: Hash,
    /// Whether retention removed its body (only the leaf hash remains).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
}

/// Why a bundle could not be read. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading failed.
    #[error("reading line {line}")]
    Io {
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is empty.
    #[error("the bundle is empty (it has no header line)")]
    Empty,
    /// A line is longer than the limit.
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong {
        /// The line.
        line: u64,
        /// The limit.
        max: usize,
    },
    /// The header names a format this version cannot read.
    #[error("line 1: unsupported bundle format {found:?} (this version reads {FORMAT:?})")]
    UnsupportedFormat {
        /// The header's `format`.
        found: String,
    },
    /// A line is not what the format allows there.
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Writes a bundle: the header, then checkpoints, then entries.
#[derive(Debug)]
pub struct BundleWriter<W: Write> {
    out: W,
    entries_started: bool,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle by writing its header line.
    pub fn new(mut out: W, header: &BundleHeader) -> io::Result<Self> {
        write_line(&mut out, header)?;
        Ok(BundleWriter {
            out,
            entries_started: false,
        })
    }

    /// Writes a checkpoint line. All checkpoints come before the first entry, in ascending size.
    pub fn write_checkpoint(&mut self, note: &str) -> io::Result<()> {
        if self.entries_started {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bundle checkpoints must be written before the entries",
            ));
        }
        #[derive(Serialize)]
        struct Line<'a> {
            checkpoint: &'a str,
        }
        write_line(&mut self.out, &Line { checkpoint: note })
    }

    /// Writes an entry line. `body` must be UTF-8 (entry bodies are canonical JSON).
    pub fn write_entry(&mut self, seq: u64, body: &[u8], leaf_hash: &Hash) -> io::Result<()> {
        write_entry_line(&mut self.out, seq, body, leaf_hash)?;
        self.entries_started = true;
        Ok(())
    }

    /// Writes the line of an entry whose body retention removed: only its leaf hash remains.
    pub fn write_pruned_entry(&mut self, seq: u64, leaf_hash: &Hash) -> io::Result<()> {
        write_pruned_entry_line(&mut self.out, seq, leaf_hash)?;
        self.entries_started = true;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes one entry line, as [`BundleWriter::write_entry`] does, for a writer that assembles a
/// bundle in parts (e.g. entries first, to learn the header's size). `body` must be UTF-8.
pub fn write_entry_line<W: Write>(
    out: &mut W,
    seq: u64,
    body: &[u8],
    leaf_hash: &Hash,
) -> io::Result<()> {
    let body = std::str::from_utf8(body).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "entry {seq}'s body is not UTF-8 (at byte {}) and cannot be written to a bundle",
                e.valid_up_to()
            ),
        )
    })?;
    #[derive(Serialize)]
    struct Line<'a> {
        seq: u64,
        body: &'a str,
        leaf_hash: &'a Hash,
    }
    write_line(
        out,
        &Line {
            seq,
            body,
            leaf_hash,
        },
    )
}

/// Writes one pruned entry's line, as [`BundleWriter::write_pruned_entry`] does.
pub fn write_pruned_entry_line<W: Write>(
    out: &mut W,
    seq: u64,
    leaf_hash: &Hash,
) -> io::Result<()> {
    write_line(
        out,
        &BundleEntry {
            seq,
            body: String::new(),
            leaf_hash: *leaf_hash,
            pruned: true,
        },
    )
}

fn write_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// Any line after the header, before it is known which kind it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnyLine {
    checkpoint: Option<String>,
    seq: Option<u64>,
    body: Option<String>,
    leaf_hash: Option<Hash>,
    pruned: Option<bool>,
}

/// Reads a bundle as a stream: the header and checkpoints on [`BundleReader::open`], then one
/// entry per [`BundleReader::next_entry`].
#[derive(Debug)]
pub struct BundleReader<R: BufRead> {
    input: R,
    max_line_len: usize,
    line: u64,
    buf: Vec<u8>,
    header: BundleHeader,
    checkpoints: Vec<String>,
    pending: Option<BundleEntry>,
    entries: u64,
}

impl<R: BufRead> BundleReader<R> {
    /// Reads the header and every checkpoint line, stopping at the first entry.
    pub fn open(input: R) -> Result<Self, BundleError> {
        Self::with_max_line_len(input, DEFAULT_MAX_LINE_LEN)
    }

    /// Like [`BundleReader::open`] with another line length limit (bytes, newline included).
    pub fn with_max_line_len(input: R, max_line_len: usize) -> Result<Self, BundleError> {
        let mut reader = BundleReader {
            input,
            max_line_len,
            line: 0,
            buf: Vec::new(),
            header: BundleHeader {
                format: String::new(),
                origin: String::new(),
                key: String::new(),
                size: 0,
                exported_at: String::new(),
            },
            checkpoints: Vec::new(),
            pending: None,
            entries: 0,
        };
        if !reader.read_line()? {
            return Err(BundleError::Empty);
        }
        reader.header = reader.parse_header()?;
        while reader.read_line()? {
            match reader.parse_line()? {
                Item::Checkpoint(note) => reader.checkpoints.push(note),
                Item::Entry(entry) => {
                    reader.pending = Some(entry);
                    break;
                }
            }
        }
        Ok(reader)
    }

    /// The header (line 1).
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The checkpoint notes, in file order.
    pub fn checkpoints(&self) -> &[String] {
        &self.checkpoints
    }

    /// The number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Entries returned so far.
    pub fn entries_read(&self) -> u64 {
        self.entries
    }

    /// The next entry, or `None` at the end of the file.
    pub fn next_entry(&mut self) -> Result<Option<BundleEntry>, BundleError> {
        let entry = match self.pending.take() {
            Some(entry) => Some(entry),
            None if self.read_line()? => match self.parse_line()? {
                Item::Entry(entry) => Some(entry),
                Item::Checkpoint(_) => {
                    return Err(self.malformed(
                        "a checkpoint line after the entries (checkpoints come first)".into(),
                    ))
                }
            },
            None => None,
        };
        if entry.is_some() {
            self.entries += 1;
        }
        Ok(entry)
    }

    /// Reads the next line into `buf` without its newline; `false` at the end of the file.
    fn read_line(&mut self) -> Result<bool, BundleError> {
        self.buf.clear();
        let line = self.line + 1;
        let limit = u64::try_from(self.max_line_len)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let n = self
            .input
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| BundleError::Io { line, source })?;
        if n == 0 {
            return Ok(false);
        }
        self.line = line;
        if n > self.max_line_len {
            return Err(BundleError::LineTooLong {
                line,
                max: self.max_line_len,
            });
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(true)
    }

    fn malformed(&self, reason: String) -> BundleError {
        BundleError::Malformed {
            line: self.line,
            reason,
        }
    }

    fn parse_header(&self) -> Result<BundleHeader, BundleError> {
        // Look at `format` first, so a future version's header gets a clear error.
        #[derive(Deserialize)]
        struct Format {
            format: Option<serde_json::Value>,
        }
        let format = serde_json::from_slice::<Format>(&self.buf)
            .map_err(|e| self.malformed(format!("not a bundle header: {e}")))?;
        match format.format {
            Some(serde_json::Value::String(f)) if f == FORMAT => {}
            Some(serde_json::Value::String(found)) => {
                return Err(BundleError::UnsupportedFormat { found })
            }
            _ => {
                return Err(self.malformed(format!(
                    "not a bundle header: it has no \"format\":\"{FORMAT}\""
                )))
            }
        }
        serde_json::from_slice(&self.buf).map_err(|e| self.malformed(format!("bad header: {e}")))
    }

    fn parse_line(&self) -> Result<Item, BundleError> {
        if let Some(entry) = fast_entry(&self.buf) {
            return Ok(Item::Entry(entry));
        }
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            return Err(self.malformed("empty line".into()));
        }
        let line: AnyLine = serde_json::from_slice(&self.buf).map_err(|e| {
            self.malformed(format!(
                "not a checkpoint or entry line ({e}); a line is {{\"checkpoint\":…}} or \
                 {{\"seq\":…,\"body\":…,\"leaf_hash\":…}}"
            ))
        })?;
        match line {
            AnyLine {
                checkpoint: Some(note),
                seq: None,
                body: None,
                leaf_hash: None,
                pruned: None,
            } => Ok(Item::Checkpoint(note)),
            AnyLine {
                checkpoint: None,
                seq: Some(_),
                body: Some(body),
                pruned: Some(true),
                ..
            } if !body.is_empty() => Err(self
                .malformed("a pruned entry line (\"pruned\":true) must have an empty body".into())),
            AnyLine {
                checkpoint: None,
                seq: Some(seq),
                body: Some(body),
                leaf_hash: Some(leaf_hash),
                pruned,
            } => Ok(Item::Entry(BundleEntry {
                seq,
                body,
                leaf_hash,
                pruned: pruned.unwrap_or(false),
            })),
            AnyLine {
                checkpoint: None, ..
            } => Err(self.malformed(
                "an entry line needs \"seq\", \"body\" and \"leaf_hash\", all non-null".into(),
            )),
            AnyLine {
                checkpoint: Some(_),
                ..
            } => Err(self.malformed(
                "a checkpoint line has only \"checkpoint\"; an entry line has no \"checkpoint\""
                    .into(),
            )),
        }
    }
}

/// Parses an entry line in exactly the shape [`write_entry_line`] writes, several times faster
/// than serde_json on bodies full of escaped quotes. Anything else (other member order,
/// whitespace, `\u` escapes, any error) returns `None` and goes through serde_json, which gives
/// the same result for every line accepted here.
fn fast_entry(line: &[u8]) -> Option<BundleEntry> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",\"body\":\"")?;
    let mut body = Vec::with_capacity(rest.len());
    let mut i = 0;
    loop {
        let run = find_special(&rest[i..])?;
        body.extend_from_slice(&rest[i..i + run]);
        i += run;
        match rest[i] {
            b'"' => {
                i += 1;
                break;
            }
            b'\\' => {
                body.push(match rest.get(i + 1)? {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    _ => return None,
                });
                i += 2;
            }
            _ => return None,
        }
    }
    let rest = rest[i..].strip_prefix(b",\"leaf_hash\":\"")?;
    let hex = rest.strip_suffix(b"\"}")?;
    let leaf_hash = decode_hex(hex)?;
    let body = String::from_utf8(body).ok()?;
    Some(BundleEntry {
        seq,
        body,
        leaf_hash,
        pruned: false,
    })
}

/// 64 hex digits of either case, as [`Hash::from_hex`] reads them (which is much slower).
fn decode_hex(hex: &[u8]) -> Option<Hash> {
    /// Nibble values; 0xff for a non-hex byte.
    const TABLE: [u8; 256] = {
        let mut t = [0xffu8; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (TABLE[usize::from(pair[0])], TABLE[usize::from(pair[1])]);
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(Hash(out))
}

/// Index of the first `"`, `\\` or control character, eight bytes at a time.
fn find_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Flags zero bytes; exact for the lowest flagged byte, which is all that is used.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let special = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if special != 0 {
            return Some(i + (special.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

enum Item {
    Checkpoint(String),
    Entry(BundleEntry),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::note::Signer;

    fn verifier() -> Verifier {
        Signer::from_seed("warden.example/ledger", [0u8; 32])
            .unwrap()
            .verifier()
    }

    fn sample() -> Vec<u8> {
        let header = BundleHeader::new(&verifier(), 3, "2026-01-02T03:04:05Z");
        let mut w = BundleWriter::new(Vec::new(), &header).unwrap();
        w.write_checkpoint("origin\n1\nAAAA\n\n— origin sig\n")
            .unwrap();
        w.write_checkpoint("second\n").unwrap();
        for (i, body) in [
            r#"{"id":"a","seq":0}"#,
            "{\"id\":\"b\\n\u{2028}é\",\"seq\":1,\"x\":\"\\\"quoted\\\"\"}",
            r#"{"id":"c","seq":2,"t":"	tab"}"#,
        ]
        .iter()
        .enumerate()
        {
            w.write_entry(i as u64, body.as_bytes(), &leaf_hash(body.as_bytes()))
                .unwrap();
        }
        w.write_pruned_entry(3, &leaf_hash(b"gone")).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 7);
        assert!(text.ends_with('\n'));
        assert!(text.starts_with(
            "{\"format\":\"warden-ledger-bundle/1\",\"origin\":\"warden.example/ledger\",\"key\":\"warden.example/ledger+b5838ea4+"
        ));
        let mut r = BundleReader::open(&bytes[..]).unwrap();
        assert_eq!(r.header().size, 3);
        assert_eq!(r.header().key, verifier().to_key_string());
        assert_eq!(r.header().exported_at, "2026-01-02T03:04:05Z");
        assert_eq!(
            r.checkpoints(),
            ["origin\n1\nAAAA\n\n— origin sig\n", "second\n"]
        );
        let mut bodies = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            assert_eq!(e.seq, bodies.len() as u64);
            if e.seq < 3 {
                assert!(!e.pruned);
                assert_eq!(e.leaf_hash, leaf_hash(e.body.as_bytes()));
            } else {
                assert!(e.pruned);
                assert_eq!((e.body.as_str(), e.leaf_hash), ("", leaf_hash(b"gone")));
            }
            bodies.push(e.body);
        }
        assert_eq!(r.entries_read(), 4);
        assert_eq!(
            text.lines().last().unwrap(),
            format!(
                r#"{{"seq":3,"body":"","leaf_hash":"{}","pruned":true}}"#,
                leaf_hash(b"gone")
            )
        );
        assert_eq!(
            bodies[1],
            "{\"id\":\"b\\n\u{2028}é\",\"seq\":1,\"x\":\"\\\"quoted\\\"\"}"
        );
        assert_eq!(r.next_entry().unwrap(), None);
        // Exact line shape of an entry.
        let line = text.lines().nth(3).unwrap();
        assert_eq!(
            line,
            format!(
                r#"{{"seq":0,"body":"{{\"id\":\"a\",\"seq\":0}}","leaf_hash":"{}"}}"#,
                leaf_hash(br#"{"id":"a","seq":0}"#)
            )
        );
    }

    #[test]
    fn empty_ledger_and_missing_final_newline() {
        let header = BundleHeader::new(&verifier(), 0, "t");
        let bytes = BundleWriter::new(Vec::new(), &header)
            .unwrap()
            .finish()
            .unwrap();
        let mut r = BundleReader::open(&bytes[..]).unwrap();
        assert!(r.checkpoints().is_empty());
        assert_eq!(r.next_entry().unwrap(), None);
        let mut r = BundleReader::open(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(r.next_entry().unwrap(), None);
    }

    #[test]
    fn writer_refuses_misuse() {
        let header = BundleHeader::new(&verifier(), 1, "t");
        let mut w = BundleWriter::new(Vec::new(), &header).unwrap();
        assert!(w.write_entry(0, b"\xff", &leaf_hash(b"")).is_err());
        w.write_entry(0, b"{}", &leaf_hash(b"{}")).unwrap();
        assert!(w.write_checkpoint("late\n").is_err());
    }

    fn err(bytes: &[u8]) -> String {
        let mut r = match BundleReader::with_max_line_len(bytes, 4096) {
            Ok(r) => r,
            Err(e) => return e.to_string(),
        };
        loop {
            match r.next_entry() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error in {:?}", String::from_utf8_lossy(bytes)),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn errors_name_the_line() {
        let good = sample();
        let text = String::from_utf8(good).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let with = |i: usize, replacement: &str| {
            let mut l = lines.clone();
            l[i] = replacement;
            l.join("\n") + "\n"
        };
        assert_eq!(err(b""), "the bundle is empty (it has no header line)");
        assert!(err(b"hello\n").starts_with("line 1: not a bundle header"));
        assert!(err(b"{}\n").starts_with("line 1: not a bundle header"));
        assert_eq!(
            err(br#"{"format":"warden-ledger-bundle/2"}"#),
            "line 1: unsupported bundle format \"warden-ledger-bundle/2\" (this version reads \"warden-ledger-bundle/1\")"
        );
        assert!(err(br#"{"format":"warden-ledger-bundle/1","origin":"o"}"#)
            .starts_with("line 1: bad header: missing field"));
        assert!(
            err(with(0, &lines[0].replace("\"size\"", "\"extra\":1,\"size\"")).as_bytes())
                .starts_with("line 1: bad header: unknown field `extra`")
        );
        assert!(err(with(1, "").as_bytes()).starts_with("line 2: empty line"));
        assert!(err(with(2, "[1,2]").as_bytes()).starts_with("line 3: not a checkpoint or entry"));
        assert!(err(with(4, r#"{"seq":1,"body":"x"}"#).as_bytes())
            .starts_with("line 5: an entry line needs"));
        assert!(
            err(with(4, r#"{"seq":1,"body":"x","leaf_hash":"00"}"#).as_bytes())
                .starts_with("line 5: not a checkpoint or entry line (hash must be 64 hex digits")
        );
        assert!(
            err(with(4, r#"{"seq":-1,"body":"x","leaf_hash":null}"#).as_bytes())
                .starts_with("line 5: not a checkpoint or entry")
        );
        assert!(err(with(
            4,
            r#"{"seq":1,"body":"x","leaf_hash":"0000000000000000000000000000000000000000000000000000000000000000","pruned":true}"#
        )
        .as_bytes())
        .starts_with("line 5: a pruned entry line"));
        assert!(err(with(4, r#"{"checkpoint":"x","seq":1}"#).as_bytes())
            .starts_with("line 5: a checkpoint line has only"));
        assert!(err(with(4, r#"{"checkpoint":"x"}"#).as_bytes())
            .starts_with("line 5: a checkpoint line after the entries"));
        assert!(err(with(5, &format!("{} trailing", lines[5])).as_bytes())
            .starts_with("line 6: not a checkpoint or entry line (trailing characters"));
        // Duplicate fields are refused, not resolved either way.
        assert!(
            err(with(4, &lines[4].replace("{\"seq\":1,", "{\"seq\":1,\"seq\":2,")).as_bytes())
                .contains("duplicate field `seq`")
        );
        // Line length limit, with and without a newline after the long line.
        let long = format!("{}\n{}\n", lines[0], "x".repeat(5000));
        assert_eq!(err(long.as_bytes()), "line 2 is longer than 4096 bytes");
        assert_eq!(
            err(&long.as_bytes()[..long.len() - 1]),
            "line 2 is longer than 4096 bytes"
        );
        // Not UTF-8.
        let mut bad = lines[..5].join("\n").into_bytes();
        bad.extend_from_slice(b"\n{\"seq\":2,\"body\":\"\xff\"}\n");
        assert!(err(&bad).starts_with("line 6: not a checkpoint or entry"));
    }

    #[test]
    fn hostile_input_never_panics() {
        let good = sample();
        // Every truncation and every single-byte corruption of a valid bundle.
        for cut in 0..good.len() {
            let _ = err_or_ok(&good[..cut]);
        }
        for i in 0..good.len() {
            for b in [0u8, b'\n', b'"', b'\\', b'{', 0xff, b'9'] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = err_or_ok(&bad);
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_serde_json() {
        let leaf = leaf_hash(b"x");
        let mut lines: Vec<String> = [
            "",
            "plain",
            "{\"id\":\"a\",\"seq\":1}",
            "tabs\tnewlines\n\r back\\slash / quote\" é 😀 \u{2028}",
            "\u{1}\u{8}\u{c}\u{1f}",
        ]
        .iter()
        .map(|body| {
            let mut out = Vec::new();
            write_entry_line(&mut out, 7, body.as_bytes(), &leaf).unwrap();
            String::from_utf8(out).unwrap().trim_end().to_owned()
        })
        .collect();
        let hex = leaf.to_hex();
        lines.extend([
            format!(r#"{{"seq":07,"body":"x","leaf_hash":"{hex}"}}"#),
            format!(r#"{{"seq":18446744073709551616,"body":"x","leaf_hash":"{hex}"}}"#),
            format!(r#"{{"seq":1,"body":"x\u0041","leaf_hash":"{hex}"}}"#),
            format!(r#"{{"seq":1,"body":"x\q","leaf_hash":"{hex}"}}"#),
            format!(
                r#"{{"seq":1,"body":"x","leaf_hash":"{}"}}"#,
                hex.to_uppercase()
            ),
            format!(r#"{{"seq":1,"body":"x","leaf_hash":"{hex}"}} "#),
            format!(r#"{{"seq":1,"body":"x","leaf_hash":"{hex}0"}}"#),
            format!("{{\"seq\":1,\"body\":\"x\ty\",\"leaf_hash\":\"{hex}\"}}"),
            r#"{"seq":1,"body":"x","leaf_hash":"zz"}"#.to_owned(),
            r#"{"seq":1,"body":"x"#.to_owned(),
        ]);
        let mut fast = 0;
        for line in &lines {
            let ours = fast_entry(line.as_bytes());
            let theirs = serde_json::from_str::<BundleEntry>(line).ok();
            if ours.is_some() {
                fast += 1;
                assert_eq!(ours, theirs, "{line}");
            }
        }
        assert_eq!(fast, 5);
        for i in 0..40 {
            for c in [b'"', b'\\', 0x00, 0x1f] {
                let mut v = vec![b'a'; 40];
                v[i] = c;
                v[39 - i / 2] = b'"';
                let expected = v.iter().position(|&x| x == b'"' || x == b'\\' || x < 0x20);
                assert_eq!(find_special(&v), expected);
            }
        }
        assert_eq!(find_special("é😀\u{7f}abcdefgh\u{80}".as_bytes()), None);
        assert_eq!(decode_hex(hex.as_bytes()), Some(leaf));
        assert_eq!(decode_hex(hex.to_uppercase().as_bytes()), Some(leaf));
        for bad in ["g", "/", ":", "@", "G", "`", " "] {
            let mut h = hex.clone();
            h.replace_range(10..11, bad);
            assert_eq!(decode_hex(h.as_bytes()), None, "{bad}");
        }
        // Invalid UTF-8 inside the body.
        let mut bad = br#"{"seq":1,"body":"x"#.to_vec();
        bad.push(0xff);
        bad.extend_from_slice(format!(r#"","leaf_hash":"{hex}"}}"#).as_bytes());
        assert_eq!(fast_entry(&bad), None);
    }

    fn err_or_ok(bytes: &[u8]) -> Result<u64, BundleError> {
        let mut r = BundleReader::with_max_line_len(bytes, 300)?;
        while r.next_entry()?.is_some() {}
        Ok(r.entries_read())
    }
}
