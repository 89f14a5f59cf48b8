//! Fuzzes the SCRAM-SHA-256 server with what a client controls: the input is split at its first
//! NUL into the client-first and client-final messages. The server nonce comes from a seeded
//! RNG, so the fuzzer can learn it from comparisons and reach the proof check; any panic is a
//! bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use warden_pgwire::{ScramServer, Verifier};

fuzz_target!(|data: &[u8]| {
    let (first, last) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let mut rng = StdRng::seed_from_u64(0);
    let Ok((server, _)) = ScramServer::start(first, b"salt", 1, &mut rng) else {
        return;
    };
    let candidates = [Verifier::derive(b"key", b"salt", 1)];
    let _ = server.finish(last, &candidates);
});
