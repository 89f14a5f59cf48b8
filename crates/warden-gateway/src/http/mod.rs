//! The HTTP front door: `http://warden:8471/<target>/<path>`.
//!
//! For each request, in this order (each step can end it):
//! 1. authenticate the bearer (API key in `Authorization: Bearer` or `X-Warden-Key`, or a
//!    token) — 401, recorded as an `auth` event;
//! 2. resolve the target — 404;
//! 3. apply the per-account rate limit, when configured — 429;
//! 4. decide against the account's grants (deny by default) — 403 naming what is missing;
//! 5. record the event on the ledger *before* forwarding — 503 if the ledger cannot write;
//! 6. forward, streaming both bodies, with the caller's credentials swapped for the target's;
//!    502 if the upstream cannot be reached, 504 if it does not answer in time;
//! 7. record the outcome (status, bytes each way, duration) when the response body ends.
//!
//! Denied and refused requests are recorded too, with their outcome in the same entry.

mod body;
mod forward;
mod problem;
mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::header;
use ipnet::IpNet;
use uuid::Uuid;
use warden_core::event::{Action, Actor, Category, Decision, Event, Outcome, Source, TargetRef};
use warden_core::{decide_http, elapsed_micros, Redactor};

pub use problem::GatewayError;

use crate::auth::{self, AuthFailure, Principal};
use crate::FrontDoor;
use body::Counted;
use forward::WARDEN_KEY_HEADER;
use upstream::Upstreams;

/// Settings of the HTTP front door.
#[derive(Debug, Clone)]
pub struct HttpGatewayConfig {
    /// Longest wait to connect to an upstream.
    pub connect_timeout: Duration,
    /// Longest wait for an upstream's response head.
    pub response_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Query parameters whose values are recorded only as keyed hashes.
    pub sensitive_params: Vec<String>,
    /// Requests per second allowed per account (with a burst of the same size); off when `None`.
    pub rate_limit: Option<NonZeroU32>,
}

/// The HTTP gateway's shared state.
pub struct HttpGateway {
    door: FrontDoor,
    config: HttpGatewayConfig,
    upstreams: Upstreams,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl HttpGateway {
    /// A gateway over the shared front-door state.
    pub fn new(door: FrontDoor, config: HttpGatewayConfig) -> Self {
        let limiter = config
            .rate_limit
            .map(|n| RateLimiter::keyed(Quota::per_second(n).allow_burst(n)));
        Self {
            door,
            upstreams: Upstreams::new(config.connect_timeout),
            limiter,
            config,
        }
    }

    /// The gateway as a router, to be served with connect info (`SocketAddr`).
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self)
    }
}

/// Splits `/<target>/<rest>` into the target's name and the path below it (at least `/`).
fn split_target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (name, below) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!name.is_empty()).then_some((name, below))
}

/// Whether `path` has a `.` or `..` segment, literal or percent-encoded. Grants match the path as
/// sent, and an upstream may resolve dot segments (RFC 3986 §5.2.4), so `/v1/public/../admin`
/// would pass a grant for `/v1/public/**` and reach `/v1/admin`; such paths are refused.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// One request's context, for building its events.
struct Call {
    source: Source,
    method: String,
    path: String,
    query: Option<String>,
    target: Option<TargetRef>,
    started: Instant,
}

impl Call {
    fn event(&self, gw: &HttpGateway, actor: Actor, decision: Decision) -> Event {
        let mut e = Event::new(
            gw.door.clock.now(),
            actor,
            self.source.clone(),
            Action {
                category: Category::Http,
                verb: self.method.clone(),
                resource: Some(self.path.clone()),
                detail: self
                    .query
                    .as_ref()
                    .map(|q| serde_json::json!({ "query": q })),
            },
            decision,
        );
        e.target = self.target.clone();
        e
    }

    fn elapsed_us(&self) -> u64 {
        elapsed_micros(self.started)
    }
}

/// Records a refused request (its outcome in the same entry) and answers with `error`.
async fn refuse(gw: &HttpGateway, call: &Call, actor: Actor, error: GatewayError) -> Response {
    let mut event = call.event(gw, actor, Decision::deny(error.to_string()));
    event.outcome = Some(Outcome {
        status: error.status().as_u16().to_string(),
        error: Some(error.slug().to_owned()),
        duration_us: Some(call.elapsed_us()),
        ..Outcome::default()
    });
    match gw.door.ledger.record(event).await {
        Ok(_) => error.into_response(),
        Err(e) => GatewayError::Ledger(e.to_string()).into_response(),
    }
}

fn redact_query(query: &str, sensitive: &[String], redactor: &Redactor) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if sensitive.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                format!("{k}={}", redactor.hash(v.as_bytes()))
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn handle(
    State(gw): State<Arc<HttpGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let headers = req.headers();
    let client: IpAddr = forward::client_ip(peer.ip(), headers, &gw.config.trusted_proxies);
    let mut call = Call {
        source: Source {
            ip: Some(client.to_string()),
            port: (client == peer.ip()).then_some(peer.port()),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
        },
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req
            .uri()
            .query()
            .map(|q| redact_query(q, &gw.config.sensitive_params, &gw.door.redactor)),
        target: None,
        started: Instant::now(),
    };

    // 1. Who is calling.
    let presented = auth::bearer(headers, Some(WARDEN_KEY_HEADER));
    let principal = match gw.door.auth.authenticate(presented.as_deref()).await {
        Ok(Principal::Service(s)) => s,
        Ok(Principal::Admin(a)) => {
            return refuse(&gw, &call, a.actor(), GatewayError::AdminToken).await;
        }
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "credential store unavailable");
            return GatewayError::Unavailable.into_response();
        }
        Err(failure) => {
            let mut event = call.event(&gw, failure.actor(), Decision::deny(failure.to_string()));
            event.action.category = Category::Auth;
            event.action.verb = "http.authenticate".to_owned();
            let mut detail = failure.detail();
            if let Some(query) = event
                .action
                .detail
                .take()
                .and_then(|d| d.get("query").cloned())
            {
                detail["query"] = query;
            }
            event.action.detail = Some(detail);
            event.outcome = Some(Outcome {
                status: "401".to_owned(),
                ..Outcome::default()
            });
            return match gw.door.ledger.record(event).await {
                Ok(_) => GatewayError::Unauthorized.into_response(),
                Err(e) => GatewayError::Ledger(e.to_string()).into_response(),
            };
        }
    };
    let actor = principal.actor();

    // 2. Where to.
    let Some((target_name, below)) = split_target(req.uri().path()) else {
        return refuse(&gw, &call, actor, GatewayError::NoTarget).await;
    };
    if has_dot_segment(below) {
        return refuse(&gw, &call, actor, GatewayError::DotSegment).await;
    }
    let (target_name, below) = (target_name.to_owned(), below.to_owned());
    let resolved = match gw.door.policy.target(&target_name).await {
        Ok(Some(t)) if t.target.kind == warden_core::TargetKind::Http => t,
        Ok(_) => return refuse(&gw, &call, actor, GatewayError::UnknownTarget(target_name)).await,
        Err(e) => {
            tracing::error!(error = %e, target = %target_name, "cannot resolve target");
            return GatewayError::Unavailable.into_response();
        }
    };
    call.target = Some(TargetRef {
        kind: "http".to_owned(),
        name: target_name.clone(),
    });
    call.path = below.clone();

    // 3. How often.
    if let Some(limiter) = &gw.limiter {
        if limiter.check_key(&principal.account).is_err() {
            return refuse(&gw, &call, actor, GatewayError::RateLimited).await;
        }
    }

    // 4. May it.
    let grants = match gw
        .door
        .policy
        .grants(&principal.account, &target_name)
        .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot read grants");
            return GatewayError::Unavailable.into_response();
        }
    };
    let now = gw.door.clock.now();
    let decision = decide_http(grants.iter(), &call.method, &below, now);
    if !decision.allowed {
        let reason = decision.reason.clone().unwrap_or_default();
        return refuse(&gw, &call, actor, GatewayError::Forbidden(reason)).await;
    }
    if let Some(id) = &decision.grant_id {
        gw.door.policy.note_grant_use(id, now);
    }

    // 5. On the ledger first.
    let event = call.event(&gw, actor, decision);
    let receipt = match gw.door.ledger.record(event).await {
        Ok(r) => r,
        Err(e) => return GatewayError::Ledger(e.to_string()).into_response(),
    };

    // 6. Forward.
    let outcome = OutcomeRecorder::new(gw.clone(), receipt.event_id, call.started);
    forward(&gw, resolved, &below, req, peer, outcome).await
}

/// Records the outcome of a forwarded request once, when dropped: by the response body when it
/// ends, or by the handler when forwarding fails before there is a body.
struct OutcomeRecorder {
    gw: Arc<HttpGateway>,
    event_id: Uuid,
    started: Instant,
    status: u16,
    error: Option<String>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
}

impl OutcomeRecorder {
    fn new(gw: Arc<HttpGateway>, event_id: Uuid, started: Instant) -> Self {
        Self {
            gw,
            event_id,
            started,
            status: 0,
            error: None,
            bytes_in: Arc::new(AtomicU64::new(0)),
            bytes_out: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Drop for OutcomeRecorder {
    fn drop(&mut self) {
        let outcome = Outcome {
            status: self.status.to_string(),
            error: self.error.take(),
            rows: None,
            bytes_in: Some(self.bytes_in.load(Ordering::Relaxed)),
            bytes_out: Some(self.bytes_out.load(Ordering::Relaxed)),
            duration_us: Some(elapsed_micros(self.started)),
        };
        self.gw.door.ledger.park_outcome(self.event_id, outcome);
    }
}

async fn forward(
    gw: &HttpGateway,
    resolved: Arc<crate::policy::ResolvedTarget>,
    below: &str,
    req: Request,
    peer: SocketAddr,
    mut outcome: OutcomeRecorder,
) -> Response {
    let target = &resolved.target;
    let uri = match upstream::uri(&target.upstream, below, req.uri().query()) {
        Ok(u) => u,
        Err(e) => {
            outcome.status = 502;
            outcome.error = Some(e.to_string());
            return e.into_response();
        }
    };
    let client = match gw.upstreams.client(target) {
        Ok(c) => c,
        Err(e) => {
            outcome.status = 502;
            outcome.error = Some(e.to_string());
            return e.into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let upgrade = forward::wants_upgrade(&parts.headers)
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    forward::upstream_request_headers(
        &mut parts.headers,
        peer.ip(),
        &gw.config.trusted_proxies,
        "http",
        &resolved.credentials,
    );
    parts.uri = uri;
    if upgrade.is_none() {
        parts.version = http::Version::HTTP_11;
    }
    let upstream_req = http::Request::from_parts(
        parts,
        Body::new(Counted::new(body, outcome.bytes_in.clone())),
    );

    let response = match tokio::time::timeout(
        gw.config.response_timeout,
        client.request(upstream_req),
    )
    .await
    {
        Err(_) => {
            let e = GatewayError::UpstreamTimeout(gw.config.response_timeout);
            outcome.status = 504;
            outcome.error = Some(e.to_string());
            return e.into_response();
        }
        Ok(Err(e)) => {
            let e = GatewayError::UpstreamUnreachable(upstream::describe(&e));
            outcome.status = 502;
            outcome.error = Some(e.to_string());
            return e.into_response();
        }
        Ok(Ok(r)) => r,
    };
    outcome.status = response.status().as_u16();

    if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = upgrade {
            return upstream::splice_upgrade(response, client_side, outcome);
        }
    }
    let (mut parts, body) = response.into_parts();
    forward::strip_hop_by_hop(&mut parts.headers, false);
    let counter = outcome.bytes_out.clone();
    Response::from_parts(
        parts,
        Body::new(Counted::with_guard(body, counter, outcome)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_the_first_segment() {
        assert_eq!(split_target("/orders/v1/x"), Some(("orders", "/v1/x")));
        assert_eq!(split_target("/orders"), Some(("orders", "/")));
        assert_eq!(split_target("/orders/"), Some(("orders", "/")));
        assert_eq!(split_target("/"), None);
        assert_eq!(split_target(""), None);
    }

    #[test]
    fn dot_segments_are_found_in_any_spelling() {
        for p in ["/a/../b", "/a/..", "/%2e%2E/x", "/a/.%2e", "/./a", "/a/%2E"] {
            assert!(has_dot_segment(p), "{p}");
        }
        for p in ["/a/b", "/a/..b", "/a/.well-known", "/a/%2e%2e%2e", "/"] {
            assert!(!has_dot_segment(p), "{p}");
        }
    }

    #[test]
    fn sensitive_query_values_are_hashed() {
        let r = Redactor::new([3; 32]);
        let q = redact_query(
            "page=2&token=abc&Password=x",
            &["token".into(), "password".into()],
            &r,
        );
        assert!(q.starts_with("page=2&token=hmac-sha256:"));
        assert!(!q.contains("abc") && !q.contains("=x"));
    }
}
