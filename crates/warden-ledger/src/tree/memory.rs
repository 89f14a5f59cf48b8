//! [`MemoryHashStore`]: stored hashes in a `Vec`, for tests, tools and small offline checks.

use super::{stored_hashes_for_record, HashReader, ReadError, TreeError};
use crate::hash::Hash;

/// A tree's stored hashes kept in memory, in storage order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryHashStore {
    size: u64,
    hashes: Vec<Hash>,
}

/// A storage index past the end of the stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored hash {index} is not present: only {stored} hashes are stored")]
pub struct MissingHashError {
    /// The index asked for.
    pub index: u64,
    /// How many hashes are stored.
    pub stored: u64,
}

impl MemoryHashStore {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// All stored hashes, indexed by [`super::stored_hash_index`].
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash and the subtree hashes it completes; returns the new leaf's index.
    pub fn append(&mut self, leaf_hash: Hash) -> Result<u64, TreeError> {
        let n = self.size;
        let new = stored_hashes_for_record(n, leaf_hash, &self.hashes[..])?;
        self.hashes.extend(new);
        self.size += 1;
        Ok(n)
    }
}

impl HashReader for MemoryHashStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
        self.hashes[..].read_hashes(indexes)
    }
}

impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or_else(|| {
                        Box::new(MissingHashError {
                            index,
                            stored: self.len() as u64,
                        }) as ReadError
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{split_stored_hash_index, stored_hash_count};

    #[test]
    fn append_places_hashes_at_their_indexes() {
        let mut s = MemoryHashStore::new();
        for i in 0u32..100 {
            assert_eq!(s.append(leaf_hash(&i.to_be_bytes())).unwrap(), u64::from(i));
            assert_eq!(s.hashes().len() as u64, stored_hash_count(s.size()));
        }
        // Every leaf hash sits at its level-0 index.
        for (index, h) in s.hashes().iter().enumerate() {
            let (level, n) = split_stored_hash_index(index as u64);
            if level == 0 {
                assert_eq!(*h, leaf_hash(&(n as u32).to_be_bytes()));
            }
        }
    }

    #[test]
    fn missing_index_is_an_error() {
        let s = MemoryHashStore::new();
        let err = s.read_hashes(&[3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored hash 3 is not present: only 0 hashes are stored"
        );
        assert_eq!(s.read_hashes(&[]).unwrap(), vec![]);
    }
}
