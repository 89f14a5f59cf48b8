//! The HTTP gateway against HTTPS upstreams started in the test: a test CA and server
//! certificates made with `rcgen`, served with rustls (ring) and hyper-util's HTTP/1.1 + HTTP/2
//! server. Upstream TLS is verified by default: against the bundled Mozilla roots plus the
//! target's `ca_bundle`, with the host name checked, and HTTP/2 used when the upstream offers it
//! via ALPN. SQLite only: the TLS path does not touch the store. Nothing here asserts on timing;
//! waits are bounded by generous timeouts so a regression fails, never hangs.

// SQLite only: the harness's `on_both_backends!` is not used here.
#[macro_use]
#[allow(unused_macros)]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::{Json, Router};
use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
const UPSTREAM_SECRET: &str = "s3cret-tls-upstream";
const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// A test certificate authority.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// The CA certificate as PEM, for a target's `ca_bundle`.
    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA, with its
    /// chain and private key.
    fn issue(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            vec![cert.der().clone(), self.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream
// ---------------------------------------------------------------------------------------------

/// The ALPN protocol a connection negotiated (if any), or why its TLS handshake failed.
type Handshake = Result<Option<String>, String>;

/// An HTTPS upstream on an ephemeral port that echoes each request as JSON.
struct TlsUpstream {
    port: u16,
    /// Requests the echo handler answered.
    served: Arc<AtomicUsize>,
    /// Each accepted connection's handshake.
    handshakes: Arc<Mutex<Vec<Handshake>>>,
}

impl TlsUpstream {
    /// Serves `chain`/`key`, offering `alpn` (in order of preference) to clients.
    async fn start(
        (chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
        alpn: &[&[u8]],
    ) -> Self {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(echo).with_state(served.clone());
        let seen = handshakes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app, seen) = (acceptor.clone(), app.clone(), seen.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(stream).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            seen.lock().unwrap().push(Err(e.to_string()));
                            return;
                        }
                    };
                    let negotiated = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                    seen.lock().unwrap().push(Ok(negotiated));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Self {
            port,
            served,
            handshakes,
        }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

/// Echoes the request: HTTP version, path, authority and headers (lower-case names, repeated
/// values joined with ", ").
async fn echo(State(served): State<Arc<AtomicUsize>>, req: Request) -> Json<Value> {
    served.fetch_add(1, Ordering::SeqCst);
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<&str> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<binary>"))
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    Json(json!({
        "version": format!("{:?}", req.version()),
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "authority": req.uri().authority().map(|a| a.as_str()),
        "headers": headers,
    }))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Registers an HTTP target injecting `X-Upstream-Key`, with `ca_bundle` when given.
async fn target(t: &TestServer, name: &str, upstream: &str, ca_bundle: Option<&str>) {
    let mut body = json!({
        "name": name,
        "kind": "http",
        "upstream": upstream,
        "inject_headers": [format!("X-Upstream-Key: {UPSTREAM_SECRET}")],
    });
    if let Some(pem) = ca_bundle {
        body["ca_bundle"] = json!(pem);
    }
    let (s, created) = t.post("/v1/targets", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["custom_ca"], ca_bundle.is_some(), "{created}");
}

/// Account `svc` with a key, allowed `GET /**` on each of `targets`.
async fn caller(t: &TestServer, targets: &[&str]) -> String {
    t.account("svc").await;
    let key = t.key("svc").await;
    for target in targets {
        let (s, g) = t
            .post(
                "/v1/grants",
                &t.admin,
                json!({"account": "svc", "target": target, "allow": "GET /**"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
    }
    key
}

/// `GET /<target><path>` through the gateway with `key`.
async fn get(
    t: &TestServer,
    target: &str,
    path: &str,
    key: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let req = t
        .http
        .get(format!("{}/{target}{path}", t.gateway))
        .bearer_auth(key);
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("the gateway answers")
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = tokio::time::timeout(WAIT, resp.text())
        .await
        .expect("the body ends")
        .unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `target`'s `http` events until one has an outcome (recorded a moment after the
/// response).
async fn event_with_outcome(t: &TestServer, target: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = t
            .events(&format!("category=http&target={target}&limit=1000"))
            .await;
        if let Some(e) = events.iter().find(|e| e["outcome"]["status"].is_string()) {
            return e.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event with an outcome for {target} among {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 502 `bad-gateway` problem whose detail is about the upstream's certificate and carries no
/// secret; returns the detail.
fn assert_certificate_502(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
) -> String {
    assert_problem(status, body, StatusCode::BAD_GATEWAY, "bad-gateway");
    assert_eq!(
        headers[reqwest::header::CONTENT_TYPE],
        "application/problem+json",
        "{body}"
    );
    let detail = body["detail"].as_str().expect("a detail").to_owned();
    assert!(
        detail.to_ascii_lowercase().contains("certificate"),
        "the detail names the certificate problem: {detail}"
    );
    assert!(!detail.contains(UPSTREAM_SECRET), "{detail}");
    detail
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// With the test CA in `ca_bundle`, requests reach the upstream with the injected header, over
/// HTTP/2 when the upstream offers h2 via ALPN and over HTTP/1.1 when it offers only
/// http/1.1 (or no ALPN at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_upstream_gets_h2_or_http11_as_offered() {
    let t = TestServer::start_with(Backend::Sqlite, |_| {}).await;
    let ca = TestCa::new("Warden test CA");
    let cert = || ca.issue(&["localhost", "127.0.0.1"]);
    let h2 = TlsUpstream::start(cert(), &[H2, HTTP11]).await;
    let h1 = TlsUpstream::start(cert(), &[HTTP11]).await;
    let no_alpn = TlsUpstream::start(cert(), &[]).await;
    target(&t, "h2", &h2.url("localhost"), Some(&ca.pem())).await;
    target(&t, "h1", &h1.url("localhost"), Some(&ca.pem())).await;
    target(&t, "plain", &no_alpn.url("localhost"), Some(&ca.pem())).await;
    let key = caller(&t, &["h2", "h1", "plain"]).await;

    for (name, up, version, alpn) in [
        ("h2", &h2, "HTTP/2.0", Some("h2")),
        ("h1", &h1, "HTTP/1.1", Some("http/1.1")),
        ("plain", &no_alpn, "HTTP/1.1", None),
    ] {
        for round in 0..2 {
            let (s, _, echo) = get(&t, name, "/v1/things/7", &key).await;
            assert_eq!(s, StatusCode::OK, "{name} #{round}: {echo}");
            assert_eq!(echo["version"], version, "{name} #{round}: {echo}");
            assert_eq!(echo["method"], "GET", "{echo}");
            assert_eq!(echo["path"], "/v1/things/7", "{echo}");
            let h = &echo["headers"];
            assert_eq!(h["x-upstream-key"], UPSTREAM_SECRET, "{name}: {h}");
            assert!(h.get("authorization").is_none(), "caller's key leaked: {h}");
            let authority = echo["authority"]
                .as_str()
                .or_else(|| h["host"].as_str())
                .unwrap_or_default();
            assert_eq!(authority, format!("localhost:{}", up.port), "{echo}");
        }
        assert_eq!(up.served(), 2, "{name}");
        // Every connection the gateway made negotiated what the upstream offered.
        let handshakes = up.handshakes();
        assert!(!handshakes.is_empty(), "{name}");
        for h in &handshakes {
            assert_eq!(
                h.as_ref().map(Option::as_deref),
                Ok(alpn),
                "{name}: {handshakes:?}"
            );
        }
        let e = event_with_outcome(&t, name).await;
        assert_eq!(e["outcome"]["status"], "200", "{e}");
        assert_eq!(e["decision"]["allowed"], true, "{e}");
    }

    // The certificate's IP address SAN is verified as well: the same upstream by address.
    target(&t, "byip", &h2.url("127.0.0.1"), Some(&ca.pem())).await;
    let (s, g) = t
        .post(
            "/v1/grants",
            &t.admin,
            json!({"account": "svc", "target": "byip", "allow": "GET /**"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let (s, _, echo) = get(&t, "byip", "/ip", &key).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    assert_eq!(echo["version"], "HTTP/2.0", "{echo}");
    assert_eq!(echo["headers"]["x-upstream-key"], UPSTREAM_SECRET);

    t.stop().await;
}

/// Without the CA bundle, the upstream's certificate is not trusted (TLS is verified by
/// default): 502 problem+json naming the certificate problem, nothing reaches the upstream, and
/// the event's outcome is 502. A bundle of some other CA does not help either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_upstream_certificate_is_a_502() {
    let t = TestServer::start_with(Backend::Sqlite, |_| {}).await;
    let ca = TestCa::new("Warden test CA");
    let other_ca = TestCa::new("Some other CA");
    let up = TlsUpstream::start(ca.issue(&["localhost", "127.0.0.1"]), &[H2, HTTP11]).await;
    target(&t, "untrusted", &up.url("localhost"), None).await;
    target(&t, "otherca", &up.url("localhost"), Some(&other_ca.pem())).await;
    target(&t, "trusted", &up.url("localhost"), Some(&ca.pem())).await;
    let key = caller(&t, &["untrusted", "otherca", "trusted"]).await;

    for name in ["untrusted", "otherca"] {
        let (s, h, body) = get(&t, name, "/v1/things", &key).await;
        let detail = assert_certificate_502(s, &h, &body);
        assert!(
            detail.contains("UnknownIssuer") || detail.to_ascii_lowercase().contains("issuer"),
            "{name}: {detail}"
        );
        let e = event_with_outcome(&t, name).await;
        assert_eq!(e["outcome"]["status"], "502", "{e}");
        assert!(e["outcome"]["error"].is_string(), "{e}");
        assert_eq!(e["decision"]["allowed"], true, "{e}");
        assert!(!e.to_string().contains(UPSTREAM_SECRET), "{e}");
    }
    assert_eq!(
        up.served(),
        0,
        "nothing was sent over an unverified connection"
    );
    assert!(
        up.handshakes().iter().all(Result::is_err),
        "{:?}",
        up.handshakes()
    );

    // The same upstream, trusted through the bundle, is fine.
    let (s, _, echo) = get(&t, "trusted", "/v1/things", &key).await;
    assert_eq!(s, StatusCode::OK, "{echo}");
    assert_eq!(echo["headers"]["x-upstream-key"], UPSTREAM_SECRET);
    assert_eq!(up.served(), 1);

    t.stop().await;
}

/// A certificate from the trusted CA but for another host name is refused: 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_host_is_a_502() {
    let t = TestServer::start_with(Backend::Sqlite, |_| {}).await;
    let ca = TestCa::new("Warden test CA");
    let up = TlsUpstream::start(ca.issue(&["other.example"]), &[H2, HTTP11]).await;
    target(&t, "wrongname", &up.url("localhost"), Some(&ca.pem())).await;
    target(&t, "wrongip", &up.url("127.0.0.1"), Some(&ca.pem())).await;
    let key = caller(&t, &["wrongname", "wrongip"]).await;

    for name in ["wrongname", "wrongip"] {
        let (s, h, body) = get(&t, name, "/", &key).await;
        let detail = assert_certificate_502(s, &h, &body);
        assert!(
            detail.contains("other.example") || detail.contains("NotValidForName"),
            "{name}: the detail says which names the certificate is valid for: {detail}"
        );
        let e = event_with_outcome(&t, name).await;
        assert_eq!(e["outcome"]["status"], "502", "{e}");
    }
    assert_eq!(up.served(), 0);

    t.stop().await;
}

/// `ca_bundle` must be PEM certificates: anything else is a 400 naming the field, and no target
/// is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_bundle_must_be_pem() {
    let t = TestServer::start_with(Backend::Sqlite, |_| {}).await;
    let ca = TestCa::new("Warden test CA");
    use base64::Engine as _;
    let not_pem = [
        "not a certificate".to_owned(),
        String::new(),
        // The DER of a real certificate, base64 but without the PEM armour.
        base64::engine::general_purpose::STANDARD.encode(ca.cert.der()),
        // A private key is PEM, but not a certificate.
        ca.key.serialize_pem(),
    ];
    for (i, bundle) in not_pem.iter().enumerate() {
        let name = format!("bad{i}");
        let (s, p) = t
            .post(
                "/v1/targets",
                &t.admin,
                json!({
                    "name": name,
                    "kind": "http",
                    "upstream": "https://localhost:9",
                    "ca_bundle": bundle,
                }),
            )
            .await;
        assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
        assert_eq!(p["field"], "ca_bundle", "{p}");
        let (s, p) = t.get(&format!("/v1/targets/{name}"), &t.admin).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    }

    // A real PEM bundle is accepted and shown only as `custom_ca`.
    let (s, created) = t
        .post(
            "/v1/targets",
            &t.admin,
            json!({
                "name": "good",
                "kind": "http",
                "upstream": "https://localhost:9",
                "ca_bundle": ca.pem(),
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["custom_ca"], true, "{created}");
    assert!(created.get("ca_bundle").is_none(), "{created}");

    t.stop().await;
}

/// PEM armour around something that is not a certificate is not a CA bundle either. Today the
/// API only looks for the `-----BEGIN CERTIFICATE-----` marker, so these are accepted (201) and
/// every request to the target then fails with 502 "target misconfigured: CA bundle: …" from the
/// gateway. Run with `--ignored` once creation parses the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_bundle_with_armoured_garbage_is_refused() {
    let t = TestServer::start_with(Backend::Sqlite, |_| {}).await;
    let ca = TestCa::new("Warden test CA");
    let bundles = [
        // Not base64.
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n".to_owned(),
        // Base64, but not a certificate ("hello world").
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n".to_owned(),
        // A good certificate followed by a truncated one.
        format!("{}-----BEGIN CERTIFICATE-----\nMIIB", ca.pem()),
    ];
    for (i, bundle) in bundles.iter().enumerate() {
        let name = format!("garbled{i}");
        let (s, p) = t
            .post(
                "/v1/targets",
                &t.admin,
                json!({
                    "name": name,
                    "kind": "http",
                    "upstream": "https://localhost:9",
                    "ca_bundle": bundle,
                }),
            )
            .await;
        assert_problem(s, &p, StatusCode::BAD_REQUEST, "validation");
        assert_eq!(p["field"], "ca_bundle", "{p}");
    }

    t.stop().await;
}
