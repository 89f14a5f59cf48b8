//! Delivery to real local receivers on ephemeral ports: an axum server for webhooks and Slack
//! (verifying the HMAC as a receiver would), UDP and TCP sockets for syslog, a temporary
//! directory for JSON-lines files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use figment::providers::{Format, Toml};
use figment::Figment;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use warden_core::{Alert, AlertStatus, Severity, Timestamp};
use warden_sinks::{build, payload, verify_signature, Built, Failure, Sink, SinkConfig, SinkError};

const SECRET: &str = "a-webhook-secret-of-32-bytes-xyz";

fn alert() -> Alert {
    Alert {
        id: uuid::Uuid::now_v7(),
        detector: "new_source_network".into(),
        severity: Severity::High,
        status: AlertStatus::Open,
        account: Some("billing-etl".into()),
        target: Some("shop".into()),
        subject: "203.0.113.0/24".into(),
        summary: "billing-etl used from a new network 203.0.113.0/24".into(),
        count: 3,
        first_seen: Timestamp::from_micros(1_795_766_400_000_000),
        last_seen: Timestamp::from_micros(1_795_766_460_000_000),
        seqs: vec![7, 9, 12],
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        note: None,
    }
}

fn config(v: Value) -> SinkConfig {
    serde_json::from_value(v).unwrap()
}

/// One request as the receiver saw it, with the receiver's verdict on its signature.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    signature_ok: bool,
}

struct Receiver {
    status: StatusCode,
    delay: Duration,
    seen: mpsc::UnboundedSender<Received>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signature_ok = verify_signature(
        SECRET.as_bytes(),
        &header("x-warden-timestamp"),
        &body,
        &header("x-warden-signature"),
    );
    let _ = r.seen.send(Received {
        headers,
        body,
        signature_ok,
    });
    tokio::time::sleep(r.delay).await;
    r.status
}

/// An HTTP receiver on an ephemeral port answering `status` after `delay`; returns its URL and
/// the requests it gets.
async fn receiver(status: u16, delay: Duration) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(Receiver {
        status: StatusCode::from_u16(status).unwrap(),
        delay,
        seen: tx,
    });
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

/// Builds a sink that alerts are delivered to.
fn alert_sink(config: &SinkConfig) -> Sink {
    match build(config).unwrap() {
        Built::Alerts(sink) => sink,
        Built::Events(e) => panic!("{} is not an alert sink", e.name),
    }
}

fn webhook(url: &str, timeout: &str) -> Sink {
    std::env::set_var("WARDEN_SINKS_TEST_SECRET", SECRET);
    alert_sink(&config(json!({
        "kind": "webhook", "name": "hook", "url": url,
        "secret_env": "WARDEN_SINKS_TEST_SECRET", "timeout": timeout,
    })))
}

#[tokio::test]
async fn webhook_delivers_a_signed_payload() {
    let (url, mut seen) = receiver(204, Duration::ZERO).await;
    let sink = webhook(&url, "5s");
    let a = alert();
    sink.deliver(&a, "alert-1:hook").await.unwrap();

    let r = seen.recv().await.unwrap();
    assert!(r.signature_ok, "signature rejected: {:?}", r.headers);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-warden-delivery"], "alert-1:hook");
    let sent: u64 = r.headers["x-warden-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sent) < 60);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, payload(&a));
    assert_eq!(body["alert"]["detector"], "new_source_network");
    assert_eq!(body["ocsf"]["class_uid"], 2004);
}

#[tokio::test]
async fn webhook_non_2xx_is_an_error_with_the_status() {
    let (url, _seen) = receiver(503, Duration::ZERO).await;
    let err = webhook(&url, "5s")
        .deliver(&alert(), "d")
        .await
        .unwrap_err();
    assert_eq!(err.sink, "hook");
    assert!(
        matches!(err.failure, Failure::Status { status: 503, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn hung_endpoint_times_out_within_the_timeout() {
    let (url, _seen) = receiver(200, Duration::from_secs(30)).await;
    let started = Instant::now();
    let err = webhook(&url, "300ms")
        .deliver(&alert(), "d")
        .await
        .unwrap_err();
    assert!(matches!(err.failure, Failure::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn refused_connection_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = webhook(&format!("http://{addr}/hook"), "5s")
        .deliver(&alert(), "d")
        .await
        .unwrap_err();
    assert!(matches!(err.failure, Failure::Http(_)), "{err}");
}

#[tokio::test]
async fn slack_posts_text_and_blocks() {
    let (url, mut seen) = receiver(200, Duration::ZERO).await;
    let sink = alert_sink(&config(json!({"kind": "slack", "name": "ops", "url": url})));
    let mut a = alert();
    a.summary = "<!channel> used from a new network".into();
    sink.deliver(&a, "d").await.unwrap();

    let body: Value = serde_json::from_slice(&seen.recv().await.unwrap().body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("[HIGH] new_source_network: &lt;!channel&gt;"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for expected in [
        "*Severity*\nHIGH",
        "*Detector*\nnew_source_network",
        "*Account*\nbilling-etl",
        "*Count*\n3",
        "*First seen*\n2026-11-27T08:00:00.000000Z",
        "*Last seen*\n2026-11-27T08:01:00.000000Z",
    ] {
        assert!(fields.contains(&expected), "{expected} not in {fields:?}");
    }
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let sink = webhook("https://example.com/hook?token=hidden", "5s");
    let shown = format!("{sink:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("hidden"),
        "{shown}"
    );
    let slack = alert_sink(&config(json!({
        "kind": "slack", "name": "ops", "url": "https://hooks.slack.com/services/T0/B0/XYZ",
    })));
    assert!(!format!("{slack:?}").contains("XYZ"));
}

#[tokio::test]
async fn secret_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let c = |p: &Path| {
        config(
            json!({"kind": "webhook", "name": "hook", "url": "https://example.com/",
            "secret_file": p}),
        )
    };
    assert!(build(&c(&path)).is_ok());
    std::fs::write(&path, "short").unwrap();
    assert!(matches!(
        build(&c(&path)),
        Err(SinkError::WeakSecret { .. })
    ));
    assert!(matches!(
        build(&c(&dir.path().join("missing"))),
        Err(SinkError::SecretFile { .. })
    ));
}

/// An alert whose fields need every SD-PARAM escape.
fn awkward_alert() -> Alert {
    let mut a = alert();
    a.detector = r#"rule:a"b]c\d"#.into();
    a.account = Some("x]y".into());
    a
}

#[tokio::test]
async fn syslog_udp_sends_one_rfc5424_datagram() {
    let collector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sink = alert_sink(&config(json!({
        "kind": "syslog", "name": "siem", "address": collector.local_addr().unwrap().to_string(),
        "facility": "local4", "hostname": "gw1",
    })));
    let a = awkward_alert();
    sink.deliver(&a, "d").await.unwrap();

    let mut buf = vec![0u8; 4096];
    let n = collector.recv(&mut buf).await.unwrap();
    let msg = std::str::from_utf8(&buf[..n]).unwrap();
    // local4 (20) × 8 + err (3).
    assert!(msg.starts_with("<163>1 "), "{msg}");
    let pid = std::process::id();
    assert!(
        msg.contains(&format!(" gw1 warden {pid} alert [warden@32473 ")),
        "{msg}"
    );
    assert!(msg.contains(r#"detector="rule:a\"b\]c\\d""#), "{msg}");
    assert!(msg.contains(r#"account="x\]y""#), "{msg}");
    assert!(msg.contains(&format!(r#"alert="{}""#, a.id)), "{msg}");
    assert!(msg.ends_with(&format!("] {}", a.summary)), "{msg}");
}

/// Reads one octet-counted frame (`LEN SP MSG`).
async fn read_frame(r: &mut BufReader<tokio::net::TcpStream>) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).await.unwrap();
    let len: usize = std::str::from_utf8(&len[..len.len() - 1])
        .unwrap()
        .parse()
        .unwrap();
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg).await.unwrap();
    String::from_utf8(msg).unwrap()
}

#[tokio::test]
async fn syslog_tcp_frames_by_octet_count_and_reconnects() {
    let collector = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = alert_sink(&config(json!({
        "kind": "syslog", "name": "siem", "transport": "tcp",
        "address": collector.local_addr().unwrap().to_string(),
    })));
    let a = awkward_alert();
    sink.deliver(&a, "d").await.unwrap();
    sink.deliver(&alert(), "d").await.unwrap();

    let (conn, _) = collector.accept().await.unwrap();
    let mut conn = BufReader::new(conn);
    let first = read_frame(&mut conn).await;
    assert!(
        first.starts_with("<35>1 ") && first.contains(r#"account="x\]y""#),
        "{first}"
    );
    let second = read_frame(&mut conn).await;
    assert!(second.ends_with(&alert().summary), "{second}");

    // The collector goes away; the next delivery opens a new connection.
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    sink.deliver(&alert(), "d").await.unwrap();
    let (conn, _) = tokio::time::timeout(Duration::from_secs(5), collector.accept())
        .await
        .expect("no reconnection")
        .unwrap();
    let third = read_frame(&mut BufReader::new(conn)).await;
    assert!(third.starts_with("<35>1 "), "{third}");
}

#[tokio::test]
async fn syslog_tcp_without_collector_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let sink = alert_sink(&config(json!({
        "kind": "syslog", "name": "siem", "transport": "tcp", "address": addr.to_string(),
    })));
    let err = sink.deliver(&alert(), "d").await.unwrap_err();
    assert!(matches!(err.failure, Failure::Io(_)), "{err}");
}

#[tokio::test]
async fn jsonl_file_appends_lines_to_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocsf.jsonl");
    let config = config(json!({"kind": "jsonl_file", "name": "siem-file", "path": path}));
    let Built::Events(export) = build(&config).unwrap() else {
        panic!("a jsonl_file sink exports events");
    };
    assert_eq!(export.name, "siem-file");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let event = warden_core::Event::new(
        Timestamp::from_micros(1_795_766_400_000_000),
        warden_core::event::Actor {
            kind: warden_core::event::ActorKind::Service,
            account: Some("billing-etl".into()),
            key_id: None,
            auth: warden_core::event::AuthMethod::ApiKey,
        },
        warden_core::event::Source::default(),
        warden_core::event::Action {
            category: warden_core::event::Category::Http,
            verb: "GET".into(),
            resource: Some("/v1/orders/1".into()),
            detail: None,
        },
        warden_core::event::Decision::allow("grant"),
    );
    let file = &export.file;
    file.append_batch(&[warden_ocsf::event(&event)])
        .await
        .unwrap();
    file.append_batch(&[json!({"n": 1}), json!({"n": 2})])
        .await
        .unwrap();
    file.append_batch(&[]).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["class_uid"], 6003);
    assert_eq!(lines[2], json!({"n": 2}));
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn jsonl_file_in_a_missing_directory_fails_to_build() {
    let c = config(json!({"kind": "jsonl_file", "name": "f", "path": "/nonexistent/dir/x.jsonl"}));
    assert!(matches!(build(&c), Err(SinkError::File { .. })));
}

#[test]
fn toml_example_parses_and_validates() {
    let toml = r#"
        [[alerts.sinks]]
        kind = "webhook"
        name = "soc"
        url = "https://soc.example.com/warden"
        secret_file = "/etc/warden/webhook.key"
        timeout = "5s"
        min_severity = "medium"

        [[alerts.sinks]]
        kind = "slack"
        name = "ops-channel"
        url = "https://hooks.slack.com/services/T000/B000/XXXX"
        min_severity = "high"

        [[alerts.sinks]]
        kind = "syslog"
        name = "siem-syslog"
        address = "siem.internal:6514"
        transport = "tcp"
        facility = "local4"
        app_name = "warden"

        [[alerts.sinks]]
        kind = "jsonl_file"
        name = "siem-file"
        path = "/var/log/warden/ocsf.jsonl"
    "#;
    let sinks: Vec<SinkConfig> = Figment::from(Toml::string(toml))
        .extract_inner("alerts.sinks")
        .unwrap();
    assert_eq!(sinks.len(), 4);
    warden_sinks::validate(&sinks).unwrap();
    assert_eq!(sinks[0].min_severity(), Some(Severity::Medium));
    assert_eq!(sinks[3].min_severity(), None);
}

#[test]
fn wants_follows_min_severity() {
    let sink = alert_sink(&config(json!({
        "kind": "syslog", "name": "s", "address": "127.0.0.1:514", "min_severity": "medium",
    })));
    assert_eq!(sink.name(), "s");
    assert!(!sink.wants(Severity::Low));
    assert!(sink.wants(Severity::Medium));
    assert!(sink.wants(Severity::Critical));
}
