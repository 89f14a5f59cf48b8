//! Checking proofs: the verification algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
//! (consistency). They read no storage, so an offline verifier needs only this file's logic.
//!
//! Before running the RFC algorithm each check compares the proof's length with the exact
//! length RFC 9162 prescribes for its sizes, so a wrong-length proof gets a precise error and
//! no hashing is done for it.

use super::TreeError;
use crate::hash::{node_hash, Hash, EMPTY_TREE_HASH};

/// Number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves
/// (`index < size`; `0` otherwise).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    if index >= size {
        return 0;
    }
    let (inner, border) = decompose_inclusion(index, size);
    (inner + border) as usize
}

/// Number of hashes in the consistency proof from size `old` to size `new`
/// (`0` when `old == 0`, `old == new` or `old > new`).
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    if old == 0 || old >= new {
        return 0;
    }
    let (inner, border) = decompose_inclusion(old - 1, new);
    let shift = old.trailing_zeros();
    // The proof starts with the hash of the old tree's last perfect subtree, unless that subtree
    // is the whole old tree (old a power of two), whose root the verifier already has.
    let seed = u32::from(!old.is_power_of_two());
    (seed + inner - shift + border) as usize
}

/// Splits the audit path of `index` in a tree of `size` into the part below the point where
/// the path of `index` and the path of the last leaf meet (`inner`) and the part above it
/// (`border`, one hash per left turn of the right edge).
fn decompose_inclusion(index: u64, size: u64) -> (u32, u32) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// Checks that `proof` is the inclusion proof of leaf `n` with hash `leaf_hash` in the tree of
/// size `t` whose root is `root_t` (RFC 9162 §2.1.3.2).
///
/// As in RFC 9162, the proof authenticates the leaf and its index against the root; the size
/// `t` is authenticated by the root itself (take both from one signed checkpoint). A path can
/// fit several sizes of the same shape, e.g. leaf 0 in trees of 3 and 4 leaves.
pub fn check_record(
    proof: &[Hash],
    t: u64,
    root_t: &Hash,
    n: u64,
    leaf_hash: &Hash,
) -> Result<(), TreeError> {
    if n >= t {
        return Err(TreeError::LeafOutOfRange { index: n, size: t });
    }
    let expected = inclusion_proof_len(n, t);
    if proof.len() != expected {
        return Err(TreeError::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let computed =
        root_from_inclusion_proof(proof, t, n, leaf_hash).ok_or(TreeError::ProofLength {
            expected,
            actual: proof.len(),
        })?;
    if computed != *root_t {
        return Err(TreeError::RootMismatch {
            computed,
            expected: *root_t,
        });
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2 steps 2–5: the root an audit path leads to, or `None` if the path does
/// not fit the tree's shape.
fn root_from_inclusion_proof(proof: &[Hash], size: u64, index: u64, leaf: &Hash) -> Option<Hash> {
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            // Climb past the levels where this node is the right edge's lone left child.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// Checks that `proof` proves the tree of size `n` with root `root_n` is a prefix of the tree of
/// size `t` with root `root_t` (RFC 9162 §2.1.4.2).
///
/// `n == t` needs an empty proof and equal roots; `n == 0` needs an empty proof and `root_n`
/// equal to the empty tree's root. As with [`check_record`], the new size `t` is authenticated
/// by `root_t` (its signed checkpoint), not by the proof.
pub fn check_tree(
    proof: &[Hash],
    t: u64,
    root_t: &Hash,
    n: u64,
    root_n: &Hash,
) -> Result<(), TreeError> {
    if n > t {
        return Err(TreeError::SizeOrder { old: n, new: t });
    }
    let expected = consistency_proof_len(n, t);
    if proof.len() != expected {
        return Err(TreeError::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if n == 0 {
        return if *root_n == EMPTY_TREE_HASH {
            Ok(())
        } else {
            Err(TreeError::OldRootMismatch {
                computed: EMPTY_TREE_HASH,
                expected: *root_n,
            })
        };
    }
    if n == t {
        return if root_n == root_t {
            Ok(())
        } else {
            Err(TreeError::RootMismatch {
                computed: *root_n,
                expected: *root_t,
            })
        };
    }
    let length_error = TreeError::ProofLength {
        expected,
        actual: proof.len(),
    };
    // Step 2: if the old size is a power of two, the old root starts the path.
    let (first, rest) = if n.is_power_of_two() {
        (*root_n, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(length_error),
        }
    };
    // Steps 3–4.
    let mut f = n - 1;
    let mut s = t - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // Steps 5–6.
    let mut fr = first;
    let mut sr = first;
    for c in rest {
        if s == 0 {
            return Err(length_error);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(length_error);
    }
    if fr != *root_n {
        return Err(TreeError::OldRootMismatch {
            computed: fr,
            expected: *root_n,
        });
    }
    if sr != *root_t {
        return Err(TreeError::RootMismatch {
            computed: sr,
            expected: *root_t,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{prove_record, prove_tree, tree_hash, MemoryHashStore};

    fn store(n: u64) -> MemoryHashStore {
        let mut s = MemoryHashStore::new();
        for i in 0..n {
            s.append(leaf_hash(&i.to_le_bytes())).unwrap();
        }
        s
    }

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let s = store(70);
        for t in 1..=70u64 {
            for n in 0..t {
                assert_eq!(
                    prove_record(t, n, &s).unwrap().len(),
                    inclusion_proof_len(n, t),
                    "inclusion {n} in {t}"
                );
            }
            for n in 0..=t {
                assert_eq!(
                    prove_tree(t, n, &s).unwrap().len(),
                    consistency_proof_len(n, t),
                    "consistency {n} -> {t}"
                );
            }
        }
    }

    #[test]
    fn every_proof_in_small_trees_checks() {
        let s = store(40);
        let roots: Vec<Hash> = (0..=40).map(|t| tree_hash(t, &s).unwrap()).collect();
        for t in 1..=40u64 {
            let root_t = &roots[t as usize];
            for n in 0..t {
                let proof = prove_record(t, n, &s).unwrap();
                let leaf = leaf_hash(&n.to_le_bytes());
                check_record(&proof, t, root_t, n, &leaf).unwrap();
                assert!(check_record(&proof, t, root_t, n, &EMPTY_TREE_HASH).is_err());
            }
            for n in 0..=t {
                let proof = prove_tree(t, n, &s).unwrap();
                check_tree(&proof, t, root_t, n, &roots[n as usize]).unwrap();
            }
        }
    }

    #[test]
    fn degenerate_cases() {
        let s = store(5);
        let r5 = tree_hash(5, &s).unwrap();
        let r4 = tree_hash(4, &s).unwrap();
        // Equal sizes: empty proof, equal roots.
        check_tree(&[], 5, &r5, 5, &r5).unwrap();
        assert!(matches!(
            check_tree(&[], 5, &r5, 5, &r4),
            Err(TreeError::RootMismatch { .. })
        ));
        assert!(matches!(
            check_tree(&[r4], 5, &r5, 5, &r5),
            Err(TreeError::ProofLength {
                expected: 0,
                actual: 1
            })
        ));
        // Empty old tree.
        check_tree(&[], 5, &r5, 0, &EMPTY_TREE_HASH).unwrap();
        assert!(matches!(
            check_tree(&[], 5, &r5, 0, &r4),
            Err(TreeError::OldRootMismatch { .. })
        ));
        // Old larger than new.
        assert!(matches!(
            check_tree(&[], 4, &r4, 5, &r5),
            Err(TreeError::SizeOrder { old: 5, new: 4 })
        ));
        // Leaf out of range.
        assert!(matches!(
            check_record(&[], 5, &r5, 5, &r5),
            Err(TreeError::LeafOutOfRange { .. })
        ));
        // Single-leaf tree: the root is the leaf hash.
        let l0 = leaf_hash(&0u64.to_le_bytes());
        check_record(&[], 1, &l0, 0, &l0).unwrap();
        // Huge sizes do not overflow or panic.
        let huge = vec![r5; 64];
        assert!(check_record(&huge, u64::MAX, &r5, u64::MAX - 1, &l0).is_err());
        assert!(check_record(&huge[..63], u64::MAX, &r5, 0, &l0).is_err());
        assert!(check_tree(&huge, u64::MAX, &r5, u64::MAX - 1, &r4).is_err());
        assert!(check_tree(&huge, u64::MAX, &r5, 1 << 63, &r4).is_err());
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        let _ = consistency_proof_len(1 << 63, u64::MAX);
    }
}
