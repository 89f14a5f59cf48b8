//! Report generation at scale: 10,000 accounts (3 grants and 2 keys each) whose usage rollups
//! stand for 10,000,000 events over a 90-day window, analysed with `warden_access::analyze` and
//! rendered as HTML, JSON and CSV. The target is under 10 s for analysis plus all three formats.
//!
//! `cargo bench -p warden-report --bench report` (release build).

use std::collections::BTreeMap;
use std::time::Instant;

use warden_access::{analyze, Options, Population, UsageRecord};
use warden_core::{Account, AccountName, Email, Grant, KeyRecord, Rule, SecretDigest, Timestamp};
use warden_report::{CheckpointRef, DailyActivity, Format, ReportInput, ReportKind};

const ACCOUNTS: usize = 10_000;
const EVENTS: u64 = 10_000_000;
const DAY: i64 = 86_400_000_000;
const TARGET_SECONDS: f64 = 10.0;

fn main() {
    let now = Timestamp::parse("2027-06-01T12:00:00Z").unwrap();
    let ago = |days: i64| Timestamp::from_micros(now.as_micros() - days * DAY);
    let digest = SecretDigest::from_hex(&"ab".repeat(32)).unwrap();
    let started = Instant::now();
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    let mut grants = Vec::with_capacity(ACCOUNTS * 3);
    let mut keys = Vec::with_capacity(ACCOUNTS * 2);
    let mut usage = Vec::with_capacity(ACCOUNTS * 2);
    let per_account = EVENTS / ACCOUNTS as u64;
    for i in 0..ACCOUNTS {
        let name = format!("svc-{i:05}");
        let owner = if i % 50 == 0 {
            "nobody@example.com".to_owned()
        } else {
            format!("owner{}@acme.io", i % 700)
        };
        accounts.push(Account {
            name: AccountName::parse(&name).unwrap(),
            owner: Email::parse("owner", &owner).unwrap(),
            purpose: if i % 40 == 0 {
                "etl"
            } else {
                "Moves orders between systems nightly"
            }
            .into(),
            labels: BTreeMap::new(),
            created_by: "admin".into(),
            created_at: ago(400),
            expires_at: None,
            disabled_reason: None,
            last_used_at: (i % 10 != 0).then(|| ago(1)),
        });
        for (g, rule) in ["GET /v1/**", "POST /v1/exports", "GET /v1/orders/*"]
            .iter()
            .enumerate()
        {
            grants.push(Grant {
                id: format!("g_{i}_{g}"),
                account: name.clone(),
                target: "orders".into(),
                rule: Rule::parse_stored(rule).unwrap(),
                created_by: "admin".into(),
                created_at: ago(300),
                expires_at: None,
                last_used_at: None,
            });
        }
        for k in 0..2 {
            keys.push(KeyRecord {
                key_id: format!("k{i}x{k}"),
                account: AccountName::parse(&name).unwrap(),
                digest,
                created_by: "admin".into(),
                created_at: ago(if k == 0 { 200 } else { 20 }),
                expires_at: None,
                last_used_at: Some(ago(1)),
                revoked_at: None,
                superseded_by: None,
                scram: None,
            });
        }
        if i % 10 != 0 {
            // The store sums the daily rollups per account, grant and action over the window.
            for (g, action, share) in [(0, "GET /v1/orders/*", 3), (2, "GET /v1/orders/*", 1)] {
                usage.push(UsageRecord {
                    account: name.clone(),
                    target: "orders".into(),
                    grant_id: format!("g_{i}_{g}"),
                    action: action.into(),
                    count: per_account * share / 4 * 10 / 9,
                    first_at: ago(89),
                    last_at: ago(1),
                });
            }
        }
    }
    // The rounding remainder, so the rollups stand for exactly EVENTS events.
    let counted: u64 = usage.iter().map(|u| u.count).sum();
    if let Some(last) = usage.last_mut() {
        last.count += EVENTS - counted;
    }
    let total: u64 = usage.iter().map(|u| u.count).sum();
    println!(
        "population: {ACCOUNTS} accounts, {} grants, {} keys, {} usage rollups standing for {total} events (built in {:.2} s)",
        grants.len(),
        keys.len(),
        usage.len(),
        started.elapsed().as_secs_f64()
    );
    let activity: Vec<DailyActivity> = (0..90)
        .map(|d| DailyActivity {
            day: Timestamp::from_micros(ago(d).as_micros().div_euclid(DAY) * DAY),
            account: None,
            count: total / 90,
        })
        .collect();
    let population = Population {
        accounts: &accounts,
        keys: &keys,
        grants: &grants,
        usage: &usage,
    };

    let mut worst: f64 = 0.0;
    for kind in ReportKind::ALL {
        let started = Instant::now();
        let analysis = analyze(&population, now, &Options::default());
        let analysed = started.elapsed().as_secs_f64();
        let findings: usize = analysis.accounts.iter().map(|a| a.findings.len()).sum();
        let input = ReportInput {
            kind,
            analysis,
            checkpoint: Some(CheckpointRef {
                size: EVENTS * 2,
                root_hash: "ab".repeat(32),
                note: "warden.bench/ledger\n20000000\nq83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=\n\n— warden.bench/ledger AAAA\n".into(),
                signed_at: Some(now),
            }),
            activity: activity.clone(),
            review: None,
            generated_at: now,
            generated_by: "bench".into(),
        };
        let mut line = format!(
            "{:<16} analyze {analysed:.2} s ({findings} findings)",
            kind.as_str()
        );
        let mut total = analysed;
        for format in Format::ALL {
            let t = Instant::now();
            let body = format.render(&input);
            let s = t.elapsed().as_secs_f64();
            total += s;
            line.push_str(&format!(
                ", {} {s:.2} s ({:.1} MB)",
                format.as_str(),
                body.len() as f64 / 1e6
            ));
        }
        line.push_str(&format!(", total {total:.2} s"));
        println!("{line}");
        worst = worst.max(total);
    }
    println!(
        "worst kind: {worst:.2} s for analysis and all three formats (target < {TARGET_SECONDS} s): {}",
        if worst < TARGET_SECONDS { "ok" } else { "TOO SLOW" }
    );
}
