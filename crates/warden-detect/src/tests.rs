//! Scenario tests of the engine: each detector on its scenario, silence on normal traffic,
//! learning, disabling, custom rules, bounds, replay, and arbitrary input.

use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;
use warden_core::event::{
    Action, Actor, ActorKind, AuthMethod, Category, Decision, Outcome, OutcomeRecord, Source,
    TargetRef,
};
use warden_core::{Event, Severity, Timestamp};

use crate::{DetectConfig, Engine, Finding};

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2023-11-14T00:00:00Z.
const T0: i64 = 1_699_920_000 * SECOND;

/// One ledger entry.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // test data, built once
enum Entry {
    Event(Event),
    Outcome(OutcomeRecord),
}

fn service(account: &str) -> Actor {
    Actor {
        kind: ActorKind::Service,
        account: Some(account.into()),
        key_id: Some(format!("wk_{account}")),
        auth: AuthMethod::ApiKey,
    }
}

fn event(actor: Actor, ip: &str, t: i64, action: Action, allowed: bool) -> Event {
    let decision = if allowed {
        Decision::allow("grant")
    } else {
        Decision::deny("no grant")
    };
    let mut e = Event::new(
        Timestamp::from_micros(t),
        actor,
        Source {
            ip: Some(ip.into()),
            port: Some(40_000),
            user_agent: None,
        },
        action,
        decision,
    );
    e.id = next_id();
    e
}

fn next_id() -> Uuid {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn target(kind: &str, name: &str) -> Option<TargetRef> {
    Some(TargetRef {
        kind: kind.into(),
        name: name.into(),
    })
}

fn http(account: &str, tgt: &str, method: &str, path: &str, ip: &str, t: i64, ok: bool) -> Event {
    let action = Action {
        category: Category::Http,
        verb: method.into(),
        resource: Some(path.into()),
        detail: None,
    };
    let mut e = event(service(account), ip, t, action, ok);
    e.target = target("http", tgt);
    e
}

fn sql(account: &str, verb: &str, class: &str, tables: &[&str], t: i64, ok: bool) -> Event {
    let action = Action {
        category: Category::Sql,
        verb: verb.into(),
        resource: tables.first().map(|t| (*t).to_owned()),
        detail: Some(json!({ "sql": format!("{verb} …"), "class": class, "tables": tables })),
    };
    let mut e = event(service(account), &ip_of(account), t, action, ok);
    e.target = target("postgres", "warehouse");
    e
}

fn auth_failure(
    account: Option<&str>,
    key: Option<&str>,
    ip: &str,
    failure: &str,
    t: i64,
) -> Event {
    let actor = Actor {
        kind: ActorKind::Service,
        account: account.map(Into::into),
        key_id: key.map(Into::into),
        auth: AuthMethod::None,
    };
    let action = Action {
        category: Category::Auth,
        verb: "http.authenticate".into(),
        resource: None,
        detail: Some(json!({ "failure": failure })),
    };
    event(actor, ip, t, action, false)
}

fn outcome(of: &Event, t: i64, rows: Option<u64>, bytes: Option<u64>) -> OutcomeRecord {
    OutcomeRecord {
        event_id: of.id,
        seq: None,
        time: Timestamp::from_micros(t),
        outcome: Outcome {
            status: "200".into(),
            rows,
            bytes_out: bytes,
            ..Outcome::default()
        },
    }
}

/// The account's usual address, in its own /24.
fn ip_of(account: &str) -> String {
    let n = account
        .bytes()
        .fold(7u8, |h, b| h.wrapping_mul(31).wrapping_add(b));
    format!("10.20.{n}.{}", 10 + n % 200)
}

/// A day of normal work: in each hour 08–17 UTC, three busy minutes of five HTTP calls and a
/// SQL read each, with their outcomes.
fn normal_day(account: &str, day: i64) -> Vec<Entry> {
    let mut out = Vec::new();
    let ip = ip_of(account);
    for hour in 8..18 {
        for minute in 0..3 {
            let start = T0 + day * DAY + hour * HOUR + minute * MINUTE;
            for i in 0..5 {
                let t = start + i * 7 * SECOND;
                let id = (day * 1000 + hour * 10 + i) * 7919 % 100_000;
                let e = http(
                    account,
                    "orders-api",
                    "GET",
                    &format!("/v1/orders/{id}?x=1"),
                    &ip,
                    t,
                    true,
                );
                out.push(Entry::Outcome(outcome(
                    &e,
                    t + 1000,
                    None,
                    Some(2_000 + (id as u64 % 500)),
                )));
                out.insert(out.len() - 1, Entry::Event(e));
            }
            let e = sql(
                account,
                "SELECT",
                "read",
                &["public.orders"],
                start + 40 * SECOND,
                true,
            );
            out.push(Entry::Outcome(outcome(
                &e,
                start + 41 * SECOND,
                Some(90 + (hour as u64 % 20)),
                None,
            )));
            out.insert(out.len() - 1, Entry::Event(e));
        }
    }
    out
}

/// Feeds entries with consecutive sequence numbers from `*seq`, returning every finding.
fn feed(engine: &mut Engine, entries: &[Entry], seq: &mut u64) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in entries {
        *seq += 1;
        findings.extend(match entry {
            Entry::Event(e) => engine.observe_event(e, *seq),
            Entry::Outcome(o) => engine.observe_outcome(o, *seq),
        });
    }
    findings
}

/// An engine with `account` trained on `days` normal days.
fn trained(config: DetectConfig, account: &str, days: i64) -> (Engine, u64) {
    let mut engine = Engine::new(config).unwrap();
    let mut seq = 0;
    for day in 0..days {
        let f = feed(&mut engine, &normal_day(account, day), &mut seq);
        assert!(f.is_empty(), "normal day {day} raised {f:#?}");
    }
    (engine, seq)
}

fn observe(engine: &mut Engine, e: &Event) -> Vec<Finding> {
    engine.observe_event(e, 1_000_000)
}

fn detectors(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.detector.as_str()).collect()
}

/// Day 10 at 09:30 UTC, a usual time.
const LATER: i64 = T0 + 10 * DAY + 9 * HOUR + 30 * MINUTE;

#[test]
fn engine_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn many_stable_accounts_raise_nothing() {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    let mut seq = 0;
    let accounts: Vec<String> = (0..30).map(|i| format!("svc-{i}")).collect();
    for day in 0..10 {
        for a in &accounts {
            let f = feed(&mut engine, &normal_day(a, day), &mut seq);
            assert!(f.is_empty(), "{a} day {day}: {f:#?}");
        }
    }
    let stats = engine.stats();
    assert_eq!(stats.accounts, 30);
    assert_eq!(stats.pending_outcomes, 0);
    assert!(stats.approx_bytes > 30 * 100);
}

#[test]
fn a_session_closing_is_not_the_accounts_doing() {
    // Sessions end however they end (idle timeout, a kill, Warden stopping), at any hour and
    // after any silence: the close says nothing about the account's behaviour.
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 8);
    let late = T0 + 60 * DAY + 3 * HOUR + 17 * MINUTE;
    let mut close = sql("etl", "session.close", "", &[], late, true);
    close.action.detail = Some(json!({ "statements": 12 }));
    close.outcome = Some(Outcome {
        status: "ok".into(),
        bytes_out: Some(1 << 40),
        ..Outcome::default()
    });
    assert_eq!(observe(&mut engine, &close), vec![]);
    let summary = engine.baseline("etl").unwrap();
    assert!(summary.last_seen < Timestamp::from_micros(late));
}

#[test]
fn novelty_detectors_fire_after_learning_with_their_subjects() {
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 8);
    let ip = ip_of("etl");
    let cases = [
        (
            http(
                "etl",
                "payments-api",
                "GET",
                "/v1/orders/5",
                &ip,
                LATER,
                true,
            ),
            "new_target",
            "payments-api",
            Severity::Medium,
        ),
        (
            http(
                "etl",
                "orders-api",
                "DELETE",
                "/v1/orders/5",
                &ip,
                LATER,
                true,
            ),
            "new_action",
            "DELETE /v1/orders/:id",
            Severity::Low,
        ),
        (
            http(
                "etl",
                "orders-api",
                "GET",
                "/v1/orders/5",
                "192.168.7.9",
                LATER,
                true,
            ),
            "new_source_network",
            "192.168.7.0/24",
            Severity::Medium,
        ),
        (
            http(
                "etl",
                "orders-api",
                "GET",
                "/v1/orders/5",
                &ip,
                T0 + 10 * DAY + 3 * HOUR,
                true,
            ),
            "unusual_hour",
            "03",
            Severity::Low,
        ),
    ];
    for (e, detector, subject, severity) in cases {
        let f = observe(&mut engine, &e);
        assert_eq!(detectors(&f), [detector], "{f:#?}");
        assert_eq!(f[0].subject, subject);
        assert_eq!(f[0].severity, severity);
        assert_eq!(f[0].account.as_deref(), Some("etl"));
        assert_eq!(f[0].seq, 1_000_000);
        assert_eq!(f[0].event_id, e.id);
        // Learned now: the same again is silent.
        let mut again = e.clone();
        again.id = next_id();
        assert!(observe(&mut engine, &again).is_empty());
    }
    let f = observe(
        &mut engine,
        &http("etl", "orders-api", "GET", "/x", "192.168.8.1", LATER, true),
    );
    assert_eq!(f[0].summary, "etl called from a new network 192.168.8.0/24");
}

#[test]
fn novelty_is_silent_during_learning_but_learns() {
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 3);
    let day3 = T0 + 3 * DAY + 9 * HOUR;
    let odd = http(
        "etl",
        "payments-api",
        "PUT",
        "/v9/x",
        "172.16.0.1",
        day3 + 14 * HOUR,
        true,
    );
    assert!(observe(&mut engine, &odd).is_empty());
    // After the learning period the same things are known.
    let mut again = odd.clone();
    again.id = next_id();
    again.time = Timestamp::from_micros(T0 + 9 * DAY + 23 * HOUR);
    assert!(observe(&mut engine, &again).is_empty());
    let summary = engine.baseline("etl").unwrap();
    assert_eq!(summary.targets, ["orders-api", "warehouse", "payments-api"]);
    assert!(summary.active_hours.contains(&23));
    assert_eq!(summary.networks.len(), 2);
    assert_eq!(summary.actions, 3);
    assert!(summary
        .action_sample
        .contains(&"read public.orders".to_owned()));
    assert!(summary.rate_per_window > 5.0 && summary.rate_per_window < 7.0);
    assert_eq!(
        summary.learning_until,
        Timestamp::from_micros(T0 + 8 * HOUR + 7 * DAY)
    );
    assert!(summary.saturated.is_empty());
    assert!(engine.baseline("nobody").is_none());
}

#[test]
fn rate_spike_fires_once_per_window_and_not_while_learning() {
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 8);
    let ip = ip_of("etl");
    let mut found = Vec::new();
    for i in 0..300 {
        let e = http(
            "etl",
            "orders-api",
            "GET",
            "/v1/orders/1",
            &ip,
            LATER + i * 100_000,
            true,
        );
        found.extend(observe(&mut engine, &e));
    }
    assert_eq!(detectors(&found), ["rate_spike"]);
    assert!(
        found[0].summary.contains("100 calls"),
        "{}",
        found[0].summary
    );

    let (mut young, _) = trained(DetectConfig::default(), "etl", 2);
    for i in 0..300 {
        let t = T0 + 2 * DAY + 9 * HOUR + i * 100_000;
        let e = http("etl", "orders-api", "GET", "/v1/orders/1", &ip, t, true);
        assert!(observe(&mut young, &e).is_empty());
    }
}

#[test]
fn denied_burst_needs_count_within_window() {
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 8);
    let ip = ip_of("etl");
    let denied = |t| http("etl", "orders-api", "GET", "/v1/orders/1", &ip, t, false);
    // Ten denials over ten minutes: no burst.
    for i in 0..10 {
        assert!(observe(&mut engine, &denied(LATER + i * MINUTE)).is_empty());
    }
    let mut found = Vec::new();
    for i in 0..10 {
        found.extend(observe(&mut engine, &denied(LATER + HOUR + i * SECOND)));
    }
    assert_eq!(detectors(&found), ["denied_burst"]);
    assert_eq!(found[0].severity, Severity::High);
    // Denied actions teach nothing: the route is still unknown when allowed.
    let f = observe(
        &mut engine,
        &http(
            "etl",
            "orders-api",
            "PATCH",
            "/v1/orders/2",
            &ip,
            LATER + 2 * HOUR,
            false,
        ),
    );
    assert!(f.is_empty());
    let f = observe(
        &mut engine,
        &http(
            "etl",
            "orders-api",
            "PATCH",
            "/v1/orders/2",
            &ip,
            LATER + 2 * HOUR,
            true,
        ),
    );
    assert_eq!(detectors(&f), ["new_action"]);
}

#[test]
fn auth_failure_burst_is_keyed_by_key_id_or_address() {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    let mut found = Vec::new();
    for i in 0..5 {
        let ip = format!("203.0.113.{i}");
        found.extend(observe(
            &mut engine,
            &auth_failure(None, Some("wk_abc"), &ip, "wrong_secret", T0 + i * SECOND),
        ));
    }
    assert_eq!(detectors(&found), ["auth_failure_burst"]);
    assert_eq!(found[0].subject, "wk_abc");
    assert_eq!(found[0].account, None);
    // Without key id: per address; four are not enough, the fifth is.
    for i in 0..4 {
        let e = auth_failure(None, None, "198.51.100.7", "missing", T0 + i * SECOND);
        assert!(observe(&mut engine, &e).is_empty());
    }
    // Warden's own failures do not count.
    let e = auth_failure(
        None,
        None,
        "198.51.100.7",
        "store_unavailable",
        T0 + 5 * SECOND,
    );
    assert!(observe(&mut engine, &e).is_empty());
    let e = auth_failure(None, None, "198.51.100.7", "malformed", T0 + 6 * SECOND);
    let f = observe(&mut engine, &e);
    assert_eq!(detectors(&f), ["auth_failure_burst"]);
    assert_eq!(f[0].subject, "198.51.100.7");
    // Failures build no baseline.
    assert_eq!(engine.stats().accounts, 0);
}

#[test]
fn auth_failure_keys_are_bounded() {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    for i in 0..crate::engine::MAX_AUTH_FAILURE_KEYS {
        let key = format!("wk_{i}");
        observe(
            &mut engine,
            &auth_failure(None, Some(&key), "192.0.2.1", "unknown_key", T0),
        );
    }
    // Full of live entries: a new key is not tracked for a window.
    let mut found = Vec::new();
    for i in 0..5 {
        let e = auth_failure(
            None,
            Some("wk_new"),
            "192.0.2.1",
            "unknown_key",
            T0 + SECOND + i,
        );
        found.extend(observe(&mut engine, &e));
    }
    assert!(found.is_empty());
    // A window later the idle entries make room.
    for i in 0..5 {
        let e = auth_failure(
            None,
            Some("wk_new"),
            "192.0.2.1",
            "unknown_key",
            T0 + 2 * MINUTE + i,
        );
        found.extend(observe(&mut engine, &e));
    }
    assert_eq!(detectors(&found), ["auth_failure_burst"]);
}

#[test]
fn dead_credential_fires_on_every_attempt() {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    for failure in [
        "key_revoked",
        "key_expired",
        "account_disabled",
        "account_expired",
        "token_refused",
    ] {
        for _ in 0..2 {
            let e = auth_failure(Some("etl"), Some("wk_old"), "10.0.0.1", failure, T0);
            let f = observe(&mut engine, &e);
            assert_eq!(f[0].detector, "dead_credential");
            assert_eq!(f[0].severity, Severity::Critical);
            assert_eq!(f[0].subject, "wk_old");
            assert_eq!(f[0].account.as_deref(), Some("etl"));
            assert!(f[0].summary.contains(failure));
        }
    }
    let e = auth_failure(Some("etl"), Some("wk_x"), "10.0.0.1", "wrong_secret", T0);
    assert!(observe(&mut engine, &e).is_empty());
}

#[test]
fn dormant_wakeup_needs_earlier_activity() {
    let (mut engine, _) = trained(DetectConfig::default(), "etl", 8);
    let ip = ip_of("etl");
    let back = T0 + 7 * DAY + 40 * DAY + 9 * HOUR;
    let f = observe(
        &mut engine,
        &http("etl", "orders-api", "GET", "/v1/orders/1", &ip, back, true),
    );
    assert_eq!(detectors(&f), ["dormant_wakeup"]);
    assert!(
        f[0].summary
            .starts_with("etl is active again after 1month 9days"),
        "{}",
        f[0].summary
    );
    assert!(f[0]
        .summary
        .ends_with("(last seen 2023-11-21T17:02:40.000000Z)"));
    // A brand-new account is not waking up.
    let f = observe(
        &mut engine,
        &http("new", "orders-api", "GET", "/", &ip, back, true),
    );
    assert!(f.is_empty());
}

#[test]
fn sensitive_actions_cover_ddl_admin_and_listed_tables() {
    let config = DetectConfig {
        sensitive_tables: vec!["public.users".into(), "hr.*".into()],
        ..DetectConfig::default()
    };
    let mut engine = Engine::new(config).unwrap();
    let cases: [(Event, &[&str]); 6] = [
        (
            sql("etl", "SELECT", "read", &["public.orders"], T0, true),
            &[],
        ),
        (sql("etl", "BEGIN", "tx", &[], T0, true), &[]),
        (
            sql("etl", "CREATE TABLE", "ddl", &["public.tmp"], T0, true),
            &["ddl CREATE TABLE"],
        ),
        (
            sql("etl", "GRANT", "admin", &[], T0, false),
            &["admin GRANT"],
        ),
        (
            sql("etl", "SELECT", "read", &["users", "HR.Salaries"], T0, true),
            &["public.users", "HR.Salaries"],
        ),
        (
            sql("etl", "DELETE", "write", &["hr.people"], T0, false),
            &["hr.people"],
        ),
    ];
    for (e, subjects) in cases {
        let f = observe(&mut engine, &e);
        assert!(f.iter().all(|f| f.detector == "sensitive_action"), "{f:#?}");
        let got: Vec<&str> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(got, subjects);
    }
    let f = observe(&mut engine, &sql("etl", "GRANT", "admin", &[], T0, false));
    assert_eq!(
        f[0].summary,
        "etl tried (denied) a privileged statement: GRANT"
    );
}

#[test]
fn large_result_links_outcomes_to_their_events() {
    let (mut engine, mut seq) = trained(DetectConfig::default(), "etl", 2);
    let read = sql("etl", "SELECT", "read", &["public.orders"], LATER, true);
    assert!(feed(&mut engine, &[Entry::Event(read.clone())], &mut seq).is_empty());
    assert_eq!(engine.stats().pending_outcomes, 1);
    let big = outcome(&read, LATER + SECOND, Some(2_000_000), None);
    let f = feed(&mut engine, &[Entry::Outcome(big.clone())], &mut seq);
    assert_eq!(detectors(&f), ["large_result"]);
    assert_eq!(f[0].subject, "read public.orders");
    assert_eq!(f[0].event_id, read.id);
    assert_eq!(f[0].seq, seq);
    assert_eq!(f[0].target.as_deref(), Some("warehouse"));
    assert_eq!(engine.stats().pending_outcomes, 0);
    // The same outcome again links to nothing.
    assert!(feed(&mut engine, &[Entry::Outcome(big)], &mut seq).is_empty());
    // Far above the mean but under the floor: nothing.
    let read = sql("etl", "SELECT", "read", &["public.orders"], LATER, true);
    let entries = [
        Entry::Event(read.clone()),
        Entry::Outcome(outcome(&read, LATER, Some(9_000), None)),
    ];
    assert!(feed(&mut engine, &entries, &mut seq).is_empty());
    // Inline outcome, bytes.
    let mut get = http(
        "etl",
        "orders-api",
        "GET",
        "/v1/orders/7",
        &ip_of("etl"),
        LATER,
        true,
    );
    get.outcome = Some(Outcome {
        status: "200".into(),
        bytes_out: Some(500 * 1024 * 1024),
        ..Outcome::default()
    });
    let f = observe(&mut engine, &get);
    assert_eq!(detectors(&f), ["large_result"]);
    assert_eq!(f[0].subject, "GET /v1/orders/:id");
    assert!(f[0].summary.contains("bytes"), "{}", f[0].summary);
}

#[test]
fn pending_outcomes_are_bounded() {
    let config = DetectConfig {
        max_pending_outcomes: 3,
        ..DetectConfig::default()
    };
    let mut engine = Engine::new(config).unwrap();
    let events: Vec<Event> = (0..5)
        .map(|i| sql("etl", "SELECT", "read", &["public.orders"], T0 + i, true))
        .collect();
    for e in &events {
        observe(&mut engine, e);
    }
    assert_eq!(engine.stats().pending_outcomes, 3);
}

#[test]
fn detectors_can_be_disabled_globally_and_per_account() {
    let config: DetectConfig = serde_json::from_value(json!({
        "disabled": ["new_target"],
        "accounts": { "etl": ["new_source_network"] },
    }))
    .unwrap();
    let mut engine = Engine::new(config).unwrap();
    let mut seq = 0;
    for day in 0..8 {
        feed(&mut engine, &normal_day("etl", day), &mut seq);
        feed(&mut engine, &normal_day("web", day), &mut seq);
    }
    for account in ["etl", "web"] {
        let e = http(
            account,
            "new-api",
            "GET",
            "/v1/orders/1",
            "192.0.2.1",
            LATER,
            true,
        );
        let f = observe(&mut engine, &e);
        let expected: &[&str] = if account == "etl" {
            &[]
        } else {
            &["new_source_network"]
        };
        assert_eq!(detectors(&f), expected, "{account}");
    }
}

#[test]
fn custom_rules_count_within_their_window() {
    let config: DetectConfig = serde_json::from_value(json!({
        "rules": [{
            "name": "bulk-deletes",
            "severity": "critical",
            "description": "many deletes",
            "match": { "category": "http", "verb": "delete", "decision": "allow", "resource": "/v1/orders/*" },
            "threshold": 3,
            "window": "1m",
        }, {
            "name": "any-admin-sql",
            "match": { "class": "admin" },
        }],
        "disabled": ["new_action", "new_target", "new_source_network", "unusual_hour", "sensitive_action"],
    }))
    .unwrap();
    let mut engine = Engine::new(config).unwrap();
    let del = |account: &str, path: &str, t: i64, ok: bool| {
        http(account, "orders-api", "DELETE", path, "10.0.0.1", t, ok)
    };
    // Spread over three minutes: never three within one.
    for i in 0..3 {
        assert!(observe(
            &mut engine,
            &del("etl", "/v1/orders/1", T0 + i * 61 * SECOND, true)
        )
        .is_empty());
    }
    // Denied ones and other paths do not count.
    let t = T0 + HOUR;
    assert!(observe(&mut engine, &del("etl", "/v1/orders/1", t, false)).is_empty());
    assert!(observe(&mut engine, &del("etl", "/v1/orders/1/items/2", t, true)).is_empty());
    assert!(observe(&mut engine, &del("etl", "/v1/orders/1", t, true)).is_empty());
    // Another account has its own count.
    assert!(observe(&mut engine, &del("web", "/v1/orders/1", t, true)).is_empty());
    assert!(observe(&mut engine, &del("etl", "/v1/orders/2", t + SECOND, true)).is_empty());
    let f = observe(
        &mut engine,
        &del("etl", "/v1/orders/3", t + 2 * SECOND, true),
    );
    assert_eq!(detectors(&f), ["rule:bulk-deletes"]);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].subject, "bulk-deletes");
    assert_eq!(
        f[0].summary,
        "etl matched rule bulk-deletes 3 times within 1m: many deletes"
    );
    // Threshold 1 fires on each match.
    let f = observe(
        &mut engine,
        &sql("etl", "ALTER ROLE", "admin", &[], t, true),
    );
    assert_eq!(detectors(&f), ["rule:any-admin-sql"]);
    assert_eq!(f[0].severity, Severity::Medium);
}

#[test]
fn bounds_stop_learning_and_reporting() {
    let config = DetectConfig {
        max_networks: 2,
        max_targets: 1,
        max_actions: 2,
        ..DetectConfig::default()
    };
    let (mut engine, _) = trained(config, "etl", 8);
    let f = observe(
        &mut engine,
        &http(
            "etl",
            "orders-api",
            "GET",
            "/v1/orders/1",
            "192.0.2.1",
            LATER,
            true,
        ),
    );
    assert_eq!(detectors(&f), ["new_source_network"]);
    for (i, ip) in ["198.51.100.1", "203.0.113.1"].into_iter().enumerate() {
        let path = format!("/v{i}/other");
        let e = http("etl", "billing-api", "POST", &path, ip, LATER, true);
        assert!(observe(&mut engine, &e).is_empty(), "{ip}");
    }
    let summary = engine.baseline("etl").unwrap();
    assert_eq!(summary.networks.len(), 2);
    assert_eq!(summary.targets, ["orders-api"]);
    assert_eq!(summary.actions, 2);
    assert_eq!(summary.saturated, ["targets", "actions", "networks"]);
}

#[test]
fn ignored_actors_and_categories_build_no_baseline() {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    let admin = Actor {
        kind: ActorKind::Human,
        account: Some("alice".into()),
        key_id: None,
        auth: AuthMethod::ApiKey,
    };
    let action = |category| Action {
        category,
        verb: "account.create".into(),
        resource: None,
        detail: None,
    };
    for (actor, category) in [
        (admin.clone(), Category::Admin),
        (admin, Category::Http),
        (service("etl"), Category::Alert),
    ] {
        let e = event(actor, "10.0.0.1", T0, action(category), true);
        assert!(observe(&mut engine, &e).is_empty());
    }
    assert_eq!(engine.stats().accounts, 0);
}

/// A week of normal work for two accounts, then a bit of everything.
fn eventful_history() -> Vec<Entry> {
    let mut entries = Vec::new();
    for day in 0..9 {
        entries.extend(normal_day("etl", day));
        entries.extend(normal_day("web", day));
    }
    let ip = ip_of("etl");
    let t = T0 + 9 * DAY + 3 * HOUR;
    let read = sql("etl", "SELECT", "read", &["public.orders"], t, true);
    entries.push(Entry::Event(read.clone()));
    entries.push(Entry::Outcome(outcome(&read, t, Some(5_000_000), None)));
    for i in 0..120 {
        entries.push(Entry::Event(http(
            "web",
            "admin-api",
            "GET",
            "/v1/users/1",
            "192.0.2.8",
            t + i * SECOND,
            i % 2 == 0,
        )));
    }
    for i in 0..6 {
        entries.push(Entry::Event(auth_failure(
            Some("etl"),
            Some("wk_etl"),
            &ip,
            "wrong_secret",
            t + i,
        )));
    }
    entries
}

#[test]
fn replay_gives_the_same_findings() {
    let history = eventful_history();
    let run = |entries: &[Entry]| {
        let mut engine = Engine::new(DetectConfig::default()).unwrap();
        let mut seq = 0;
        let findings = feed(&mut engine, entries, &mut seq);
        (findings, engine.stats())
    };
    let (first, stats) = run(&history);
    let (second, stats2) = run(&history);
    assert_eq!(first, second);
    assert_eq!(stats.accounts, stats2.accounts);
    let found: std::collections::BTreeSet<&str> = detectors(&first).into_iter().collect();
    for d in [
        "unusual_hour",
        "large_result",
        "new_target",
        "new_action",
        "new_source_network",
        "denied_burst",
        "auth_failure_burst",
    ] {
        assert!(found.contains(d), "{d} missing from {found:?}");
    }
    // Restarting mid-way: replay the first part (findings discarded), then go on live.
    let cut = history.len() - 100;
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    let mut seq = 0;
    feed(&mut engine, &history[..cut], &mut seq);
    let live = feed(&mut engine, &history[cut..], &mut seq);
    let tail: Vec<Finding> = first.into_iter().filter(|f| f.seq > cut as u64).collect();
    assert_eq!(live, tail);
}

fn arbitrary_event() -> impl Strategy<Value = Event> {
    let category = prop::sample::select(vec![
        Category::Auth,
        Category::Http,
        Category::Sql,
        Category::K8s,
        Category::Admin,
        Category::Alert,
    ]);
    let kind = prop::sample::select(vec![
        ActorKind::Service,
        ActorKind::Human,
        ActorKind::Kubernetes,
        ActorKind::System,
    ]);
    let detail = prop_oneof![
        Just(None),
        ".{0,12}".prop_map(|f| Some(json!({ "failure": f }))),
        (
            prop::sample::select(vec!["read", "write", "ddl", "admin", "tx", "?"]),
            prop::collection::vec("[a-zA-Z_.]{0,12}", 0..4)
        )
            .prop_map(|(c, t)| Some(json!({ "class": c, "tables": t }))),
        Just(Some(json!({ "class": 7, "tables": "x" }))),
    ];
    (
        (0u128..64, any::<i64>(), 0i64..4 * DAY, kind),
        (
            prop::option::of("[a-c]{1,2}"),
            prop::option::of("[a-z0-9]{0,4}"),
        ),
        prop::option::of(prop_oneof![
            ".{0,20}",
            Just("10.0.0.1".to_owned()),
            Just("2001:db8::1".to_owned()),
            Just("[::1]:80".to_owned()),
        ]),
        (
            category,
            ".{0,8}",
            prop::option::of("/?[a-z0-9/?]{0,30}"),
            detail,
        ),
        (
            any::<bool>(),
            prop::option::of(".{0,6}"),
            prop::option::of((any::<u64>(), any::<u64>())),
        ),
    )
        .prop_map(
            |(
                (id, far, near, kind),
                (account, key),
                ip,
                (category, verb, resource, detail),
                (allowed, tgt, outcome),
            )| {
                let time = if id % 7 == 0 { far } else { T0 + near };
                Event {
                    id: Uuid::from_u128(id),
                    seq: None,
                    time: Timestamp::from_micros(time),
                    actor: Actor {
                        kind,
                        account,
                        key_id: key,
                        auth: AuthMethod::ApiKey,
                    },
                    source: Source {
                        ip,
                        port: None,
                        user_agent: None,
                    },
                    target: tgt.map(|n| TargetRef {
                        kind: "http".into(),
                        name: n,
                    }),
                    action: Action {
                        category,
                        verb,
                        resource,
                        detail,
                    },
                    decision: Decision {
                        allowed,
                        grant_id: None,
                        reason: None,
                    },
                    outcome: outcome.map(|(rows, bytes)| Outcome {
                        rows: Some(rows),
                        bytes_out: Some(bytes),
                        ..Outcome::default()
                    }),
                    session_id: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_streams_never_panic(
        entries in prop::collection::vec(
            prop_oneof![
                3 => arbitrary_event().prop_map(Entry::Event),
                1 => (0u128..64, any::<i64>(), any::<u64>()).prop_map(|(id, t, rows)| Entry::Outcome(OutcomeRecord {
                    event_id: Uuid::from_u128(id),
                    seq: None,
                    time: Timestamp::from_micros(t),
                    outcome: Outcome { rows: Some(rows), ..Outcome::default() },
                })),
            ],
            0..200,
        )
    ) {
        let config: DetectConfig = serde_json::from_value(json!({
            "learning_period": "1h",
            "dormant_after": "1h",
            "sensitive_tables": ["a.*"],
            "max_targets": 2, "max_actions": 3, "max_networks": 2, "max_pending_outcomes": 5,
            "rate": { "min_events": 2, "factor": 1.5, "window": "1s" },
            "rules": [{ "name": "r", "match": { "resource": "/a/**" }, "threshold": 2 }],
        })).unwrap();
        let mut engine = Engine::new(config).unwrap();
        let mut seq = 0;
        let findings = feed(&mut engine, &entries, &mut seq);
        for f in &findings {
            prop_assert!(!f.detector.is_empty());
            prop_assert!(!f.summary.is_empty());
        }
        let stats = engine.stats();
        prop_assert!(stats.pending_outcomes <= 5);
        for name in ["a", "b", "c", "aa"] {
            if let Some(b) = engine.baseline(name) {
                prop_assert!(b.targets.len() <= 2 && b.actions <= 3 && b.networks.len() <= 2);
            }
        }
    }
}
