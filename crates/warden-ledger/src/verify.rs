//! Verifying a whole ledger from its entries and signed checkpoints, streaming, with no I/O.
//!
//! An [`Audit`] is given the verifier key the auditor trusts and every signed checkpoint it
//! should check: the ledger's own, and optionally copies held outside Warden (a checkpoint
//! published to a file or webhook is what lets an outsider detect truncation and rewriting).
//! It is then fed the entries in position order, one at a time, and [`Audit::finish`] returns
//! either a [`Verified`] summary or the first [`Problem`] found. For each entry it checks:
//!
//! 1. its position follows the previous one without a gap ([`Problem::MissingEntry`]);
//! 2. its body hashes to the leaf hash recorded when it was written ([`Problem::EditedEntry`]);
//! 3. its body is JSON with a top-level `"seq"` ([`Problem::MalformedEntry`]) equal to its
//!    position ([`Problem::OutOfOrder`]);
//!
//! and it recomputes the Merkle root with a [`RootBuilder`], so that at each checkpoint's size
//! the root must equal the signed one ([`Problem::RootMismatch`]: entries altered together with
//! their leaf hashes, or a rewritten log). Entries whose bodies retention removed are fed with
//! [`Audit::push_pruned`]: their recorded leaf hashes go into the tree as they are, vouched for by
//! the checkpoints that cover them ([`Problem::PrunedUncovered`] if none does). Each checkpoint
//! must be validly signed by the trusted key and name it as origin
//! ([`Problem::ForgedCheckpoint`]), and none may commit to more entries than there are
//! ([`Problem::Truncated`]).
//!
//! "First" means first in ledger order: the checks at a checkpoint of size `n` come after entry
//! `n − 1` and before entry `n`. A gap and a reordering look the same where they start (the
//! entry at position 5 says it is 6); the audit tells them apart by whether the missing
//! position turns up later, so after such a finding it keeps reading positions (cheaply, without
//! hashing) until the position reappears or the entries end. [`Audit::is_decided`] tells a
//! caller when the outcome can no longer change, so it may stop reading early.
//!
//! ```
//! use warden_ledger::checkpoint::Checkpoint;
//! use warden_ledger::hash::leaf_hash;
//! use warden_ledger::note::Signer;
//! use warden_ledger::tree::RootBuilder;
//! use warden_ledger::verify::Audit;
//!
//! let signer = Signer::from_seed("warden.example/ledger", [7; 32]).unwrap();
//! let bodies: Vec<String> = (0..3).map(|i| format!(r#"{{"id":"e{i}","seq":{i}}}"#)).collect();
//! let mut tree = RootBuilder::new();
//! for b in &bodies {
//!     tree.push(leaf_hash(b.as_bytes()));
//! }
//! let note = Checkpoint::new(signer.name(), 3, tree.root()).sign(&signer).unwrap();
//!
//! let mut audit = Audit::new(&signer.verifier(), [note], Vec::<String>::new());
//! for (i, b) in bodies.iter().enumerate() {
//!     audit.push(i as u64, b.as_bytes(), Some(leaf_hash(b.as_bytes())));
//! }
//! let verified = audit.finish().unwrap();
//! assert_eq!((verified.entries, verified.checkpoints), (3, 1));
//! ```

use std::fmt;

use crate::checkpoint::Checkpoint;
use crate::hash::{leaf_hash, Hash};
use crate::note::Verifier;
use crate::tree::RootBuilder;

/// Where a checkpoint given to an [`Audit`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckpointSource {
    /// Stored in the ledger (or in a bundle exported from it).
    Ledger,
    /// Held outside Warden by the auditor: a published copy.
    External,
}

/// The first thing wrong with a ledger. [`Problem::position`] is the ledger position it names;
/// `Display` is a one-sentence explanation for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry's body does not hash to the leaf hash recorded for it: the body was edited
    /// after it was written.
    EditedEntry {
        /// Its position.
        seq: u64,
    },
    /// Position `seq` is missing: the next entry is `found` and `seq` never turns up later.
    /// Entries were deleted.
    MissingEntry {
        /// The first missing position.
        seq: u64,
        /// The position (or, if positions were renumbered, the body's `seq`) found instead.
        found: u64,
    },
    /// The entry at `position` is the event sequenced as `body_seq`, and `position` turns up
    /// later: entries were reordered or moved.
    OutOfOrder {
        /// The position where the wrong entry sits.
        position: u64,
        /// The `seq` its body states (or the position it claims).
        body_seq: u64,
    },
    /// The entry's body is not JSON, or has no usable top-level `"seq"`.
    MalformedEntry {
        /// Its position.
        seq: u64,
        /// What is wrong, with a byte offset where one helps.
        reason: String,
    },
    /// A checkpoint note does not verify with the trusted key, or names another origin.
    ForgedCheckpoint {
        /// The size the note claims, if its body can be read at all.
        size: Option<u64>,
        /// Why it was rejected.
        reason: String,
    },
    /// The root recomputed from the entries differs from the one signed for this size: an
    /// entry between `previous_checkpoint` and `size` was altered together with its recorded
    /// leaf hash, or the log was rewritten (forked) after the checkpoint was signed.
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The size of the last checkpoint before it that matched (0 if none): entries before it
        /// are covered by that checkpoint.
        previous_checkpoint: u64,
    },
    /// The entry's body is gone (marked pruned by retention) although no signed checkpoint
    /// covers it; retention only prunes entries below a checkpoint, so the body was removed and
    /// nothing vouches for the leaf hash left in its place.
    PrunedUncovered {
        /// Its position.
        seq: u64,
    },
    /// A validly signed checkpoint commits to more entries than the ledger has: its tail was
    /// deleted.
    Truncated {
        /// The largest size a signed checkpoint commits to.
        checkpoint_size: u64,
        /// How many entries there are.
        ledger_size: u64,
    },
}

impl Problem {
    /// The ledger position the problem names: the entry's position; for a forged checkpoint
    /// its claimed size (0 if unreadable); for a root mismatch the first position that may have
    /// been altered (the previous matching checkpoint's size); for truncation the first
    /// position that is gone.
    pub fn position(&self) -> u64 {
        match self {
            Problem::EditedEntry { seq }
            | Problem::MissingEntry { seq, .. }
            | Problem::MalformedEntry { seq, .. }
            | Problem::PrunedUncovered { seq } => *seq,
            Problem::OutOfOrder { position, .. } => *position,
            Problem::ForgedCheckpoint { size, .. } => size.unwrap_or(0),
            Problem::RootMismatch {
                previous_checkpoint,
                ..
            } => *previous_checkpoint,
            Problem::Truncated { ledger_size, .. } => *ledger_size,
        }
    }

    /// A stable machine-readable name: `edited_entry`, `missing_entry`, `out_of_order`,
    /// `malformed_entry`, `pruned_uncovered`, `forged_checkpoint`, `root_mismatch` or
    /// `truncated`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::EditedEntry { .. } => "edited_entry",
            Problem::MissingEntry { .. } => "missing_entry",
            Problem::OutOfOrder { .. } => "out_of_order",
            Problem::MalformedEntry { .. } => "malformed_entry",
            Problem::PrunedUncovered { .. } => "pruned_uncovered",
            Problem::ForgedCheckpoint { .. } => "forged_checkpoint",
            Problem::RootMismatch { .. } => "root_mismatch",
            Problem::Truncated { .. } => "truncated",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EditedEntry { seq } => write!(
                f,
                "entry {seq} was edited: its body does not hash to the leaf hash recorded when \
                 it was written"
            ),
            Problem::MissingEntry { seq, found } => {
                let before = match seq.checked_sub(1) {
                    Some(p) => format!("entry {p} is followed by entry {found}"),
                    None => format!("the ledger starts at entry {found}"),
                };
                write!(
                    f,
                    "entry {seq} is missing: {before}, and entry {seq} does not appear anywhere \
                     later; entries were deleted"
                )
            }
            Problem::OutOfOrder { position, body_seq } => write!(
                f,
                "entries are out of order: position {position} holds the entry sequenced as \
                 {body_seq}, and entry {position} appears later; entries were reordered or moved"
            ),
            Problem::MalformedEntry { seq, reason } => {
                write!(f, "entry {seq} is malformed: {reason}")
            }
            Problem::PrunedUncovered { seq } => write!(
                f,
                "entry {seq} has no body (it is marked as pruned by retention) but no signed \
                 checkpoint covers it: retention only prunes entries below a checkpoint, so its \
                 body was removed and nothing vouches for the leaf hash left in its place"
            ),
            Problem::ForgedCheckpoint {
                size: Some(size),
                reason,
            } => write!(
                f,
                "the checkpoint for size {size} is forged: it is not validly signed by the \
                 trusted key ({reason})"
            ),
            Problem::ForgedCheckpoint { size: None, reason } => write!(
                f,
                "a checkpoint is forged or corrupt: it is not a checkpoint validly signed by \
                 the trusted key, and its size cannot be read ({reason})"
            ),
            Problem::RootMismatch {
                size,
                previous_checkpoint,
            } => {
                let last = size.saturating_sub(1);
                let range = if *size == 0 {
                    "the empty ledger".to_owned()
                } else if *previous_checkpoint == 0 {
                    format!("entries 0 to {last}")
                } else {
                    format!(
                        "entries {previous_checkpoint} to {last} (entries before \
                         {previous_checkpoint} match the checkpoint for size \
                         {previous_checkpoint})"
                    )
                };
                write!(
                    f,
                    "the root hash recomputed from {range} differs from the one signed in the \
                     checkpoint for size {size}: an entry in that range was altered together \
                     with its recorded leaf hash, or the ledger was rewritten after the \
                     checkpoint was signed"
                )
            }
            Problem::Truncated {
                checkpoint_size,
                ledger_size,
            } => write!(
                f,
                "the ledger was truncated: it has {ledger_size} entries but a validly signed \
                 checkpoint commits to {checkpoint_size}, so entries {ledger_size} to {} are gone",
                checkpoint_size.saturating_sub(1)
            ),
        }
    }
}

impl std::error::Error for Problem {}

/// What a successful [`Audit`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked (positions `0..entries`).
    pub entries: u64,
    /// Checkpoints whose signature and root verified, ledger and external together.
    pub checkpoints: usize,
    /// How many of those were external.
    pub external_checkpoints: usize,
    /// The ledger's size (equal to `entries`).
    pub size: u64,
    /// The root hash of the whole ledger.
    pub root: Hash,
    /// The largest checkpoint size verified (0 if none): entries from here on are checked
    /// against their recorded leaf hashes only, not yet against a signed root.
    pub checkpointed_size: u64,
    /// Entries whose bodies retention had removed, verified through the checkpoints only.
    pub pruned: u64,
}

/// `12 entries, 3 checkpoints, root <hex> at size 12`: how the CLI and the console say it.
impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = if self.entries == 1 {
            "entry"
        } else {
            "entries"
        };
        let checkpoints = if self.checkpoints == 1 {
            "checkpoint"
        } else {
            "checkpoints"
        };
        write!(
            f,
            "{} {entries}, {} {checkpoints}, root {} at size {}",
            self.entries, self.checkpoints, self.root, self.size
        )
    }
}

/// One check at a tree size, in ledger order.
#[derive(Debug, Clone)]
enum Check {
    Root {
        size: u64,
        root: Hash,
        source: CheckpointSource,
    },
    Forged {
        size: Option<u64>,
        reason: String,
    },
}

impl Check {
    /// Where in the stream it is checked (unreadable notes first).
    fn size(&self) -> u64 {
        match self {
            Check::Root { size, .. } => *size,
            Check::Forged { size, .. } => size.unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Running,
    /// Something is wrong at `slot` (the `slot`-th entry, 0-based); reading on to learn whether
    /// `slot` shows up later (a reorder) or never (a deletion).
    Diagnosing {
        slot: u64,
        found: u64,
        body_seq: u64,
    },
    Done(Problem),
}

/// Streaming verification of a whole ledger (see the module documentation).
#[derive(Debug, Clone)]
pub struct Audit {
    checks: Vec<Check>,
    next_check: usize,
    tree: RootBuilder,
    last_verified: u64,
    checkpoints: usize,
    external_checkpoints: usize,
    /// The largest size a validly signed checkpoint commits to: pruned entries must lie below.
    covered: u64,
    pruned: u64,
    state: State,
}

impl Audit {
    /// An audit trusting `verifier`, checking the ledger's own `checkpoints` and `external`
    /// ones held outside Warden (both signed notes, in any order). Notes that do not verify are
    /// reported as [`Problem::ForgedCheckpoint`] at the point of the ledger they claim.
    pub fn new<I, J, S, T>(verifier: &Verifier, checkpoints: I, external: J) -> Self
    where
        I: IntoIterator<Item = S>,
        J: IntoIterator<Item = T>,
        S: AsRef<[u8]>,
        T: AsRef<[u8]>,
    {
        let mut checks = Vec::new();
        for note in checkpoints {
            checks.push(open_checkpoint(
                verifier,
                note.as_ref(),
                CheckpointSource::Ledger,
            ));
        }
        for note in external {
            checks.push(open_checkpoint(
                verifier,
                note.as_ref(),
                CheckpointSource::External,
            ));
        }
        // Stable: at one size, forged notes are reported before roots are compared, and the
        // ledger's own before external copies.
        checks.sort_by_key(|c| {
            (
                c.size(),
                matches!(c, Check::Root { .. }),
                match c {
                    Check::Root { source, .. } => *source,
                    Check::Forged { .. } => CheckpointSource::Ledger,
                },
            )
        });
        let covered = checks
            .iter()
            .filter_map(|c| match c {
                Check::Root { size, .. } => Some(*size),
                Check::Forged { .. } => None,
            })
            .max()
            .unwrap_or(0);
        Audit {
            checks,
            next_check: 0,
            tree: RootBuilder::new(),
            last_verified: 0,
            checkpoints: 0,
            external_checkpoints: 0,
            covered,
            pruned: 0,
            state: State::Running,
        }
    }

    /// Feeds the next entry: `position` is where the store (or bundle) says it is, `body` its
    /// exact bytes, `recorded_leaf` the leaf hash stored with it, if any.
    ///
    /// Entries must be fed in the order the store lists them (ascending position); the audit
    /// itself notices gaps and repeats. Once [`Audit::is_decided`] is true, further entries are
    /// ignored.
    pub fn push(&mut self, position: u64, body: &[u8], recorded_leaf: Option<Hash>) {
        match self.state {
            State::Done(_) => {}
            State::Diagnosing { slot, body_seq, .. } => {
                // Only positions are read from here on, to tell a reorder from a deletion.
                if position == slot || entry_seq(body).is_ok_and(|seq| seq == slot) {
                    self.state = State::Done(Problem::OutOfOrder {
                        position: slot,
                        body_seq,
                    });
                }
            }
            State::Running => self.push_running(position, body, recorded_leaf),
        }
    }

    /// Feeds the next entry when retention has removed its body: only its `recorded_leaf`
    /// remains, which goes into the tree unchecked (the checkpoints covering it vouch for it).
    /// Retention prunes only entries below a checkpoint, so a pruned entry at or past the
    /// largest valid checkpoint's size is a [`Problem::PrunedUncovered`].
    pub fn push_pruned(&mut self, position: u64, recorded_leaf: Hash) {
        match self.state {
            State::Done(_) => {}
            State::Diagnosing { slot, body_seq, .. } => {
                if position == slot {
                    self.state = State::Done(Problem::OutOfOrder {
                        position: slot,
                        body_seq,
                    });
                }
            }
            State::Running => {
                let slot = self.tree.size();
                if let Err(problem) = self.run_checks(slot) {
                    self.state = State::Done(problem);
                } else if position != slot {
                    self.state = State::Diagnosing {
                        slot,
                        found: position,
                        body_seq: position,
                    };
                } else if slot >= self.covered {
                    self.state = State::Done(Problem::PrunedUncovered { seq: slot });
                } else {
                    self.tree.push(recorded_leaf);
                    self.pruned += 1;
                }
            }
        }
    }

    fn push_running(&mut self, position: u64, body: &[u8], recorded_leaf: Option<Hash>) {
        let slot = self.tree.size();
        if let Err(problem) = self.run_checks(slot) {
            self.state = State::Done(problem);
            return;
        }
        if position != slot {
            // A gap (or a repeat): the entry at hand belongs elsewhere.
            let body_seq = entry_seq(body).unwrap_or(position);
            self.state = State::Diagnosing {
                slot,
                found: position,
                body_seq,
            };
            return;
        }
        let leaf = leaf_hash(body);
        if recorded_leaf.is_some_and(|recorded| recorded != leaf) {
            self.state = State::Done(Problem::EditedEntry { seq: slot });
            return;
        }
        match entry_seq(body) {
            Err(reason) => {
                self.state = State::Done(Problem::MalformedEntry { seq: slot, reason });
            }
            Ok(body_seq) if body_seq != slot => {
                self.state = State::Diagnosing {
                    slot,
                    found: body_seq,
                    body_seq,
                };
            }
            Ok(_) => self.tree.push(leaf),
        }
    }

    /// Runs every check due at tree size `size` (all checks up to it).
    fn run_checks(&mut self, size: u64) -> Result<(), Problem> {
        let mut root: Option<Hash> = None;
        while let Some(check) = self.checks.get(self.next_check) {
            if check.size() > size {
                break;
            }
            self.next_check += 1;
            match check {
                Check::Forged { size, reason } => {
                    return Err(Problem::ForgedCheckpoint {
                        size: *size,
                        reason: reason.clone(),
                    });
                }
                Check::Root {
                    size: cp_size,
                    root: signed,
                    source,
                } => {
                    let actual = *root.get_or_insert_with(|| self.tree.root());
                    if *cp_size != self.tree.size() || actual != *signed {
                        return Err(Problem::RootMismatch {
                            size: *cp_size,
                            previous_checkpoint: self.last_verified,
                        });
                    }
                    self.last_verified = *cp_size;
                    self.checkpoints += 1;
                    if *source == CheckpointSource::External {
                        self.external_checkpoints += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the outcome is settled, so that feeding more entries changes nothing.
    pub fn is_decided(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Entries accepted so far (the tree's size).
    pub fn entries(&self) -> u64 {
        self.tree.size()
    }

    /// The verdict once every entry has been fed: checks the checkpoints at the final size and
    /// that none commits to more entries than were fed.
    pub fn finish(mut self) -> Result<Verified, Problem> {
        match self.state {
            State::Done(problem) => return Err(problem),
            State::Diagnosing { slot, found, .. } => {
                return Err(Problem::MissingEntry { seq: slot, found });
            }
            State::Running => {}
        }
        let size = self.tree.size();
        self.run_checks(size)?;
        let rest = &self.checks[self.next_check..];
        let largest_signed = rest
            .iter()
            .filter_map(|c| match c {
                Check::Root { size, .. } => Some(*size),
                Check::Forged { .. } => None,
            })
            .max();
        if let Some(checkpoint_size) = largest_signed {
            return Err(Problem::Truncated {
                checkpoint_size,
                ledger_size: size,
            });
        }
        if let Some(Check::Forged { size, reason }) = rest.first() {
            return Err(Problem::ForgedCheckpoint {
                size: *size,
                reason: reason.clone(),
            });
        }
        Ok(Verified {
            entries: size,
            checkpoints: self.checkpoints,
            external_checkpoints: self.external_checkpoints,
            size,
            root: self.tree.root(),
            checkpointed_size: self.last_verified,
            pruned: self.pruned,
        })
    }
}

/// Opens one checkpoint note with the trusted key.
fn open_checkpoint(verifier: &Verifier, note: &[u8], source: CheckpointSource) -> Check {
    let external = match source {
        CheckpointSource::Ledger => "",
        CheckpointSource::External => "external checkpoint: ",
    };
    match Checkpoint::open(note, verifier) {
        Ok(cp) if cp.origin != verifier.name() => Check::Forged {
            size: Some(cp.size),
            reason: format!(
                "{external}its origin {:?} is not the trusted key's name {:?}",
                cp.origin,
                verifier.name()
            ),
        },
        Ok(cp) => Check::Root {
            size: cp.size,
            root: cp.root,
            source,
        },
        Err(e) => Check::Forged {
            size: claimed_size(note),
            reason: format!("{external}{e}"),
        },
    }
}

/// The size an unverified note claims: the second line of its text, if it reads as one.
fn claimed_size(note: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(note).ok()?;
    let split = text.rfind("\n\n")?;
    Checkpoint::parse_body(&text[..=split]).ok().map(|c| c.size)
}

/// Deepest nesting [`entry_seq`] accepts in a body.
pub const MAX_DEPTH: u32 = 128;

/// The value of the top-level `"seq"` field of a ledger entry's body.
///
/// Checks the whole body is one well-formed JSON object (UTF-8, at most [`MAX_DEPTH`] deep)
/// without building it: a single pass, no allocation, several hundred MB/s. The field must
/// appear once and be a non-negative integer; `null` (an entry never sequenced), a fraction or
/// a negative number is an error. The error says what is wrong and where.
pub fn entry_seq(body: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(s.unexpected("the body is not a JSON object"));
    }
    s.i += 1;
    let mut seq: Option<Option<u64>> = None;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let (start, end) = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            if is_seq_key(&s.b[start - 1..=end]) {
                let at = s.i;
                if seq.is_some() {
                    return Err(format!("duplicate top-level \"seq\" field at offset {at}"));
                }
                seq = Some(s.seq_value()?);
            } else {
                s.value()?;
            }
            s.ws();
            match s.peek() {
                Some(b',') => s.i += 1,
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return Err(s.unexpected("the body is not JSON: expected ',' or '}'")),
            }
        }
    }
    s.ws();
    if s.i != s.b.len() {
        return Err(format!(
            "the body is not JSON: unexpected data after the object at offset {}",
            s.i
        ));
    }
    match seq {
        None => Err("the body has no top-level \"seq\" field".to_owned()),
        Some(None) => Err("the body's \"seq\" is null: it was never sequenced".to_owned()),
        Some(Some(n)) => Ok(n),
    }
}

/// Whether a quoted JSON key is `"seq"` (escapes decoded, so `"s\u0065q"` counts too).
fn is_seq_key(quoted: &[u8]) -> bool {
    if quoted == b"\"seq\"" {
        return true;
    }
    quoted.contains(&b'\\')
        && quoted.len() <= 64
        && serde_json::from_slice::<String>(quoted).is_ok_and(|k| k == "seq")
}

/// A validating JSON scanner over bytes already known to be UTF-8.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn unexpected(&self, what: &str) -> String {
        match self.peek() {
            Some(c) => format!("{what}: unexpected {} at offset {}", describe(c), self.i),
            None => format!("{what}: the body ends early (offset {})", self.i),
        }
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!(
                "the body is not JSON: expected '{}'",
                char::from(c)
            )))
        }
    }

    /// Skips characters that need no attention inside a string: all but `"`, `\\` and control
    /// characters. Eight bytes at a time (bodies are mostly string contents).
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // Per byte, the high bit is set for the first byte equal to zero (exact for the lowest
        // flagged byte, which is all that is used).
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let w = u64::from_le_bytes(w);
            let special = zero(w ^ (ONES * u64::from(b'"')))
                | zero(w ^ (ONES * u64::from(b'\\')))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
            if special != 0 {
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
        while let Some(&c) = self.b.get(self.i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.i += 1;
        }
    }

    /// A string; returns the byte range of its contents (between the quotes).
    #[inline(always)]
    fn string(&mut self) -> Result<(usize, usize), String> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("the body is not JSON: expected a string"));
        }
        self.i += 1;
        let start = self.i;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    let end = self.i;
                    self.i += 1;
                    return Ok((start, end));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.bump() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let hex = self.b.get(self.i..self.i + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(format!(
                                    "the body is not JSON: bad \\u escape at offset {}",
                                    self.i - 2
                                ));
                            }
                            self.i += 4;
                        }
                        _ => {
                            return Err(format!(
                                "the body is not JSON: bad escape at offset {}",
                                self.i.saturating_sub(2)
                            ))
                        }
                    }
                }
                Some(c) => {
                    return Err(format!(
                        "the body is not JSON: unescaped control character {c:#04x} in a string \
                         at offset {}",
                        self.i
                    ))
                }
                None => return Err("the body is not JSON: a string is not closed".to_owned()),
            }
        }
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number, per RFC 8259.
    #[inline(always)]
    fn number(&mut self) -> Result<(), String> {
        let start = self.i;
        let bad = |at: usize| format!("the body is not JSON: malformed number at offset {at}");
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(bad(start)),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(bad(start));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(bad(start));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.unexpected("the body is not JSON: expected a value"))
        }
    }

    /// The `"seq"` value: a non-negative integer that fits 64 bits, or `null` (`None`).
    fn seq_value(&mut self) -> Result<Option<u64>, String> {
        let start = self.i;
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(None);
        }
        self.number()
            .map_err(|_| format!("the body's \"seq\" at offset {start} is not a number"))?;
        let digits = &self.b[start..self.i];
        let not_index = || {
            format!(
                "the body's \"seq\" at offset {start} is not a non-negative integer: {}",
                String::from_utf8_lossy(&digits[..digits.len().min(40)])
            )
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(not_index());
        }
        let mut n: u64 = 0;
        for d in digits {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| format!("the body's \"seq\" at offset {start} is too large"))?;
        }
        Ok(Some(n))
    }

    /// Skips one value of any kind, iteratively (nesting is bounded by [`MAX_DEPTH`]).
    fn value(&mut self) -> Result<(), String> {
        // One bit per open container: 1 for an object, 0 for an array.
        let mut stack: u128 = 0;
        let mut depth: u32 = 0;
        'value: loop {
            self.ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return Err(format!(
                            "the body is nested more than {MAX_DEPTH} levels deep (offset {})",
                            self.i
                        ));
                    }
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        stack = (stack << 1) | u128::from(open == b'{');
                        depth += 1;
                        if open == b'{' {
                            self.string()?;
                            self.ws();
                            self.expect(b':')?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.unexpected("the body is not JSON: expected a value")),
            }
            // After a value: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let in_object = stack & 1 == 1;
                match (self.peek(), in_object) {
                    (Some(b','), true) => {
                        self.i += 1;
                        self.ws();
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        continue 'value;
                    }
                    (Some(b','), false) => {
                        self.i += 1;
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.i += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => {
                        return Err(self.unexpected(if in_object {
                            "the body is not JSON: expected ',' or '}'"
                        } else {
                            "the body is not JSON: expected ',' or ']'"
                        }))
                    }
                }
            }
        }
    }
}

fn describe(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", char::from(c))
    } else {
        format!("byte {c:#04x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;
    use proptest::prelude::*;

    fn signer() -> Signer {
        Signer::from_seed("warden.example/ledger", [9u8; 32]).unwrap()
    }

    /// A body shaped like the writer's: an event, or every third entry an outcome.
    fn body(i: u64) -> Vec<u8> {
        if i % 3 == 2 {
            format!(
                r#"{{"event_id":"01900000-0000-7000-8000-{:012x}","seq":{i},"time":"2026-01-01T00:00:{:02}Z","status":"ok","error":null,"duration_ms":{}}}"#,
                i - 1,
                i % 60,
                i * 7 % 1000
            )
            .into_bytes()
        } else {
            format!(
                r#"{{"id":"01900000-0000-7000-8000-{i:012x}","seq":{i},"time":"2026-01-01T00:00:{:02}Z","actor":{{"kind":"service","account":"etl","key_id":"k{i}","auth":"api_key"}},"action":{{"category":"sql","verb":"select","resource":"db/x","detail":{{"rows":[1,2.5e3,-0.1],"ok":true,"note":"a \"quoted\" \\ \u00e9"}}}},"decision":{{"allowed":true,"rule":"r"}}}}"#,
                i % 60
            )
            .into_bytes()
        }
    }

    #[derive(Clone)]
    struct Entry {
        position: u64,
        body: Vec<u8>,
        leaf: Option<Hash>,
    }

    fn ledger(n: u64) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                let body = body(i);
                Entry {
                    position: i,
                    leaf: Some(leaf_hash(&body)),
                    body,
                }
            })
            .collect()
    }

    /// Edits a body so that it stays valid JSON with the same `seq`: its year becomes 2027.
    fn alter(body: &mut [u8]) {
        let at = body
            .windows(12)
            .position(|w| w == b"\"time\":\"2026")
            .unwrap();
        body[at + 11] = b'7';
    }

    fn root_of(entries: &[Entry]) -> Hash {
        let mut b = RootBuilder::new();
        for e in entries {
            b.push(leaf_hash(&e.body));
        }
        b.root()
    }

    fn checkpoint(signer: &Signer, entries: &[Entry], size: u64) -> String {
        Checkpoint::new(signer.name(), size, root_of(&entries[..size as usize]))
            .sign(signer)
            .unwrap()
    }

    fn audit(
        entries: &[Entry],
        notes: &[String],
        external: &[String],
    ) -> Result<Verified, Problem> {
        let mut a = Audit::new(&signer().verifier(), notes, external);
        for e in entries {
            a.push(e.position, &e.body, e.leaf);
        }
        a.finish()
    }

    /// 100 entries with checkpoints at 10, 64 and 100.
    fn fixture() -> (Vec<Entry>, Vec<String>) {
        let s = signer();
        let entries = ledger(100);
        let notes = [10, 64, 100]
            .iter()
            .map(|&n| checkpoint(&s, &entries, n))
            .collect();
        (entries, notes)
    }

    #[test]
    fn clean_runs() {
        let (entries, notes) = fixture();
        let v = audit(&entries, &notes, &[]).unwrap();
        assert_eq!(
            v,
            Verified {
                entries: 100,
                checkpoints: 3,
                external_checkpoints: 0,
                size: 100,
                root: root_of(&entries),
                checkpointed_size: 100,
                pruned: 0,
            }
        );
        // Without recorded leaf hashes, and with entries past the last checkpoint.
        let mut more = ledger(130);
        for e in &mut more {
            e.leaf = None;
        }
        let v = audit(&more, &notes, &[]).unwrap();
        assert_eq!(
            (v.entries, v.checkpoints, v.checkpointed_size),
            (130, 3, 100)
        );
        // Empty ledger, with and without a checkpoint at size 0.
        let empty = Checkpoint::new(signer().name(), 0, crate::hash::EMPTY_TREE_HASH)
            .sign(&signer())
            .unwrap();
        let v = audit(&[], std::slice::from_ref(&empty), &[]).unwrap();
        assert_eq!(
            (v.entries, v.checkpoints, v.root),
            (0, 1, crate::hash::EMPTY_TREE_HASH)
        );
        assert_eq!(audit(&[], &[], &[]).unwrap().checkpoints, 0);
        // External checkpoints count separately; order of notes does not matter.
        let ext = checkpoint(&signer(), &entries, 50);
        let reversed: Vec<String> = notes.iter().rev().cloned().collect();
        let v = audit(&entries, &reversed, &[ext, empty]).unwrap();
        assert_eq!((v.checkpoints, v.external_checkpoints), (5, 2));
    }

    #[test]
    fn edited_entry() {
        let (mut entries, notes) = fixture();
        alter(&mut entries[37].body);
        let p = audit(&entries, &notes, &[]).unwrap_err();
        assert_eq!(p, Problem::EditedEntry { seq: 37 });
        assert_eq!(p.position(), 37);
        assert_eq!(p.kind(), "edited_entry");
        assert_eq!(
            p.to_string(),
            "entry 37 was edited: its body does not hash to the leaf hash recorded when it was written"
        );
    }

    #[test]
    fn consistent_edit_is_a_root_mismatch() {
        let (mut entries, notes) = fixture();
        alter(&mut entries[37].body);
        entries[37].leaf = Some(leaf_hash(&entries[37].body));
        let p = audit(&entries, &notes, &[]).unwrap_err();
        assert_eq!(
            p,
            Problem::RootMismatch {
                size: 64,
                previous_checkpoint: 10
            }
        );
        assert_eq!(p.position(), 10);
        assert!(p.to_string().contains("entries 10 to 63"), "{p}");
        // Without any recorded leaf hash the same edit is found the same way.
        let mut no_leaves = entries.clone();
        for e in &mut no_leaves {
            e.leaf = None;
        }
        assert_eq!(audit(&no_leaves, &notes, &[]).unwrap_err(), p);
        // Before the first checkpoint.
        let (mut entries, notes) = fixture();
        alter(&mut entries[3].body);
        entries[3].leaf = None;
        let p = audit(&entries, &notes, &[]).unwrap_err();
        assert_eq!(
            p,
            Problem::RootMismatch {
                size: 10,
                previous_checkpoint: 0
            }
        );
        assert!(p.to_string().contains("from entries 0 to 9 differs"), "{p}");
    }

    #[test]
    fn missing_entry() {
        let (entries, notes) = fixture();
        let mut deleted = entries.clone();
        deleted.remove(37);
        let p = audit(&deleted, &notes, &[]).unwrap_err();
        assert_eq!(p, Problem::MissingEntry { seq: 37, found: 38 });
        assert_eq!(
            p.to_string(),
            "entry 37 is missing: entry 36 is followed by entry 38, and entry 37 does not appear \
             anywhere later; entries were deleted"
        );
        // Several, and the first.
        let mut deleted = entries.clone();
        deleted.drain(0..3);
        let p = audit(&deleted, &notes, &[]).unwrap_err();
        assert_eq!(p, Problem::MissingEntry { seq: 0, found: 3 });
        assert!(p.to_string().contains("the ledger starts at entry 3"));
        // Deleted, then the positions renumbered to close the gap: the bodies still tell.
        let mut renumbered = entries.clone();
        renumbered.remove(37);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.position = i as u64;
        }
        let p = audit(&renumbered, &notes, &[]).unwrap_err();
        assert_eq!(p, Problem::MissingEntry { seq: 37, found: 38 });
    }

    #[test]
    fn out_of_order() {
        let (entries, notes) = fixture();
        // Bodies (and leaf hashes) swapped between positions 37 and 38, as in a store.
        let mut swapped = entries.clone();
        let (a, b) = (swapped[37].clone(), swapped[38].clone());
        swapped[37].body = b.body;
        swapped[37].leaf = b.leaf;
        swapped[38].body = a.body;
        swapped[38].leaf = a.leaf;
        let p = audit(&swapped, &notes, &[]).unwrap_err();
        assert_eq!(
            p,
            Problem::OutOfOrder {
                position: 37,
                body_seq: 38
            }
        );
        assert_eq!(p.position(), 37);
        assert_eq!(
            p.to_string(),
            "entries are out of order: position 37 holds the entry sequenced as 38, and entry 37 \
             appears later; entries were reordered or moved"
        );
        // Whole entries swapped, positions included, as in a bundle whose lines were swapped.
        let mut lines = entries.clone();
        lines.swap(37, 38);
        assert_eq!(audit(&lines, &notes, &[]).unwrap_err(), p);
        // An entry moved to the end.
        let mut moved = entries.clone();
        let e = moved.remove(5);
        moved.push(e);
        assert_eq!(
            audit(&moved, &notes, &[]).unwrap_err(),
            Problem::OutOfOrder {
                position: 5,
                body_seq: 6
            }
        );
        // A repeated entry where one was deleted.
        let mut repeated = entries.clone();
        repeated[37] = repeated[36].clone();
        repeated[37].position = 37;
        assert_eq!(
            audit(&repeated, &notes, &[]).unwrap_err(),
            Problem::MissingEntry { seq: 37, found: 36 }
        );
    }

    #[test]
    fn malformed_entry() {
        let (entries, _) = fixture();
        for (bad, reason) in [
            (
                &b"not json"[..],
                "the body is not a JSON object: unexpected 'n' at offset 0",
            ),
            (b"{\"id\":\"x\"}", "the body has no top-level \"seq\" field"),
            (
                b"{\"id\":\"x\",\"seq\":null}",
                "the body's \"seq\" is null: it was never sequenced",
            ),
            (
                b"{\"id\":\"x\",\"seq\":\"37\"}",
                "the body's \"seq\" at offset 16 is not a number",
            ),
            (
                b"{\"id\":\"x\",\"seq\":37.0}",
                "the body's \"seq\" at offset 16 is not a non-negative integer: 37.0",
            ),
            (
                b"{\"id\":\"x\",\"seq\":37",
                "the body is not JSON: expected ',' or '}': the body ends early (offset 18)",
            ),
            (b"\xff", "the body is not UTF-8 (invalid byte at offset 0)"),
        ] {
            let mut e = entries[..38].to_vec();
            e[37].body = bad.to_vec();
            e[37].leaf = Some(leaf_hash(bad));
            let p = audit(&e, &[], &[]).unwrap_err();
            assert_eq!(
                p,
                Problem::MalformedEntry {
                    seq: 37,
                    reason: reason.to_owned()
                }
            );
            assert_eq!(p.to_string(), format!("entry 37 is malformed: {reason}"));
        }
    }

    #[test]
    fn forged_checkpoints() {
        let (entries, notes) = fixture();
        let name = signer().name().to_owned();
        // Re-signed by another key of the same name.
        let other = Signer::from_seed(&name, [1u8; 32]).unwrap();
        let forged = checkpoint(&other, &entries, 64);
        let with = |note: String| vec![notes[0].clone(), note, notes[2].clone()];
        let p = audit(&entries, &with(forged.clone()), &[]).unwrap_err();
        assert!(
            matches!(&p, Problem::ForgedCheckpoint { size: Some(64), reason } if reason.contains("not signed by any known key")),
            "{p:?}"
        );
        assert_eq!(p.position(), 64);
        assert!(p
            .to_string()
            .starts_with("the checkpoint for size 64 is forged"));
        // Size edited in a genuine note.
        let edited = notes[1].replacen("\n64\n", "\n63\n", 1);
        assert!(matches!(
            audit(&entries, &with(edited), &[]).unwrap_err(),
            Problem::ForgedCheckpoint { size: Some(63), .. }
        ));
        // Signed by the trusted key but for another origin.
        let foreign = Checkpoint::new("elsewhere", 64, root_of(&entries[..64]))
            .sign(&signer())
            .unwrap();
        let p = audit(&entries, &with(foreign), &[]).unwrap_err();
        assert!(
            matches!(&p, Problem::ForgedCheckpoint { size: Some(64), reason } if reason.contains("origin \"elsewhere\"")),
            "{p:?}"
        );
        // Garbage: no readable size, reported before everything else.
        let p = audit(&entries, &with("garbage".into()), &[]).unwrap_err();
        assert!(matches!(p, Problem::ForgedCheckpoint { size: None, .. }));
        assert_eq!(p.position(), 0);
        assert!(p
            .to_string()
            .starts_with("a checkpoint is forged or corrupt"));
        // External, and claiming more than there is.
        let p = audit(&entries, &notes, &[checkpoint(&other, &ledger(120), 120)]).unwrap_err();
        assert!(
            matches!(&p, Problem::ForgedCheckpoint { size: Some(120), reason } if reason.starts_with("external checkpoint: ")),
            "{p:?}"
        );
        // Ordering: an edit before the forged checkpoint's size is found first, one after not.
        let mut edited = entries.clone();
        alter(&mut edited[37].body);
        assert_eq!(
            audit(&edited, &with(forged.clone()), &[]).unwrap_err(),
            Problem::EditedEntry { seq: 37 }
        );
        let mut edited = entries.clone();
        alter(&mut edited[80].body);
        assert!(matches!(
            audit(&edited, &with(forged), &[]).unwrap_err(),
            Problem::ForgedCheckpoint { size: Some(64), .. }
        ));
    }

    #[test]
    fn truncated() {
        let (entries, notes) = fixture();
        let p = audit(&entries[..80], &notes, &[]).unwrap_err();
        assert_eq!(
            p,
            Problem::Truncated {
                checkpoint_size: 100,
                ledger_size: 80
            }
        );
        assert_eq!(p.position(), 80);
        assert_eq!(
            p.to_string(),
            "the ledger was truncated: it has 80 entries but a validly signed checkpoint commits \
             to 100, so entries 80 to 99 are gone"
        );
        // Only the last entry gone.
        assert_eq!(
            audit(&entries[..99], &notes, &[]).unwrap_err(),
            Problem::Truncated {
                checkpoint_size: 100,
                ledger_size: 99
            }
        );
        // Truncated to the last stored checkpoint: only an external checkpoint tells.
        let longer = ledger(120);
        let ext = checkpoint(&signer(), &longer, 120);
        assert!(audit(&entries, &notes, &[]).is_ok());
        assert_eq!(
            audit(&entries, &notes, &[ext]).unwrap_err(),
            Problem::Truncated {
                checkpoint_size: 120,
                ledger_size: 100
            }
        );
    }

    #[test]
    fn rewritten_history_against_an_external_checkpoint() {
        let (entries, _) = fixture();
        // The operator (holding the key) rewrote entry 20 and re-signed every checkpoint; the
        // checkpoint published earlier still holds the old root.
        let published = checkpoint(&signer(), &entries, 50);
        let mut rewritten = entries.clone();
        rewritten[20].body = body(20)
            .iter()
            .map(|&b| if b == b'k' { b'K' } else { b })
            .collect();
        rewritten[20].leaf = Some(leaf_hash(&rewritten[20].body));
        let notes: Vec<String> = [10, 64, 100]
            .iter()
            .map(|&n| checkpoint(&signer(), &rewritten, n))
            .collect();
        assert!(audit(&rewritten, &notes, &[]).is_ok());
        assert_eq!(
            audit(&rewritten, &notes, &[published]).unwrap_err(),
            Problem::RootMismatch {
                size: 50,
                previous_checkpoint: 10
            }
        );
    }

    /// Feeds entries, those in `pruned` by their leaf hash only.
    fn audit_pruned(
        entries: &[Entry],
        pruned: std::ops::Range<usize>,
        notes: &[String],
    ) -> Result<Verified, Problem> {
        let mut a = Audit::new(&signer().verifier(), notes, Vec::<String>::new());
        for (i, e) in entries.iter().enumerate() {
            if pruned.contains(&i) {
                a.push_pruned(e.position, e.leaf.unwrap());
            } else {
                a.push(e.position, &e.body, e.leaf);
            }
        }
        a.finish()
    }

    #[test]
    fn pruned_entries() {
        let (entries, notes) = fixture();
        // Bodies pruned below a checkpoint: verified through the checkpoints.
        let v = audit_pruned(&entries, 0..64, &notes).unwrap();
        assert_eq!((v.entries, v.pruned, v.root), (100, 64, root_of(&entries)));
        // Up to the largest checkpoint is still covered.
        assert_eq!(audit_pruned(&entries, 50..100, &notes).unwrap().pruned, 50);
        // A pruned entry's leaf hash is still checked by the root.
        let mut altered = entries.clone();
        altered[20].leaf = Some(leaf_hash(b"something else"));
        assert_eq!(
            audit_pruned(&altered, 0..64, &notes).unwrap_err(),
            Problem::RootMismatch {
                size: 64,
                previous_checkpoint: 10
            }
        );
        // Past every checkpoint, "pruned" is a removed body.
        let more = ledger(110);
        let p = audit_pruned(&more, 100..101, &notes).unwrap_err();
        assert_eq!(p, Problem::PrunedUncovered { seq: 100 });
        assert_eq!((p.position(), p.kind()), (100, "pruned_uncovered"));
        assert!(p.to_string().starts_with("entry 100 has no body"));
        assert_eq!(
            audit_pruned(&entries, 3..4, &[]).unwrap_err(),
            Problem::PrunedUncovered { seq: 3 }
        );
        // Gaps and moves around pruned entries.
        let mut deleted = entries.clone();
        deleted.remove(5);
        assert_eq!(
            audit_pruned(&deleted, 0..60, &notes).unwrap_err(),
            Problem::MissingEntry { seq: 5, found: 6 }
        );
        let mut swapped = entries.clone();
        swapped.swap(5, 6);
        assert_eq!(
            audit_pruned(&swapped, 0..60, &notes).unwrap_err(),
            Problem::OutOfOrder {
                position: 5,
                body_seq: 6
            }
        );
    }

    #[test]
    fn decided_audits_ignore_the_rest() {
        let (mut entries, notes) = fixture();
        alter(&mut entries[5].body);
        let mut a = Audit::new(&signer().verifier(), &notes, Vec::<String>::new());
        for e in &entries[..5] {
            a.push(e.position, &e.body, e.leaf);
            assert!(!a.is_decided());
        }
        a.push(entries[5].position, &entries[5].body, entries[5].leaf);
        assert!(a.is_decided());
        assert_eq!(a.entries(), 5);
        a.push(0, b"junk", None);
        assert_eq!(a.finish().unwrap_err(), Problem::EditedEntry { seq: 5 });
        // A gap is not decided until the missing position turns up or the entries end.
        let mut a = Audit::new(
            &signer().verifier(),
            Vec::<String>::new(),
            Vec::<String>::new(),
        );
        a.push(1, &body(1), None);
        assert!(!a.is_decided());
        a.push(0, &body(0), None);
        assert!(a.is_decided());
    }

    #[test]
    fn entry_seq_reads_the_top_level_field() {
        for (json, seq) in [
            (r#"{"id":"x","seq":0}"#, 0),
            (r#" { "seq" : 42 , "id" : "x" } "#, 42),
            (
                r#"{"a":{"seq":1},"b":[{"seq":2}],"c":"\"seq\":3","seq":4}"#,
                4,
            ),
            (r#"{"s\u0065q":5}"#, 5),
            (r#"{"seq":18446744073709551615}"#, u64::MAX),
            (
                r#"{"x":[],"y":{},"z":[[],[{}]],"n":-0.5e-7,"t":true,"f":false,"u":null,"seq":6}"#,
                6,
            ),
            ("{\"k\":\"\\u00e9\\n\\/\",\"seq\":7}\n", 7),
        ] {
            assert_eq!(entry_seq(json.as_bytes()), Ok(seq), "{json}");
        }
        for (json, reason) in [
            (
                "",
                "the body is not a JSON object: the body ends early (offset 0)",
            ),
            (
                "[]",
                "the body is not a JSON object: unexpected '[' at offset 0",
            ),
            ("{}", "the body has no top-level \"seq\" field"),
            (
                r#"{"seq":1,"seq":1}"#,
                "duplicate top-level \"seq\" field at offset 15",
            ),
            (
                r#"{"seq":18446744073709551616}"#,
                "the body's \"seq\" at offset 7 is too large",
            ),
            (
                r#"{"seq":-1}"#,
                "the body's \"seq\" at offset 7 is not a non-negative integer: -1",
            ),
            (
                r#"{"seq":1e3}"#,
                "the body's \"seq\" at offset 7 is not a non-negative integer: 1e3",
            ),
            (
                r#"{"seq":01}"#,
                "the body is not JSON: expected ',' or '}': unexpected '1' at offset 8",
            ),
            (
                r#"{"seq":1}x"#,
                "the body is not JSON: unexpected data after the object at offset 9",
            ),
            (
                r#"{"seq":1,}"#,
                "the body is not JSON: expected a string: unexpected '}' at offset 9",
            ),
            (
                r#"{"a":[1,],"seq":1}"#,
                "the body is not JSON: expected a value: unexpected ']' at offset 8",
            ),
            (
                r#"{"a":[1}"#,
                "the body is not JSON: expected ',' or ']': unexpected '}' at offset 7",
            ),
            (
                r#"{"a":tru,"seq":1}"#,
                "the body is not JSON: expected a value: unexpected 't' at offset 5",
            ),
            (
                r#"{"a":"\x","seq":1}"#,
                "the body is not JSON: bad escape at offset 6",
            ),
            (
                r#"{"a":"\u12","seq":1}"#,
                "the body is not JSON: bad \\u escape at offset 6",
            ),
            (
                "{\"a\":\"\t\",\"seq\":1}",
                "the body is not JSON: unescaped control character 0x09 in a string at offset 6",
            ),
            (r#"{"a":"x"#, "the body is not JSON: a string is not closed"),
            (
                r#"{"a":1.,"seq":1}"#,
                "the body is not JSON: malformed number at offset 5",
            ),
        ] {
            assert_eq!(entry_seq(json.as_bytes()), Err(reason.to_owned()), "{json}");
        }
        let deep = format!("{{\"a\":{}{},\"seq\":1}}", "[".repeat(128), "]".repeat(128));
        assert_eq!(entry_seq(deep.as_bytes()), Ok(1));
        let deeper = format!("{{\"a\":{}{},\"seq\":1}}", "[".repeat(129), "]".repeat(129));
        assert!(entry_seq(deeper.as_bytes())
            .unwrap_err()
            .contains("nested more than 128"));
        let hostile = "[".repeat(1 << 20);
        assert!(entry_seq(format!("{{\"a\":{hostile}").as_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any single-byte edit of any body is found, whether or not the recorded leaf hash was
        /// edited to match.
        #[test]
        fn any_single_byte_edit_is_detected(
            n in 1u64..40,
            pick in any::<prop::sample::Index>(),
            offset in any::<prop::sample::Index>(),
            delta in 1u8..=255,
            fix_leaf in any::<bool>(),
        ) {
            let s = signer();
            let mut entries = ledger(n);
            let notes = vec![checkpoint(&s, &entries, n)];
            let i = pick.index(n as usize);
            let o = offset.index(entries[i].body.len());
            entries[i].body[o] = entries[i].body[o].wrapping_add(delta);
            if fix_leaf {
                entries[i].leaf = Some(leaf_hash(&entries[i].body));
            }
            let p = audit(&entries, &notes, &[]).unwrap_err();
            prop_assert!(p.position() <= i as u64, "{p:?} for an edit at {i}");
            if !fix_leaf {
                prop_assert_eq!(p, Problem::EditedEntry { seq: i as u64 });
            }
        }

        /// `entry_seq` agrees with serde_json on what is valid and on the value.
        #[test]
        fn entry_seq_matches_serde_json(
            bytes in prop::collection::vec(
                prop::sample::select(b"{}[]\",:\\ -0123456789.eEtrunlfaseqx\nu".to_vec()), 0..40)
        ) {
            let ours = entry_seq(&bytes);
            let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
            if let Ok(seq) = &ours {
                let v = theirs.as_ref().unwrap();
                prop_assert_eq!(v.get("seq").and_then(serde_json::Value::as_u64), Some(*seq));
            }
            if let Ok(serde_json::Value::Object(map)) = &theirs {
                if let Some(seq) = map.get("seq").and_then(serde_json::Value::as_u64) {
                    // serde_json keeps the last of duplicate keys; we reject duplicates.
                    if ours.is_ok() {
                        prop_assert_eq!(ours, Ok(seq));
                    }
                } else {
                    prop_assert!(ours.is_err());
                }
            }
        }

        #[test]
        fn entry_seq_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = entry_seq(&bytes);
        }
    }
}
