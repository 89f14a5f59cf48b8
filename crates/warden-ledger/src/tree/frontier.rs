//! [`RootBuilder`]: the right edge ("frontier") of a growing tree, `O(log n)` hashes.
//!
//! A tree of `n` leaves is a sequence of perfect subtrees, one per set bit of `n`, largest
//! first; its root is those subtrees' roots folded from the right with the node hash. Appending a
//! leaf merges equal-sized subtrees like a binary counter's carry. Keeping only those roots lets a
//! verifier recompute the root of a million-leaf tree from the leaf hashes in about two million
//! SHA-256 compressions and no storage.

use super::{build::read, check_size, HashReader, TreeError};
use crate::hash::{node_hash, Hash, EMPTY_TREE_HASH};

/// Incremental root computation over a stream of leaf hashes.
///
/// ```
/// use warden_ledger::hash::leaf_hash;
/// use warden_ledger::tree::RootBuilder;
///
/// let mut b = RootBuilder::new();
/// for entry in [&b"a"[..], b"b", b"c"] {
///     b.push(leaf_hash(entry));
/// }
/// assert_eq!(b.size(), 3);
/// let root = b.root();
/// # let _ = root;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootBuilder {
    size: u64,
    /// Roots of the perfect subtrees, one per set bit of `size`, largest (leftmost) first.
    frontier: Vec<Hash>,
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes from a tree of `size` leaves given its frontier: the roots of its perfect
    /// subtrees, largest first (as returned by [`RootBuilder::frontier`]).
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, TreeError> {
        let expected = size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(TreeError::FrontierLength {
                size,
                expected,
                actual: frontier.len(),
            });
        }
        Ok(RootBuilder { size, frontier })
    }

    /// Resumes from the first `size` leaves of a stored tree, reading its `popcount(size)`
    /// frontier hashes in one call.
    pub fn from_reader<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Self, TreeError> {
        check_size(size)?;
        let mut indexes = Vec::with_capacity(size.count_ones() as usize);
        let mut lo = 0u64;
        // Set bits of size from the highest: subtree of 2^level leaves starting at lo.
        for level in (0..64u32).rev() {
            if (size >> level) & 1 == 1 {
                indexes.push(super::stored_hash_index(level, lo >> level));
                lo += 1 << level;
            }
        }
        let frontier = read(reader, &indexes)?;
        Ok(RootBuilder { size, frontier })
    }

    /// Number of leaves pushed so far (including any the builder was resumed from).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier: roots of the perfect subtrees that make up the tree, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// Appends a leaf hash (see [`crate::hash::leaf_hash`]).
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut h = leaf_hash;
        let mut s = self.size;
        while s & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break, // unreachable: the frontier has one hash per set bit of size
            }
            s >>= 1;
        }
        self.frontier.push(h);
        self.size += 1;
    }

    /// Like [`RootBuilder::push`], also appending to `out` the hashes storage gets for this leaf:
    /// the leaf hash and each perfect subtree it completes, lowest first. The ledger writer uses
    /// it to store a batch's tree hashes without reading anything back.
    pub fn push_emitting(&mut self, leaf_hash: Hash, out: &mut Vec<Hash>) {
        let mut h = leaf_hash;
        out.push(h);
        let mut s = self.size;
        while s & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break, // unreachable: the frontier has one hash per set bit of size
            }
            out.push(h);
            s >>= 1;
        }
        self.frontier.push(h);
        self.size += 1;
    }

    /// The root of the tree so far; [`EMPTY_TREE_HASH`] before any push. Costs
    /// `popcount(size) - 1` node hashes.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        let Some(mut h) = iter.next().copied() else {
            return EMPTY_TREE_HASH;
        };
        for left in iter {
            h = node_hash(left, &h);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{tree_hash, MemoryHashStore};

    #[test]
    fn matches_tree_hash_at_every_size() {
        let mut store = MemoryHashStore::new();
        let mut b = RootBuilder::new();
        assert_eq!(b.root(), EMPTY_TREE_HASH);
        for i in 0u32..300 {
            let leaf = leaf_hash(&i.to_be_bytes());
            store.append(leaf).unwrap();
            b.push(leaf);
            assert_eq!(b.root(), tree_hash(store.size(), &store).unwrap());
            assert_eq!(b.frontier().len(), b.size().count_ones() as usize);
            let resumed = RootBuilder::from_reader(b.size(), &store).unwrap();
            assert_eq!(resumed, b);
        }
    }

    #[test]
    fn resume_from_frontier() {
        let mut a = RootBuilder::new();
        for i in 0u32..11 {
            a.push(leaf_hash(&i.to_be_bytes()));
        }
        let mut b = RootBuilder::from_frontier(a.size(), a.frontier().to_vec()).unwrap();
        for i in 11u32..20 {
            a.push(leaf_hash(&i.to_be_bytes()));
            b.push(leaf_hash(&i.to_be_bytes()));
        }
        assert_eq!(a.root(), b.root());
        assert!(matches!(
            RootBuilder::from_frontier(11, vec![EMPTY_TREE_HASH]),
            Err(TreeError::FrontierLength {
                size: 11,
                expected: 3,
                actual: 1
            })
        ));
    }
}
