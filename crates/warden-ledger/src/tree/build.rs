//! Building from stored hashes: new stored hashes for appended leaves, roots and proofs.
//!
//! Each function first works out which stored hashes it needs, fetches them with one
//! [`HashReader::read_hashes`] call, then combines them. Proofs are the exact RFC 9162 audit
//! paths (§2.1.3.1) and consistency proofs (§2.1.4.1), ordered from the bottom of the tree up.

use super::{check_size, index::stored_hash_index, HashReader, RootBuilder, TreeError};
use crate::hash::{node_hash, Hash, EMPTY_TREE_HASH};

/// The hashes to append to storage when leaf `n` (0-based) with hash `leaf_hash` is appended to
/// a tree of `n` leaves: the leaf hash followed by each perfect subtree it completes, lowest level
/// first. They belong at storage indexes `stored_hash_count(n)..stored_hash_count(n + 1)`.
///
/// Reads the `trailing_ones(n)` left siblings from `reader` (none for even `n`).
pub fn stored_hashes_for_record<R: HashReader + ?Sized>(
    n: u64,
    leaf_hash: Hash,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_size(n.saturating_add(1))?;
    // Each trailing one bit of n is a complete left sibling that the new leaf now pairs with.
    let levels = n.trailing_ones();
    let indexes: Vec<u64> = (0..levels)
        .rev()
        .map(|level| stored_hash_index(level, (n >> level) - 1))
        .collect();
    let siblings = read(reader, &indexes)?;
    let mut out = Vec::with_capacity(1 + siblings.len());
    let mut h = leaf_hash;
    out.push(h);
    for left in siblings.iter().rev() {
        h = node_hash(left, &h);
        out.push(h);
    }
    Ok(out)
}

/// Like [`stored_hashes_for_record`] for a batch: the hashes to append when `leaf_hashes` become
/// leaves `start..start + leaf_hashes.len()`, in storage order, starting at storage index
/// `stored_hash_count(start)`.
///
/// Reads the tree's frontier (at most 62 hashes) once, however large the batch, and needs none
/// of the batch's own hashes to be stored yet: suited to group commit.
pub fn stored_hashes_for_records<R: HashReader + ?Sized>(
    start: u64,
    leaf_hashes: &[Hash],
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    let count = u64::try_from(leaf_hashes.len()).unwrap_or(u64::MAX);
    check_size(start.saturating_add(count))?;
    let mut builder = RootBuilder::from_reader(start, reader)?;
    let mut out = Vec::with_capacity(leaf_hashes.len().saturating_mul(2));
    for leaf in leaf_hashes {
        builder.push_emitting(*leaf, &mut out);
    }
    Ok(out)
}

/// The root hash of the tree made of the first `n` leaves (`MTH(D[0:n])` in RFC 9162), reading
/// at most `popcount(n)` stored hashes. The empty tree's root is [`EMPTY_TREE_HASH`].
pub fn tree_hash<R: HashReader + ?Sized>(n: u64, reader: &R) -> Result<Hash, TreeError> {
    check_size(n)?;
    if n == 0 {
        return Ok(EMPTY_TREE_HASH);
    }
    let mut indexes = Vec::new();
    subtree_indexes(0, n, &mut indexes);
    let hashes = read(reader, &indexes)?;
    let mut cursor = Cursor::new(&hashes);
    let root = subtree_hash(0, n, &mut cursor)?;
    cursor.finish()?;
    Ok(root)
}

/// The inclusion proof (RFC 9162 §2.1.3.1 audit path, `PATH(n, D[0:t])`) of leaf `n` in the tree
/// of size `t`, from the leaf's sibling up to the root's child. Verify with
/// [`super::check_record`].
pub fn prove_record<R: HashReader + ?Sized>(
    t: u64,
    n: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_size(t)?;
    if n >= t {
        return Err(TreeError::LeafOutOfRange { index: n, size: t });
    }
    let mut indexes = Vec::new();
    leaf_proof_indexes(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read(reader, &indexes)?;
    let mut cursor = Cursor::new(&hashes);
    let mut proof = Vec::new();
    leaf_proof(0, t, n, &mut cursor, &mut proof)?;
    cursor.finish()?;
    Ok(proof)
}

/// The consistency proof (RFC 9162 §2.1.4.1, `PROOF(n, D[0:t])`) that the tree of size `n` is a
/// prefix of the tree of size `t`. Empty when `n == 0` or `n == t`. Verify with
/// [`super::check_tree`].
pub fn prove_tree<R: HashReader + ?Sized>(
    t: u64,
    n: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_size(t)?;
    if n > t {
        return Err(TreeError::SizeOrder { old: n, new: t });
    }
    if n == 0 || n == t {
        return Ok(Vec::new());
    }
    let mut indexes = Vec::new();
    tree_proof_indexes(0, t, n, &mut indexes);
    let hashes = read(reader, &indexes)?;
    let mut cursor = Cursor::new(&hashes);
    let mut proof = Vec::new();
    tree_proof(0, t, n, &mut cursor, &mut proof)?;
    cursor.finish()?;
    Ok(proof)
}

/// Reads `indexes` (none: no call) and checks the reader returned one hash per index.
pub(crate) fn read<R: HashReader + ?Sized>(
    reader: &R,
    indexes: &[u64],
) -> Result<Vec<Hash>, TreeError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes).map_err(TreeError::Read)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::ReaderCount {
            requested: indexes.len(),
            returned: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Consumes fetched hashes in the order their indexes were listed.
struct Cursor<'a> {
    hashes: &'a [Hash],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(hashes: &'a [Hash]) -> Self {
        Cursor { hashes, pos: 0 }
    }

    fn take(&mut self, count: usize) -> Result<&'a [Hash], TreeError> {
        let end = self.pos.saturating_add(count);
        let slice = self
            .hashes
            .get(self.pos..end)
            .ok_or(TreeError::ReaderCount {
                requested: end,
                returned: self.hashes.len(),
            })?;
        self.pos = end;
        Ok(slice)
    }

    /// Checks that every fetched hash was used (guards the index/hash walks staying in step).
    fn finish(self) -> Result<(), TreeError> {
        if self.pos == self.hashes.len() {
            Ok(())
        } else {
            Err(TreeError::ReaderCount {
                requested: self.pos,
                returned: self.hashes.len(),
            })
        }
    }
}

/// Largest power of two `<= x`, for `x >= 1`, and its log2.
fn floor_pow2(x: u64) -> (u64, u32) {
    let level = 63 - x.leading_zeros();
    (1 << level, level)
}

/// Largest power of two `< x`, for `x >= 2`: RFC 9162's split point `k`.
fn split_point(x: u64) -> u64 {
    floor_pow2(x - 1).0
}

/// Appends the storage indexes of the perfect subtrees that make up leaves `lo..hi`, largest
/// (leftmost) first. `lo` must be a multiple of the first subtree's size, which holds for every
/// range the RFC 9162 recursion produces.
fn subtree_indexes(mut lo: u64, hi: u64, need: &mut Vec<u64>) {
    while lo < hi {
        let (k, level) = floor_pow2(hi - lo);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Combines the hashes listed by [`subtree_indexes`] into `MTH(D[lo:hi])`: the perfect subtrees
/// decrease in size from left to right, so folding from the right reproduces the RFC tree.
fn subtree_hash(mut lo: u64, hi: u64, cursor: &mut Cursor<'_>) -> Result<Hash, TreeError> {
    let mut count = 0;
    while lo < hi {
        lo += floor_pow2(hi - lo).0;
        count += 1;
    }
    let hashes = cursor.take(count)?;
    let mut iter = hashes.iter().rev();
    let mut h = match iter.next() {
        Some(h) => *h,
        None => return Ok(EMPTY_TREE_HASH),
    };
    for left in iter {
        h = node_hash(left, &h);
    }
    Ok(h)
}

/// Indexes needed by [`leaf_proof`], in the order it consumes them.
fn leaf_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if hi - lo <= 1 {
        return;
    }
    let k = split_point(hi - lo);
    if n < lo + k {
        leaf_proof_indexes(lo, lo + k, n, need);
        subtree_indexes(lo + k, hi, need);
    } else {
        subtree_indexes(lo, lo + k, need);
        leaf_proof_indexes(lo + k, hi, n, need);
    }
}

/// `PATH(n - lo, D[lo:hi])`: the hashes of the subtrees not taken on the way down to leaf `n`,
/// appended deepest first.
fn leaf_proof(
    lo: u64,
    hi: u64,
    n: u64,
    cursor: &mut Cursor<'_>,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if hi - lo <= 1 {
        return Ok(());
    }
    let k = split_point(hi - lo);
    let sibling = if n < lo + k {
        leaf_proof(lo, lo + k, n, cursor, proof)?;
        subtree_hash(lo + k, hi, cursor)?
    } else {
        let left = subtree_hash(lo, lo + k, cursor)?;
        leaf_proof(lo + k, hi, n, cursor, proof)?;
        left
    };
    proof.push(sibling);
    Ok(())
}

/// Indexes needed by [`tree_proof`], in the order it consumes them. Requires `lo < n <= hi`.
fn tree_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if n == hi {
        if lo != 0 {
            subtree_indexes(lo, hi, need);
        }
        return;
    }
    let k = split_point(hi - lo);
    if n <= lo + k {
        tree_proof_indexes(lo, lo + k, n, need);
        subtree_indexes(lo + k, hi, need);
    } else {
        subtree_indexes(lo, lo + k, need);
        tree_proof_indexes(lo + k, hi, n, need);
    }
}

/// `SUBPROOF(n - lo, D[lo:hi], lo == 0)` of RFC 9162 §2.1.4.1, appended deepest first.
fn tree_proof(
    lo: u64,
    hi: u64,
    n: u64,
    cursor: &mut Cursor<'_>,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if n == hi {
        // The old tree is this whole subtree. The verifier knows the old root when the subtree
        // is the whole old tree (lo == 0); otherwise it needs this subtree's hash.
        if lo != 0 {
            proof.push(subtree_hash(lo, hi, cursor)?);
        }
        return Ok(());
    }
    let k = split_point(hi - lo);
    let sibling = if n <= lo + k {
        tree_proof(lo, lo + k, n, cursor, proof)?;
        subtree_hash(lo + k, hi, cursor)?
    } else {
        let left = subtree_hash(lo, lo + k, cursor)?;
        tree_proof(lo + k, hi, n, cursor, proof)?;
        left
    };
    proof.push(sibling);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{MemoryHashStore, ReadError, MAX_TREE_SIZE};

    /// The RFC 6962 test leaves used by certificate-transparency and transparency-dev.
    fn rfc6962_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    fn rfc6962_store() -> MemoryHashStore {
        let mut store = MemoryHashStore::new();
        for leaf in rfc6962_leaves() {
            store.append(leaf_hash(&leaf)).unwrap();
        }
        store
    }

    fn h(s: &str) -> Hash {
        Hash::from_hex(s).unwrap()
    }

    #[test]
    fn rfc6962_roots() {
        let store = rfc6962_store();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        assert_eq!(tree_hash(0, &store).unwrap(), EMPTY_TREE_HASH);
        for (i, root) in roots.iter().enumerate() {
            assert_eq!(
                tree_hash(i as u64 + 1, &store).unwrap(),
                h(root),
                "size {}",
                i + 1
            );
        }
    }

    #[test]
    fn rfc6962_inclusion_proofs() {
        let store = rfc6962_store();
        let cases: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in cases {
            let proof = prove_record(size, index, &store).unwrap();
            let expected: Vec<Hash> = path.iter().map(|s| h(s)).collect();
            assert_eq!(proof, expected, "leaf {index} in tree {size}");
        }
    }

    #[test]
    fn rfc6962_consistency_proofs() {
        let store = rfc6962_store();
        let cases: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, path) in cases {
            let proof = prove_tree(new, old, &store).unwrap();
            let expected: Vec<Hash> = path.iter().map(|s| h(s)).collect();
            assert_eq!(proof, expected, "consistency {old} -> {new}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let store = rfc6962_store();
        assert!(matches!(
            prove_record(8, 8, &store),
            Err(TreeError::LeafOutOfRange { index: 8, size: 8 })
        ));
        assert!(matches!(
            prove_record(0, 0, &store),
            Err(TreeError::LeafOutOfRange { .. })
        ));
        assert!(matches!(
            prove_tree(3, 4, &store),
            Err(TreeError::SizeOrder { old: 4, new: 3 })
        ));
        assert!(matches!(
            tree_hash(MAX_TREE_SIZE + 1, &store),
            Err(TreeError::SizeTooLarge { .. })
        ));
        assert!(matches!(
            tree_hash(u64::MAX, &store),
            Err(TreeError::SizeTooLarge { .. })
        ));
        assert!(matches!(
            stored_hashes_for_record(u64::MAX, EMPTY_TREE_HASH, &store),
            Err(TreeError::SizeTooLarge { .. })
        ));
        // Sizes beyond what is stored: the reader reports the missing hash.
        assert!(matches!(tree_hash(9, &store), Err(TreeError::Read(_))));
        assert!(matches!(
            prove_record(MAX_TREE_SIZE, 3, &store),
            Err(TreeError::Read(_))
        ));
    }

    struct ShortReader;

    impl HashReader for ShortReader {
        fn read_hashes(&self, _indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
            Ok(vec![EMPTY_TREE_HASH])
        }
    }

    struct FailingReader;

    impl HashReader for FailingReader {
        fn read_hashes(&self, _indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
            Err("database is down".into())
        }
    }

    #[test]
    fn reader_misbehaviour_is_reported() {
        assert!(matches!(
            tree_hash(7, &ShortReader),
            Err(TreeError::ReaderCount {
                requested: 3,
                returned: 1
            })
        ));
        let err = prove_record(7, 2, &FailingReader).unwrap_err();
        assert_eq!(err.to_string(), "reading stored hashes failed");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "database is down");
        // Nothing to read: the reader is not called.
        assert_eq!(
            stored_hashes_for_record(0, EMPTY_TREE_HASH, &FailingReader).unwrap(),
            vec![EMPTY_TREE_HASH]
        );
        assert_eq!(prove_record(1, 0, &FailingReader).unwrap(), vec![]);
        assert_eq!(tree_hash(0, &FailingReader).unwrap(), EMPTY_TREE_HASH);
    }

    #[test]
    fn batch_append_matches_one_by_one() {
        let leaves: Vec<Hash> = (0u32..200).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut one_by_one = MemoryHashStore::new();
        for leaf in &leaves {
            one_by_one.append(*leaf).unwrap();
        }
        for split in [0usize, 1, 2, 3, 7, 8, 64, 100, 199, 200] {
            let mut store = MemoryHashStore::new();
            for leaf in &leaves[..split] {
                store.append(*leaf).unwrap();
            }
            let mut hashes = store.hashes().to_vec();
            assert_eq!(
                hashes.len() as u64,
                crate::tree::stored_hash_count(split as u64)
            );
            let batch = stored_hashes_for_records(split as u64, &leaves[split..], &store).unwrap();
            hashes.extend(batch);
            assert_eq!(hashes, one_by_one.hashes(), "batch starting at {split}");
        }
    }
}
