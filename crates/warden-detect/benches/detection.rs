//! Detection cost with many baselines in memory.
//!
//! Builds baselines for `ACCOUNTS` accounts (default 100000), each with three targets, four
//! actions and three source networks learned over eight days, then times `observe_event` over
//! `EVENTS` normal events (default 2000000) spread across the accounts. Events are generated in
//! batches outside the timed section; outcomes are fed untimed after each batch, as the ledger
//! would. Prints ns/event (mean, and p50/p99 over batches) and the engine's approximate memory.
//!
//! `cargo bench -p warden-detect --bench detection` (or with `ACCOUNTS=… EVENTS=…`).

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use uuid::Uuid;
use warden_core::event::{
    Action, Actor, ActorKind, AuthMethod, Category, Decision, Outcome, OutcomeRecord, Source,
    TargetRef,
};
use warden_core::{Event, Timestamp};
use warden_detect::{DetectConfig, Engine};

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3_600 * SECOND;
const DAY: i64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600 * SECOND;
/// Events per timed batch: small enough that a batch stays in cache, as an event the server has
/// just parsed would be.
const BATCH: usize = 256;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One normal event of account `a` at `t`: one of its targets, actions and networks.
fn normal_event(a: u64, t: i64, rng: &mut Rng, id: u128) -> Event {
    let account = format!("svc-{a:06}");
    let net = rng.below(3);
    let ip = format!(
        "10.{}.{}.{}",
        a % 256,
        (a / 256 + net * 61) % 256,
        1 + rng.below(250)
    );
    let (category, target, verb, resource, detail) = match rng.below(4) {
        0 => (
            Category::Http,
            format!("api-{}", a % 50),
            "GET".to_owned(),
            format!("/v1/orders/{}?expand=items", rng.below(1_000_000)),
            None,
        ),
        1 => (
            Category::Http,
            format!("api-{}", (a + 7) % 50),
            "POST".to_owned(),
            format!(
                "/v1/customers/{}/notes",
                Uuid::from_u128(u128::from(rng.next()))
            ),
            None,
        ),
        2 => {
            let table = format!("public.t{}", a % 30);
            (
                Category::Sql,
                format!("db-{}", a % 20),
                "SELECT".to_owned(),
                table.clone(),
                Some(json!({ "sql": "SELECT …", "class": "read", "tables": [table] })),
            )
        }
        _ => {
            let table = format!("public.log{}", a % 10);
            (
                Category::Sql,
                format!("db-{}", a % 20),
                "INSERT".to_owned(),
                table.clone(),
                Some(json!({ "sql": "INSERT …", "class": "write", "tables": [table] })),
            )
        }
    };
    Event {
        id: Uuid::from_u128(id),
        seq: None,
        time: Timestamp::from_micros(t),
        actor: Actor {
            kind: ActorKind::Service,
            key_id: Some(format!("wk_{account}")),
            account: Some(account),
            auth: AuthMethod::ApiKey,
        },
        source: Source {
            ip: Some(ip),
            port: Some(40_000),
            user_agent: None,
        },
        target: Some(TargetRef {
            kind: if category == Category::Http {
                "http"
            } else {
                "postgres"
            }
            .into(),
            name: target,
        }),
        action: Action {
            category,
            verb,
            resource: Some(resource),
            detail,
        },
        decision: Decision::allow("grant"),
        outcome: None,
        session_id: None,
    }
}

fn outcome_of(e: &Event, rng: &mut Rng) -> OutcomeRecord {
    OutcomeRecord {
        event_id: e.id,
        seq: None,
        time: e.time,
        outcome: Outcome {
            status: "200".into(),
            rows: Some(50 + rng.below(100)),
            bytes_out: Some(1_000 + rng.below(4_000)),
            ..Outcome::default()
        },
    }
}

fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let accounts = env("ACCOUNTS", 100_000) as u64;
    let events = env("EVENTS", 2_000_000);
    let mut engine = Engine::new(DetectConfig::default()).expect("default config is valid");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0u64;
    let mut id = 0u128;
    let rss_before = rss_bytes();

    // Learning: 48 events per account over eight days, in working hours.
    let started = Instant::now();
    let mut warm = 0usize;
    for a in 0..accounts {
        for i in 0..48i64 {
            let day = i / 6;
            let t = T0 + day * DAY + (8 + (i % 10)) * HOUR + rng.below(HOUR as u64) as i64;
            id += 1;
            let e = normal_event(a, t, &mut rng, id);
            seq += 1;
            black_box(engine.observe_event(&e, seq));
            seq += 1;
            black_box(engine.observe_outcome(&outcome_of(&e, &mut rng), seq));
            warm += 1;
        }
    }
    let warm_secs = started.elapsed().as_secs_f64();
    let stats = engine.stats();
    println!(
        "baselines: {} accounts from {warm} events in {warm_secs:.1}s; approx {:.1} MiB, {} bytes/account{}",
        stats.accounts,
        stats.approx_bytes as f64 / 1048576.0,
        stats.approx_bytes / stats.accounts.max(1),
        match (rss_before, rss_bytes()) {
            (Some(b), Some(a)) => format!(" (process RSS grew {:.1} MiB)", (a - b) as f64 / 1048576.0),
            _ => String::new(),
        }
    );

    // Measured: normal events on day nine from 08:00, 10 ms apart, across all accounts.
    let mut batch_ns: Vec<f64> = Vec::with_capacity(events / BATCH + 1);
    let mut total_ns = 0u128;
    let mut findings = 0usize;
    let mut t = T0 + 9 * DAY + 8 * HOUR;
    let mut done = 0;
    while done < events {
        let n = BATCH.min(events - done);
        let batch: Vec<Event> = (0..n)
            .map(|_| {
                t += 10_000;
                id += 1;
                normal_event(rng.below(accounts), t, &mut rng, id)
            })
            .collect();
        let first_seq = seq;
        let start = Instant::now();
        for (i, e) in batch.iter().enumerate() {
            findings += black_box(engine.observe_event(e, first_seq + i as u64 + 1)).len();
        }
        let elapsed = start.elapsed().as_nanos();
        seq += n as u64;
        total_ns += elapsed;
        batch_ns.push(elapsed as f64 / n as f64);
        for e in &batch {
            seq += 1;
            findings += engine.observe_outcome(&outcome_of(e, &mut rng), seq).len();
        }
        done += n;
    }
    batch_ns.sort_by(f64::total_cmp);
    let pct = |p: f64| batch_ns[((batch_ns.len() - 1) as f64 * p).round() as usize];
    let stats = engine.stats();
    println!(
        "observe_event: {events} events over {} accounts: mean {:.0} ns/event, batch p50 {:.0} ns, p99 {:.0} ns, max {:.0} ns ({BATCH}-event batches); {findings} findings",
        stats.accounts,
        total_ns as f64 / events as f64,
        pct(0.5),
        pct(0.99),
        batch_ns.last().copied().unwrap_or(0.0),
    );
    println!(
        "engine: approx {:.1} MiB, {} bytes/account, {} outcomes pending",
        stats.approx_bytes as f64 / 1048576.0,
        stats.approx_bytes / stats.accounts.max(1),
        stats.pending_outcomes
    );
}
