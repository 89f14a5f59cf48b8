//! The traffic: service accounts calling the sample API through the HTTP gateway (with an API
//! key as a bearer, with the `X-Warden-Key` header, and with an OAuth access token) and the
//! scratch database through the PostgreSQL gateway, about three requests a second, plus a script
//! of suspicious behaviours at fixed times after the start. Why each of those is there is told in
//! the [parent module](super).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use super::setup::{Cast, Key, DB_TARGET};
use super::LEARNING;
use crate::client::Client;
use crate::commands::path;

/// Time between two routine calls: about three a second.
const TICK: Duration = Duration::from_millis(350);
/// Longest wait for one request or statement.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The access review the script starts.
const REVIEW: &str = "demo-review";

/// One suspicious behaviour (or, for the review, admin work) of the script.
#[derive(Debug, Clone, Copy)]
enum Step {
    LeakedKey,
    DeniedBurst,
    GuessedSecret,
    Review,
    Novelty,
    SensitiveRead,
    LargeResult,
}

/// When each step runs, counted from the start of the traffic. Novelty waits for the learning
/// period to end; the large results wait for several small ones to set the usual size, and for
/// novelty, so that they are not new actions as well.
fn script() -> Vec<(Duration, Step)> {
    let s = Duration::from_secs;
    vec![
        (s(4), Step::LeakedKey),
        (s(7), Step::DeniedBurst),
        (s(10), Step::GuessedSecret),
        // By now a checkpoint is signed for the review to name.
        (s(13), Step::Review),
        (LEARNING + s(8), Step::Novelty),
        (LEARNING + s(11), Step::SensitiveRead),
        (LEARNING + s(14), Step::LargeResult),
    ]
}

impl Step {
    /// What a watcher of the demo is told, naming the detector it should trip; `None` when the
    /// step needs the database and there is none.
    fn describe(self, pg: bool) -> Option<&'static str> {
        Some(match self {
            Step::LeakedKey => {
                "partner-feed's key leaked: the admin replaces and revokes it; the old key is tried again (dead_credential)"
            }
            Step::DeniedBurst => {
                "ci-deployer tries to DELETE orders 12 times without a grant (denied_burst)"
            }
            Step::GuessedSecret => {
                "someone presents orders-sync's key id with wrong secrets 6 times (auth_failure_burst)"
            }
            Step::Review => "the admin starts access review demo-review and decides on two accounts",
            Step::Novelty if pg => {
                "reporting, past its learning period, reads customers through its wildcard and reaches backoffice and shop-db (new_action, new_target)"
            }
            Step::Novelty => {
                "reporting, past its learning period, reads customers through its wildcard and reaches backoffice (new_action, new_target)"
            }
            Step::SensitiveRead if pg => {
                "billing-etl reads public.customers, a sensitive table (sensitive_action)"
            }
            Step::SensitiveRead => return None,
            Step::LargeResult => {
                "billing-etl, which fetches 5 orders at a time, pulls thousands at once (large_result)"
            }
        })
    }
}

/// How an account presents itself to the HTTP gateway.
enum Credential<'a> {
    /// `Authorization: Bearer`: an API key or an access token.
    Bearer(&'a str),
    /// `X-Warden-Key`, for clients that need `Authorization` for something else.
    Header(&'a str),
}

/// The service accounts' clients and the admin's.
pub struct Traffic {
    http: reqwest::Client,
    admin: Client,
    api: String,
    gateway: String,
    /// The PostgreSQL gateway, when there is a database target.
    pg: Option<SocketAddr>,
    cast: Cast,
    /// billing-etl's access token and when to fetch a new one.
    token: Option<(String, Instant)>,
    /// Open database sessions by account.
    sessions: HashMap<&'static str, tokio_postgres::Client>,
}

impl Traffic {
    /// Clients for the server at `api` (`http://…`), its HTTP gateway at `gateway` and, when
    /// `with_db`, its PostgreSQL gateway at `pg`.
    pub fn new(
        api: &str,
        gateway: &str,
        pg: SocketAddr,
        with_db: bool,
        cast: Cast,
    ) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .context("cannot build the HTTP client")?,
            admin: Client::with_token(api, &cast.admin_token)?,
            api: api.to_owned(),
            gateway: gateway.to_owned(),
            pg: with_db.then_some(pg),
            cast,
            token: None,
            sessions: HashMap::new(),
        })
    }

    /// Calls until `halt` turns true.
    pub async fn run(mut self, mut halt: watch::Receiver<bool>) {
        let started = Instant::now();
        let mut script = script().into_iter().peekable();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        for n in 0u64.. {
            tokio::select! {
                _ = tick.tick() => {}
                _ = halt.wait_for(|h| *h) => break,
            }
            while let Some((_, step)) = script.next_if(|(at, _)| started.elapsed() >= *at) {
                if let Some(what) = step.describe(self.pg.is_some()) {
                    println!("  [{:>3}s] {what}", started.elapsed().as_secs());
                }
                if let Err(e) = self.suspicious(step).await {
                    eprintln!("warden demo: {step:?}: {e:#}");
                }
            }
            self.routine(n).await;
        }
    }

    /// One ordinary call: what the accounts do all day, and what the baselines learn.
    async fn routine(&mut self, n: u64) {
        let id = 1 + (n * 7919) % 3000;
        let get = Method::GET;
        match n % 10 {
            0 | 8 => {
                self.call("orders-sync", get, &format!("/shop/v1/orders/{id}"), None)
                    .await
            }
            1 => {
                self.call("billing-etl", get, "/shop/v1/orders?limit=5", None)
                    .await
            }
            2 => {
                self.call("reporting", get, "/shop/v1/orders/summary", None)
                    .await
            }
            3 => {
                let order = json!({ "items": [{ "sku": format!("SKU-{}", id % 97), "quantity": 1 + id % 3 }] });
                self.call("orders-sync", Method::POST, "/shop/v1/orders", Some(order))
                    .await;
            }
            4 => {
                self.call("billing-etl", get, &format!("/shop/v1/payments/{id}"), None)
                    .await
            }
            5 => {
                self.call("partner-feed", get, &format!("/shop/v1/orders/{id}"), None)
                    .await
            }
            6 => {
                self.call("ci-deployer", get, "/backoffice/admin/health", None)
                    .await
            }
            7 => {
                let recent =
                    "SELECT id, total_cents, status FROM public.orders ORDER BY id DESC LIMIT 5";
                self.sql("billing-etl", recent).await;
            }
            _ => {
                let week = "SELECT day, orders, revenue_cents FROM analytics.daily ORDER BY day DESC LIMIT 7";
                self.sql("billing-etl", week).await;
            }
        }
    }

    async fn suspicious(&mut self, step: Step) -> Result<()> {
        let get = Method::GET;
        match step {
            Step::LeakedKey => {
                let old = self.cast.key("partner-feed")?.clone();
                let new: Key = self
                    .admin
                    .post(
                        &format!("/v1/accounts/{}/keys", path("partner-feed")),
                        &json!({}),
                    )
                    .await?;
                let _: Value = self
                    .admin
                    .post(&format!("/v1/keys/{}/revoke", path(&old.id)), &json!({}))
                    .await?;
                self.cast.keys.insert("partner-feed".to_owned(), new);
                for id in 1..=3 {
                    let path = format!("/shop/v1/orders/{id}");
                    self.send(get.clone(), &path, Credential::Bearer(&old.secret), None)
                        .await;
                }
            }
            Step::DeniedBurst => {
                for id in 100..112 {
                    let path = format!("/backoffice/admin/orders/{id}");
                    self.call("ci-deployer", Method::DELETE, &path, None).await;
                }
            }
            Step::GuessedSecret => {
                let key = self.cast.key("orders-sync")?;
                let length = key.secret.rsplit('_').next().map_or(64, str::len);
                let guesses: Vec<String> = (0..6)
                    .map(|i| format!("wdn_{}_{}{i}", key.id, "0".repeat(length - 1)))
                    .collect();
                for guess in &guesses {
                    self.send(
                        get.clone(),
                        "/shop/v1/orders/1",
                        Credential::Bearer(guess),
                        None,
                    )
                    .await;
                }
            }
            Step::Review => {
                let _: Value = self
                    .admin
                    .post("/v1/reviews", &json!({ "name": REVIEW }))
                    .await?;
                let decisions = [
                    (
                        "orders-sync",
                        "keep",
                        "Feeds the order service every minute; Ada confirmed.",
                    ),
                    (
                        "legacy-export",
                        "revoke",
                        "Never used, and its owner is no longer on record.",
                    ),
                ];
                for (account, decision, justification) in decisions {
                    let _: Value = self
                        .admin
                        .post(
                            &format!("/v1/reviews/{}/decisions", path(REVIEW)),
                            &json!({ "account": account, "decision": decision, "justification": justification }),
                        )
                        .await?;
                }
            }
            Step::Novelty => {
                for id in [17, 18] {
                    let path = format!("/shop/v1/customers/{id}");
                    self.call("reporting", get.clone(), &path, None).await;
                }
                self.call("reporting", get, "/backoffice/admin/stats", None)
                    .await;
                let month =
                    "SELECT day, revenue_cents FROM analytics.daily ORDER BY day DESC LIMIT 30";
                self.sql("reporting", month).await;
            }
            Step::SensitiveRead => {
                let people = "SELECT name, email FROM public.customers ORDER BY id LIMIT 50";
                self.sql("billing-etl", people).await;
            }
            Step::LargeResult => {
                self.call("billing-etl", get, "/shop/v1/orders?limit=5000", None)
                    .await;
                self.sql("billing-etl", "SELECT * FROM public.orders").await;
            }
        }
        Ok(())
    }

    /// A call by `account`, presenting itself as it always does.
    async fn call(&mut self, account: &str, method: Method, path: &str, body: Option<Value>) {
        let Ok(key) = self.cast.key(account).cloned() else {
            return;
        };
        match account {
            // A program that takes OAuth client credentials.
            "billing-etl" => {
                if let Some(token) = self.token(&key).await {
                    self.send(method, path, Credential::Bearer(&token), body)
                        .await;
                }
            }
            "reporting" => {
                self.send(method, path, Credential::Header(&key.secret), body)
                    .await;
            }
            _ => {
                self.send(method, path, Credential::Bearer(&key.secret), body)
                    .await;
            }
        }
    }

    /// Sends one request through the HTTP gateway and reads the whole answer (the outcome,
    /// bytes included, is recorded when the body ends).
    async fn send(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        body: Option<Value>,
    ) {
        let mut request = self.http.request(method, format!("{}{path}", self.gateway));
        request = match credential {
            Credential::Bearer(secret) => request.bearer_auth(secret),
            Credential::Header(secret) => request.header("X-Warden-Key", secret),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answered = match request.send().await {
            Ok(response) => response.bytes().await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = answered {
            tracing::debug!(path, error = %e, "demo request failed");
        }
    }

    /// An access token for `key` from `POST /oauth/token`, reused until half its life is over.
    async fn token(&mut self, key: &Key) -> Option<String> {
        if let Some((token, renew_at)) = &self.token {
            if Instant::now() < *renew_at {
                return Some(token.clone());
            }
        }
        let response = self
            .http
            .post(format!("{}/oauth/token", self.api))
            .basic_auth(&key.id, Some(&key.secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let issued: Value = match response {
            Ok(r) => r.json().await.ok()?,
            Err(e) => {
                tracing::debug!(error = %e, "demo token request failed");
                return None;
            }
        };
        let token = issued.get("access_token")?.as_str()?.to_owned();
        let lifetime = issued
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(60);
        self.token = Some((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime / 2),
        ));
        Some(token)
    }

    /// Runs `statement` as `account` through the PostgreSQL gateway, in its open session or a new
    /// one. Nothing without a database target.
    async fn sql(&mut self, account: &'static str, statement: &str) {
        let Some(pg) = self.pg else {
            return;
        };
        let Ok(key) = self.cast.key(account) else {
            return;
        };
        if self
            .sessions
            .get(account)
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            let mut config = tokio_postgres::Config::new();
            config
                .host(pg.ip().to_string())
                .port(pg.port())
                .user(account)
                .dbname(DB_TARGET)
                .password(&key.secret)
                // On loopback the gateway does not insist on TLS.
                .ssl_mode(SslMode::Disable)
                .connect_timeout(TIMEOUT);
            match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    self.sessions.insert(account, client);
                }
                Err(e) => {
                    tracing::debug!(account, error = %e, "demo database login failed");
                    return;
                }
            }
        }
        let Some(client) = self.sessions.get(account) else {
            return;
        };
        match tokio::time::timeout(TIMEOUT, client.simple_query(statement)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(account, error = %e, "demo statement failed"),
            Err(_) => tracing::debug!(account, "demo statement timed out"),
        }
    }
}
