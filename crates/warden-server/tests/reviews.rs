//! Access reviews end to end: accounts with a history through the HTTP gateway, a review that
//! snapshots all of them, decisions (changed before closing, justified, by another admin),
//! reminders for the undecided, closing refused then done, its effects on credentials and grants,
//! the admin events, and a second review showing what changed since the first. Once with SQLite
//! and once with PostgreSQL.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: Duration = Duration::from_secs(86_400);

async fn account(t: &TestServer, name: &str, owner: &str) {
    let body = json!({"name": name, "owner": owner, "purpose": format!("{name} does its job every night")});
    let (s, b) = t.post("/v1/accounts", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn decide(t: &TestServer, token: &str, review: &str, body: Value) -> (StatusCode, Value) {
    t.post(&format!("/v1/reviews/{review}/decisions"), token, body)
        .await
}

fn item<'a>(review: &'a Value, account: &str) -> &'a Value {
    review["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["account"] == account)
        .unwrap_or_else(|| panic!("{account} not in {review:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

async fn full_cycle(backend: Backend) {
    let t = TestServer::start(backend).await;
    orders_target(&t).await;

    // Three accounts with two months of history.
    account(&t, "billing", "ada@acme.io").await;
    account(&t, "legacy", "bob@acme.io").await;
    account(&t, "idle", "carol@acme.io").await;
    let billing_key = t.key("billing").await;
    let legacy_key = t.key("legacy").await;
    grant_on_orders(&t, "billing", "GET /v1/orders/*").await;
    let refunds = grant_on_orders(&t, "billing", "POST /v1/refunds").await;
    grant_on_orders(&t, "legacy", "GET /v1/**").await;
    grant_on_orders(&t, "idle", "GET /v1/orders/*").await;
    for month in 0..2 {
        for id in 0..3 {
            let path = format!("/v1/orders/{month}{id}");
            let s = call_orders(&t, &billing_key, reqwest::Method::GET, &path).await;
            assert_eq!(s, StatusCode::OK);
        }
        t.clock.advance(DAY * 30);
    }
    assert_eq!(t.whoami(&legacy_key).await.0, StatusCode::OK);

    // Another admin takes part.
    let (s, grace) = t
        .post("/v1/admins", &t.admin, json!({"name": "grace"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{grace}");
    let grace = grace["token"].as_str().unwrap().to_owned();

    // Invalid names are refused.
    let (s, body) = t
        .post("/v1/reviews", &t.admin, json!({"name": "Q3 2026"}))
        .await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");

    // Start: every account is in the snapshot, with its findings.
    let (s, q3) = t
        .post("/v1/reviews", &t.admin, json!({"name": "2026-Q3"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q3}");
    assert_eq!(q3["status"], "open");
    assert_eq!(q3["started_by"], "admin");
    assert_eq!(q3["complete"], true, "{q3:#}");
    assert_eq!(q3["snapshot"]["population"]["accounts"], 3);
    assert_eq!(
        q3["snapshot"]["population"]["digest"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(q3["snapshot"]["checkpoint"]["size"].as_u64().unwrap() > 0);
    assert_eq!(
        q3["snapshot"]["checkpoint"]["root"].as_str().unwrap().len(),
        64
    );
    assert_eq!(q3["progress"], json!({"decided": 0, "total": 3}));
    assert_eq!(q3["undecided"], json!(["billing", "idle", "legacy"]));
    assert!(q3["changes_since_previous"].is_null());
    let idle = item(&q3, "idle");
    assert_eq!(idle["owner"], "carol@acme.io");
    assert!(idle["findings"].as_u64().unwrap() > 0, "{idle:#}");
    let kinds: Vec<&str> = idle["snapshot"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"never_used_account"), "{kinds:?}");
    assert_eq!(
        item(&q3, "billing")["snapshot"]["grants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(!item(&q3, "legacy")["snapshot"]["keys"]
        .as_array()
        .unwrap()
        .is_empty());

    // One open review at a time; names are unique.
    let (s, body) = t
        .post("/v1/reviews", &t.admin, json!({"name": "2026-Q4"}))
        .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");
    let (s, body) = t
        .post("/v1/reviews", &t.admin, json!({"name": "2026-Q3"}))
        .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");

    // A justification is required; decisions are keep, revoke or modify; grants removed only by
    // modify, and only the account's own.
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "billing", "decision": "keep", "justification": "  "}),
    )
    .await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(body["field"], "justification");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "billing", "decision": "maybe", "justification": "hmm"}),
    )
    .await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "billing", "decision": "keep", "justification": "x", "remove_grants": [refunds]}),
    )
    .await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "legacy", "decision": "modify", "justification": "x", "remove_grants": [refunds]}),
    )
    .await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "nobody", "decision": "keep", "justification": "x"}),
    )
    .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not-found");

    // Decisions, one changed before closing.
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "billing", "decision": "keep", "justification": "bills customers"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "billing", "decision": "modify", "justification": "refunds moved to payments",
               "remove_grants": [refunds]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "modify");
    assert_eq!(body["decided_by"], "grace");
    let (s, body) = decide(
        &t,
        &grace,
        "2026-Q3",
        json!({"account": "legacy", "decision": "revoke", "justification": "replaced by billing"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // The undecided account, by owner.
    let (s, r) = t.get("/v1/reviews/2026-Q3/reminders", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["progress"], json!({"decided": 2, "total": 3}));
    assert_eq!(r["owners"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["owners"][0]["owner"], "carol@acme.io");
    assert_eq!(r["owners"][0]["accounts"], json!(["idle"]));
    assert!(r["owners"][0]["message"]
        .as_str()
        .unwrap()
        .contains("2026-Q3"));

    // Not closed while undecided; then it is.
    let (s, body) = t
        .post("/v1/reviews/2026-Q3/close", &t.admin, json!({}))
        .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");
    assert!(body["detail"].as_str().unwrap().contains("idle"), "{body}");
    let (s, body) = decide(
        &t,
        &t.admin,
        "2026-Q3",
        json!({"account": "idle", "decision": "keep", "justification": "month-end job, runs in December"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, closed) = t
        .post("/v1/reviews/2026-Q3/close", &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed_by"], "admin");
    assert_eq!(closed["progress"], json!({"decided": 3, "total": 3}));
    assert_eq!(item(&closed, "idle")["outcome"], "kept");
    assert_eq!(
        item(&closed, "legacy")["outcome"],
        "disabled; 1 key(s) revoked"
    );
    assert!(item(&closed, "billing")["outcome"]
        .as_str()
        .unwrap()
        .contains(&refunds));
    assert_eq!(item(&closed, "billing")["decided_by"], "grace");

    // Effects: the revoked account's key is refused, its reason names the review; the grant is
    // gone (and the set before is a grant set version).
    assert_eq!(t.whoami(&legacy_key).await.0, StatusCode::UNAUTHORIZED);
    let (_, legacy) = t.get("/v1/accounts/legacy", &t.admin).await;
    assert_eq!(legacy["status"], "disabled", "{legacy}");
    assert_eq!(
        legacy["disabled_reason"],
        "access review 2026-Q3: replaced by billing"
    );
    let (_, grants) = t.get("/v1/grants?account=billing", &t.admin).await;
    let ids: Vec<&str> = grants
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{grants}");
    assert!(!ids.contains(&refunds.as_str()));
    let (_, versions) = t.get("/v1/accounts/billing/grant-versions", &t.admin).await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    assert_eq!(
        call_orders(&t, &billing_key, reqwest::Method::POST, "/v1/refunds").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_orders(&t, &billing_key, reqwest::Method::GET, "/v1/orders/9").await,
        StatusCode::OK
    );

    // Closed means final.
    let (s, body) = decide(
        &t,
        &t.admin,
        "2026-Q3",
        json!({"account": "idle", "decision": "revoke", "justification": "changed my mind"}),
    )
    .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");
    let (s, body) = t
        .post("/v1/reviews/2026-Q3/close", &t.admin, json!({}))
        .await;
    assert_problem(s, &body, StatusCode::CONFLICT, "conflict");

    // Every step is an admin event naming who took it.
    let events = t.events("category=admin&limit=1000").await;
    let review_events: Vec<(String, String)> = events
        .iter()
        .filter(|e| {
            e["action"]["verb"].as_str().unwrap().starts_with("review.")
                && e["outcome"]["status"] == "ok"
        })
        .map(|e| {
            (
                e["action"]["verb"].as_str().unwrap().to_owned(),
                e["actor"]["account"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |v: &str, who: &str| (v.to_owned(), who.to_owned());
    assert_eq!(
        review_events,
        vec![
            expect("review.start", "admin"),
            expect("review.decide", "grace"),
            expect("review.decide", "grace"),
            expect("review.decide", "grace"),
            expect("review.decide", "admin"),
            expect("review.close", "admin"),
        ]
    );
    let start = events
        .iter()
        .find(|e| e["action"]["verb"] == "review.start")
        .unwrap();
    assert_eq!(start["action"]["resource"], "review/2026-Q3");
    assert_eq!(
        start["action"]["detail"]["population_digest"],
        q3["snapshot"]["population"]["digest"]
    );

    // A quarter later: a new account, and the second review shows what changed.
    t.clock.advance(DAY * 90);
    account(&t, "newbie", "dan@acme.io").await;
    let (s, q4) = t
        .post("/v1/reviews", &t.admin, json!({"name": "2026-Q4"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{q4}");
    assert_eq!(q4["progress"]["total"], 4);
    assert_ne!(
        q4["snapshot"]["population"]["digest"],
        q3["snapshot"]["population"]["digest"]
    );
    let changes = &q4["changes_since_previous"];
    assert_eq!(changes["previous"], "2026-Q3");
    assert_eq!(changes["accounts_added"], json!(["newbie"]));
    assert_eq!(changes["accounts_removed"], json!([]));
    assert_eq!(
        changes["grants"].as_array().unwrap().len(),
        1,
        "{changes:#}"
    );
    assert_eq!(changes["grants"][0]["account"], "billing");
    assert_eq!(changes["grants"][0]["added"], json!([]));
    let removed = strings(&changes["grants"][0]["removed"]);
    assert_eq!(removed, [format!("{refunds} orders POST /v1/refunds")]);
    let previous: Vec<(String, String)> = changes["previous_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["account"].as_str().unwrap().to_owned(),
                d["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        previous,
        vec![
            expect("billing", "modify"),
            expect("idle", "keep"),
            expect("legacy", "revoke"),
        ]
    );
    assert_eq!(item(&q4, "legacy")["status"], "disabled");

    // The listing, and a forced close recording the undecided.
    let (s, list) = t.get("/v1/reviews", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2026-Q3", "2026-Q4"]);
    assert_eq!(list[1]["progress"], json!({"decided": 0, "total": 4}));
    let (s, closed) = t
        .post(
            "/v1/reviews/2026-Q4/close",
            &t.admin,
            json!({"force": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(item(&closed, "newbie")["outcome"], "undecided");
    let (_, newbie) = t.get("/v1/accounts/newbie", &t.admin).await;
    assert_eq!(newbie["status"], "active");
    let close = t
        .events("category=admin&limit=1000")
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"]["verb"] == "review.close")
        .unwrap();
    assert_eq!(close["action"]["detail"]["force"], true);
    assert_eq!(
        close["action"]["detail"]["undecided"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    t.stop().await;
}

on_both_backends!(full_cycle);
