//! What an append costs SQLite under different ledger table layouts, on the real `synchronous =
//! FULL` WAL configuration, with nothing else running: the experiment behind filling the account
//! index in bulk (docs/BENCHMARKS.md).
//!
//! Appends 400,000 entries (~560-byte bodies, 1,000 accounts, half events and half outcomes,
//! one tree row each) in batches of `BATCH` (default 556, what the ledger bench's writer sees),
//! 64 rows per `INSERT`, one transaction per batch, for each layout:
//! - `bare`: no secondary index;
//! - `time+outcome`: the time index on events and the event-id index on outcomes;
//! - `account+time+outcome`: plus an `(account, seq)` index on events, maintained per append;
//! - `bulk account+time+outcome`: the account index as a table filled every 8,192 positions.
//!
//! Run: `cargo run --release -p warden-store --example append_layouts` (env `BATCH`).

use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

const ENTRIES: i64 = 400_000;
const ROWS_PER_INSERT: i64 = 64;
const BULK_EVERY: i64 = 8192;

const TABLES: &str = "CREATE TABLE e (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, \
    kind TEXT NOT NULL, time BIGINT NOT NULL, account TEXT, category TEXT NOT NULL, \
    target TEXT, body TEXT NOT NULL, leaf_hash TEXT NOT NULL, pruned_at BIGINT); \
    CREATE TABLE tr (idx INTEGER PRIMARY KEY, hash TEXT NOT NULL);";
const TIME_OUTCOME: &str = "CREATE INDEX et ON e (time) WHERE kind = 'event'; \
    CREATE INDEX eo ON e (event_id) WHERE kind = 'outcome';";
const ACCOUNT: &str = "CREATE INDEX ea ON e (account, seq) WHERE kind = 'event';";
const BULK: &str = "CREATE TABLE acc (account TEXT NOT NULL, seq INTEGER NOT NULL, \
    PRIMARY KEY (account, seq)) WITHOUT ROWID;";

fn placeholders(rows: i64, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    vec![row; rows as usize].join(",")
}

fn run(name: &str, schema: &str, bulk: bool, batch: i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Connection::open(dir.path().join("ledger.db")).expect("open");
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("sync");
    c.execute_batch(schema).expect("schema");
    let body = "x".repeat(560);
    let started = Instant::now();
    let (mut seq, mut indexed) = (0i64, 0i64);
    while seq < ENTRIES {
        let tx = c.transaction().expect("tx");
        let end = (seq + batch).min(ENTRIES);
        while seq < end {
            let rows = ROWS_PER_INSERT.min(end - seq);
            let mut entries = Vec::with_capacity(rows as usize * 10);
            let mut tree = Vec::with_capacity(rows as usize * 2);
            for s in seq..seq + rows {
                let event = s % 2 == 0;
                entries.extend([
                    Value::Integer(s),
                    // Time-ordered, like the UUIDv7 event ids.
                    Value::Text(format!("0193{:028x}", s / 2)),
                    Value::Text(if event { "event" } else { "outcome" }.into()),
                    Value::Integer(1_700_000_000_000_000 + s * 10),
                    if event {
                        Value::Text(format!("svc-{}", s % 1000))
                    } else {
                        Value::Null
                    },
                    Value::Text("http".into()),
                    Value::Text("orders".into()),
                    Value::Text(body.clone()),
                    Value::Text("ab".repeat(32)),
                    Value::Null,
                ]);
                tree.extend([Value::Integer(s), Value::Text("cd".repeat(32))]);
            }
            tx.prepare_cached(&format!("INSERT INTO e VALUES {}", placeholders(rows, 10)))
                .and_then(|mut st| st.execute(params_from_iter(entries.iter())))
                .expect("insert entries");
            tx.prepare_cached(&format!("INSERT INTO tr VALUES {}", placeholders(rows, 2)))
                .and_then(|mut st| st.execute(params_from_iter(tree.iter())))
                .expect("insert tree");
            seq += rows;
        }
        if bulk && seq - indexed >= BULK_EVERY {
            tx.execute(
                "INSERT INTO acc SELECT account, seq FROM e \
                 WHERE seq >= ?1 AND seq < ?2 AND kind = 'event' AND account IS NOT NULL",
                [indexed, seq],
            )
            .expect("bulk index");
            indexed = seq;
        }
        tx.commit().expect("commit");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{name:<26} {:>8.0} entries/s  {:>5.1} µs per entry",
        ENTRIES as f64 / elapsed,
        elapsed * 1e6 / ENTRIES as f64
    );
}

fn main() {
    let batch: i64 = std::env::var("BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(556);
    println!("SQLite appends: {ENTRIES} entries in batches of {batch}, synchronous = FULL, WAL");
    run("bare", TABLES, false, batch);
    run(
        "time+outcome",
        &format!("{TABLES}{TIME_OUTCOME}"),
        false,
        batch,
    );
    run(
        "account+time+outcome",
        &format!("{TABLES}{TIME_OUTCOME}{ACCOUNT}"),
        false,
        batch,
    );
    run(
        "bulk account+time+outcome",
        &format!("{TABLES}{TIME_OUTCOME}{BULK}"),
        true,
        batch,
    );
}
