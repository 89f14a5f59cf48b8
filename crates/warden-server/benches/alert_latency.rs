//! Alert latency under load: how long from a suspicious event being durable on the ledger to its
//! alert arriving at a local webhook, while the ledger takes a steady background load.
//!
//! Everything is the real thing, wired as `warden serve` wires it: the SQLite store, the ledger
//! writer, the ledger follower and detection engine, the alert book with its durable outbox, the
//! webhook sink (HMAC-signed POST) and a local axum receiver. Background load: `RATE` events/s
//! (default 10,000) of ordinary service-account requests from 1,000 accounts, paced in 10 ms
//! ticks. Once a second a revoked key is presented (a `dead_credential`, which fires whatever
//! the baselines say); the latency is from that event's durable acknowledgement to the
//! receiver's handler seeing the alert. Target: under 1 s.
//!
//! Run: `cargo bench -p warden-server --bench alert_latency` (env: `RATE`, default 10000;
//! `SECONDS`, default 20).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use warden_core::event::{
    Action, Actor, ActorKind, AuthMethod, Category, Decision, Event, Outcome, Source, TargetRef,
};
use warden_core::{Clock, SystemClock};
use warden_detect::{DetectConfig, Engine};
use warden_ledger::{LedgerWriter, Signer, WriterConfig};
use warden_server::alerts::AlertBook;
use warden_server::detection::DetectionTask;
use warden_store::{SqliteStore, Store};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An ordinary request by one of 1,000 accounts, about 600 bytes canonical.
fn ordinary(clock: &dyn Clock, i: u64) -> Event {
    let mut e = Event::new(
        clock.now(),
        Actor {
            kind: ActorKind::Service,
            account: Some(format!("svc-{}", i % 1000)),
            key_id: Some(format!("key{:09}", i % 1000)),
            auth: AuthMethod::ApiKey,
        },
        Source {
            ip: Some(format!("10.1.{}.7", i % 4)),
            port: Some(40000),
            user_agent: Some("bench/1.0".into()),
        },
        Action {
            category: Category::Http,
            verb: "GET".into(),
            resource: Some(format!("/v1/orders/{}", i % 5000)),
            detail: None,
        },
        Decision::allow("grant"),
    );
    e.target = Some(TargetRef {
        kind: "http".into(),
        name: "orders".into(),
    });
    e.outcome = Some(Outcome {
        status: "200".into(),
        bytes_out: Some(512),
        ..Outcome::default()
    });
    e
}

/// A revoked key presented again: raises `dead_credential` with the key id as its subject.
fn revoked_key_used(clock: &dyn Clock, n: u64) -> Event {
    let mut e = Event::new(
        clock.now(),
        Actor {
            kind: ActorKind::Service,
            account: Some("svc-ex".into()),
            key_id: Some(format!("revoked{n:05}")),
            auth: AuthMethod::None,
        },
        Source {
            ip: Some("10.9.9.9".into()),
            ..Source::default()
        },
        Action {
            category: Category::Auth,
            verb: "http.authenticate".into(),
            resource: None,
            detail: Some(serde_json::json!({ "failure": "key_revoked" })),
        },
        Decision::deny("key is revoked"),
    );
    e.outcome = Some(Outcome {
        status: "401".into(),
        ..Outcome::default()
    });
    e
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A webhook receiver noting when each alert (by subject) arrived.
async fn receiver(arrivals: Arrivals) -> String {
    async fn hook(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
        let at = Instant::now();
        let payload: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let subject = payload["alert"]["subject"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        arrivals.lock().unwrap().insert(subject, at);
        "ok"
    }
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(arrivals);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

#[tokio::main]
async fn main() {
    let rate: u64 = env_or("RATE", 10_000);
    let seconds: u64 = env_or("SECONDS", 20);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("warden.db"))
            .await
            .unwrap(),
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ledger = LedgerWriter::start(
        store.clone(),
        clock.clone(),
        WriterConfig {
            max_batch: 4096,
            write_timeout: Duration::from_secs(30),
            signer: Signer::generate("bench").expect("signer"),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_dir: None,
        },
    );

    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone()).await;
    std::fs::write(
        dir.path().join("hook-secret"),
        "bench-webhook-secret-0123456789",
    )
    .unwrap();
    let sink: warden_sinks::SinkConfig = serde_json::from_value(serde_json::json!({
        "kind": "webhook", "name": "bench", "url": url,
        "secret_file": dir.path().join("hook-secret"),
    }))
    .unwrap();
    let warden_sinks::Built::Alerts(sink) = warden_sinks::build(&sink).unwrap() else {
        unreachable!("a webhook is an alert sink");
    };
    let book = Arc::new(
        AlertBook::open(
            store.clone(),
            ledger.clone(),
            clock.clone(),
            Duration::from_secs(3600),
            vec![sink],
        )
        .await
        .unwrap(),
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = book.spawn_workers(Duration::from_secs(5), stop.clone());
    let engine = Arc::new(std::sync::Mutex::new(
        Engine::new(DetectConfig::default()).unwrap(),
    ));
    let detection = tokio::spawn(
        DetectionTask {
            store: store.clone(),
            committed: ledger.committed(),
            clock: clock.clone(),
            history: Duration::from_secs(3600),
            engine: engine.clone(),
            book: book.clone(),
        }
        .run(stop.clone()),
    );

    // Background load, paced in 10 ms ticks; each tick's events are submitted concurrently and
    // the pacing does not wait for them to be durable (producers are independent requests).
    let per_tick = (rate / 100).max(1);
    let durable = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = {
        let (ledger, clock, mut stop) = (ledger.clone(), clock.clone(), stop.clone());
        let durable = durable.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0u64;
            let started = Instant::now();
            let mut in_flight = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                for _ in 0..per_tick {
                    let (ledger, e) = (ledger.clone(), ordinary(&*clock, i));
                    let durable = durable.clone();
                    i += 1;
                    in_flight.spawn(async move {
                        ledger.record(e).await.expect("record");
                        durable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
                while in_flight.try_join_next().is_some() {}
            }
            let elapsed = started.elapsed();
            while in_flight.join_next().await.is_some() {}
            (i, elapsed)
        })
    };

    // Once a second, a revoked key is presented; note when its event is durable.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut recorded: Vec<(String, Instant)> = Vec::new();
    for n in 0..seconds {
        let e = revoked_key_used(&*clock, n);
        let subject = e.actor.key_id.clone().unwrap();
        ledger.record(e).await.expect("record");
        recorded.push((subject, Instant::now()));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Give the last alerts time to arrive, then stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < recorded.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let (sent, elapsed) = load.await.unwrap();
    let durable = durable.load(std::sync::atomic::Ordering::Relaxed);
    let _ = detection.await;
    for w in workers {
        let _ = w.await;
    }

    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = recorded
        .iter()
        .filter_map(|(subject, at)| {
            arrivals
                .get(subject)
                .map(|arrived| arrived.duration_since(*at))
        })
        .collect();
    latencies.sort();
    let missing = recorded.len() - latencies.len();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "background load: {sent} events submitted in {:.1} s = {:.0} events/s (asked {rate}/s), {durable} durable",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    if latencies.is_empty() {
        println!("no alert arrived ({missing} raised)");
        return;
    }
    println!(
        "event durable -> alert at the webhook: {} alerts, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({missing} missing); target 1000 ms: max is {:.2}x the target",
        latencies.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64(),
    );
    let stats = engine.lock().unwrap().stats();
    println!(
        "detection: {} accounts, {:.1} MiB of baselines",
        stats.accounts,
        stats.approx_bytes as f64 / (1024.0 * 1024.0)
    );
}
