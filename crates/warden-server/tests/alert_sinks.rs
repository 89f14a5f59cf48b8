//! Alert delivery is independent per sink: a sink that hangs (accepts the connection and never
//! answers) delays only itself; another sink gets the same alert at once, and the hung one keeps
//! it queued with the reason.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "a-webhook-secret-of-32-bytes-ok!";

async fn hung_sink_delays_only_itself(backend: Backend) {
    // A receiver that answers, and one that accepts connections and never says a word.
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(got.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let good = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung = silent.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let sinks: Vec<warden_sinks::SinkConfig> = serde_json::from_value(json!([
        {"kind": "webhook", "name": "hung", "url": format!("http://{hung}/hook"),
         "secret_file": secret, "timeout": "1s"},
        {"kind": "webhook", "name": "good", "url": format!("http://{good}/hook"),
         "secret_file": secret, "timeout": "1s"},
    ]))
    .unwrap();
    let t = TestServer::start_with(backend, move |c| c.alerts.sinks = sinks).await;

    // A revoked key used again: a critical alert for both sinks.
    t.account("reports").await;
    let key = t.key("reports").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let (s, _) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);

    let deadline = tokio::time::Instant::now() + WAIT;
    while got.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the good sink got nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        got.lock().unwrap()[0]["alert"]["detector"],
        "dead_credential"
    );

    // The hung sink still holds it, with why.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, status) = t.get("/v1/detection", &t.admin).await;
        let outboxes = status["outboxes"].as_array().unwrap().clone();
        let hung = outboxes.iter().find(|o| o["sink"] == "hung");
        if let Some(h) = hung.filter(|h| h["last_error"].is_string()) {
            assert_eq!(h["pending"], 1);
            assert!(
                h["last_error"].as_str().unwrap().contains("no answer"),
                "{h}"
            );
            assert!(outboxes.iter().all(|o| o["sink"] != "good"), "{outboxes:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!held.lock().unwrap().is_empty(), "the hung sink was tried");
    t.stop().await;
}

on_both_backends!(hung_sink_delays_only_itself);
