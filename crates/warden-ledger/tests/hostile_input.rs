//! Parsers and checkers get hostile input: they must return errors, never panic, and a mutated
//! signed note must never open to a different text.

use proptest::prelude::*;
use warden_ledger::hash::{leaf_hash, Hash};
use warden_ledger::note::{self, Signer, Verifier};
use warden_ledger::tree::{check_record, check_tree};
use warden_ledger::{Checkpoint, ConsistencyProof, InclusionProof};

fn signer() -> Signer {
    Signer::from_seed("warden.example/ledger", [0u8; 32]).unwrap()
}

fn signed_checkpoint() -> String {
    Checkpoint::new("warden.example/ledger", 3, leaf_hash(b"root"))
        .sign(&signer())
        .unwrap()
}

fn hash_strategy() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

/// Strings built from the characters that matter to the parsers.
fn note_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\n".to_owned()),
            Just("\n\n".to_owned()),
            Just("\u{2014} ".to_owned()),
            Just("warden.example/ledger".to_owned()),
            Just(" ".to_owned()),
            Just("+".to_owned()),
            Just("=".to_owned()),
            Just("\r".to_owned()),
            "[A-Za-z0-9/+=]{0,100}",
            any::<String>(),
        ],
        0..20,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn open_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = note::open(&bytes, &[signer().verifier()]);
        let _ = Checkpoint::open(&bytes, &signer().verifier());
    }

    #[test]
    fn parsers_never_panic_on_note_like_text(s in note_like()) {
        let _ = note::open(&s, &[signer().verifier()]);
        let _ = Checkpoint::parse_body(&s);
        let _ = Verifier::parse(&s);
        let _ = Signer::parse(&s);
        let _ = s.parse::<Hash>();
        let _ = serde_json::from_str::<InclusionProof>(&s);
    }

    #[test]
    fn mutated_notes_never_open_to_other_text(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let original = signed_checkpoint();
        let mut bytes = original.clone().into_bytes();
        for (pos, b) in edits {
            let i = pos % bytes.len();
            bytes[i] = b;
        }
        if let Ok(opened) = note::open(&bytes, &[signer().verifier()]) {
            prop_assert_eq!(opened.text, Checkpoint::open(&original, &signer().verifier()).unwrap().to_body());
        }
    }

    #[test]
    fn truncated_notes_never_open(cut in 0usize..200) {
        let original = signed_checkpoint();
        let cut = cut % original.len();
        if original.is_char_boundary(cut) {
            prop_assert!(note::open(&original[..cut], &[signer().verifier()]).is_err());
        }
    }

    #[test]
    fn checks_never_panic(
        t in any::<u64>(),
        n in any::<u64>(),
        len in 0usize..80,
        a in hash_strategy(),
        b in hash_strategy(),
    ) {
        let proof = vec![a; len];
        let _ = check_record(&proof, t, &a, n, &b);
        let _ = check_tree(&proof, t, &a, n, &b);
        let _ = InclusionProof { leaf_index: n, tree_size: t, hashes: proof.clone() }.verify(&a, &b);
        let _ = ConsistencyProof { old_size: n, new_size: t, hashes: proof }.verify(&a, &b);
    }

    #[test]
    fn small_random_proofs_do_not_verify(
        t in 1u64..1000,
        n_seed in any::<u64>(),
        hashes in proptest::collection::vec(hash_strategy(), 0..12),
        root in hash_strategy(),
        leaf in hash_strategy(),
    ) {
        prop_assert!(check_record(&hashes, t, &root, n_seed % t, &leaf).is_err());
        let n = n_seed % t;
        if n > 0 {
            prop_assert!(check_tree(&hashes, t, &root, n, &leaf).is_err());
        }
    }
}
