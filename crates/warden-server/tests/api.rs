//! The control-plane API, driven over HTTP against a real server on an ephemeral port, once with
//! SQLite and once with PostgreSQL (a scratch database per test). Time is a manual clock, so
//! expiry and rotation grace are tested by moving it, never by sleeping.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_core::Clock;
use warden_server::{server, Config};
use warden_testkit::ScratchDb;

async fn accounts_lifecycle(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (s, created) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": "billing-etl", "owner": "ada@example.com", "purpose": "nightly invoices",
                   "labels": {"team": "finance"}, "expires_at": "2999-01-01"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["created_by"], "admin");
    assert_eq!(created["labels"]["team"], "finance");
    assert_eq!(created["expires_at"], "2999-01-01T00:00:00.000000Z");

    let (s, list) = t.get("/v1/accounts", &t.admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    for field in [
        "name",
        "owner",
        "purpose",
        "labels",
        "created_by",
        "created_at",
        "expires_at",
        "status",
        "last_used_at",
    ] {
        assert!(
            list[0].get(field).is_some(),
            "listing lacks {field}: {list}"
        );
    }

    let (s, disabled) = t
        .post(
            "/v1/accounts/billing-etl/disable",
            &t.admin,
            json!({"reason": "key leaked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["disabled_reason"], "key leaked");
    let (_, shown) = t.get("/v1/accounts/billing-etl", &t.admin).await;
    assert_eq!(shown["status"], "disabled");
    let (s, enabled) = t
        .post("/v1/accounts/billing-etl/enable", &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(enabled["status"], "active");

    // Every change is an admin event naming the human, the action and the object, with outcome.
    let events = t.events("category=admin").await;
    let verbs: Vec<&str> = events
        .iter()
        .map(|e| e["action"]["verb"].as_str().unwrap())
        .collect();
    assert_eq!(
        verbs,
        ["account.create", "account.disable", "account.enable"]
    );
    for e in &events {
        assert_eq!(e["actor"]["kind"], "human");
        assert_eq!(e["actor"]["account"], "admin");
        assert_eq!(e["action"]["resource"], "account/billing-etl");
        assert_eq!(e["outcome"]["status"], "ok");
        assert_eq!(e["source"]["user_agent"], "api-test/1");
    }
    assert_eq!(events[1]["action"]["detail"]["reason"], "key leaked");
    t.stop().await;
}

async fn account_bad_input(backend: Backend) {
    let t = TestServer::start(backend).await;
    let cases = [
        (
            json!({"name": "Bad_Name", "owner": "a@b.co", "purpose": "x"}),
            "name",
        ),
        (
            json!({"name": "-x", "owner": "a@b.co", "purpose": "x"}),
            "name",
        ),
        (json!({"name": "ok", "purpose": "x"}), "owner"),
        (json!({"name": "ok", "owner": "a@b.co"}), "purpose"),
        (
            json!({"name": "ok", "owner": "not-an-email", "purpose": "x"}),
            "owner",
        ),
        (
            json!({"name": "ok", "owner": "a@b.co", "purpose": "   "}),
            "purpose",
        ),
        (
            json!({"name": "ok", "owner": "a@b.co", "purpose": "x", "labels": {"Bad Key": "v"}}),
            "labels.Bad Key",
        ),
        (
            json!({"name": "ok", "owner": "a@b.co", "purpose": "x", "expires_at": "someday"}),
            "expires_at",
        ),
        (
            json!({"name": "ok", "owner": "a@b.co", "purpose": "x", "expires_at": "2001-01-01"}),
            "expires_at",
        ),
        (
            json!({"name": 7, "owner": "a@b.co", "purpose": "x"}),
            "name",
        ),
        (
            json!({"name": "ok", "owner": "a@b.co", "purpose": "x", "surprise": 1}),
            "surprise",
        ),
    ];
    for (body, field) in cases {
        let (s, p) = t.post("/v1/accounts", &t.admin, body.clone()).await;
        assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
        assert_eq!(p["field"], field, "for {body}: {p}");
    }

    // Malformed JSON and wrong content type.
    let resp = t
        .http
        .post(format!("{}/v1/accounts", t.base))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["type"], "urn:warden:problem:malformed-body");

    // Oversized body.
    let big = json!({"name": "ok", "owner": "a@b.co", "purpose": "x".repeat(10_000)});
    let (s, p) = t.post("/v1/accounts", &t.admin, big).await;
    assert_problem(s, &p, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");

    // Duplicate and unknown.
    t.account("dup").await;
    let (s, p) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": "dup", "owner": "a@b.co", "purpose": "x"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::CONFLICT, "conflict");
    let (s, p) = t.get("/v1/accounts/nope", &t.admin).await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not-found");
    let (s, p) = t
        .post(
            "/v1/accounts/nope/disable",
            &t.admin,
            json!({"reason": "r"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not-found");
    let (s, p) = t.post("/v1/accounts/nope/keys", &t.admin, json!({})).await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not-found");
    let (s, p) = t.post("/v1/keys/nokey/revoke", &t.admin, json!({})).await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not-found");
    let (s, p) = t
        .post(
            "/v1/accounts/dup/keys",
            &t.admin,
            json!({"expires_in": "soon"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(p["field"], "expires_in");
    let (s, p) = t.get("/v1/no/such/route", &t.admin).await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not-found");

    // A failed duplicate is still on the ledger, with its outcome.
    let events = t.events("category=admin").await;
    let last_create = events
        .iter()
        .rev()
        .find(|e| e["action"]["verb"] == "account.create")
        .unwrap();
    assert_eq!(last_create["outcome"]["status"], "conflict");
    t.stop().await;
}

async fn keys_and_whoami(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.account("etl").await;
    let key = t.key("etl").await;
    assert!(key.starts_with("wdn_"));
    let (s, me) = t.whoami(&key).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["account"], "etl");
    assert_eq!(me["kind"], "service");
    let key_id = me["key_id"].as_str().unwrap().to_owned();
    assert!(key.contains(&key_id));

    // Every failure gives the same body, whatever the reason.
    let wrong_secret = flip_last(&key);
    let unknown_id = format!("wdn_aaaaaaaaaaaa_{}", &key[key.len() - 64..]);
    let (_, reference) = t.whoami("garbage").await;
    for bad in [wrong_secret.as_str(), unknown_id.as_str(), "garbage", ""] {
        let (s, p) = t.whoami(bad).await;
        assert_problem(s, &p, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(p, reference);
    }
    let (s, p) = t.call(reqwest::Method::GET, "/v1/whoami", None, None).await;
    assert_problem(s, &p, StatusCode::UNAUTHORIZED, "unauthorized");

    // Successes and failures are auth events with source address and user agent; no secret.
    let auth = t.events("category=auth").await;
    assert_eq!(auth.len(), 7, "{auth:?}");
    assert_eq!(auth[0]["decision"]["allowed"], true);
    assert_eq!(auth[0]["actor"]["account"], "etl");
    assert_eq!(auth[0]["source"]["ip"], "127.0.0.1");
    assert_eq!(auth[0]["source"]["user_agent"], "api-test/1");
    assert_eq!(auth[1]["decision"]["allowed"], false);
    assert_eq!(auth[1]["decision"]["reason"], "malformed credential");
    assert!(auth[1]["actor"]["key_id"].is_null());
    assert_eq!(auth[2]["decision"]["reason"], "wrong secret");
    assert_eq!(auth[2]["actor"]["key_id"], key_id.as_str());
    let secret_part = &key[key.len() - 64..];
    assert!(!serde_json::to_string(&auth).unwrap().contains(secret_part));

    // Disabling the account stops the key at once; enabling restores it.
    t.post(
        "/v1/accounts/etl/disable",
        &t.admin,
        json!({"reason": "incident"}),
    )
    .await;
    assert_eq!(t.whoami(&key).await.1, reference);
    t.post("/v1/accounts/etl/enable", &t.admin, json!({})).await;
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);

    // Revocation is immediate, idempotent, and shows in the listing.
    let (s, revoked) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(t.whoami(&key).await.1, reference);
    let (_, again) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let (_, keys) = t.get("/v1/accounts/etl/keys", &t.admin).await;
    assert_eq!(keys[0]["state"], "revoked");
    assert!(keys[0].get("digest").is_none() && keys[0].get("secret").is_none());
    t.stop().await;
}

async fn key_expiry_and_account_expiry(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.account("short").await;
    let (s, issued) = t
        .post(
            "/v1/accounts/short/keys",
            &t.admin,
            json!({"expires_in": "1h"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = issued["secret"].as_str().unwrap().to_owned();
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    t.clock.advance(Duration::from_secs(3601));
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    let (_, keys) = t.get("/v1/accounts/short/keys", &t.admin).await;
    assert_eq!(keys[0]["state"], "expired");

    let expires = warden_core::Timestamp::from_micros(t.clock.now().as_micros())
        .saturating_add(Duration::from_secs(60));
    let (s, _) = t
        .post("/v1/accounts", &t.admin, json!({"name": "temp", "owner": "a@b.co", "purpose": "x", "expires_at": expires.to_string()}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = t.key("temp").await;
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    let (_, shown) = t.get("/v1/accounts/temp", &t.admin).await;
    assert_eq!(shown["status"], "expired");
    t.stop().await;
}

async fn rotation_grace(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.account("svc").await;
    let old = t.key("svc").await;
    let (s, rotated) = t
        .post(
            "/v1/accounts/svc/keys/rotate",
            &t.admin,
            json!({"grace": "24h"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let old_id = t.whoami(&old).await.1["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rotated["superseded"], json!([old_id]));

    // During the grace both keys work; the listing says which is which.
    assert_eq!(t.whoami(&old).await.0, StatusCode::OK);
    assert_eq!(t.whoami(&new).await.0, StatusCode::OK);
    let (_, keys) = t.get("/v1/accounts/svc/keys", &t.admin).await;
    let state = |id: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&old_id), "rotating");
    assert_eq!(state(rotated["key_id"].as_str().unwrap()), "active");

    // After the grace only the new key works.
    t.clock.advance(Duration::from_secs(24 * 3600 - 10));
    assert_eq!(t.whoami(&old).await.0, StatusCode::OK);
    t.clock.advance(Duration::from_secs(11));
    assert_eq!(t.whoami(&old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.whoami(&new).await.0, StatusCode::OK);
    let (_, keys) = t.get("/v1/accounts/svc/keys", &t.admin).await;
    let old_view = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == old_id.as_str())
        .unwrap();
    assert_eq!(old_view["state"], "expired");

    // A zero grace retires the current key at once.
    let (_, again) = t
        .post(
            "/v1/accounts/svc/keys/rotate",
            &t.admin,
            json!({"grace": "0s"}),
        )
        .await;
    assert_eq!(t.whoami(&new).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.whoami(again["secret"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    t.stop().await;
}

async fn admins_and_authorization(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (s, issued) = t
        .post("/v1/admins", &t.admin, json!({"name": "grace"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let grace = issued["token"].as_str().unwrap().to_owned();
    assert!(grace.starts_with("wda_"));
    let (s, p) = t
        .post("/v1/admins", &t.admin, json!({"name": "grace"}))
        .await;
    assert_problem(s, &p, StatusCode::CONFLICT, "conflict");
    let (s, p) = t
        .post("/v1/admins", &t.admin, json!({"name": "Grace Hopper"}))
        .await;
    assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");

    // The new admin acts under their own name.
    let (s, _) = t
        .post(
            "/v1/accounts",
            &grace,
            json!({"name": "by-grace", "owner": "g@example.com", "purpose": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, acct) = t.get("/v1/accounts/by-grace", &grace).await;
    assert_eq!(acct["created_by"], "grace");
    let events = t.events("account=grace").await;
    assert_eq!(events.last().unwrap()["action"]["verb"], "account.create");
    let admin_events = t.events("account=admin&category=admin").await;
    assert_eq!(admin_events[0]["action"]["verb"], "admin.create");
    assert_eq!(admin_events[0]["action"]["resource"], "admin/grace");

    let (_, admins) = t.get("/v1/admins", &t.admin).await;
    let names: Vec<&str> = admins
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "grace"]);
    assert!(!admins.to_string().contains(&grace[grace.len() - 64..]));

    // A service account's key may prove itself but not administer.
    let key = t.key("by-grace").await;
    let (s, p) = t.get("/v1/accounts", &key).await;
    assert_problem(s, &p, StatusCode::FORBIDDEN, "forbidden");
    let (s, p) = t
        .post(
            "/v1/accounts",
            &key,
            json!({"name": "x", "owner": "a@b.co", "purpose": "x"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::FORBIDDEN, "forbidden");
    // No credential, or a forged admin token: 401, and the attempt is recorded.
    let (s, p) = t
        .call(reqwest::Method::GET, "/v1/accounts", None, None)
        .await;
    assert_problem(s, &p, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = flip_last(&t.admin);
    let (s, _) = t.get("/v1/accounts", &forged).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let auth = t.events("category=auth").await;
    assert!(auth
        .iter()
        .any(|e| e["action"]["verb"] == "admin.authenticate" && e["decision"]["allowed"] == false));
    t.stop().await;
}

async fn events_filters_and_paging(backend: Backend) {
    let t = TestServer::start(backend).await;
    for name in ["a1", "a2", "a3"] {
        t.account(name).await;
    }
    let key = t.key("a2").await;
    for _ in 0..5 {
        assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    }
    assert_eq!(t.events("account=a2").await.len(), 5);
    assert_eq!(t.events("account=a2&category=admin").await.len(), 0);
    assert_eq!(t.events("category=admin").await.len(), 4);
    // Sequence numbers are gapless across events and outcomes.
    let all = t.events("limit=1000").await;
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // Paging.
    let (_, page) = t.get("/v1/events?limit=3", &t.admin).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    let next = page["next_after"].as_u64().unwrap();
    let (_, rest) = t
        .get(&format!("/v1/events?after={next}&limit=1000"), &t.admin)
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), all.len() - 3);
    assert!(rest["next_after"].is_null());
    // `since` takes a duration or a time.
    t.clock.advance(Duration::from_secs(7200));
    assert_eq!(t.events("since=1h").await.len(), 0);
    assert_eq!(t.events("since=3h").await.len(), all.len());
    assert_eq!(t.events("since=2000-01-01").await.len(), all.len());
    let (s, p) = t.get("/v1/events?since=yesterday-ish", &t.admin).await;
    assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
    t.stop().await;
}

async fn last_used_is_recorded(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.account("used").await;
    let key = t.key("used").await;
    let (_, acct) = t.get("/v1/accounts/used", &t.admin).await;
    assert!(acct["last_used_at"].is_null());
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    // Usage is flushed in the background about once a second.
    let mut seen = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, acct) = t.get("/v1/accounts/used", &t.admin).await;
        if !acct["last_used_at"].is_null() {
            seen = acct["last_used_at"].clone();
            break;
        }
    }
    assert!(!seen.is_null(), "last_used_at was never recorded");
    let (_, keys) = t.get("/v1/accounts/used/keys", &t.admin).await;
    assert_eq!(keys[0]["last_used_at"], seen);
    t.stop().await;
}

async fn health_metrics_openapi(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (s, h) = t.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "ok");
    let (s, r) = t.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["store"]["ok"], true);
    t.account("m").await;
    let (s, m) = t.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(m.contains("warden_api_requests_total"), "{m}");
    assert!(m.contains("warden_ledger_entries_total"), "{m}");
    let (s, doc) = t
        .call(reqwest::Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/accounts",
        "/v1/accounts/{name}",
        "/v1/accounts/{name}/keys",
        "/v1/accounts/{name}/keys/rotate",
        "/v1/keys/{key_id}/revoke",
        "/v1/admins",
        "/v1/events",
        "/v1/whoami",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("AccountView").is_some());
    t.stop().await;
}

async fn restart_keeps_everything(backend: Backend) {
    let mut t = TestServer::start(backend).await;
    t.account("durable").await;
    let key = t.key("durable").await;
    let before = t.events("limit=1000").await;
    t.running.take().unwrap().stop().await;
    let config = Config {
        data_dir: t.dir.path().join("data"),
        database_url: t.db.as_ref().map(ScratchDb::url),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        postgres_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let running = server::start(&config, t.clock.clone()).await.unwrap();
    assert!(
        running.new_admin_token.is_none(),
        "bootstrap must happen once"
    );
    t.base = format!("http://{}", running.api_addr);
    t.running = Some(running);
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    let after = t.events("limit=1000").await;
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        after.last().unwrap()["seq"].as_u64().unwrap(),
        before.len() as u64
            + before
                .iter()
                .filter(|e| !e["outcome"].is_null() && e["action"]["category"] == "admin")
                .count() as u64
    );
    t.stop().await;
}

async fn ledger_checkpoints_and_proofs(backend: Backend) {
    let t = TestServer::start(backend).await;
    for i in 0..4 {
        t.account(&format!("acct-{i}")).await;
    }
    // 8 entries so far (an event and an outcome per change); checkpoints every 5.
    let (s, key) = text(&t, "/v1/ledger/key").await;
    assert_eq!(s, StatusCode::OK);
    let verifier = warden_ledger::Verifier::parse(key.trim()).unwrap();
    let mut latest = None;
    for _ in 0..100 {
        let (s, note) = text(&t, "/v1/ledger/checkpoint").await;
        if s == StatusCode::OK {
            let cp = warden_ledger::Checkpoint::open(&note, &verifier).unwrap();
            if cp.size >= 5 {
                latest = Some((cp, note));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cp, note) = latest.expect("a checkpoint is signed after 5 entries");
    assert_eq!(cp.origin, verifier.name());
    // The same note was published outside the database.
    let published = std::fs::read_to_string(
        t.dir
            .path()
            .join(format!("published/{}.checkpoint", cp.size)),
    )
    .unwrap();
    assert_eq!(published, note);

    // Every entry's inclusion proof verifies against the signed root.
    for seq in 0..cp.size {
        let (s, answer) = t
            .get(
                &format!("/v1/ledger/proof/inclusion?seq={seq}&size={}", cp.size),
                &t.admin,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{answer}");
        let proof: warden_ledger::InclusionProof =
            serde_json::from_value(answer["proof"].clone()).unwrap();
        let leaf: warden_ledger::Hash = answer["leaf_hash"].as_str().unwrap().parse().unwrap();
        proof.verify(&leaf, &cp.root).unwrap();
    }
    // And the leaf hashes are those of the served entries.
    let (_, page) = t.get("/v1/ledger/entries?from=0&limit=3", &t.admin).await;
    let e0 = &page["entries"][0];
    assert_eq!(
        warden_ledger::leaf_hash(e0["body"].as_str().unwrap().as_bytes()).to_hex(),
        e0["leaf_hash"].as_str().unwrap()
    );
    assert_eq!(page["next"], 3);

    // Consistency between an early size and the checkpoint.
    let (s, proof) = t
        .get(
            &format!("/v1/ledger/proof/consistency?old=2&new={}", cp.size),
            &t.admin,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{proof}");
    let proof: warden_ledger::ConsistencyProof = serde_json::from_value(proof).unwrap();
    let (_, entries) = t.get("/v1/ledger/entries?from=0&limit=2", &t.admin).await;
    let mut old = warden_ledger::RootBuilder::new();
    for e in entries["entries"].as_array().unwrap() {
        old.push(warden_ledger::leaf_hash(
            e["body"].as_str().unwrap().as_bytes(),
        ));
    }
    proof.verify(&old.root(), &cp.root).unwrap();

    // Bad requests are named.
    let (s, p) = t
        .get("/v1/ledger/proof/inclusion?seq=999999&size=5", &t.admin)
        .await;
    assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(p["field"], "seq");
    let (s, p) = t
        .get("/v1/ledger/proof/consistency?old=9&new=999999", &t.admin)
        .await;
    assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
    let (s, _) = text(&t, "/v1/ledger/checkpoints/999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Keyed hashes of sensitive values: stable, distinct, under a key kept in the data directory.
    let (s, h1) = t
        .post("/v1/ledger/hash", &t.admin, json!({"value": "hunter2"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{h1}");
    let (_, h2) = t
        .post("/v1/ledger/hash", &t.admin, json!({"value": "hunter2"}))
        .await;
    let (_, h3) = t
        .post("/v1/ledger/hash", &t.admin, json!({"value": "hunter3"}))
        .await;
    assert_eq!(h1, h2);
    assert_ne!(h1, h3);
    assert!(h1["hash"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert!(t.dir.path().join("data/ledger-hmac-key").exists());
    let (s, list) = t
        .call(reqwest::Method::GET, "/v1/ledger/checkpoints", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["size"] == cp.size));
    t.stop().await;
}

async fn fails_closed_and_recovers(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.ledger.write_timeout = Duration::from_millis(500)
    })
    .await;
    t.account("before").await;
    let key = t.key("before").await;
    let lock = OutsideLock::take(&t).await;

    // Nothing that needs recording goes through, and readiness says why.
    let (s, p) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": "during", "owner": "a@b.co", "purpose": "x"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::SERVICE_UNAVAILABLE, "ledger-unavailable");
    let (s, p) = t.whoami(&key).await;
    assert_problem(s, &p, StatusCode::SERVICE_UNAVAILABLE, "ledger-unavailable");
    let (s, ready) = t.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["ledger"]["ok"], false);

    // Back without a restart.
    lock.release().await;
    let mut ready = false;
    for _ in 0..100 {
        if t.call(reqwest::Method::GET, "/readyz", None, None).await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz never recovered");
    t.account("after").await;
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);

    // The refused change was not made, and the sequence has no gap.
    let (s, _) = t.get("/v1/accounts/during", &t.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, page) = t.get("/v1/ledger/entries?limit=10000", &t.admin).await;
    let seqs: Vec<u64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    t.stop().await;
}

async fn retention_prunes_bodies_but_keeps_proofs(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.ledger.retention = Some(Duration::from_secs(86400));
        c.ledger.retention_check = Duration::from_millis(100);
        c.ledger.checkpoint_every = 4;
    })
    .await;
    for name in ["old-1", "old-2"] {
        t.account(name).await;
    }
    // Wait until a checkpoint covers the 4 entries, then let two days pass.
    let mut covered = false;
    for _ in 0..100 {
        let (s, note) = text(&t, "/v1/ledger/checkpoint").await;
        if s == StatusCode::OK && note.lines().nth(1) == Some("4") {
            covered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(covered, "no checkpoint at size 4");
    t.clock.advance(Duration::from_secs(2 * 86400));
    let mut pruned = None;
    for _ in 0..100 {
        if let Some(e) = t
            .events("category=admin")
            .await
            .into_iter()
            .find(|e| e["action"]["verb"] == "ledger.prune")
        {
            pruned = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pruned = pruned.expect("retention ran and recorded itself");
    assert_eq!(pruned["actor"]["kind"], "system");
    assert_eq!(pruned["action"]["detail"]["pruned"], 4);
    // The old events' bodies are gone from listings and entries…
    assert!(t
        .events("category=admin")
        .await
        .iter()
        .all(|e| e["action"]["verb"] == "ledger.prune"));
    let (_, page) = t.get("/v1/ledger/entries?limit=10", &t.admin).await;
    let first = &page["entries"][0];
    assert_eq!(first["body"], "");
    assert_eq!(first["pruned"], true);
    // …but what verification needs remains: the leaf hash still proves inclusion.
    let (_, answer) = t
        .get("/v1/ledger/proof/inclusion?seq=0&size=4", &t.admin)
        .await;
    let (_, note) = text(&t, "/v1/ledger/checkpoints/4").await;
    let (_, key) = text(&t, "/v1/ledger/key").await;
    let cp = warden_ledger::Checkpoint::open(
        &note,
        &warden_ledger::Verifier::parse(key.trim()).unwrap(),
    )
    .unwrap();
    let proof: warden_ledger::InclusionProof =
        serde_json::from_value(answer["proof"].clone()).unwrap();
    let leaf: warden_ledger::Hash = first["leaf_hash"].as_str().unwrap().parse().unwrap();
    proof.verify(&leaf, &cp.root).unwrap();
    t.stop().await;
}

/// A receiver for published checkpoints that refuses the first `refuse` posts (as a witness that
/// is down would) and keeps the rest.
async fn checkpoint_receiver(
    refuse: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let got = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, r) = (got.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/witness",
        axum::routing::post(move |body: String| {
            let (g, r) = (g.clone(), r.clone());
            async move {
                if r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refuse {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn checkpoints_are_published_to_a_url(backend: Backend) {
    let (url, got) = checkpoint_receiver(2).await;
    let t = TestServer::start_with(backend, |c| {
        c.ledger.checkpoint_every = 2;
        c.ledger.checkpoint_url = Some(url);
    })
    .await;
    t.account("published").await;
    let (_, key) = text(&t, "/v1/ledger/key").await;
    let verifier = warden_ledger::Verifier::parse(key.trim()).unwrap();
    // The receiver refuses twice; Warden retries until it takes the latest checkpoint.
    let mut received = None;
    for _ in 0..100 {
        if let Some(note) = got.lock().unwrap().last().cloned() {
            received = Some(note);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let note = received.expect("a checkpoint reached the URL");
    let cp = warden_ledger::Checkpoint::open(&note, &verifier).unwrap();
    assert!(cp.size >= 2);
    t.stop().await;
}

on_both_backends!(
    accounts_lifecycle,
    account_bad_input,
    keys_and_whoami,
    key_expiry_and_account_expiry,
    rotation_grace,
    admins_and_authorization,
    events_filters_and_paging,
    last_used_is_recorded,
    health_metrics_openapi,
    restart_keeps_everything,
    ledger_checkpoints_and_proofs,
    fails_closed_and_recovers,
    retention_prunes_bodies_but_keeps_proofs,
    checkpoints_are_published_to_a_url,
);
