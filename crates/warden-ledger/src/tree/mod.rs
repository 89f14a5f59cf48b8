//! The RFC 6962 / RFC 9162 Merkle tree, kept incrementally as permanent "stored hashes".
//!
//! The tree over leaves `0..n` is the one RFC 9162 §2.1.1 defines: a tree of `n > 1` leaves is
//! split into a left subtree of `k` leaves, `k` the largest power of two below `n`, and a right
//! subtree of the remaining `n - k`. Its incremental storage follows the scheme of Go's
//! `golang.org/x/mod/sumdb/tlog`: every leaf hash and every completed perfect subtree's hash gets
//! a permanent storage index ([`stored_hash_index`]), and appending leaf `n` yields exactly the
//! new hashes to append at the end of storage ([`stored_hashes_for_record`]). Nothing stored is
//! ever rewritten, and any root, inclusion proof or consistency proof needs only `O(log n)`
//! stored hashes, fetched in one [`HashReader::read_hashes`] call.
//!
//! Parts:
//! - storage index arithmetic: [`stored_hash_index`], [`split_stored_hash_index`],
//!   [`stored_hash_count`];
//! - building: [`stored_hashes_for_record`], [`stored_hashes_for_records`], [`tree_hash`],
//!   [`prove_record`], [`prove_tree`];
//! - checking: [`check_record`], [`check_tree`] (RFC 9162 §2.1.3.2 and §2.1.4.2, reading no
//!   storage);
//! - [`RootBuilder`]: the `O(log n)` right edge ("frontier") of a growing tree, for recomputing
//!   roots while streaming leaves;
//! - [`MemoryHashStore`]: stored hashes in a `Vec`, for tests and offline tools.

mod build;
mod check;
mod frontier;
mod index;
mod memory;

pub use build::{
    prove_record, prove_tree, stored_hashes_for_record, stored_hashes_for_records, tree_hash,
};
pub use check::{check_record, check_tree, consistency_proof_len, inclusion_proof_len};
pub use frontier::RootBuilder;
pub use index::{split_stored_hash_index, stored_hash_count, stored_hash_index};
pub use memory::{MemoryHashStore, MissingHashError};

use crate::hash::Hash;

/// The largest tree size (number of leaves) this module accepts when it reads storage: `2^62`.
///
/// It keeps every storage index below `2^63`. Checking proofs ([`check_record`],
/// [`check_tree`]) reads no storage and accepts any `u64` size.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// The error a [`HashReader`] returns: any error type of the storage backend, boxed.
pub type ReadError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Read access to stored hashes by storage index (see [`stored_hash_index`]).
///
/// A database-backed reader maps its own error into [`ReadError`]; the tree functions wrap it in
/// [`TreeError::Read`].
pub trait HashReader {
    /// Returns the hashes stored at `indexes`, in the same order and of the same length.
    ///
    /// The tree functions make one call per operation, for `O(log n)` indexes (at most 124:
    /// one per level plus one per perfect subtree of a tree size), in increasing order for [`tree_hash`], [`stored_hashes_for_record`] and
    /// [`RootBuilder::from_reader`]; proofs may list them out of order. No call is made when
    /// nothing needs reading.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
        (**self).read_hashes(indexes)
    }
}

/// Why a tree operation or a proof check failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The [`HashReader`] failed.
    #[error("reading stored hashes failed")]
    Read(#[source] ReadError),
    /// The [`HashReader`] returned a different number of hashes than asked for.
    #[error("hash reader returned {returned} hashes for {requested} requested indexes")]
    ReaderCount {
        /// Number of indexes asked for.
        requested: usize,
        /// Number of hashes returned.
        returned: usize,
    },
    /// A tree size is above [`MAX_TREE_SIZE`].
    #[error("tree size {size} exceeds the maximum of {max}", max = MAX_TREE_SIZE)]
    SizeTooLarge {
        /// The offending size.
        size: u64,
    },
    /// A leaf index is not inside the tree.
    #[error("leaf index {index} is not in a tree of size {size}")]
    LeafOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// An "old" tree size is larger than the "new" one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// The older (supposedly smaller) size.
        old: u64,
        /// The newer (supposedly larger) size.
        new: u64,
    },
    /// A frontier does not have one hash per set bit of its size.
    #[error("a frontier for tree size {size} needs {expected} hashes, got {actual}")]
    FrontierLength {
        /// The tree size.
        size: u64,
        /// The number of hashes it needs (the number of one bits in `size`).
        expected: usize,
        /// The number given.
        actual: usize,
    },
    /// A proof has the wrong number of hashes for its sizes and index.
    #[error("proof has {actual} hashes, but {expected} are needed")]
    ProofLength {
        /// The number RFC 9162 prescribes.
        expected: usize,
        /// The number in the proof.
        actual: usize,
    },
    /// An inclusion proof (or a consistency proof's new side) leads to a different root.
    #[error("proof leads to root {computed}, not the expected root {expected}")]
    RootMismatch {
        /// Root recomputed from the proof.
        computed: Hash,
        /// Root the caller expected.
        expected: Hash,
    },
    /// A consistency proof does not reproduce the old tree's root.
    #[error(
        "consistency proof leads to old root {computed}, not the expected old root {expected}"
    )]
    OldRootMismatch {
        /// Old root recomputed from the proof.
        computed: Hash,
        /// Old root the caller gave.
        expected: Hash,
    },
}

/// Rejects sizes that would overflow storage index arithmetic.
pub(crate) fn check_size(size: u64) -> Result<(), TreeError> {
    if size > MAX_TREE_SIZE {
        Err(TreeError::SizeTooLarge { size })
    } else {
        Ok(())
    }
}
