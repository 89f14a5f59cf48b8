//! Times [`Audit`] verifying a 1,000,000-entry ledger held in memory, as `warden audit verify`
//! does (minus reading the entries from a file or database), and prints the rate.
//!
//! Each entry is a synthetic canonical event body of about 300 bytes with its recorded leaf
//! hash; a checkpoint is signed every 10,000 entries and at the end. The timed part is
//! everything the audit does: opening every checkpoint note (Ed25519), hashing every body,
//! comparing it with the recorded leaf hash, reading and checking its `seq`, recomputing the
//! root and comparing it at each checkpoint.
//!
//! ```text
//! cargo run --release -p warden-ledger --example verify_speed [ENTRIES]
//! ```

use std::time::Instant;

use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::hash::leaf_hash;
use warden_ledger::note::Signer;
use warden_ledger::tree::RootBuilder;
use warden_ledger::verify::{entry_seq, Audit};

fn body(i: u64) -> String {
    if i % 2 == 1 {
        format!(
            r#"{{"event_id":"01930a4c-7e2b-7c1d-9a4e-{:012x}","seq":{i},"time":"2026-11-27T08:{:02}:{:02}.{:06}Z","status":"ok","error":null,"rows":{},"bytes":{},"duration_ms":{},"target":"warehouse","detail":{{"statement":"select * from invoices where id = $1","region":"eu-west-1"}}}}"#,
            i - 1,
            i / 60 % 60,
            i % 60,
            i % 1_000_000,
            i % 500,
            i * 37 % 100_000,
            i % 2000
        )
    } else {
        format!(
            r#"{{"id":"01930a4c-7e2b-7c1d-9a4e-{i:012x}","seq":{i},"time":"2026-11-27T08:{:02}:{:02}.{:06}Z","actor":{{"kind":"service","account":"billing-etl","key_id":"k7f3a9c2e","auth":"api_key"}},"source":{{"ip":"10.1.2.3","user_agent":"etl/2.1"}},"action":{{"category":"sql","verb":"select","resource":"warehouse/invoices","detail":null}},"decision":{{"allowed":true,"rule":"etl-read"}}}}"#,
            i / 60 % 60,
            i % 60,
            i % 1_000_000
        )
    }
}

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let every = 10_000;

    let setup = Instant::now();
    let signer = Signer::from_seed("warden.example/ledger", [7u8; 32]).expect("key");
    let mut bodies = Vec::with_capacity(entries as usize);
    let mut leaves = Vec::with_capacity(entries as usize);
    let mut notes = Vec::new();
    let mut tree = RootBuilder::new();
    for i in 0..entries {
        let b = body(i).into_bytes();
        let leaf = leaf_hash(&b);
        tree.push(leaf);
        bodies.push(b);
        leaves.push(leaf);
        if tree.size() % every == 0 || tree.size() == entries {
            let cp = Checkpoint::new(signer.name(), tree.size(), tree.root());
            notes.push(cp.sign(&signer).expect("sign"));
        }
    }
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "setup:       {} entries, {:.0} bytes each on average, {} checkpoints ({:.1} s)",
        entries,
        bytes as f64 / entries.max(1) as f64,
        notes.len(),
        setup.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let mut audit = Audit::new(&signer.verifier(), &notes, Vec::<String>::new());
    let opened = start.elapsed();
    for (i, (b, leaf)) in bodies.iter().zip(&leaves).enumerate() {
        audit.push(i as u64, b, Some(*leaf));
    }
    let verified = audit.finish().expect("the synthetic ledger verifies");
    let total = start.elapsed();

    assert_eq!(verified.root, tree.root());
    println!(
        "verified:    {} entries, {} checkpoints, root {}",
        verified.entries, verified.checkpoints, verified.root
    );
    println!(
        "checkpoints: {:>8.1} ms opening {} signed notes",
        opened.as_secs_f64() * 1e3,
        notes.len()
    );
    println!(
        "total:       {:>8.1} ms  {:>10.0} entries/s  {:>6.0} MB/s of bodies",
        total.as_secs_f64() * 1e3,
        entries as f64 / total.as_secs_f64(),
        bytes as f64 / total.as_secs_f64() / 1e6
    );

    // Where the time goes: each part on its own.
    let t = Instant::now();
    let mut sum = 0u64;
    for b in &bodies {
        sum = sum.wrapping_add(entry_seq(b).expect("seq"));
    }
    let seq_time = t.elapsed();
    let t = Instant::now();
    let mut acc = 0u8;
    for b in &bodies {
        acc ^= leaf_hash(b).0[0];
    }
    let hash_time = t.elapsed();
    let t = Instant::now();
    let mut rebuilt = RootBuilder::new();
    for leaf in &leaves {
        rebuilt.push(*leaf);
    }
    let tree_time = t.elapsed();
    println!(
        "parts:       {:>8.1} ms leaf hashing, {:.1} ms tree, {:.1} ms reading seq ({})",
        hash_time.as_secs_f64() * 1e3,
        tree_time.as_secs_f64() * 1e3,
        seq_time.as_secs_f64() * 1e3,
        u64::from(acc) ^ sum ^ rebuilt.size()
    );
}
