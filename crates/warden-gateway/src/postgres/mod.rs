//! The PostgreSQL front door: programs connect with any PostgreSQL client or driver to port
//! 15432, log in as their service account with their API key (or an access token) as the
//! password, and Warden connects upstream with the target's own credentials, which they never see.
//!
//! Per connection ([`session`]):
//! 1. TLS when the client asks (`SSLRequest`), required for non-loopback clients by default;
//!    `GSSENCRequest` is refused so the client falls back; `CancelRequest` is relayed upstream.
//! 2. Authentication: `user=ACCOUNT` with `dbname=TARGET` (or `user=ACCOUNT@TARGET`), the key or
//!    token as a cleartext password inside TLS. Failures are recorded as `auth` events.
//! 3. The upstream connection ([`upstream`]): Warden's own TLS and SCRAM-SHA-256, md5 or
//!    cleartext as the server asks, with the target's stored login.
//! 4. Relay: every statement, simple or extended protocol, is classified (`warden-sql`),
//!    decided against the account's grants, and recorded on the ledger before it is sent upstream;
//!    its outcome (rows, SQLSTATE, bytes, duration) is recorded when it completes.
//!
//! A denied statement must look to the client exactly like PostgreSQL's own permission error,
//! and the upstream transaction must abort as it would. Warden sends upstream, in place of the
//! denied `Execute`, an `Execute` of a portal that cannot exist; PostgreSQL answers with an error
//! and skips to the next `Sync`, aborting any transaction, and Warden replaces that error with its
//! own `42501` on the way back. Response order is never disturbed because Warden itself never
//! writes to the client mid-stream.

mod relay;
mod rotate;
mod session;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use warden_core::{Redactor, Timestamp};

pub use rotate::RotateError;
pub use warden_pgwire::DEFAULT_MAX_MESSAGE;

use crate::FrontDoor;

/// How database clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAuth {
    /// The API key or an access token as a cleartext password (inside TLS off loopback).
    Cleartext,
    /// SCRAM-SHA-256 against a verifier derived from the API key, so the key never crosses the
    /// wire. Access tokens cannot be used this way.
    ScramSha256,
}

/// The SCRAM salt of `account`'s keys: one per account (all its keys share it, since a client
/// names only the account), derived under the installation's hashing key so it differs from
/// every other installation's.
fn scram_salt(redactor: &Redactor, account: &str) -> [u8; 16] {
    let mac = redactor.mac(format!("warden scram salt\0{account}").as_bytes());
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&mac[..16]);
    salt
}

/// The SCRAM-SHA-256 verifier stored with a new key of `account`.
pub fn scram_verifier(redactor: &Redactor, account: &str, key: &str) -> String {
    warden_pgwire::Verifier::derive(
        key.as_bytes(),
        &scram_salt(redactor, account),
        warden_pgwire::scram::DEFAULT_ITERATIONS,
    )
    .to_string()
}

/// Settings of the PostgreSQL front door.
#[derive(Debug, Clone)]
pub struct PgGatewayConfig {
    /// Largest protocol message accepted from a client or an upstream, in bytes.
    pub max_message_bytes: usize,
    /// Refuse clients that are not on loopback unless they use TLS.
    pub require_tls: bool,
    /// How clients log in.
    pub password_auth: PasswordAuth,
    /// Longest wait to connect to (and log in to) an upstream.
    pub connect_timeout: Duration,
    /// A session idle this long (no statement running) is closed; `None` never.
    pub idle_timeout: Option<Duration>,
    /// Longest a statement may run before Warden cancels it upstream; `None` never.
    pub statement_timeout: Option<Duration>,
    /// Most concurrent sessions per account; `None` unlimited.
    pub max_sessions_per_account: Option<usize>,
    /// On shutdown, how long running statements get to finish.
    pub shutdown_grace: Duration,
}

/// A live session, as `warden sessions list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Session id (also on every event of the session).
    pub id: Uuid,
    /// The service account.
    pub account: String,
    /// The key it logged in with.
    pub key_id: String,
    /// The target database.
    pub target: String,
    /// The client's address.
    pub client: String,
    /// The client's `application_name`, if it gave one.
    pub application: Option<String>,
    /// When it opened.
    pub started_at: Timestamp,
    /// Statements recorded so far.
    pub statements: u64,
}

struct LiveSession {
    info: SessionInfo,
    statements: Arc<AtomicU64>,
    kill: Arc<Notify>,
}

/// Where a client's cancel key leads: the upstream backend to cancel.
#[derive(Debug, Clone)]
struct CancelTarget {
    addr: SocketAddr,
    pid: i32,
    secret: i32,
}

/// The PostgreSQL gateway's shared state.
pub struct PgGateway {
    door: FrontDoor,
    config: PgGatewayConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    sessions: Mutex<HashMap<Uuid, LiveSession>>,
    cancel_keys: Mutex<HashMap<(i32, i32), CancelTarget>>,
    classified: relay::ClassificationCache,
    upstream_tls: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PgGateway {
    /// A gateway over the shared authenticator, policy cache and ledger; `tls` answers clients'
    /// `SSLRequest` (without it they are told TLS is unavailable).
    pub fn new(
        door: FrontDoor,
        config: PgGatewayConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Self {
            door,
            config,
            tls,
            sessions: Mutex::new(HashMap::new()),
            cancel_keys: Mutex::new(HashMap::new()),
            classified: relay::ClassificationCache::default(),
            upstream_tls: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts connections until `stopped` turns true, then lets running statements finish
    /// (up to `shutdown_grace`) and closes every session.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        let sessions_stopped = stopped.clone();
        loop {
            tokio::select! {
                () = async { let _ = stopped.wait_for(|s| *s).await; } => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let gw = self.clone();
                        let stopped = sessions_stopped.clone();
                        tasks.spawn(async move { session::run(gw, stream, peer, stopped).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL gateway accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        let grace = self.config.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tasks.abort_all();
        }
    }

    /// The TLS client configuration for upstreams trusting `ca_bundle` (built once per bundle).
    fn upstream_tls(
        &self,
        ca_bundle: Option<&str>,
    ) -> Result<Arc<rustls::ClientConfig>, upstream::UpstreamError> {
        let key = ca_bundle.unwrap_or_default();
        if let Some(c) = lock(&self.upstream_tls).get(key) {
            return Ok(c.clone());
        }
        let config = Arc::new(
            crate::tls::client_config(ca_bundle).map_err(upstream::UpstreamError::Config)?,
        );
        lock(&self.upstream_tls).insert(key.to_owned(), config.clone());
        Ok(config)
    }

    /// The live sessions, oldest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = lock(&self.sessions)
            .values()
            .map(|s| SessionInfo {
                statements: s.statements.load(Ordering::Relaxed),
                ..s.info.clone()
            })
            .collect();
        out.sort_by_key(|s| s.started_at);
        out
    }

    /// Ends a live session on both sides; false if there is no such session here.
    pub fn kill(&self, id: Uuid) -> bool {
        match lock(&self.sessions).get(&id) {
            Some(s) => {
                s.kill.notify_one();
                true
            }
            None => false,
        }
    }
}
