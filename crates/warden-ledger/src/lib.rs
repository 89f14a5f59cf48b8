//! The mathematics of Warden's tamper-evident ledger: an RFC 6962 / RFC 9162 Merkle tree over
//! the events' canonical bytes, its inclusion and consistency proofs, and checkpoints signed in
//! the C2SP signed-note format with Ed25519.
//!
//! It also holds the ledger's one writer, [`writer`], which sequences events and commits them in
//! batches through `warden-store`, and [`live`], which verifies and exports the ledger as stored.
//! Everything else here is pure: it does no I/O (storage is
//! reached through the [`tree::HashReader`] trait, which the store implements) and decides no
//! policy (which origin or key to trust, when
//! to checkpoint, what to do on a failed check are the caller's business). Everything an offline
//! verifier needs is here, and every parser treats its input as hostile.
//!
//! Modules:
//! - [`hash`]: [`Hash`](struct@Hash), leaf and node hashing with RFC 6962 domain separation;
//! - [`tree`]: the incremental tree as permanent stored hashes, roots, proofs and their checks,
//!   [`RootBuilder`] for streaming recomputation, [`MemoryHashStore`];
//! - [`proof`]: serialisable [`InclusionProof`] and [`ConsistencyProof`] for the API and CLI;
//! - [`note`]: C2SP signed notes, Ed25519 [`Signer`] and [`Verifier`] keys and their strings;
//! - [`checkpoint`]: C2SP tlog [`Checkpoint`]s, signed and opened as notes;
//! - [`verify`]: [`Audit`], streaming verification of a whole ledger that names the first bad
//!   position (edited, missing, reordered or malformed entries, forged checkpoints, rewritten or
//!   truncated history);
//! - [`bundle`]: the self-contained audit bundle (JSON Lines), its [`BundleWriter`] and
//!   streaming [`BundleReader`];
//! - [`writer`]: the sequencer: group commit, acknowledgement only once durable, fail closed;
//! - [`live`]: the stored ledger verified in place and streamed out as a bundle, page by page.
//!
//! `docs/LEDGER.md` describes every byte format here precisely enough to write an independent
//! verifier.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bundle;
pub mod checkpoint;
pub mod hash;
pub mod live;
pub mod note;
pub mod proof;
pub mod tree;
pub mod verify;
pub mod writer;

pub use bundle::{BundleEntry, BundleError, BundleHeader, BundleReader, BundleWriter};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use hash::{leaf_hash, node_hash, Hash, ParseHashError, EMPTY_TREE_HASH};
pub use note::{NoteError, Signer, Verifier};
pub use proof::{ConsistencyProof, InclusionProof};
pub use tree::{HashReader, MemoryHashStore, RootBuilder, TreeError};
pub use verify::{Audit, CheckpointSource, Problem, Verified};
pub use writer::{LedgerError, LedgerWriter, Receipt, WriterConfig};
