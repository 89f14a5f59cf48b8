//! Ledger throughput and latency, through the real writer and the real stores.
//!
//! - sustained events/s with 64 concurrent producers (group commit), on SQLite and PostgreSQL;
//! - single-producer latency from submit to durable acknowledgement (p50, p99);
//!
//! Run: `cargo bench -p warden-ledger --bench ledger_throughput` (env: `EVENTS`, default
//! 1,000,000; `PRODUCERS`, default 64; `IN_FLIGHT` events per producer, default 1; `BACKENDS`,
//! default `sqlite,postgres`; `WARDEN_TEST_PG`).
//! PostgreSQL gets a scratch database that is dropped afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use warden_core::event::{
    Action, Actor, ActorKind, AuthMethod, Category, Decision, Event, Outcome, Source,
};
use warden_core::{Clock, SystemClock};
use warden_ledger::{LedgerWriter, Signer, WriterConfig};
use warden_store::{PostgresStore, SqliteStore, Store};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic event: a service account's authenticated request, about 600 bytes canonical.
fn event(clock: &dyn Clock, i: u64) -> Event {
    let mut e = Event::new(
        clock.now(),
        Actor {
            kind: ActorKind::Service,
            account: Some(format!("svc-{}", i % 1000)),
            key_id: Some("abcdefghijkl".into()),
            auth: AuthMethod::ApiKey,
        },
        Source {
            ip: Some("10.1.2.3".into()),
            port: Some(54321),
            user_agent: Some("bench/1.0".into()),
        },
        Action {
            category: Category::Auth,
            verb: "whoami".into(),
            resource: None,
            detail: None,
        },
        Decision::allow("valid credential"),
    );
    e.outcome = Some(Outcome {
        status: "ok".into(),
        ..Outcome::default()
    });
    e
}

fn writer(store: Arc<dyn Store>) -> LedgerWriter {
    LedgerWriter::start(
        store,
        Arc::new(SystemClock),
        WriterConfig {
            max_batch: 4096,
            write_timeout: Duration::from_secs(60),
            signer: Signer::generate("bench").expect("signer"),
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_dir: None,
        },
    )
}

async fn throughput(
    name: &str,
    store: Arc<dyn Store>,
    events: u64,
    producers: u64,
    in_flight: usize,
) {
    let w = writer(store.clone());
    let clock = SystemClock;
    // Warm up: first batch loads the tree.
    w.record(event(&clock, 0)).await.expect("warm-up");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let clock = SystemClock;
            let mut pending: tokio::task::JoinSet<Result<(), warden_ledger::LedgerError>> =
                tokio::task::JoinSet::new();
            for i in 0..events / producers {
                if pending.len() >= in_flight {
                    pending
                        .join_next()
                        .await
                        .expect("pending")
                        .expect("join")
                        .expect("record");
                }
                let (w, e) = (w.clone(), event(&clock, p * 1_000_000 + i));
                pending.spawn(async move { w.record(e).await.map(|_| ()) });
            }
            while let Some(r) = pending.join_next().await {
                r.expect("join").expect("record");
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let elapsed = started.elapsed();
    let n = events / producers * producers;
    println!(
        "{name:<9} {producers:>3} producers x {in_flight} in flight: {n} events in {:.2} s = {:>9.0} events/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );

    let mut latencies = Vec::with_capacity(5000);
    for i in 0..5000 {
        let t = Instant::now();
        w.record(event(&clock, i)).await.expect("record");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<9}   1 producer : submit→durable ack p50 {:>7.0} µs, p99 {:>7.0} µs",
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6
    );
    let last = store.last_seq().await.expect("last seq").unwrap_or(0);
    assert_eq!(last, n + 5000, "every acknowledged event is stored");
}

#[tokio::main]
async fn main() {
    let events: u64 = env_or("EVENTS", 1_000_000);
    let producers: u64 = env_or("PRODUCERS", 64);
    // Events each producer keeps in flight: 1 is a front door whose requests each wait for
    // their own acknowledgement; more models producers serving many requests at once.
    let in_flight: usize = env_or("IN_FLIGHT", 1);
    let backends: String = env_or("BACKENDS", "sqlite,postgres".to_owned());
    println!(
        "ledger throughput: {events} events, {producers} producers, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for backend in backends.split(',') {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = SqliteStore::open(&dir.path().join("bench.db"))
                    .await
                    .expect("sqlite");
                throughput("sqlite", Arc::new(store), events, producers, in_flight).await;
            }
            "postgres" => {
                let base = std::env::var("WARDEN_TEST_PG")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
                let name = format!("warden_bench_{}", std::process::id());
                let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), NoTls)
                    .await
                    .expect("postgres");
                tokio::spawn(conn);
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create db");
                {
                    let store = PostgresStore::connect(&format!("{base}/{name}"), 16)
                        .await
                        .expect("connect");
                    throughput("postgres", Arc::new(store), events, producers, in_flight).await;
                }
                admin
                    .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .await
                    .expect("drop db");
            }
            other => eprintln!("unknown backend {other}"),
        }
    }
}
