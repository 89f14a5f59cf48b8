//! Lifecycle policies over a history spanning months (manual clock): the dry run lists what
//! every policy would do, enabled or not; running carries out only the enabled ones, each step
//! an admin event by Warden with the owner told through an alert; a policy left off changes
//! nothing.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: Duration = Duration::from_secs(86_400);

async fn account(t: &TestServer, name: &str, owner: &str) -> String {
    let body = json!({"name": name, "owner": owner, "purpose": "Runs the nightly billing batch"});
    let (s, b) = t.post("/v1/accounts", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    t.key(name).await
}

/// `(policy, account)` of every step in a plan or run result.
fn steps(plans: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = plans
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let policy = p["policy"].as_str().unwrap().to_owned();
            p["steps"].as_array().unwrap().iter().map(move |s| {
                (
                    policy.clone(),
                    s["action"].as_str().unwrap().to_owned(),
                    s["account"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn triple(p: &str, a: &str, acc: &str) -> (String, String, String) {
    (p.to_owned(), a.to_owned(), acc.to_owned())
}

async fn policies_plan_then_act(backend: Backend) {
    let drop_dir = tempfile::tempdir().unwrap();
    let deliver = drop_dir.path().to_owned();
    let t = TestServer::start_with(backend, move |c| {
        c.accountability.people = vec!["ada@acme.io".into()];
        c.lifecycle.disable_inactive.enabled = true;
        c.lifecycle.expire_old_keys.enabled = true;
        c.lifecycle.rotate_keys.enabled = true;
        c.lifecycle.rotate_keys.deliver_dir = Some(deliver);
        // require_owner stays off: it is only planned.
    })
    .await;
    let busy = account(&t, "busy", "ada@acme.io").await;
    let stale = account(&t, "stale", "ada@acme.io").await;
    let stranger = account(&t, "stranger", "mallory@elsewhere.io").await;
    assert_eq!(t.whoami(&stale).await.0, StatusCode::OK);

    // A hundred days: busy and stranger work every ten days, stale never again.
    for _ in 0..10 {
        t.clock.advance(DAY * 10);
        assert_eq!(t.whoami(&busy).await.0, StatusCode::OK);
        assert_eq!(t.whoami(&stranger).await.0, StatusCode::OK);
    }
    // Key and account use is written once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The dry run: every policy, enabled or not, and nothing changes.
    let (s, plan) = t.get("/v1/lifecycle/plan", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    assert_eq!(
        steps(&plan),
        vec![
            triple("disable_inactive", "disable_account", "stale"),
            triple("expire_old_keys", "expire_key", "busy"),
            triple("expire_old_keys", "expire_key", "stale"),
            triple("expire_old_keys", "expire_key", "stranger"),
            triple("require_owner", "disable_account", "stranger"),
            triple("rotate_keys", "rotate_keys", "busy"),
            triple("rotate_keys", "rotate_keys", "stale"),
            triple("rotate_keys", "rotate_keys", "stranger"),
        ]
    );
    let enabled: Vec<bool> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["enabled"].as_bool().unwrap())
        .collect();
    assert_eq!(enabled, vec![true, true, false, true]);
    assert_eq!(
        t.whoami(&stale).await.0,
        StatusCode::OK,
        "a plan changes nothing"
    );

    // Running: stale is disabled first, so it is neither expired nor rotated; require_owner is off.
    let (s, done) = t.post("/v1/lifecycle/run", &t.admin, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(
        steps(&done),
        vec![
            triple("disable_inactive", "disable_account", "stale"),
            triple("expire_old_keys", "expire_key", "busy"),
            triple("expire_old_keys", "expire_key", "stranger"),
            triple("rotate_keys", "rotate_keys", "busy"),
            triple("rotate_keys", "rotate_keys", "stranger"),
        ]
    );
    assert_eq!(t.whoami(&stale).await.0, StatusCode::UNAUTHORIZED);
    let (_, stranger_account) = t.get("/v1/accounts/stranger", &t.admin).await;
    assert_eq!(stranger_account["status"], "active", "require_owner is off");

    // The rotated key is delivered (0600) and works; the old one keeps working for the grace
    // period, then stops.
    let path = drop_dir.path().join("busy.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let new_key = std::fs::read_to_string(&path).unwrap();
    assert_ne!(new_key, busy);
    assert_eq!(t.whoami(&new_key).await.0, StatusCode::OK);
    assert_eq!(t.whoami(&busy).await.0, StatusCode::OK);
    t.clock.advance(DAY * 8);
    assert_eq!(t.whoami(&busy).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.whoami(&new_key).await.0, StatusCode::OK);

    // Each step is an admin event by Warden, and owners were told through alerts.
    let events = t.events("category=admin&limit=1000").await;
    let by_system: Vec<&str> = events
        .iter()
        .filter(|e| e["actor"]["kind"] == "system")
        .map(|e| e["action"]["verb"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_system
            .iter()
            .filter(|v| v.starts_with("lifecycle."))
            .count(),
        5,
        "{by_system:?}"
    );
    let (_, alerts) = t.get("/v1/alerts?limit=100", &t.admin).await;
    let mut told: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["detector"].as_str().unwrap(),
                a["account"].as_str().unwrap()
            )
        })
        // Detection has its say too (stale waking up, a retired key used again).
        .filter(|a| a.starts_with("lifecycle:"))
        .collect();
    told.sort();
    assert_eq!(
        told,
        vec![
            "lifecycle:disable_inactive stale",
            "lifecycle:expire_old_keys busy",
            "lifecycle:expire_old_keys stranger",
            "lifecycle:rotate_keys busy",
            "lifecycle:rotate_keys stranger",
        ]
    );
    for a in alerts.as_array().unwrap() {
        assert!(
            !a["summary"].as_str().unwrap().contains("wdn_"),
            "no secret in {a}"
        );
    }
    t.stop().await;
}

/// `require_owner` live: accounts owned by someone not on record, or without a purpose, are
/// disabled; the rest are left alone.
async fn require_owner_disables_the_unowned(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.accountability.people = vec!["ada@acme.io".into()];
        c.lifecycle.require_owner.enabled = true;
    })
    .await;
    let owned = account(&t, "owned", "ada@acme.io").await;
    let stranger = account(&t, "stranger", "mallory@elsewhere.io").await;
    let (s, b) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": "vague", "owner": "ada@acme.io", "purpose": "stuff"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let vague = t.key("vague").await;
    let (s, done) = t.post("/v1/lifecycle/run", &t.admin, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(
        steps(&done),
        vec![
            triple("require_owner", "disable_account", "stranger"),
            triple("require_owner", "disable_account", "vague"),
        ]
    );
    assert_eq!(t.whoami(&owned).await.0, StatusCode::OK);
    assert_eq!(t.whoami(&stranger).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.whoami(&vague).await.0, StatusCode::UNAUTHORIZED);
    let (_, shown) = t.get("/v1/accounts/stranger", &t.admin).await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("lifecycle policy require_owner"),
        "{shown}"
    );
    // Running again finds nothing left to do.
    let (_, again) = t.post("/v1/lifecycle/run", &t.admin, json!({})).await;
    assert!(steps(&again).is_empty(), "{again}");
    t.stop().await;
}

on_both_backends!(policies_plan_then_act, require_owner_disables_the_unowned);
