//! Times `RootBuilder` recomputing the root of a 1,000,000-leaf tree, as `warden audit verify`
//! does offline, and prints the rate.
//!
//! ```text
//! cargo run --release -p warden-ledger --example root_speed [LEAVES]
//! ```

use std::time::Instant;

use warden_ledger::hash::leaf_hash;
use warden_ledger::tree::RootBuilder;

fn main() {
    let leaves: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);

    // Synthetic 256-byte entries, roughly the size of a canonical event.
    let entry = |i: u64| {
        let mut e = [0u8; 256];
        e[..8].copy_from_slice(&i.to_le_bytes());
        e
    };

    let start = Instant::now();
    let hashes: Vec<_> = (0..leaves).map(|i| leaf_hash(&entry(i))).collect();
    let leaf_time = start.elapsed();

    let start = Instant::now();
    let mut builder = RootBuilder::new();
    for h in &hashes {
        builder.push(*h);
    }
    let root = builder.root();
    let build_time = start.elapsed();

    let rate = |d: std::time::Duration| leaves as f64 / d.as_secs_f64();
    println!("leaves:                     {leaves}");
    println!("root:                       {root}");
    println!(
        "RootBuilder (leaf hashes):  {:>8.1} ms  {:>12.0} leaves/s",
        build_time.as_secs_f64() * 1e3,
        rate(build_time)
    );
    println!(
        "leaf hashing (256 B each):  {:>8.1} ms  {:>12.0} leaves/s",
        leaf_time.as_secs_f64() * 1e3,
        rate(leaf_time)
    );
    let total = build_time + leaf_time;
    println!(
        "both:                       {:>8.1} ms  {:>12.0} leaves/s",
        total.as_secs_f64() * 1e3,
        rate(total)
    );
}
