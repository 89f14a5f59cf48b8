//! Reports end to end: a history of real requests through the HTTP gateway spanning months (on
//! the manual clock), then every report kind in every format: the right media type and file
//! name, the ledger checkpoint named, the JSON valid against `docs/schemas/report.schema.json`,
//! the CSV with one row per finding or account, and the HTML rendered by headless Chromium
//! without a console message (a deliberately broken page proves the check can fail). Once with
//! SQLite and once with PostgreSQL.

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(86_400);
const SCHEMA: &str = include_str!("../../../docs/schemas/report.schema.json");

struct Document {
    status: StatusCode,
    content_type: String,
    disposition: String,
    checkpoint_size: Option<u64>,
    body: String,
}

async fn fetch(t: &TestServer, path: &str) -> Document {
    let resp = t
        .http
        .get(format!("{}{path}", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    Document {
        status: resp.status(),
        content_type: header("content-type"),
        disposition: header("content-disposition"),
        checkpoint_size: header("warden-checkpoint-size").parse().ok(),
        body: resp.text().await.unwrap(),
    }
}

fn validate(doc: &Value) -> Result<(), String> {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let url = "https://warden.invalid/schemas/report.schema.json";
    compiler.add_resource(url, schema).unwrap();
    let index = compiler.compile(url, &mut schemas).unwrap();
    schemas.validate(doc, index).map_err(|e| format!("{e:#}"))
}

/// Renders `file` in headless Chromium: the serialized DOM, and the console messages and
/// uncaught exceptions it logged (Chromium writes them to stderr as `…:CONSOLE…` lines).
fn browse(file: &Path) -> (String, Vec<String>) {
    let out = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs (.ci/run installs it: apt-get install chromium)");
    assert!(out.status.success(), "chromium failed: {out:?}");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE("))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

async fn reports(backend: Backend) {
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
    t.account("idle").await;
    let key = t.key("billing").await;
    t.key("idle").await;
    for (account, allow) in [
        ("billing", "GET /v1/**"),
        ("billing", "POST /v1/refunds"),
        ("idle", "GET /v1/orders/*"),
    ] {
        let body = json!({"account": account, "target": "orders", "allow": allow});
        let (s, g) = t.post("/v1/grants", &t.admin, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
    }
    // Four months of billing reading orders; the last three are in the 90-day window.
    let mut in_window = 0;
    for month in 0..4u64 {
        for id in 0..3 {
            let status = t
                .http
                .get(format!(
                    "{}/orders/v1/orders/{}",
                    t.gateway,
                    month * 10 + id
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::OK);
            in_window += u64::from(month > 0);
        }
        t.clock.advance(DAY * 30);
    }

    // Usage is counted from the ledger in the background: wait until the report sees it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let json = loop {
        let d = fetch(&t, "/v1/reports/compliance?format=json").await;
        assert_eq!(d.status, StatusCode::OK, "{}", d.body);
        let doc: Value = serde_json::from_str(&d.body).unwrap();
        if doc["summary"]["activity_total"].as_u64() >= Some(in_window) {
            break doc;
        }
        assert!(tokio::time::Instant::now() < deadline, "{doc:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(json["summary"]["activity_total"], in_window);
    let size = json["checkpoint"]["size"].as_u64().expect("a checkpoint");
    assert!(size >= 5, "{}", json["checkpoint"]);
    let (_, latest) = text(&t, "/v1/ledger/checkpoint").await;
    assert!(json["checkpoint"]["note"].as_str().unwrap().lines().count() >= 3);
    assert!(latest.starts_with(
        json["checkpoint"]["note"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
    ));

    // An access review with one decision so far: the reports carry it.
    let (s, body) = t
        .post("/v1/reviews", &t.admin, json!({"name": "2027-Q1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let decision =
        json!({"account": "idle", "decision": "revoke", "justification": "nobody owns it <b>"});
    let (s, body) = t
        .post("/v1/reviews/2027-Q1/decisions", &t.admin, decision)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let d = fetch(&t, "/v1/reports/access-review?format=json").await;
    let doc: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(doc["review"]["name"], "2027-Q1");
    assert_eq!(doc["review"]["status"], "open");
    assert_eq!(doc["review"]["decisions"][0]["decision"], "revoke");
    assert_eq!(doc["accounts"][1]["review_decision"]["decided_by"], "admin");
    assert!(doc["accounts"][0]["review_decision"].is_null());

    let dir = tempfile::tempdir().unwrap();
    for kind in ["access-review", "least-privilege", "compliance"] {
        for format in ["html", "json", "csv"] {
            let d = fetch(
                &t,
                &format!("/v1/reports/{kind}?format={format}&window=90d"),
            )
            .await;
            assert_eq!(d.status, StatusCode::OK, "{kind} {format}: {}", d.body);
            let expected_type = match format {
                "html" => "text/html",
                "json" => "application/json",
                _ => "text/csv",
            };
            assert!(
                d.content_type.starts_with(expected_type),
                "{}",
                d.content_type
            );
            assert!(
                d.disposition
                    .starts_with(&format!("attachment; filename=\"warden-{kind}-"))
                    && d.disposition.ends_with(&format!(".{format}\"")),
                "{}",
                d.disposition
            );
            let cp = d.checkpoint_size.expect("checkpoint header");
            assert!(cp >= size);
            match format {
                "json" => {
                    let doc: Value = serde_json::from_str(&d.body).unwrap();
                    validate(&doc).unwrap_or_else(|e| panic!("{kind}: {e}\n{doc:#}"));
                    assert_eq!(doc["kind"], kind);
                    assert_eq!(doc["checkpoint"]["size"], cp);
                    assert_eq!(doc["generated_by"], "admin");
                    let accounts: Vec<&str> = doc["accounts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a["account"].as_str().unwrap())
                        .collect();
                    assert_eq!(accounts, ["billing", "idle"]);
                    let findings = doc["summary"]["findings"].as_u64().unwrap();
                    assert!(findings > 0);
                    if kind == "least-privilege" {
                        assert_eq!(doc["summary"]["findings_by_kind"]["no_owner"], Value::Null);
                        assert_eq!(doc["summary"]["findings_by_kind"]["unused_grant"], 2);
                    } else {
                        assert_eq!(doc["summary"]["findings_by_kind"]["no_owner"], 1);
                    }
                }
                "csv" => {
                    let rows: Vec<&str> = d.body.split_terminator("\r\n").collect();
                    assert!(rows[0].starts_with("checkpoint_size,checkpoint_root_hash,"));
                    assert!(rows[1].starts_with(&format!("{cp},")), "{}", rows[1]);
                    if kind == "access-review" {
                        assert_eq!(rows.len(), 3, "{}", d.body);
                    } else {
                        let json = fetch(&t, &format!("/v1/reports/{kind}?format=json")).await;
                        let doc: Value = serde_json::from_str(&json.body).unwrap();
                        assert_eq!(rows.len() as u64 - 1, doc["summary"]["findings"]);
                    }
                }
                _ => {
                    let title = match kind {
                        "access-review" => "Service account access review",
                        "least-privilege" => "Least-privilege report",
                        _ => "Compliance evidence report",
                    };
                    assert!(d.body.contains(&format!("<title>{title}</title>")));
                    assert!(d.body.contains("nobody owns it &#60;b&#62;"));
                    let file = dir.path().join(format!("{kind}.html"));
                    std::fs::write(&file, &d.body).unwrap();
                    let (dom, console) = browse(&file);
                    assert!(console.is_empty(), "{kind}: console messages: {console:#?}");
                    assert!(
                        dom.contains(&format!("<title>{title}</title>")),
                        "{kind}: {dom}"
                    );
                    assert!(dom.contains("id=\"evidence\"") && dom.contains("SOC 2 CC7.2"));
                    assert!(dom.contains(&format!(
                        "<meta name=\"warden-checkpoint-size\" content=\"{cp}\">"
                    )));
                }
            }
        }
    }
    // The browser check can fail: a page with a console error and an uncaught exception.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><head><title>Bad</title></head><body><script>console.error('deliberate'); notDefined();</script></body></html>",
    )
    .unwrap();
    let (dom, console) = browse(&bad);
    assert!(dom.contains("<title>Bad</title>"));
    assert!(
        console.iter().any(|l| l.contains("deliberate")),
        "{console:#?}"
    );
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "{console:#?}"
    );

    // Unknown kinds and formats are clear problems.
    let (s, body) = t.get("/v1/reports/everything", &t.admin).await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    assert!(
        body["detail"].as_str().unwrap().contains("access-review"),
        "{body}"
    );
    let (s, body) = t.get("/v1/reports/compliance?format=pdf", &t.admin).await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    assert!(body["detail"].as_str().unwrap().contains("`csv`"), "{body}");
    let (s, body) = t.get("/v1/reports/compliance?window=soon", &t.admin).await;
    assert_problem(s, &body, StatusCode::BAD_REQUEST, "validation");
    // Admins only.
    let (s, _) = t.get("/v1/reports/compliance", &key).await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
        "{s}"
    );
    t.stop().await;
}

on_both_backends!(reports);
