//! Accountability end to end: a history of real requests through the HTTP gateway spanning
//! months (on the manual clock), then the analysis' findings, the least-privilege
//! recommendation as a diff, applying it (the gateway then allows exactly what was used), and
//! rolling it back. Once with SQLite and once with PostgreSQL.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(86_400);

/// The account's grants now, as sorted `target rule` strings.
async fn rules(t: &TestServer, account: &str) -> Vec<String> {
    let (_, grants) = t
        .get(&format!("/v1/grants?account={account}"), &t.admin)
        .await;
    let mut r: Vec<String> = grants
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{} {}",
                g["target"].as_str().unwrap(),
                g["allow"].as_str().unwrap()
            )
        })
        .collect();
    r.sort();
    r
}

/// The analysis once usage counting has caught up with the ledger.
async fn analysis(t: &TestServer, expected_uses: u64) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, a) = t.get("/v1/analysis", &t.admin).await;
        assert_eq!(s, StatusCode::OK, "{a}");
        let uses: u64 = a["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["grants"].as_array().unwrap().iter())
            .map(|g| g["uses"].as_u64().unwrap_or(0))
            .sum();
        if uses >= expected_uses {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "usage never reached {expected_uses}: {a:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn findings(a: &Value, account: &str) -> Vec<String> {
    let report = a["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == account)
        .unwrap();
    let mut f: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["controls"].as_array().unwrap().is_empty(), "{f}");
            f["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    f.sort();
    f
}

async fn recommendation_and_rollback(backend: Backend) {
    let t = TestServer::start(backend).await;
    orders_target(&t).await;
    let (s, body) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": "billing", "owner": "ada@acme.io", "purpose": "Bills customers every night"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // Owned by a placeholder address, with a one-word purpose.
    t.account("idle").await;
    let key = t.key("billing").await;
    t.key("idle").await;
    grant_on_orders(&t, "billing", "GET /v1/**").await;
    grant_on_orders(&t, "billing", "POST /v1/refunds").await;
    grant_on_orders(&t, "idle", "GET /v1/orders/*").await;

    // Four months of billing reading orders, a few times a month (the last three are in the
    // analysis' 90-day window).
    let mut in_window = 0;
    for month in 0..4u64 {
        for id in 0..3 {
            let path = format!("/v1/orders/{}", month * 10 + id);
            assert_eq!(
                call_orders(&t, &key, reqwest::Method::GET, &path).await,
                StatusCode::OK
            );
            in_window += u64::from(month > 0);
        }
        t.clock.advance(DAY * 30);
    }

    // Key use is written once a second: wait for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, keys) = t.get("/v1/accounts/billing/keys", &t.admin).await;
        if keys[0]["last_used_at"].is_string() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{keys}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Findings: the refund grant was never used, `GET /v1/**` was used only for orders, both
    // keys are older than 90 days and were never rotated; the idle account never did anything
    // and has no real owner or purpose.
    let a = analysis(&t, in_window).await;
    assert_eq!(
        findings(&a, "billing"),
        vec![
            "broad_grant",
            "never_rotated_key",
            "old_key",
            "unused_grant",
            "wildcard_grant"
        ]
    );
    assert_eq!(
        findings(&a, "idle"),
        vec![
            "never_rotated_key",
            "never_used_account",
            "no_owner",
            "no_purpose",
            "old_key",
            "unused_grant",
            "unused_key",
            "wildcard_grant"
        ]
    );

    // A grant made today is protected from removal.
    let young = grant_on_orders(&t, "billing", "GET /v1/customers/*").await;
    let (s, r) = t.get("/v1/accounts/billing/recommendation", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let diff = r["diff"].as_str().unwrap();
    assert!(diff.contains("- remove orders POST /v1/refunds"), "{diff}");
    assert!(diff.contains("- remove orders GET /v1/**"), "{diff}");
    assert!(diff.contains("+ add orders GET /v1/orders/*"), "{diff}");
    assert_eq!(r["recommendation"]["protected"][0]["grant_id"], young);

    // Applying it: billing keeps what it used (and the young grant), and nothing else.
    let before = rules(&t, "billing").await;
    let (s, change) = t
        .post(
            "/v1/accounts/billing/recommendation/apply",
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{change}");
    assert_eq!(change["version"], 1);
    assert_eq!(
        rules(&t, "billing").await,
        vec!["orders GET /v1/customers/*", "orders GET /v1/orders/*"]
    );
    assert_eq!(
        call_orders(&t, &key, reqwest::Method::GET, "/v1/orders/77").await,
        StatusCode::OK
    );
    assert_eq!(
        call_orders(&t, &key, reqwest::Method::GET, "/v1/invoices/1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_orders(&t, &key, reqwest::Method::POST, "/v1/refunds").await,
        StatusCode::FORBIDDEN
    );
    // Nothing left to apply.
    let (s, body) = t
        .post(
            "/v1/accounts/billing/recommendation/apply",
            &t.admin,
            json!({}),
        )
        .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");

    // Rolling back restores the set as it was, and keeps the narrowed one as version 2.
    let (s, change) = t
        .post(
            "/v1/accounts/billing/grants/rollback",
            &t.admin,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{change}");
    assert_eq!(change["version"], 2);
    assert_eq!(rules(&t, "billing").await, before);
    assert_eq!(
        call_orders(&t, &key, reqwest::Method::POST, "/v1/refunds").await,
        StatusCode::OK
    );
    let (_, versions) = t.get("/v1/accounts/billing/grant-versions", &t.admin).await;
    let reasons: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["recommendation", "rollback to version 1"]);
    let (s, body) = t
        .post(
            "/v1/accounts/billing/grants/rollback",
            &t.admin,
            json!({"version": 9}),
        )
        .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not-found");

    // Both changes are admin events with the diff.
    let events = t.events("category=admin&limit=1000").await;
    let verbs: Vec<&str> = events
        .iter()
        .map(|e| e["action"]["verb"].as_str().unwrap())
        .collect();
    assert!(verbs.contains(&"grant.recommendation.apply"), "{verbs:?}");
    assert!(verbs.contains(&"grant.rollback"), "{verbs:?}");
    t.stop().await;
}

on_both_backends!(recommendation_and_rollback);
