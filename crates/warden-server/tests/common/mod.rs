//! The harness shared by the API's integration tests: a real server on an ephemeral port, on
//! SQLite or on a scratch PostgreSQL database, with a manual clock.
// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_core::{Clock, ManualClock, SystemClock};
use warden_server::{server, Config};
use warden_testkit::ScratchDb;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub running: Option<server::Running>,
    pub base: String,
    /// Base URL of the HTTP gateway (`http://127.0.0.1:<port>`).
    pub gateway: String,
    pub admin: String,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub db: Option<ScratchDb>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(ScratchDb::create().await),
        };
        let config = Config {
            data_dir: dir.path().join("data"),
            database_url: db.as_ref().map(ScratchDb::url),
            api_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            postgres_addr: "127.0.0.1:0".parse().unwrap(),
            max_body_bytes: 4096,
            ..Config::default()
        };
        let mut config = config;
        config.ledger.checkpoint_every = 5;
        config.ledger.checkpoint_dir = Some(dir.path().join("published"));
        tune(&mut config);
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let running = server::start(&config, clock.clone())
            .await
            .expect("server starts");
        let token_path = running
            .new_admin_token
            .clone()
            .expect("bootstrap token on first start");
        let admin = std::fs::read_to_string(token_path)
            .unwrap()
            .trim()
            .to_owned();
        Self {
            base: format!("http://{}", running.api_addr),
            gateway: format!("http://{}", running.http_addr),
            running: Some(running),
            admin,
            clock,
            http: reqwest::Client::builder()
                .user_agent("api-test/1")
                .build()
                .unwrap(),
            dir,
            db,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn account(&self, name: &str) {
        let (s, body) = self
            .post(
                "/v1/accounts",
                &self.admin,
                json!({"name": name, "owner": "ada@example.com", "purpose": "test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    pub async fn key(&self, account: &str) -> String {
        let (s, body) = self
            .post(
                &format!("/v1/accounts/{account}/keys"),
                &self.admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["secret"].as_str().unwrap().to_owned()
    }

    pub async fn whoami(&self, key: &str) -> (StatusCode, Value) {
        self.get("/v1/whoami", key).await
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        let (s, body) = self.get(&format!("/v1/events?{query}"), &self.admin).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        if let Some(db) = self.db.take() {
            db.drop_db().await;
        }
    }
}

/// The credential with its last secret character changed.
pub fn flip_last(credential: &str) -> String {
    let mut s = credential.to_owned();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, slug: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["type"], format!("urn:warden:problem:{slug}"), "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
}

pub async fn text(t: &TestServer, path: &str) -> (StatusCode, String) {
    let resp = t
        .http
        .get(format!("{}{path}", t.base))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Holds the ledger table locked from outside Warden, as a stuck or failing database would.
pub enum OutsideLock {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl OutsideLock {
    pub async fn take(t: &TestServer) -> Self {
        match &t.db {
            None => {
                let c = rusqlite::Connection::open(t.dir.path().join("data/warden.db")).unwrap();
                c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                Self::Sqlite(c)
            }
            Some(db) => {
                let c = db.client().await;
                c.batch_execute("BEGIN; LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
                Self::Postgres(c)
            }
        }
    }

    pub async fn release(self) {
        match self {
            Self::Sqlite(c) => c.execute_batch("ROLLBACK").unwrap(),
            Self::Postgres(c) => c.batch_execute("ROLLBACK").await.unwrap(),
        }
    }
}

/// Declares each listed test function once per backend, in modules `sqlite` and `postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

/// An HTTP upstream on an ephemeral port that answers every path with `{"ok": true}`; its base
/// URL.
pub async fn ok_upstream() -> String {
    use axum::routing::any;
    let app = axum::Router::new().route(
        "/{*rest}",
        any(|| async { axum::Json(json!({"ok": true})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Registers an [`ok_upstream`] as the HTTP target `orders`.
pub async fn orders_target(t: &TestServer) {
    let upstream = ok_upstream().await;
    let body = json!({"name": "orders", "kind": "http", "upstream": upstream});
    let (s, created) = t.post("/v1/targets", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
}

/// Grants `allow` on target `orders` to `account`; returns the grant's id.
pub async fn grant_on_orders(t: &TestServer, account: &str, allow: &str) -> String {
    let body = json!({"account": account, "target": "orders", "allow": allow});
    let (s, g) = t.post("/v1/grants", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    g["id"].as_str().unwrap().to_owned()
}

/// `method /orders<path>` through the HTTP gateway with `key`; the status.
pub async fn call_orders(
    t: &TestServer,
    key: &str,
    method: reqwest::Method,
    path: &str,
) -> StatusCode {
    t.http
        .request(method, format!("{}/orders{path}", t.gateway))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}
