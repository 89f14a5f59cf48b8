//! The worked example of `docs/LEDGER.md`, recomputed: every value printed here must appear
//! verbatim in the document, so the document cannot drift from the code.
//!
//! Print the values with `cargo test -p warden-ledger --test worked_example -- --nocapture`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use warden_ledger::hash::{leaf_hash, node_hash};
use warden_ledger::tree::{prove_record, prove_tree, tree_hash, MemoryHashStore};
use warden_ledger::{note, Checkpoint, ConsistencyProof, InclusionProof, Signer};

const DOC: &str = include_str!("../../../docs/LEDGER.md");

#[test]
fn worked_example_values_are_in_ledger_md() {
    let mut values: Vec<(&str, String)> = Vec::new();

    let entries: [&[u8]; 3] = [b"a", b"b", b"c"];
    let mut store = MemoryHashStore::new();
    for e in entries {
        store.append(leaf_hash(e)).unwrap();
    }
    let l: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    let n01 = node_hash(&l[0], &l[1]);
    let root = tree_hash(3, &store).unwrap();
    assert_eq!(root, node_hash(&n01, &l[2]));
    assert_eq!(store.hashes(), &[l[0], l[1], n01, l[2]]);
    values.push(("leaf 0", l[0].to_string()));
    values.push(("leaf 1", l[1].to_string()));
    values.push(("leaf 2", l[2].to_string()));
    values.push(("node (1,0)", n01.to_string()));
    values.push(("root 3", root.to_string()));
    values.push(("root 3 base64", BASE64.encode(root.as_bytes())));

    let inclusion = prove_record(3, 1, &store).unwrap();
    assert_eq!(inclusion, vec![l[0], l[2]]);
    let consistency = prove_tree(3, 2, &store).unwrap();
    assert_eq!(consistency, vec![l[2]]);
    let inclusion_json = InclusionProof::prove(1, 3, &store).unwrap();
    values.push((
        "inclusion proof JSON",
        serde_json::to_string_pretty(&inclusion_json).unwrap(),
    ));
    let consistency_json = ConsistencyProof::prove(2, 3, &store).unwrap();
    values.push((
        "consistency proof JSON",
        serde_json::to_string_pretty(&consistency_json).unwrap(),
    ));

    let signer = Signer::from_seed("warden.example/ledger", [0u8; 32]).unwrap();
    let verifier = signer.verifier();
    values.push(("public key", hex::encode(verifier.public_key())));
    values.push(("key id", format!("{:08x}", signer.key_id())));
    values.push(("verifier key", verifier.to_string()));
    values.push(("signer key", signer.to_key_string()));

    let checkpoint = Checkpoint::new("warden.example/ledger", 3, root);
    let signed = checkpoint.sign(&signer).unwrap();
    assert_eq!(Checkpoint::open(&signed, &verifier).unwrap(), checkpoint);
    let sig_line = signed.lines().last().unwrap().to_owned();
    let sig_b64 = sig_line.rsplit_once(' ').unwrap().1.to_owned();
    let sig_raw = BASE64.decode(&sig_b64).unwrap();
    values.push(("signature (hex)", hex::encode(&sig_raw[4..])));
    values.push(("signed checkpoint", signed.clone()));
    // The same note must open via the generic note API too.
    assert_eq!(
        note::open(&signed, &[verifier]).unwrap().text,
        checkpoint.to_body()
    );

    let mut missing = Vec::new();
    for (what, value) in &values {
        println!("{what}:\n{value}\n");
        if !DOC.contains(value.as_str()) {
            missing.push(*what);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/LEDGER.md lacks the current values of: {missing:?}"
    );
}
