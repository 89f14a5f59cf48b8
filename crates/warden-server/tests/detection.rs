//! Detection end to end: real traffic through the HTTP and PostgreSQL gateways from several
//! loopback addresses, several accounts behaving normally through a learning period, then each
//! suspicious behaviour once. Exactly the expected alerts must reach a webhook receiver that
//! verifies each delivery's signature; the receiver is down while they are raised and Warden is
//! restarted in between, and it must still receive every one of them, once, when it is back.
//!
//! Time is Warden's manual clock (event times drive baselines, hours of day and rate windows), so
//! hours pass in an instant. Nothing asserts on timing; waits are bounded by generous timeouts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warden_core::{Clock, ManualClock, SystemClock, Timestamp};
use warden_server::{server, Config};
use warden_testkit::ScratchDb;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(60);
const HOOK_SECRET: &str = "a-webhook-secret-of-32-bytes-ok!";
const MINUTE: i64 = 60_000_000;

// ---------------------------------------------------------------------------------------------
// The world around Warden: an HTTP upstream and a webhook receiver.
// ---------------------------------------------------------------------------------------------

/// An upstream that answers any path with a small JSON body, and `/v1/big?n=N` with N bytes.
async fn upstream() -> String {
    #[derive(serde::Deserialize)]
    struct Size {
        n: usize,
    }
    async fn big(Query(size): Query<Size>) -> Vec<u8> {
        vec![b'x'; size.n]
    }
    let app = Router::new()
        .route("/v1/big", get(big))
        .route("/{*rest}", any(|| async { Json(json!({"ok": true})) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A webhook receiver that verifies every delivery and keeps the alerts it received, by delivery
/// id. It can be stopped (connections are then refused) and started again on the same port.
struct Receiver {
    port: u16,
    got: Arc<Mutex<BTreeMap<String, Value>>>,
    deliveries: Arc<Mutex<u64>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Self {
        let mut r = Self {
            port: 0,
            got: Arc::default(),
            deliveries: Arc::default(),
            task: None,
        };
        r.up().await;
        r
    }

    async fn up(&mut self) {
        type Shared = (Arc<Mutex<BTreeMap<String, Value>>>, Arc<Mutex<u64>>);
        async fn hook(
            State((got, deliveries)): State<Shared>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (timestamp, signature) =
                (header("x-warden-timestamp"), header("x-warden-signature"));
            if !warden_sinks::verify_signature(
                HOOK_SECRET.as_bytes(),
                &timestamp,
                &body,
                &signature,
            ) {
                return StatusCode::UNAUTHORIZED;
            }
            let payload: Value = serde_json::from_slice(&body).unwrap();
            *deliveries.lock().unwrap() += 1;
            got.lock()
                .unwrap()
                .insert(header("x-warden-delivery"), payload["alert"].clone());
            StatusCode::NO_CONTENT
        }
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state((self.got.clone(), self.deliveries.clone()));
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap()
        }));
    }

    fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn alerts(&self) -> Vec<Value> {
        self.got.lock().unwrap().values().cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Warden, restartable on one data directory.
// ---------------------------------------------------------------------------------------------

struct Warden {
    running: Option<server::Running>,
    api: String,
    gateway: SocketAddr,
    postgres: SocketAddr,
}

fn config(dir: &Path, hook_url: &str) -> Config {
    std::fs::write(dir.join("hook-secret"), HOOK_SECRET).unwrap();
    let mut config = Config {
        data_dir: dir.join("data"),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        postgres_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.detection = serde_json::from_value(json!({
        "learning_period": "3h10m",
        "dormant_after": "50m",
        "rate": { "window": "10m", "factor": 5.0, "min_events": 20 },
        "large_result": { "factor": 20.0, "min_rows": 10000, "min_bytes": 1048576 },
        "sensitive_tables": ["public.users"],
    }))
    .unwrap();
    config.alerts.retry_max_backoff = Duration::from_secs(1);
    config.alerts.sinks = vec![serde_json::from_value(json!({
        "kind": "webhook", "name": "test-hook", "url": hook_url,
        "secret_file": dir.join("hook-secret"), "timeout": "2s",
    }))
    .unwrap()];
    config
}

impl Warden {
    async fn start(config: &Config, clock: Arc<ManualClock>) -> Self {
        let running = server::start(config, clock).await.expect("server starts");
        Self {
            api: format!("http://{}", running.api_addr),
            gateway: running.http_addr,
            postgres: running.postgres_addr,
            running: Some(running),
        }
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// The test's view of everything: Warden, its admin, the clock and the clients.
struct World {
    warden: Warden,
    admin: String,
    clock: Arc<ManualClock>,
    /// Where the clock started: one minute past an hour.
    t0: i64,
    keys: BTreeMap<&'static str, String>,
    http: reqwest::Client,
}

impl World {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.warden.api))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.api(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.api(reqwest::Method::GET, path, None).await
    }

    /// Sets Warden's clock to `minutes` after `t0`.
    fn at(&self, minutes: i64) {
        let target = self.t0 + minutes * MINUTE;
        let now = self.clock.now().as_micros();
        assert!(target >= now, "the test's timeline goes forward");
        self.clock
            .advance(Duration::from_micros((target - now) as u64));
    }

    /// `method target/path` through the HTTP gateway as `account`, from `from`.
    async fn call(&self, account: &str, from: &str, method: &str, target_path: &str) -> StatusCode {
        self.call_with(&self.keys[account], from, method, target_path)
            .await
    }

    async fn call_with(
        &self,
        key: &str,
        from: &str,
        method: &str,
        target_path: &str,
    ) -> StatusCode {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<IpAddr>().unwrap())
            .build()
            .unwrap();
        let url = format!("http://{}/{target_path}", self.warden.gateway);
        let resp = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        resp.bytes().await.unwrap();
        status
    }

    /// One round of everyone's normal behaviour (`quiet` only when `with_quiet`).
    async fn normal_round(&self, round: u32, db: &tokio_postgres::Client, with_quiet: bool) {
        let ok = StatusCode::OK;
        let local = "127.0.0.1";
        for id in [round, round + 1] {
            let path = format!("orders/v1/orders/{id}");
            assert_eq!(self.call("billing", local, "GET", &path).await, ok);
        }
        assert_eq!(
            self.call("billing", local, "GET", "orders/v1/big?n=1000")
                .await,
            ok
        );
        for _ in 0..2 {
            let path = "orders/v1/reports/daily";
            assert_eq!(self.call("etl", local, "GET", path).await, ok);
        }
        assert_eq!(self.call("ci", local, "GET", "orders/v1/status").await, ok);
        if with_quiet {
            assert_eq!(
                self.call("quiet", local, "GET", "orders/v1/status").await,
                ok
            );
        }
        db.simple_query("SELECT * FROM orders").await.unwrap();
    }

    /// Waits until detection has examined everything recorded so far.
    async fn detection_caught_up(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Outcomes are recorded just after their responses: let them land first.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = self.get("/v1/detection").await;
            let (position, size) = (status["position"].as_u64(), status["ledger_size"].as_u64());
            if position.is_some() && position >= size {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "detection is stuck: {status}"
            );
        }
    }

    /// The alerts Warden holds, as sorted `(detector, account)` pairs.
    async fn alert_kinds(&self) -> Vec<(String, String)> {
        let alerts = self.get("/v1/alerts?limit=1000").await;
        kinds(alerts.as_array().unwrap())
    }
}

fn kinds(alerts: &[Value]) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["detector"].as_str().unwrap().to_owned(),
                a["account"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    k.sort();
    k
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = pairs
        .iter()
        .map(|(d, a)| ((*d).to_owned(), (*a).to_owned()))
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspicious_behaviour_raises_exactly_the_expected_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start().await;
    let config = config(dir.path(), &receiver.url());

    // The clock starts one minute past the next full hour, so hours of the day are predictable.
    let now = SystemClock.now().as_micros();
    let hour = 60 * MINUTE;
    let t0 = (now / hour + 1) * hour + MINUTE;
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(t0)));
    let warden = Warden::start(&config, clock.clone()).await;
    let admin = std::fs::read_to_string(config.data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let mut w = World {
        warden,
        admin,
        clock,
        t0,
        keys: BTreeMap::new(),
        http: reqwest::Client::new(),
    };

    // Targets: two HTTP APIs and a database.
    let api = upstream().await;
    for name in ["orders", "inventory"] {
        w.post(
            "/v1/targets",
            json!({"name": name, "kind": "http", "upstream": api}),
        )
        .await;
    }
    let db = ScratchDb::create().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE orders (id int PRIMARY KEY, total int);
             INSERT INTO orders VALUES (1, 10), (2, 20);
             CREATE TABLE users (id int, password text);",
        )
        .await
        .unwrap();
    let dbname = db.url().rsplit('/').next().unwrap().to_owned();
    w.post(
        "/v1/targets",
        json!({
            "name": "shop", "kind": "postgres",
            "upstream": format!("postgres://127.0.0.1:5432/{dbname}?sslmode=disable"),
            "basic_auth": "postgres:unused-with-trust-auth",
        }),
    )
    .await;

    // Accounts, their grants (some broader than what they use) and keys.
    let grants: &[(&str, &str, &str)] = &[
        ("billing", "orders", "GET /v1/orders/*"),
        ("billing", "orders", "POST /v1/orders/*"),
        ("billing", "orders", "GET /v1/big"),
        ("billing", "inventory", "GET /v1/items/*"),
        ("etl", "orders", "GET /v1/reports/*"),
        ("quiet", "orders", "GET /v1/status"),
        ("ci", "orders", "GET /v1/status"),
        ("db", "shop", "read"),
        ("db", "shop", "ddl"),
    ];
    for name in ["billing", "etl", "quiet", "ci", "db"] {
        w.post(
            "/v1/accounts",
            json!({"name": name, "owner": "ada@example.com", "purpose": "detection test"}),
        )
        .await;
        let key = w
            .post(&format!("/v1/accounts/{name}/keys"), json!({}))
            .await;
        w.keys
            .insert(name, key["secret"].as_str().unwrap().to_owned());
    }
    for (account, target, allow) in grants {
        w.post(
            "/v1/grants",
            json!({"account": account, "target": target, "allow": allow}),
        )
        .await;
    }
    let (pg, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=db dbname=shop password={} sslmode=disable",
            w.warden.postgres.port(),
            w.keys["db"]
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);

    // Learning: every 15 minutes for three hours, everyone does what they always do.
    for round in 0..=12 {
        w.at(i64::from(round) * 15);
        w.normal_round(round, &pg, true).await;
    }
    // After learning, normal behaviour (quiet has gone quiet) raises nothing.
    for (round, minute) in [(13, 195), (14, 200)] {
        w.at(minute);
        w.normal_round(round, &pg, false).await;
    }
    w.detection_caught_up().await;
    assert_eq!(
        w.alert_kinds().await,
        expected(&[]),
        "normal traffic raised alerts"
    );
    assert!(receiver.alerts().is_empty());

    // The receiver goes down; each suspicious behaviour happens once.
    receiver.down();
    let local = "127.0.0.1";
    // A known account from a network it never used.
    w.at(203);
    assert_eq!(
        w.call("billing", "127.0.5.1", "GET", "orders/v1/orders/1")
            .await,
        StatusCode::OK
    );
    // A target it never used (with a route it never used).
    w.at(204);
    assert_eq!(
        w.call("billing", local, "GET", "inventory/v1/items/9")
            .await,
        StatusCode::OK
    );
    // An action it never took.
    w.at(205);
    assert_eq!(
        w.call("billing", local, "POST", "orders/v1/orders/7").await,
        StatusCode::OK
    );
    // Probing: a burst of denied requests.
    w.at(206);
    for _ in 0..12 {
        let status = w.call("etl", local, "GET", "orders/v1/orders/1").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Guessing: a burst of failed logins with one key id.
    w.at(207);
    let billing_key = w.keys["billing"].clone();
    let mut forged = billing_key[..billing_key.len() - 1].to_owned();
    forged.push(if billing_key.ends_with('A') { 'B' } else { 'A' });
    for _ in 0..6 {
        let status = w
            .call_with(&forged, "127.0.0.9", "GET", "orders/v1/orders/1")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A revoked key is still in someone's hands.
    w.at(208);
    let ci_key_id = w.keys["ci"].split('_').nth(1).unwrap().to_owned();
    w.post(&format!("/v1/keys/{ci_key_id}/revoke"), json!({}))
        .await;
    assert_eq!(
        w.call("ci", local, "GET", "orders/v1/status").await,
        StatusCode::UNAUTHORIZED
    );
    // Sensitive actions on the database: reading a sensitive table, changing the schema.
    w.at(209);
    pg.simple_query("SELECT * FROM users").await.unwrap();
    pg.simple_query("CREATE TABLE audit_copy (id int)")
        .await
        .unwrap();
    // A result far larger than usual.
    w.at(210);
    assert_eq!(
        w.call("billing", local, "GET", "orders/v1/big?n=3000000")
            .await,
        StatusCode::OK
    );
    // A rate spike in a fresh window.
    w.at(221);
    for _ in 0..40 {
        let status = w.call("etl", local, "GET", "orders/v1/reports/daily").await;
        assert_eq!(status, StatusCode::OK);
    }
    w.detection_caught_up().await;

    // Warden restarts while the receiver is still down; the outbox survives.
    drop(pg);
    w.warden.stop().await;
    w.warden = Warden::start(&config, w.clock.clone()).await;
    // A dormant account wakes up; an account is active at an hour it never was (the restarted
    // Warden rebuilt the baselines from the ledger).
    w.at(235);
    assert_eq!(
        w.call("quiet", local, "GET", "orders/v1/status").await,
        StatusCode::OK
    );
    w.at(241);
    assert_eq!(
        w.call("billing", local, "GET", "orders/v1/orders/3").await,
        StatusCode::OK
    );
    w.detection_caught_up().await;

    let want = expected(&[
        ("new_source_network", "billing"),
        ("new_target", "billing"),
        ("new_action", "billing"),
        ("new_action", "billing"),
        ("denied_burst", "etl"),
        ("auth_failure_burst", "-"),
        ("dead_credential", "ci"),
        ("sensitive_action", "db"),
        ("sensitive_action", "db"),
        ("new_action", "db"),
        ("new_action", "db"),
        ("large_result", "billing"),
        ("rate_spike", "etl"),
        ("dormant_wakeup", "quiet"),
        ("unusual_hour", "billing"),
    ]);
    let held = w.get("/v1/alerts?limit=1000").await;
    assert_eq!(w.alert_kinds().await, want, "{held:#}");
    assert!(receiver.alerts().is_empty(), "the receiver was down");

    // The receiver comes back and gets every alert, once each.
    receiver.up().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while receiver.alerts().len() < want.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the receiver got {:?}",
            kinds(&receiver.alerts())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(kinds(&receiver.alerts()), want);
    assert_eq!(*receiver.deliveries.lock().unwrap(), want.len() as u64);
    let status = w.get("/v1/detection").await;
    assert_eq!(status["outboxes"], json!([]), "{status}");

    // Alerts link to the events that raised them, and their lifecycle is on the ledger.
    let alerts = w.get("/v1/alerts?status=open").await;
    let burst = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["detector"] == "denied_burst")
        .unwrap()
        .clone();
    let id = burst["id"].as_str().unwrap();
    let detail = w.get(&format!("/v1/alerts/{id}")).await;
    assert!(!detail["events"].as_array().unwrap().is_empty());
    for e in detail["events"].as_array().unwrap() {
        assert_eq!(e["actor"]["account"], "etl");
        assert_eq!(e["decision"]["allowed"], false);
    }
    let acked = w
        .post(&format!("/v1/alerts/{id}/ack"), json!({"note": "looking"}))
        .await;
    assert_eq!(acked["status"], "acknowledged");
    let resolved = w
        .post(
            &format!("/v1/alerts/{id}/resolve"),
            json!({"note": "a bad deploy"}),
        )
        .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], "admin");
    let ledger = w
        .get("/v1/events?category=alert&limit=1000&since=3650d")
        .await;
    let verbs: Vec<&str> = ledger["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"]["verb"].as_str().unwrap())
        .collect();
    assert_eq!(
        verbs.iter().filter(|v| **v == "alert.open").count(),
        want.len()
    );
    assert!(verbs.contains(&"alert.ack") && verbs.contains(&"alert.resolve"));

    w.warden.stop().await;
    db.drop_db().await;
}
