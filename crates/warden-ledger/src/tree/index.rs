//! Storage index arithmetic: where each leaf hash and perfect-subtree hash lives in storage.
//!
//! Hash `(level, n)` is the root of the perfect subtree over leaves
//! `n * 2^level .. (n + 1) * 2^level` (level 0 is the leaf hashes). Storage is append-only:
//! appending leaf `n` appends its leaf hash followed by the hash of every perfect subtree that
//! leaf completes, lowest level first. So the hash `(level, n)` is stored right after the hash
//! `(level - 1, 2n + 1)`, and leaf `n` lands at `n + n/2 + n/4 + … = 2n - popcount(n)`.
//!
//! The first stored hashes are: 0 = leaf 0, 1 = leaf 1, 2 = (1, 0), 3 = leaf 2, 4 = leaf 3,
//! 5 = (1, 1), 6 = (2, 0), 7 = leaf 4, …

/// Storage index of the hash `(level, n)`: the root of the perfect subtree over leaves
/// `n * 2^level .. (n + 1) * 2^level`.
///
/// Defined for `(n + 1) * 2^level <= 2^62` (see [`super::MAX_TREE_SIZE`]); outside that domain
/// the result is meaningless but the function does not panic.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // The subtree (level, n) is stored right after leaf ((n + 1) << level) - 1, its last leaf,
    // which is followed by `level` subtree hashes of increasing level.
    let last_leaf = match n.wrapping_add(1).checked_shl(level) {
        Some(x) => x.wrapping_sub(1),
        None => u64::MAX,
    };
    leaf_index(last_leaf).wrapping_add(u64::from(level))
}

/// Storage index of leaf `n`: `n + n/2 + n/4 + … = 2n - popcount(n)`.
fn leaf_index(n: u64) -> u64 {
    n.wrapping_mul(2).wrapping_sub(u64::from(n.count_ones()))
}

/// The inverse of [`stored_hash_index`]: the `(level, n)` stored at `index`.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // The leaf stored at or before `index` is in [index/2, index/2 + log2(index)], because
    // leaf_index(n) is 2n minus at most 64.
    let mut n = index / 2;
    let mut index_n = leaf_index(n);
    // Leaf n (stored at index_n) is followed by trailing_ones(n) subtree hashes, so leaf n + 1
    // is at index_n + 1 + trailing_ones(n).
    while let Some(next) = index_n
        .checked_add(1)
        .and_then(|x| x.checked_add(u64::from(n.trailing_ones())))
    {
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    // The hash at `index` was appended with leaf n: it is (level, n >> level).
    let level = index - index_n;
    let level = u32::try_from(level).unwrap_or(u32::MAX);
    (level, n.checked_shr(level).unwrap_or(0))
}

/// Number of hashes stored for a tree of `n` leaves, i.e. the storage index the hashes of leaf
/// `n` will start at.
pub fn stored_hash_count(n: u64) -> u64 {
    // Leaf n - 1 and the trailing_ones(n - 1) subtrees it completes end right before leaf n.
    leaf_index(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_indexes_follow_the_append_order() {
        let expected: [(u32, u64); 12] = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
            (0, 5),
            (1, 2),
            (0, 6),
            (0, 7),
        ];
        for (index, &(level, n)) in expected.iter().enumerate() {
            assert_eq!(stored_hash_index(level, n), index as u64, "({level}, {n})");
            assert_eq!(split_stored_hash_index(index as u64), (level, n));
        }
        assert_eq!(stored_hash_index(1, 3), 12);
        assert_eq!(stored_hash_index(2, 1), 13);
        assert_eq!(stored_hash_index(3, 0), 14);
    }

    #[test]
    fn split_inverts_index_for_many_values() {
        for index in 0..10_000u64 {
            let (level, n) = split_stored_hash_index(index);
            assert_eq!(stored_hash_index(level, n), index);
        }
    }

    #[test]
    fn count_is_index_of_next_leaf() {
        // Leaf i appends itself and the trailing_ones(i) subtrees it completes.
        let mut total = 0u64;
        for n in 0..5_000u64 {
            assert_eq!(stored_hash_count(n), total, "n = {n}");
            assert_eq!(stored_hash_index(0, n), total, "n = {n}");
            total += 1 + u64::from(n.trailing_ones());
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        for index in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1] {
            let _ = split_stored_hash_index(index);
        }
        let _ = stored_hash_index(u32::MAX, u64::MAX);
        let _ = stored_hash_index(63, 1);
        let _ = stored_hash_count(u64::MAX);
        let big = super::super::MAX_TREE_SIZE - 1;
        assert_eq!(split_stored_hash_index(stored_hash_index(0, big)), (0, big));
        assert_eq!(split_stored_hash_index(stored_hash_index(62, 0)), (62, 0));
    }
}
