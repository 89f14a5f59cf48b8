//! The HTTP gateway (`http://warden:8471/<target>/<path>`) against real upstream servers started
//! in the test: an axum app that echoes what it received as JSON, streams on cue and sleeps on
//! request, and a WebSocket echo server. Once with SQLite and once with PostgreSQL. Nothing here
//! asserts on timing; waits are bounded by generous timeouts so a regression fails, never hangs.

#[macro_use]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
const MIB: usize = 1024 * 1024;
const BIG: usize = 64 * MIB;
const UPSTREAM_SECRET: &str = "s3cret-upstream";

// ---------------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------------

/// What the echo upstream shares with the test.
struct Shared {
    /// Lets `/stream-down` send the rest of its body.
    release: Notify,
    /// Each chunk `/stream-up` receives, as it arrives.
    chunks: mpsc::UnboundedSender<Bytes>,
}

/// An HTTP upstream on an ephemeral port.
struct Upstream {
    base: String,
    shared: Arc<Shared>,
    chunks: tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>,
}

impl Upstream {
    async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            release: Notify::new(),
            chunks: tx,
        });
        let app = Router::new()
            .route("/slow", get(slow))
            .route("/stream-down", get(stream_down))
            .route("/stream-up", post(stream_up))
            .route("/big", get(big))
            .route("/{*rest}", any(echo))
            .route("/", any(echo))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            shared,
            chunks: tokio::sync::Mutex::new(rx),
        }
    }
}

/// Echoes the request as JSON: method, path, query, headers (lower-case names, repeated values
/// joined with ", ") and the body's length.
async fn echo(req: Request) -> Json<Value> {
    let (parts, body) = req.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<binary>"))
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    let mut len = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        len += chunk.unwrap().len();
    }
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": len,
    }))
}

async fn slow(req: Request) -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    echo(req).await
}

/// Sends a first chunk, then waits until the test releases it before sending the rest.
async fn stream_down(State(shared): State<Arc<Shared>>) -> Response {
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let shared = shared.clone();
        async move {
            match step {
                0 => Some((Ok::<_, Infallible>(Bytes::from_static(b"first;")), 1)),
                1 => {
                    shared.release.notified().await;
                    Some((Ok(Bytes::from_static(b"rest")), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(stream).into_response()
}

/// Reports each chunk of the request body to the test as it arrives; answers with the length.
async fn stream_up(State(shared): State<Arc<Shared>>, body: Body) -> Json<Value> {
    let mut stream = body.into_data_stream();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len();
        let _ = shared.chunks.send(chunk);
    }
    Json(json!({ "body_len": len }))
}

/// 64 MiB, streamed in 64 KiB chunks.
async fn big() -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = BIG / chunk.len();
    let stream =
        futures_util::stream::iter((0..chunks).map(move |_| Ok::<_, Infallible>(chunk.clone())));
    Body::from_stream(stream).into_response()
}

/// A WebSocket echo server that remembers the headers of each handshake it accepted.
struct WsUpstream {
    base: String,
    handshakes: Arc<Mutex<Vec<tokio_tungstenite::tungstenite::http::HeaderMap>>>,
}

impl WsUpstream {
    async fn start() -> Self {
        use tokio_tungstenite::tungstenite::handshake::server::{
            Request as WsRequest, Response as WsResponse,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    // The callback's signature is tungstenite's.
                    #[allow(clippy::result_large_err)]
                    let callback = |req: &WsRequest, resp: WsResponse| {
                        seen.lock().unwrap().push(req.headers().clone());
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            base: format!("http://{addr}"),
            handshakes,
        }
    }
}

/// An address where nothing listens.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn gw(t: &TestServer, path: &str) -> String {
    format!("{}{path}", t.gateway)
}

/// Registers an HTTP target; returns the create response.
async fn target(t: &TestServer, name: &str, upstream: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "kind": "http", "upstream": upstream});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, created) = t.post("/v1/targets", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    created
}

/// Grants `allow` on `target` to `account`; returns the grant's id.
async fn grant(t: &TestServer, account: &str, target: &str, allow: &str, extra: Value) -> String {
    let mut body = json!({"account": account, "target": target, "allow": allow});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, g) = t.post("/v1/grants", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    g["id"].as_str().unwrap().to_owned()
}

/// One request through the gateway with the key as a bearer token.
async fn send(
    t: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = t.http.request(method, gw(t, path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    read(req).await
}

async fn read(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("the gateway answers")
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_gateway_problem(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    expected: StatusCode,
    slug: &str,
) {
    assert_problem(status, body, expected, slug);
    assert_eq!(
        headers[reqwest::header::CONTENT_TYPE],
        "application/problem+json",
        "{body}"
    );
}

/// All events, every page.
async fn all_events(t: &TestServer, filter: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut q = format!("limit=50{filter}");
        if let Some(a) = after {
            q.push_str(&format!("&after={a}"));
        }
        let (s, page) = t.get(&format!("/v1/events?{q}"), &t.admin).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_u64() {
            Some(a) => after = Some(a),
            None => return out,
        }
    }
}

/// Polls the `http` events until one satisfies `pred` (outcomes are recorded when a response
/// body ends, a moment after the client has it).
async fn wait_event(t: &TestServer, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = all_events(t, "&category=http").await;
        if let Some(e) = events.iter().find(|e| pred(e)) {
            return e.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event {what} among {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn resource_is(e: &Value, path: &str) -> bool {
    e["action"]["resource"] == path
}

fn outcome_status(e: &Value) -> Option<&str> {
    e["outcome"]["status"].as_str()
}

/// The usual setup: an echo upstream behind target `orders`, account `svc` with a key.
async fn orders(t: &TestServer, inject: &[&str]) -> (Upstream, String) {
    let up = Upstream::start().await;
    target(t, "orders", &up.base, json!({"inject_headers": inject})).await;
    t.account("svc").await;
    let key = t.key("svc").await;
    (up, key)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn allows_and_swaps_credentials(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (_up, key) = orders(&t, &[&format!("X-Upstream-Key: {UPSTREAM_SECRET}")]).await;
    let grant_id = grant(&t, "svc", "orders", "GET /v1/orders/*", json!({})).await;

    let req = t
        .http
        .get(gw(&t, "/orders/v1/orders/42?token=abc&page=2"))
        .bearer_auth(&key)
        .header("Connection", "x-custom")
        .header("x-custom", "1")
        .header("Proxy-Authorization", "Basic bm9wZTpub3Bl")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Upstream-Key", "chosen-by-the-caller");
    let (s, _, echo) = read(req).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/v1/orders/42");
    assert_eq!(
        echo["query"], "token=abc&page=2",
        "the upstream gets the query as sent"
    );
    let h = &echo["headers"];
    assert_eq!(
        h["x-upstream-key"], UPSTREAM_SECRET,
        "the injected value replaces the caller's: {h}"
    );
    assert!(h.get("authorization").is_none(), "caller's key leaked: {h}");
    assert!(h.get("x-warden-key").is_none(), "{h}");
    assert!(
        h.get("x-custom").is_none(),
        "hop-by-hop header named in Connection: {h}"
    );
    assert!(h.get("proxy-authorization").is_none(), "{h}");
    assert_ne!(h["connection"], "x-custom", "{h}");
    // A client's own X-Forwarded-For is not believed (no trusted proxies configured).
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{h}");
    let forwarded = h["forwarded"].as_str().expect("a Forwarded header");
    assert!(
        forwarded.starts_with("for=127.0.0.1;proto=http"),
        "{forwarded}"
    );
    assert!(!forwarded.contains("6.6.6.6"), "{forwarded}");
    assert_eq!(
        h["host"],
        _up.base.trim_start_matches("http://"),
        "the upstream's Host comes from its URL"
    );
    assert_eq!(h["user-agent"], "api-test/1");

    // X-Warden-Key works as well, and is stripped too.
    let req = t
        .http
        .get(gw(&t, "/orders/v1/orders/7"))
        .header("X-Warden-Key", &key);
    let (s, _, echo) = read(req).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    assert!(echo["headers"].get("x-warden-key").is_none());
    assert_eq!(echo["headers"]["x-upstream-key"], UPSTREAM_SECRET);

    // Basic auth injection replaces the caller's Authorization.
    let basic_up = Upstream::start().await;
    target(&t, "basic", &basic_up.base, json!({"basic_auth": "bot:pw"})).await;
    grant(&t, "svc", "basic", "* /**", json!({})).await;
    let (s, _, echo) = send(&t, reqwest::Method::PUT, "/basic/things/1", Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["authorization"], "Basic Ym90OnB3");

    // The allowed request is on the ledger with its decision and, once the body ended, outcome.
    let e = wait_event(&t, "for GET /v1/orders/42 with an outcome", |e| {
        resource_is(e, "/v1/orders/42") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(e["action"]["category"], "http");
    assert_eq!(e["action"]["verb"], "GET");
    assert_eq!(e["target"], json!({"kind": "http", "name": "orders"}));
    assert_eq!(e["decision"]["allowed"], true, "{e}");
    assert_eq!(e["decision"]["grant_id"], grant_id.as_str(), "{e}");
    assert_eq!(e["actor"]["account"], "svc");
    assert_eq!(e["actor"]["kind"], "service");
    assert!(key.contains(e["actor"]["key_id"].as_str().unwrap()), "{e}");
    assert_eq!(e["source"]["ip"], "127.0.0.1");
    assert_eq!(e["source"]["user_agent"], "api-test/1");
    assert_eq!(outcome_status(&e), Some("200"), "{e}");
    assert!(e["outcome"]["bytes_out"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["outcome"]["bytes_in"].as_u64(), Some(0), "{e}");
    assert!(e["outcome"]["duration_us"].as_u64().is_some(), "{e}");
    // Sensitive query values are keyed hashes; the rest is kept.
    let query = e["action"]["detail"]["query"].as_str().unwrap();
    assert!(query.starts_with("token=hmac-sha256:"), "{query}");
    assert!(query.ends_with("&page=2"), "{query}");
    assert!(!query.contains("token=abc"), "{query}");
    for e in all_events(&t, "").await {
        assert!(!e.to_string().contains("token=abc"), "{e}");
        assert!(!e.to_string().contains(&key), "the caller's key is in {e}");
    }

    // The grant's last use is written within about a second.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, grants) = t
            .get("/v1/grants?account=svc&target=orders", &t.admin)
            .await;
        let g = &grants[0];
        assert_eq!(g["id"], grant_id.as_str());
        if !g["last_used_at"].is_null() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_used_at never set: {g}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.stop().await;
}

async fn denies_and_explains(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (_up, key) = orders(&t, &[]).await;
    let orders_grant = grant(&t, "svc", "orders", "GET /v1/orders/*", json!({})).await;
    assert_eq!(
        send(&t, reqwest::Method::GET, "/orders/v1/orders/1", Some(&key))
            .await
            .0,
        StatusCode::OK
    );

    // Deny by default: another method, another path, a path the glob does not reach.
    for (method, path, shown) in [
        (
            reqwest::Method::POST,
            "/orders/v1/orders/1",
            "POST /v1/orders/1",
        ),
        (
            reqwest::Method::GET,
            "/orders/v1/customers/1",
            "GET /v1/customers/1",
        ),
        (
            reqwest::Method::GET,
            "/orders/v1/orders/1/lines",
            "GET /v1/orders/1/lines",
        ),
    ] {
        let (s, h, body) = send(&t, method, path, Some(&key)).await;
        assert_gateway_problem(s, &h, &body, StatusCode::FORBIDDEN, "forbidden");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("no grant allows `{shown}`")),
            "{detail}"
        );
    }

    // Unknown target; no target at all.
    let (s, h, body) = send(&t, reqwest::Method::GET, "/nope/v1/orders/1", Some(&key)).await;
    assert_gateway_problem(s, &h, &body, StatusCode::NOT_FOUND, "not-found");
    assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");
    let (s, h, body) = send(&t, reqwest::Method::GET, "/", Some(&key)).await;
    assert_gateway_problem(s, &h, &body, StatusCode::NOT_FOUND, "not-found");

    // No key, a bad key, garbage: 401, all alike.
    let (s, h, none) = send(&t, reqwest::Method::GET, "/orders/v1/orders/1", None).await;
    assert_gateway_problem(s, &h, &none, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(h[reqwest::header::WWW_AUTHENTICATE], "Bearer");
    for bad in [flip_last(&key), "nonsense".to_owned()] {
        let (s, h, body) = send(&t, reqwest::Method::GET, "/orders/v1/orders/1", Some(&bad)).await;
        assert_gateway_problem(s, &h, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(body, none, "a 401 never says why");
    }
    let req = t
        .http
        .get(gw(&t, "/orders/v1/orders/1"))
        .header("X-Warden-Key", flip_last(&key));
    let (s, _, body) = read(req).await;
    assert_eq!((s, &body), (StatusCode::UNAUTHORIZED, &none));

    // The gateway is for service accounts, not admins.
    let (s, h, body) = send(
        &t,
        reqwest::Method::GET,
        "/orders/v1/orders/1",
        Some(&t.admin),
    )
    .await;
    assert_gateway_problem(s, &h, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(body["detail"].as_str().unwrap().contains("admin"), "{body}");

    // Just-in-time access lapses with the clock.
    grant(
        &t,
        "svc",
        "orders",
        "GET /v1/invoices/*",
        json!({"expires_in": "1h"}),
    )
    .await;
    let (s, _, body) = send(
        &t,
        reqwest::Method::GET,
        "/orders/v1/invoices/9",
        Some(&key),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    t.clock.advance(Duration::from_secs(2 * 3600));
    let (s, h, body) = send(
        &t,
        reqwest::Method::GET,
        "/orders/v1/invoices/9",
        Some(&key),
    )
    .await;
    assert_gateway_problem(s, &h, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let (_, grants) = t.get("/v1/grants?account=svc", &t.admin).await;
    assert!(
        grants
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["allow"] == "GET /v1/invoices/*" && g["state"] == "expired"),
        "{grants}"
    );

    // Removing a grant applies to the next request.
    let (s, _, _) = send(&t, reqwest::Method::GET, "/orders/v1/orders/2", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, removed) = t
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/grants/{orders_grant}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{removed}");
    let (s, h, body) = send(&t, reqwest::Method::GET, "/orders/v1/orders/2", Some(&key)).await;
    assert_gateway_problem(s, &h, &body, StatusCode::FORBIDDEN, "forbidden");

    // Denied requests are on the ledger too, with their outcome in the same entry.
    let e = wait_event(&t, "for the denied POST", |e| {
        e["action"]["verb"] == "POST" && resource_is(e, "/v1/orders/1")
    })
    .await;
    assert_eq!(e["decision"]["allowed"], false, "{e}");
    assert_eq!(outcome_status(&e), Some("403"), "{e}");
    assert_eq!(e["target"]["name"], "orders");
    assert!(
        e["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("no grant allows"),
        "{e}"
    );
    let e = wait_event(&t, "for the expired grant", |e| {
        resource_is(e, "/v1/invoices/9") && outcome_status(e) == Some("403")
    })
    .await;
    assert!(
        e["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{e}"
    );
    let denied = all_events(&t, "&category=http")
        .await
        .into_iter()
        .filter(|e| outcome_status(e) == Some("403"))
        .count();
    assert_eq!(denied, 6, "3 without a grant, admin, expired, removed");
    let auth = all_events(&t, "&category=auth").await;
    let failed: Vec<&Value> = auth
        .iter()
        .filter(|e| e["action"]["verb"] == "http.authenticate")
        .collect();
    assert_eq!(failed.len(), 4, "{auth:#?}");
    assert!(failed
        .iter()
        .all(|e| outcome_status(e) == Some("401") && e["decision"]["allowed"] == false));

    // Disabling the account or revoking the key applies to the next request.
    grant(&t, "svc", "orders", "GET /v1/orders/*", json!({})).await;
    let ok = |(s, _, body): (StatusCode, reqwest::header::HeaderMap, Value)| {
        assert_eq!(s, StatusCode::OK, "{body}");
    };
    ok(send(&t, reqwest::Method::GET, "/orders/v1/orders/3", Some(&key)).await);
    let (s, body) = t
        .post(
            "/v1/accounts/svc/disable",
            &t.admin,
            json!({"reason": "leaked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = send(&t, reqwest::Method::GET, "/orders/v1/orders/3", Some(&key)).await;
    assert_eq!((s, &body), (StatusCode::UNAUTHORIZED, &none));
    let (s, body) = t.post("/v1/accounts/svc/enable", &t.admin, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    ok(send(&t, reqwest::Method::GET, "/orders/v1/orders/3", Some(&key)).await);
    let key_id = key.split('_').nth(1).unwrap();
    let (s, body) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = send(&t, reqwest::Method::GET, "/orders/v1/orders/3", Some(&key)).await;
    assert_eq!((s, &body), (StatusCode::UNAUTHORIZED, &none));
    t.stop().await;
}

async fn trusted_proxies_are_believed(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.gateway.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let (_up, key) = orders(&t, &[]).await;
    grant(&t, "svc", "orders", "GET /**", json!({})).await;
    let req = t
        .http
        .get(gw(&t, "/orders/from-a-proxy"))
        .bearer_auth(&key)
        .header("X-Forwarded-For", "203.0.113.7");
    let (s, _, echo) = read(req).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1", "{h}");
    let forwarded = h["forwarded"].as_str().unwrap();
    assert!(
        forwarded.starts_with("for=203.0.113.7, for=127.0.0.1;proto=http"),
        "{forwarded}"
    );
    let e = wait_event(&t, "from behind the proxy", |e| {
        resource_is(e, "/from-a-proxy")
    })
    .await;
    assert_eq!(e["source"]["ip"], "203.0.113.7", "{e}");
    t.stop().await;
}

async fn upstream_failures(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.gateway.response_timeout = Duration::from_millis(300);
    })
    .await;
    let (_up, key) = orders(&t, &[]).await;
    target(&t, "down", &closed_port().await, json!({})).await;
    grant(&t, "svc", "orders", "* /**", json!({})).await;
    grant(&t, "svc", "down", "* /**", json!({})).await;

    let (s, h, body) = send(&t, reqwest::Method::GET, "/down/anything", Some(&key)).await;
    assert_gateway_problem(s, &h, &body, StatusCode::BAD_GATEWAY, "bad-gateway");
    assert!(
        body["detail"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );

    let (s, h, body) = send(&t, reqwest::Method::GET, "/orders/slow", Some(&key)).await;
    assert_gateway_problem(s, &h, &body, StatusCode::GATEWAY_TIMEOUT, "gateway-timeout");

    // Both are on the ledger: allowed, forwarded, failed.
    let e = wait_event(&t, "for the unreachable upstream", |e| {
        e["target"]["name"] == "down" && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(e["decision"]["allowed"], true);
    assert_eq!(outcome_status(&e), Some("502"), "{e}");
    assert!(e["outcome"]["error"].as_str().is_some(), "{e}");
    let e = wait_event(&t, "for the slow upstream", |e| {
        resource_is(e, "/slow") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(outcome_status(&e), Some("504"), "{e}");

    // The gateway still forwards afterwards.
    let (s, _, _) = send(&t, reqwest::Method::GET, "/orders/fine", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    t.stop().await;
}

async fn rate_limited(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.gateway.rate_limit_per_second = 2;
    })
    .await;
    let (_up, key) = orders(&t, &[]).await;
    grant(&t, "svc", "orders", "GET /**", json!({})).await;
    let results = futures_util::future::join_all(
        (0..6).map(|_| send(&t, reqwest::Method::GET, "/orders/burst", Some(&key))),
    )
    .await;
    let limited: Vec<_> = results
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!limited.is_empty(), "no 429 in a burst of 6 at 2/s");
    assert!(
        results.iter().any(|(s, _, _)| *s == StatusCode::OK),
        "the burst allowance lets the first ones through"
    );
    for (s, h, body) in &limited {
        assert_gateway_problem(*s, h, body, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
        assert!(h.get(reqwest::header::RETRY_AFTER).is_some(), "{h:?}");
    }
    let e = wait_event(&t, "for a rate-limited request", |e| {
        outcome_status(e) == Some("429")
    })
    .await;
    assert_eq!(e["actor"]["account"], "svc");
    t.stop().await;
}

async fn streams_without_buffering(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (up, key) = orders(&t, &[]).await;
    grant(&t, "svc", "orders", "* /**", json!({})).await;

    // (a) Response: the first chunk reaches the client while the upstream is still holding back
    // the rest; a buffering gateway would time out here.
    let mut resp = tokio::time::timeout(
        WAIT,
        t.http
            .get(gw(&t, "/orders/stream-down"))
            .bearer_auth(&key)
            .send(),
    )
    .await
    .expect("response head through the gateway")
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("the first chunk arrives before the upstream finishes: the gateway buffered")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    up.shared.release.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("the rest")
        .unwrap()
    {
        rest.extend_from_slice(&c);
    }
    assert_eq!(&rest[..], b"rest");

    // (b) Request: the upstream sees the first chunk before the client sends the second.
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let request = t
        .http
        .post(gw(&t, "/orders/stream-up"))
        .bearer_auth(&key)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let pending = tokio::spawn(request);
    tx.send(Bytes::from_static(b"one;")).await.unwrap();
    let mut chunks = up.chunks.lock().await;
    let got = tokio::time::timeout(WAIT, chunks.recv())
        .await
        .expect(
            "the first chunk reaches the upstream before the second is sent: the gateway buffered",
        )
        .unwrap();
    assert_eq!(&got[..], b"one;");
    tx.send(Bytes::from_static(b"two")).await.unwrap();
    drop(tx);
    let resp = tokio::time::timeout(WAIT, pending)
        .await
        .expect("the upload completes")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["body_len"], 7);
    drop(chunks);

    // 64 MiB each way, streamed; the outcome counts every byte.
    let chunk = Bytes::from(vec![b'y'; MIB]);
    let upload =
        futures_util::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let req = t
        .http
        .post(gw(&t, "/orders/upload"))
        .bearer_auth(&key)
        .body(reqwest::Body::wrap_stream(upload));
    let resp = tokio::time::timeout(Duration::from_secs(120), req.send())
        .await
        .expect("the upload completes")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["body_len"], BIG);

    let mut resp = t
        .http
        .get(gw(&t, "/orders/big"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut received = 0usize;
    while let Some(c) = tokio::time::timeout(WAIT, resp.chunk())
        .await
        .expect("download progresses")
        .unwrap()
    {
        received += c.len();
    }
    assert_eq!(received, BIG);

    let e = wait_event(&t, "for the upload with its outcome", |e| {
        resource_is(e, "/upload") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(outcome_status(&e), Some("200"));
    assert_eq!(e["outcome"]["bytes_in"].as_u64(), Some(BIG as u64), "{e}");
    let e = wait_event(&t, "for the download with its outcome", |e| {
        resource_is(e, "/big") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(e["outcome"]["bytes_out"].as_u64(), Some(BIG as u64), "{e}");
    let e = wait_event(&t, "for the streamed response", |e| {
        resource_is(e, "/stream-down") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(e["outcome"]["bytes_out"].as_u64(), Some(10), "{e}");
    let e = wait_event(&t, "for the streamed request", |e| {
        resource_is(e, "/stream-up") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(e["outcome"]["bytes_in"].as_u64(), Some(7), "{e}");
    t.stop().await;
}

async fn websocket_pass_through(backend: Backend) {
    let t = TestServer::start(backend).await;
    let ws = WsUpstream::start().await;
    target(
        &t,
        "chat",
        &ws.base,
        json!({"inject_headers": [format!("X-Upstream-Key: {UPSTREAM_SECRET}")]}),
    )
    .await;
    t.account("svc").await;
    let key = t.key("svc").await;
    grant(&t, "svc", "chat", "GET /socket", json!({})).await;

    let gateway: SocketAddr = t.gateway.trim_start_matches("http://").parse().unwrap();
    let stream = TcpStream::connect(gateway).await.unwrap();
    let mut request = format!("ws://{gateway}/chat/socket")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (mut client, response) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("the handshake completes")
            .unwrap();
    assert_eq!(response.status(), 101);
    let mut sent = 0;
    for i in 0..5 {
        let text = format!("hello {i}");
        sent += text.len();
        client.send(Message::text(text.clone())).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("the echo arrives")
            .unwrap()
            .unwrap();
        assert_eq!(echoed.to_text().unwrap(), text);
    }
    client
        .send(Message::binary(vec![7u8; 100_000]))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("the binary echo arrives")
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().len(), 100_000);
    client.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, client.next()).await {}
    drop(client);

    let handshakes = ws.handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 1);
    let h = &handshakes[0];
    assert_eq!(h["x-upstream-key"], UPSTREAM_SECRET);
    assert!(h.get("authorization").is_none(), "{h:?}");
    assert_eq!(h["upgrade"], "websocket");

    // Recorded with 101 and the bytes that went each way, once the connection closed.
    let e = wait_event(&t, "for the WebSocket with its outcome", |e| {
        resource_is(e, "/socket") && outcome_status(e).is_some()
    })
    .await;
    assert_eq!(outcome_status(&e), Some("101"), "{e}");
    assert!(
        e["outcome"]["bytes_in"].as_u64().unwrap() > (sent + 100_000) as u64,
        "{e}"
    );
    assert!(
        e["outcome"]["bytes_out"].as_u64().unwrap() > (sent + 100_000) as u64,
        "{e}"
    );

    // Without a key there is no upgrade.
    let stream = TcpStream::connect(gateway).await.unwrap();
    let request = format!("ws://{gateway}/chat/socket")
        .into_client_request()
        .unwrap();
    let err = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    t.stop().await;
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn upstream_secret_never_leaks(backend: Backend) {
    use base64::Engine as _;
    let t = TestServer::start(backend).await;
    let secret = format!("sk-live-{}", uuid::Uuid::new_v4().simple());
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bot:{password}"));
    let needles = [secret.clone(), password.clone(), basic.clone()];

    let up = Upstream::start().await;
    let created = target(
        &t,
        "vault",
        &up.base,
        json!({"inject_headers": [format!("X-Upstream-Key: {secret}")], "basic_auth": format!("bot:{password}")}),
    )
    .await;
    t.account("svc").await;
    let key = t.key("svc").await;
    grant(&t, "svc", "vault", "GET /ok/*", json!({})).await;

    // It works: the upstream gets both.
    let (s, _, echo) = send(&t, reqwest::Method::GET, "/vault/ok/1", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["headers"]["x-upstream-key"], secret.as_str());
    assert_eq!(echo["headers"]["authorization"], format!("Basic {basic}"));
    // Denied, failed and refused requests too, so every kind of event exists.
    send(&t, reqwest::Method::GET, "/vault/secret", Some(&key)).await;
    send(&t, reqwest::Method::GET, "/vault/ok/1", None).await;
    wait_event(&t, "with the outcome of the allowed request", |e| {
        resource_is(e, "/ok/1") && outcome_status(e) == Some("200")
    })
    .await;

    let mut texts = vec![("create response".to_owned(), created.to_string())];
    let (_, list) = t.get("/v1/targets", &t.admin).await;
    texts.push(("GET /v1/targets".to_owned(), list.to_string()));
    let (_, shown) = t.get("/v1/targets/vault", &t.admin).await;
    assert_eq!(
        shown["injected"],
        json!(["X-Upstream-Key", "Authorization (basic)"])
    );
    texts.push(("GET /v1/targets/vault".to_owned(), shown.to_string()));
    for e in all_events(&t, "").await {
        texts.push((format!("event {}", e["seq"]), e.to_string()));
    }
    for (what, text) in &texts {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} holds the upstream secret: {text}"
            );
        }
    }

    // At rest: nothing under the data directory (for SQLite, the database and its WAL) holds it,
    // and in PostgreSQL no table does (bytea shows as hex).
    for path in files(t.dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds the upstream secret",
                path.display()
            );
        }
    }
    if let Some(db) = &t.db {
        let c = db.client().await;
        let tables = c
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .await
            .unwrap();
        assert!(tables.len() > 3);
        for row in tables {
            let table: String = row.get(0);
            let dump: String = c
                .query_one(
                    &format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            for needle in &needles {
                assert!(
                    !dump.contains(needle.as_str()),
                    "table {table} holds the secret"
                );
                assert!(
                    !dump.contains(&hex::encode(needle)),
                    "table {table} holds the secret (hex)"
                );
            }
        }
    }
    t.stop().await;
}

/// Sends one raw HTTP/1.1 request (clients such as reqwest normalise paths; an attacker need not)
/// and returns the status code.
async fn raw_status(t: &TestServer, path: &str, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.gateway.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("the gateway answers")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"))
}

async fn dot_segments_cannot_escape_a_grant(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (_up, key) = orders(&t, &[]).await;
    grant(&t, "svc", "orders", "GET /v1/public/**", json!({})).await;
    grant(&t, "svc", "orders", "GET /v1/orders/*", json!({})).await;
    assert_eq!(raw_status(&t, "/orders/v1/public/a/b", &key).await, 200);
    assert_eq!(raw_status(&t, "/orders/v1/orders/1", &key).await, 200);
    // Each of these matches a grant as text, but an upstream that resolves dot segments (as
    // RFC 3986 says it may, and as nginx, Go's and Java's servers do) serves another resource.
    for path in [
        "/orders/v1/public/../admin",
        "/orders/v1/public/%2e%2e/admin",
        "/orders/v1/public/.%2E/admin",
        "/orders/v1/public/%2E./admin",
        "/orders/v1/orders/..",
        "/orders/v1/orders/%2e%2e",
        "/orders/v1/public/./../../admin",
    ] {
        let status = raw_status(&t, path, &key).await;
        assert!(
            status == 400,
            "{path} was answered with {status}, not refused"
        );
    }
    let e = wait_event(&t, "for a refused dot segment", |e| {
        outcome_status(e) == Some("400")
    })
    .await;
    assert_eq!(e["decision"]["allowed"], false, "{e}");
    t.stop().await;
}

on_both_backends!(
    allows_and_swaps_credentials,
    denies_and_explains,
    upstream_failures,
    trusted_proxies_are_believed,
    rate_limited,
    streams_without_buffering,
    websocket_pass_through,
    upstream_secret_never_leaks,
    dot_segments_cannot_escape_a_grant,
);
