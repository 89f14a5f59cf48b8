//! Serialisable inclusion and consistency proofs, as the REST API and CLI exchange them.
//!
//! JSON shape (hashes as 64 lowercase hex digits, ordered as RFC 9162 lists them):
//!
//! ```json
//! {"leaf_index": 1, "tree_size": 3, "hashes": ["6e34…", "fcf8…"]}
//! {"old_size": 2, "new_size": 3, "hashes": ["fcf8…"]}
//! ```

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::tree::{self, HashReader, TreeError};

/// Proof that the leaf at `leaf_index` is in the tree of `tree_size` leaves (RFC 9162 §2.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// 0-based index of the leaf.
    pub leaf_index: u64,
    /// Number of leaves in the tree the proof is for.
    pub tree_size: u64,
    /// The audit path, from the leaf's sibling up.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Builds the proof for leaf `leaf_index` in the tree of `tree_size` leaves.
    pub fn prove<R: HashReader + ?Sized>(
        leaf_index: u64,
        tree_size: u64,
        reader: &R,
    ) -> Result<Self, TreeError> {
        Ok(InclusionProof {
            leaf_index,
            tree_size,
            hashes: tree::prove_record(tree_size, leaf_index, reader)?,
        })
    }

    /// Checks that a leaf with hash `leaf_hash` is at `leaf_index` in the tree of `tree_size`
    /// leaves whose root is `root`.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), TreeError> {
        tree::check_record(
            &self.hashes,
            self.tree_size,
            root,
            self.leaf_index,
            leaf_hash,
        )
    }
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves
/// (RFC 9162 §2.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// The consistency proof hashes.
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Builds the proof between sizes `old_size <= new_size`.
    pub fn prove<R: HashReader + ?Sized>(
        old_size: u64,
        new_size: u64,
        reader: &R,
    ) -> Result<Self, TreeError> {
        Ok(ConsistencyProof {
            old_size,
            new_size,
            hashes: tree::prove_tree(new_size, old_size, reader)?,
        })
    }

    /// Checks that the tree with root `old_root` at `old_size` is a prefix of the tree with root
    /// `new_root` at `new_size`.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), TreeError> {
        tree::check_tree(
            &self.hashes,
            self.new_size,
            new_root,
            self.old_size,
            old_root,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{tree_hash, MemoryHashStore};

    fn store() -> MemoryHashStore {
        let mut s = MemoryHashStore::new();
        for entry in [&b"a"[..], b"b", b"c"] {
            s.append(leaf_hash(entry)).unwrap();
        }
        s
    }

    #[test]
    fn inclusion_json_round_trip_and_verify() {
        let s = store();
        let root = tree_hash(3, &s).unwrap();
        let p = InclusionProof::prove(1, 3, &s).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.starts_with(r#"{"leaf_index":1,"tree_size":3,"hashes":[""#));
        let back: InclusionProof = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        back.verify(&leaf_hash(b"b"), &root).unwrap();
        assert!(back.verify(&leaf_hash(b"c"), &root).is_err());
        let mut wrong = back.clone();
        wrong.leaf_index = 0;
        assert!(wrong.verify(&leaf_hash(b"b"), &root).is_err());
    }

    #[test]
    fn consistency_json_round_trip_and_verify() {
        let s = store();
        let old = tree_hash(2, &s).unwrap();
        let new = tree_hash(3, &s).unwrap();
        let p = ConsistencyProof::prove(2, 3, &s).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: ConsistencyProof = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        back.verify(&old, &new).unwrap();
        assert!(back.verify(&new, &old).is_err());
        assert!(ConsistencyProof::prove(3, 2, &s).is_err());
    }

    #[test]
    fn malformed_json_is_rejected() {
        for bad in [
            r#"{"leaf_index":1,"tree_size":3,"hashes":["zz"]}"#,
            r#"{"leaf_index":-1,"tree_size":3,"hashes":[]}"#,
            r#"{"leaf_index":1,"hashes":[]}"#,
        ] {
            assert!(
                serde_json::from_str::<InclusionProof>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
