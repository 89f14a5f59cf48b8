//! Connections to upstreams: one pooled client per target (keep-alive, HTTP/2 where the upstream
//! offers it over TLS), TLS as [`crate::tls`] sets it up, and protocol upgrades (WebSocket)
//! spliced through.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use warden_core::Target;

use super::{GatewayError, OutcomeRecorder};

/// A pooled client to one target.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Clients per target, built on first use.
pub struct Upstreams {
    connect_timeout: Duration,
    clients: Mutex<HashMap<String, UpstreamClient>>,
}

impl Upstreams {
    /// No clients yet.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `target` (rebuilt if its upstream or CA bundle changed).
    pub fn client(&self, target: &Target) -> Result<UpstreamClient, GatewayError> {
        let key = format!(
            "{}\n{}\n{}",
            target.name,
            target.upstream,
            target.ca_bundle.as_deref().unwrap_or("")
        );
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let client = build(target, self.connect_timeout)?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn build(target: &Target, connect_timeout: Duration) -> Result<UpstreamClient, GatewayError> {
    let tls =
        crate::tls::client_config(target.ca_bundle.as_deref()).map_err(GatewayError::BadTarget)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector))
}

/// The upstream URI for `below` (and `query`) under the target's base URL.
pub fn uri(base: &str, below: &str, query: Option<&str>) -> Result<http::Uri, GatewayError> {
    let mut s = String::with_capacity(base.len() + below.len() + query.map_or(0, |q| q.len() + 1));
    s.push_str(base.trim_end_matches('/'));
    s.push_str(below);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s.parse()
        .map_err(|e| GatewayError::BadTarget(format!("cannot form an upstream URL: {e}")))
}

/// A client error in words, without secrets (URIs carry none: credentials go in headers).
pub fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Completes a protocol upgrade: answers the client's 101 and splices the two upgraded
/// connections together; the outcome (bytes each way) is recorded when either side closes.
pub fn splice_upgrade(
    mut response: http::Response<hyper::body::Incoming>,
    client_side: hyper::upgrade::OnUpgrade,
    outcome: OutcomeRecorder,
) -> Response {
    let upstream_side = hyper::upgrade::on(&mut response);
    let (parts, _) = response.into_parts();
    tokio::spawn(async move {
        let outcome = outcome;
        match tokio::try_join!(client_side, upstream_side) {
            Ok((client, upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Ok((up, down)) =
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    outcome.bytes_in.fetch_add(up, Ordering::Relaxed);
                    outcome.bytes_out.fetch_add(down, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "protocol upgrade failed"),
        }
    });
    let mut r = Response::from_parts(parts, Body::empty());
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    r.into_response()
}
