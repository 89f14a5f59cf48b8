//! Property tests: the incremental tree against a naive, literal transcription of RFC 9162
//! §2.1.1 (MTH), §2.1.3.1 (PATH) and §2.1.4.1 (PROOF/SUBPROOF), and every proof against
//! tampering.

use proptest::prelude::*;
use warden_ledger::hash::{leaf_hash, node_hash, Hash, EMPTY_TREE_HASH};
use warden_ledger::tree::{
    check_record, check_tree, consistency_proof_len, inclusion_proof_len, prove_record, prove_tree,
    split_stored_hash_index, stored_hash_index, tree_hash, MemoryHashStore, RootBuilder,
};
use warden_ledger::{ConsistencyProof, InclusionProof};

/// Largest power of two strictly less than `n` (n >= 2).
fn k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) of RFC 9162 §2.1.1, on leaf hashes.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => EMPTY_TREE_HASH,
        1 => d[0],
        n => {
            let k = k(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = k(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) for 0 < m <= n.
fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    subproof(m, d, true)
}

fn leaves(n: usize, salt: u64) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| leaf_hash(&[salt.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

fn store_of(d: &[Hash]) -> MemoryHashStore {
    let mut s = MemoryHashStore::new();
    for h in d {
        s.append(*h).unwrap();
    }
    s
}

/// Flips one bit of one proof hash.
fn flip(p: &[Hash], which: usize, bit: u8) -> Vec<Hash> {
    let mut p = p.to_vec();
    let i = which % p.len();
    let byte = (bit as usize / 8) % 32;
    p[i].0[byte] ^= 1 << (bit % 8);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tree_hash_matches_naive(n in 0usize..=300, salt in any::<u64>()) {
        let d = leaves(n, salt);
        let s = store_of(&d);
        for size in [0, n / 3, n / 2, n.saturating_sub(1), n] {
            prop_assert_eq!(tree_hash(size as u64, &s).unwrap(), mth(&d[..size]));
        }
    }

    #[test]
    fn root_builder_matches_tree_hash(n in 0usize..=300, salt in any::<u64>()) {
        let d = leaves(n, salt);
        let s = store_of(&d);
        let mut b = RootBuilder::new();
        for h in &d {
            b.push(*h);
        }
        prop_assert_eq!(b.size(), n as u64);
        prop_assert_eq!(b.root(), tree_hash(n as u64, &s).unwrap());
        prop_assert_eq!(b.root(), mth(&d));
    }

    #[test]
    fn inclusion_proofs_are_rfc_paths_and_resist_tampering(
        t in 1usize..=300,
        n_seed in any::<usize>(),
        salt in any::<u64>(),
        which in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let n = n_seed % t;
        let d = leaves(t, salt);
        let s = store_of(&d);
        let root = mth(&d);
        let (t64, n64) = (t as u64, n as u64);
        let p = prove_record(t64, n64, &s).unwrap();
        prop_assert_eq!(&p, &path(n, &d));
        check_record(&p, t64, &root, n64, &d[n]).unwrap();

        // Any altered hash, leaf, index, size, root or length fails.
        if !p.is_empty() {
            prop_assert!(check_record(&flip(&p, which, bit), t64, &root, n64, &d[n]).is_err());
            prop_assert!(check_record(&p[..p.len() - 1], t64, &root, n64, &d[n]).is_err());
        }
        let mut longer = p.clone();
        longer.push(root);
        prop_assert!(check_record(&longer, t64, &root, n64, &d[n]).is_err());
        prop_assert!(check_record(&p, t64, &root, n64, &flip(&[d[n]], 0, bit)[0]).is_err());
        prop_assert!(check_record(&p, t64, &flip(&[root], 0, bit)[0], n64, &d[n]).is_err());
        for other in [n64.wrapping_sub(1), n64 + 1, n64 ^ 1, n64 ^ 2] {
            if other != n64 {
                prop_assert!(check_record(&p, t64, &root, other, &d[n]).is_err(), "index {}", other);
            }
        }
        // The tree size is bound by the root (signed in a checkpoint with its size), not by
        // the proof: a path for size t also fits sizes of the same shape (e.g. leaf 0 in sizes
        // 3 and 4). Sizes whose audit path differs in length must fail.
        for other in [t64 - 1, t64 + 1, t64 * 2] {
            if other != t64 && inclusion_proof_len(n64, other) != p.len() {
                prop_assert!(check_record(&p, other, &root, n64, &d[n]).is_err(), "size {}", other);
            }
        }

        // The serialisable form agrees.
        let ip = InclusionProof::prove(n64, t64, &s).unwrap();
        prop_assert_eq!(&ip.hashes, &p);
        ip.verify(&d[n], &root).unwrap();
    }

    #[test]
    fn consistency_proofs_are_rfc_proofs_and_resist_tampering(
        t in 1usize..=300,
        n_seed in any::<usize>(),
        salt in any::<u64>(),
        which in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let n = n_seed % (t + 1);
        let d = leaves(t, salt);
        let s = store_of(&d);
        let (root_t, root_n) = (mth(&d), mth(&d[..n]));
        let (t64, n64) = (t as u64, n as u64);
        let p = prove_tree(t64, n64, &s).unwrap();
        if n > 0 {
            prop_assert_eq!(&p, &proof(n, &d));
        } else {
            prop_assert!(p.is_empty());
        }
        check_tree(&p, t64, &root_t, n64, &root_n).unwrap();

        if !p.is_empty() {
            prop_assert!(check_tree(&flip(&p, which, bit), t64, &root_t, n64, &root_n).is_err());
            prop_assert!(check_tree(&p[..p.len() - 1], t64, &root_t, n64, &root_n).is_err());
            prop_assert!(check_tree(&p[1..], t64, &root_t, n64, &root_n).is_err());
        }
        let mut longer = p.clone();
        longer.push(root_t);
        prop_assert!(check_tree(&longer, t64, &root_t, n64, &root_n).is_err());
        // Every tree extends the empty tree, whatever its root.
        if n > 0 {
            prop_assert!(check_tree(&p, t64, &flip(&[root_t], 0, bit)[0], n64, &root_n).is_err());
        }
        prop_assert!(check_tree(&p, t64, &root_t, n64, &flip(&[root_n], 0, bit)[0]).is_err());
        // A different old size always fails (the old root pins the old tree's shape). The new
        // size, as with inclusion, is bound by the (signed) new root rather than by the proof:
        // it must fail whenever it changes the proof's shape.
        for other in [n64.wrapping_sub(1), n64 + 1, n64 / 2, 0] {
            if other != n64 {
                prop_assert!(check_tree(&p, t64, &root_t, other, &root_n).is_err(), "old size {}", other);
            }
        }
        for other in [t64 - 1, t64 + 1] {
            if other >= n64 && consistency_proof_len(n64, other) != p.len() {
                prop_assert!(check_tree(&p, other, &root_t, n64, &root_n).is_err(), "new size {}", other);
            }
        }
        // A tree that is not an extension of the old one is rejected.
        if n > 0 && n < t {
            let mut forked = d.clone();
            forked[n - 1] = leaf_hash(b"forked");
            prop_assert!(check_tree(&p, t64, &mth(&forked), n64, &root_n).is_err());
        }

        let cp = ConsistencyProof::prove(n64, t64, &s).unwrap();
        prop_assert_eq!(&cp.hashes, &p);
        cp.verify(&root_n, &root_t).unwrap();
    }

    #[test]
    fn stored_hash_index_round_trips(level in 0u32..40, n in 0u64..(1 << 20)) {
        prop_assert_eq!(split_stored_hash_index(stored_hash_index(level, n)), (level, n));
    }

    #[test]
    fn split_is_total(index in any::<u64>()) {
        let (level, n) = split_stored_hash_index(index);
        if index < 1 << 62 {
            prop_assert_eq!(stored_hash_index(level, n), index);
        }
    }
}
