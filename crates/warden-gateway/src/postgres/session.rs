//! One client connection from its first byte to its close: startup negotiation (TLS, GSSAPI
//! refusal, cancel requests), authentication of the service account, the upstream login, the
//! hand-over to [`super::relay`], and the session's open and close events.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use warden_core::event::{
    Action, Actor, ActorKind, AuthMethod, Category, Decision, Event, Outcome, Source, TargetRef,
};
use warden_core::grant::Rule;
use warden_core::{elapsed_micros, TargetKind};
use warden_pgwire::{
    build, decode_startup, parse_password, parse_sasl_initial, read_frame, ErrorFields,
    ScramServer, Startup, Verifier, WireError,
};

use super::relay::{self, SessionContext, SessionCredential};
use super::upstream::{self, BoxIo, Endpoint};
use super::{lock, CancelTarget, LiveSession, PasswordAuth, PgGateway, SessionInfo};
use crate::auth::{AuthFailure, Principal, ServicePrincipal};

/// Largest password message accepted: it arrives before the client is authenticated, so it
/// gets no more room than a key or an access token needs.
const MAX_PASSWORD_MESSAGE: usize = 10_000;

/// How long a client has to finish the startup and login exchange.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Client startup parameters passed on to the upstream. Everything else is dropped: `options`
/// in particular could set `role` or `search_path` behind the gateway's back, and
/// `standard_conforming_strings` where a string literal ends.
const PASSED_PARAMS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
];

/// Why a connection was refused before the relay started: the SQLSTATE and message the client
/// gets in a FATAL ErrorResponse.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<WireError> for Refusal {
    fn from(e: WireError) -> Self {
        Self::new("08P01", format!("invalid startup packet: {e}"))
    }
}

/// A FATAL ErrorResponse.
pub(super) fn fatal(code: &str, message: &str) -> BytesMut {
    let mut buf = BytesMut::new();
    build::error_response(&ErrorFields::new("FATAL", code, message), &mut buf);
    buf
}

async fn refuse(stream: &mut BoxIo, refusal: &Refusal) {
    let _ = stream
        .write_all(&fatal(refusal.code, &refusal.message))
        .await;
    let _ = stream.shutdown().await;
}

/// The startup packet, after TLS (if any) is set up.
struct Started {
    stream: BoxIo,
    buf: BytesMut,
    params: Vec<(String, String)>,
    tls: bool,
}

/// How the startup phase ended.
enum Negotiated {
    /// A StartupMessage: go on to log in.
    Started(Started),
    /// The connection is done (a cancel request, a failed TLS handshake, a timeout).
    Done,
    /// Refused with a FATAL error.
    Refused(BoxIo, Refusal),
}

/// Serves one connection to its end.
pub async fn run(
    gw: Arc<PgGateway>,
    tcp: TcpStream,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
) {
    let negotiated = tokio::time::timeout(LOGIN_TIMEOUT, negotiate(&gw, Box::new(tcp)))
        .await
        .unwrap_or(Negotiated::Done);
    let Started {
        mut stream,
        mut buf,
        params,
        tls,
    } = match negotiated {
        Negotiated::Started(s) => s,
        Negotiated::Done => return,
        Negotiated::Refused(mut stream, r) => return refuse(&mut stream, &r).await,
    };
    // Warden parses statements as UTF-8; an encoding whose multi-byte characters can contain
    // quote or backslash bytes (SJIS, BIG5, GBK…) would let a statement mean one thing to the
    // parser and another to PostgreSQL.
    if let Some(encoding) = param(&params, "client_encoding") {
        let e = encoding.to_ascii_lowercase().replace(['-', '_'], "");
        if !matches!(e.as_str(), "utf8" | "unicode" | "sqlascii") {
            let r = Refusal::new(
                "22023",
                format!("client_encoding {encoding} is not supported through Warden; use UTF8"),
            );
            return refuse(&mut stream, &r).await;
        }
    }
    if gw.config.require_tls && !tls && !peer.ip().is_loopback() {
        let r = Refusal::new(
            "28000",
            "Warden requires TLS for connections from other hosts (connect with sslmode=require)",
        );
        return refuse(&mut stream, &r).await;
    }
    let source = Source {
        ip: Some(peer.ip().to_string()),
        port: Some(peer.port()),
        user_agent: param(&params, "application_name").map(|s| s.chars().take(256).collect()),
    };
    let login = tokio::time::timeout(
        LOGIN_TIMEOUT,
        login(&gw, &mut stream, &mut buf, &params, &source),
    )
    .await;
    let (principal, target_name, credential) = match login {
        Err(_) => return refuse(&mut stream, &Refusal::new("08P01", "login timed out")).await,
        Ok(Err(r)) => return refuse(&mut stream, &r).await,
        Ok(Ok(l)) => l,
    };
    let who = Who {
        principal,
        credential,
        source,
        target_name,
    };
    open(gw, stream, buf, peer, who, &params, stopped).await;
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads startup packets until the StartupMessage, answering SSLRequest and GSSENCRequest and
/// relaying CancelRequest.
async fn negotiate(gw: &PgGateway, mut stream: BoxIo) -> Negotiated {
    let mut buf = BytesMut::with_capacity(1024);
    let mut tls = false;
    loop {
        let packet = loop {
            match decode_startup(&mut buf, gw.config.max_message_bytes) {
                Ok(Some(p)) => break p,
                Ok(None) => {}
                Err(e) => return Negotiated::Refused(stream, e.into()),
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Negotiated::Done,
                Ok(_) => {}
            }
        };
        let answer: &[u8] = match packet {
            Startup::SslRequest if !buf.is_empty() => {
                // Bytes sent before the TLS handshake would be read as if they had come
                // through it (CVE-2021-23214).
                let r = Refusal::new("08P01", "received unencrypted data after SSL request");
                return Negotiated::Refused(stream, r);
            }
            Startup::SslRequest => match (&gw.tls, tls) {
                (Some(config), false) => {
                    if stream.write_all(b"S").await.is_err() {
                        return Negotiated::Done;
                    }
                    match tokio_rustls::TlsAcceptor::from(config.clone())
                        .accept(stream)
                        .await
                    {
                        Ok(accepted) => stream = Box::new(accepted),
                        Err(e) => {
                            tracing::debug!(error = %e, "client TLS handshake failed");
                            return Negotiated::Done;
                        }
                    }
                    tls = true;
                    continue;
                }
                _ => b"N",
            },
            Startup::GssEncRequest => b"N",
            Startup::Cancel { pid, secret } => {
                let target = lock(&gw.cancel_keys).get(&(pid, secret)).cloned();
                if let Some(t) = target {
                    if let Err(e) = upstream::cancel(t.addr, t.pid, t.secret).await {
                        tracing::warn!(error = %e, "could not relay a cancel request");
                    }
                }
                return Negotiated::Done;
            }
            Startup::Startup { minor, params, .. } => {
                let unsupported: Vec<&str> = params
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| n.starts_with("_pq_."))
                    .collect();
                if minor > 0 || !unsupported.is_empty() {
                    let mut out = BytesMut::new();
                    build::negotiate_protocol_version(0, &unsupported, &mut out);
                    if stream.write_all(&out).await.is_err() {
                        return Negotiated::Done;
                    }
                }
                let params = params
                    .into_iter()
                    .filter(|(n, _)| !n.starts_with("_pq_."))
                    .collect();
                return Negotiated::Started(Started {
                    stream,
                    buf,
                    params,
                    tls,
                });
            }
        };
        if stream.write_all(answer).await.is_err() {
            return Negotiated::Done;
        }
    }
}

/// Which account and target the client names: `user=ACCOUNT` with `database=TARGET`, or
/// `user=ACCOUNT@TARGET`.
fn names(params: &[(String, String)]) -> Result<(String, String), Refusal> {
    let user = param(params, "user")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Refusal::new("28000", "no user name given: connect with user=ACCOUNT"))?;
    if let Some((account, target)) = user.split_once('@') {
        return Ok((account.to_owned(), target.to_owned()));
    }
    let target = param(params, "database").filter(|d| !d.is_empty() && *d != user);
    match target {
        Some(t) => Ok((user.to_owned(), t.to_owned())),
        None => Err(Refusal::new(
            "3D000",
            "no target named: connect with dbname=TARGET (or user=ACCOUNT@TARGET)",
        )),
    }
}

/// Asks for the password and authenticates the service account.
async fn login(
    gw: &PgGateway,
    stream: &mut BoxIo,
    buf: &mut BytesMut,
    params: &[(String, String)],
    source: &Source,
) -> Result<(ServicePrincipal, String, SessionCredential), Refusal> {
    let (account, target) = names(params)?;
    let failed = || {
        Refusal::new(
            "28P01",
            format!("password authentication failed for user \"{account}\""),
        )
    };
    let target_ref = TargetRef {
        kind: "postgres".to_owned(),
        name: target.clone(),
    };
    let record_failure = |actor: Actor, reason: String, code: &str| {
        let mut e = Event::new(
            gw.door.clock.now(),
            actor,
            source.clone(),
            Action {
                category: Category::Auth,
                verb: "postgres.authenticate".to_owned(),
                resource: Some(format!("account/{account}")),
                detail: Some(serde_json::json!({ "failure": code })),
            },
            Decision::deny(reason),
        );
        e.target = Some(target_ref.clone());
        e.outcome = Some(Outcome {
            status: "28P01".to_owned(),
            ..Outcome::default()
        });
        e
    };
    let (verdict, credential) = match gw.config.password_auth {
        PasswordAuth::Cleartext => {
            let password = cleartext(stream, buf).await?;
            let verdict = gw.door.auth.authenticate(Some(&password)).await;
            (verdict, SessionCredential::Presented(password))
        }
        PasswordAuth::ScramSha256 => match scram(gw, stream, buf, &account).await? {
            Ok(key_id) => {
                let verdict = gw
                    .door
                    .auth
                    .authenticate_proven(&key_id)
                    .await
                    .map(Principal::Service);
                (verdict, SessionCredential::Proven(key_id))
            }
            Err(reason) => {
                let actor = Actor {
                    kind: ActorKind::Service,
                    account: Some(account.clone()),
                    key_id: None,
                    auth: AuthMethod::None,
                };
                record(gw, record_failure(actor, reason, "wrong_secret")).await?;
                return Err(failed());
            }
        },
    };
    match verdict {
        Ok(Principal::Service(p)) if p.account == account => Ok((p, target, credential)),
        Ok(Principal::Service(p)) => {
            let reason = format!("the key belongs to account {}, not {account}", p.account);
            record(gw, record_failure(p.actor(), reason, "wrong_account")).await?;
            Err(failed())
        }
        Ok(Principal::Admin(a)) => {
            let reason = "admin tokens cannot open database sessions".to_owned();
            record(gw, record_failure(a.actor(), reason, "admin_token")).await?;
            Err(failed())
        }
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "credential store unavailable");
            Err(Refusal::new(
                "57P03",
                "Warden cannot verify credentials right now",
            ))
        }
        Err(f) => {
            let mut actor = f.actor();
            if actor.account.is_none() {
                actor.account = Some(account.clone());
            }
            record(gw, record_failure(actor, f.to_string(), f.code())).await?;
            Err(failed())
        }
    }
}

/// Asks for a cleartext password and reads it.
async fn cleartext(stream: &mut BoxIo, buf: &mut BytesMut) -> Result<String, Refusal> {
    let mut out = BytesMut::new();
    build::auth_cleartext(&mut out);
    stream.write_all(&out).await.map_err(WireError::from)?;
    let body = password_message(stream, buf).await?;
    Ok(parse_password(&body)?)
}

async fn password_message(stream: &mut BoxIo, buf: &mut BytesMut) -> Result<bytes::Bytes, Refusal> {
    let frame = read_frame(stream, buf, MAX_PASSWORD_MESSAGE)
        .await?
        .ok_or_else(|| Refusal::new("08P01", "connection closed during login"))?;
    if frame.tag != b'p' {
        return Err(Refusal::new("08P01", "expected a password message"));
    }
    Ok(frame.body)
}

/// A SCRAM-SHA-256 exchange against the verifiers of `account`'s usable keys: `Ok(key_id)` of
/// the key the client proved it holds, or `Err(why)` when the proof fails. An unknown account
/// goes through the same exchange with no candidates, so it fails the same way.
async fn scram(
    gw: &PgGateway,
    stream: &mut BoxIo,
    buf: &mut BytesMut,
    account: &str,
) -> Result<Result<String, String>, Refusal> {
    let mut out = BytesMut::new();
    build::auth_sasl(&[warden_pgwire::scram::SCRAM_SHA_256], &mut out);
    stream.write_all(&out).await.map_err(WireError::from)?;
    let body = password_message(stream, buf).await?;
    let (mechanism, first) = parse_sasl_initial(&body)?;
    if mechanism != warden_pgwire::scram::SCRAM_SHA_256 {
        return Err(Refusal::new(
            "28000",
            format!("SASL mechanism {mechanism} is not supported; use SCRAM-SHA-256"),
        ));
    }
    let salt = super::scram_salt(&gw.door.redactor, account);
    let (server, server_first) = ScramServer::start(
        &first,
        &salt,
        warden_pgwire::scram::DEFAULT_ITERATIONS,
        &mut rand::thread_rng(),
    )
    .map_err(|e| Refusal::new("08P01", format!("SCRAM: {e}")))?;
    out.clear();
    build::auth_sasl_continue(&server_first, &mut out);
    stream.write_all(&out).await.map_err(WireError::from)?;
    let client_final = password_message(stream, buf).await?;
    let candidates = match gw.door.auth.scram_candidates(account).await {
        Ok(c) => c,
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "credential store unavailable");
            return Err(Refusal::new(
                "57P03",
                "Warden cannot verify credentials right now",
            ));
        }
        Err(_) => Vec::new(),
    };
    let verifiers: Vec<Verifier> = candidates
        .iter()
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    match server.finish(&client_final, &verifiers) {
        Ok((index, server_final)) => {
            out.clear();
            build::auth_sasl_final(&server_final, &mut out);
            stream.write_all(&out).await.map_err(WireError::from)?;
            Ok(Ok(candidates[index].0.clone()))
        }
        Err(e) => Ok(Err(format!("SCRAM-SHA-256 proof failed: {e}"))),
    }
}

/// Records an event, refusing the connection if the ledger cannot (fail closed).
async fn record(gw: &PgGateway, event: Event) -> Result<Uuid, Refusal> {
    let id = event.id;
    gw.door.ledger.record(event).await.map_err(|e| {
        Refusal::new(
            "57P03",
            format!("Warden's audit ledger cannot record this session: {e}"),
        )
    })?;
    Ok(id)
}

/// A logged-in client.
struct Who {
    principal: ServicePrincipal,
    credential: SessionCredential,
    source: Source,
    target_name: String,
}

async fn open(
    gw: Arc<PgGateway>,
    mut stream: BoxIo,
    buf: BytesMut,
    peer: SocketAddr,
    who: Who,
    params: &[(String, String)],
    stopped: watch::Receiver<bool>,
) {
    let Who {
        principal,
        credential,
        source,
        target_name,
    } = who;
    let started = Instant::now();
    let session_id = Uuid::now_v7();
    let actor = principal.actor();
    let target_ref = TargetRef {
        kind: "postgres".to_owned(),
        name: target_name.clone(),
    };
    let event = |verb: &str, decision: Decision| {
        let mut e = Event::new(
            gw.door.clock.now(),
            actor.clone(),
            source.clone(),
            Action {
                category: Category::Sql,
                verb: verb.to_owned(),
                resource: Some(format!("target/{target_name}")),
                detail: None,
            },
            decision,
        );
        e.target = Some(target_ref.clone());
        e.session_id = Some(session_id);
        e
    };

    // May this account open a session on this target at all?
    let refusal = async {
        let resolved = match gw.door.policy.target(&target_name).await {
            Ok(Some(t)) if t.target.kind == TargetKind::Postgres => t,
            Ok(_) => {
                return Err(Refusal::new(
                    "3D000",
                    format!("target \"{target_name}\" does not exist (or is not a database)"),
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, target = %target_name, "cannot resolve target");
                return Err(Refusal::new(
                    "57P03",
                    "Warden cannot read its targets right now",
                ));
            }
        };
        let grants = gw
            .door
            .policy
            .grants(&principal.account, &target_name)
            .await
            .map_err(|_| Refusal::new("57P03", "Warden cannot read its grants right now"))?;
        let now = gw.door.clock.now();
        if !grants
            .iter()
            .any(|g| matches!(g.rule, Rule::Sql(_)) && g.is_active(now))
        {
            return Err(Refusal::new(
                "42501",
                format!(
                    "account {} has no grant on target {target_name}",
                    principal.account
                ),
            ));
        }
        if let Some(limit) = gw.config.max_sessions_per_account {
            let open = lock(&gw.sessions)
                .values()
                .filter(|s| s.info.account == principal.account)
                .count();
            if open >= limit {
                return Err(Refusal::new(
                    "53300",
                    format!(
                        "account {} already has {open} sessions open (the limit is {limit})",
                        principal.account
                    ),
                ));
            }
        }
        Ok(resolved)
    }
    .await;
    let resolved = match refusal {
        Ok(r) => r,
        Err(r) => {
            let mut e = event("session.open", Decision::deny(r.message.clone()));
            e.outcome = Some(Outcome {
                status: r.code.to_owned(),
                ..Outcome::default()
            });
            if let Err(ledger) = record(&gw, e).await {
                return refuse(&mut stream, &ledger).await;
            }
            return refuse(&mut stream, &r).await;
        }
    };
    let open_id = match record(
        &gw,
        event(
            "session.open",
            Decision::allow("the account holds grants on this target"),
        ),
    )
    .await
    {
        Ok(id) => id,
        Err(r) => return refuse(&mut stream, &r).await,
    };

    // Log in upstream.
    let connected = async {
        let endpoint = Endpoint::parse(&resolved.target.upstream)?;
        let tls = gw.upstream_tls(resolved.target.ca_bundle.as_deref())?;
        let passed: Vec<(String, String)> = params
            .iter()
            .filter(|(n, _)| PASSED_PARAMS.contains(&n.as_str()))
            .cloned()
            .collect();
        upstream::connect(
            &endpoint,
            &resolved.credentials,
            tls,
            &passed,
            gw.config.connect_timeout,
            gw.config.max_message_bytes,
        )
        .await
    }
    .await;
    let upstream = match connected {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, target = %target_name, "upstream login failed");
            record_outcome(&gw, open_id, "08006", Some(e.to_string()), started);
            let r = Refusal::new(
                "08006",
                format!("Warden cannot connect to target {target_name}: {e}"),
            );
            return refuse(&mut stream, &r).await;
        }
    };
    record_outcome(&gw, open_id, "ok", None, started);

    // Tell the client it is in, with a cancel key of Warden's own.
    let (pid, secret) = new_cancel_key(&gw, upstream.addr, upstream.backend_key);
    let mut out = BytesMut::new();
    build::auth_ok(&mut out);
    for (name, value) in &upstream.parameters {
        build::parameter_status(name, value, &mut out);
    }
    build::backend_key_data(pid, secret, &mut out);
    build::ready_for_query(b'I', &mut out);
    if stream.write_all(&out).await.is_err() {
        lock(&gw.cancel_keys).remove(&(pid, secret));
        return;
    }

    let statements = Arc::new(AtomicU64::new(0));
    let kill = Arc::new(Notify::new());
    lock(&gw.sessions).insert(
        session_id,
        LiveSession {
            info: SessionInfo {
                id: session_id,
                account: principal.account.clone(),
                key_id: principal.key_id.clone(),
                target: target_name.clone(),
                client: peer.to_string(),
                application: source.user_agent.clone(),
                started_at: gw.door.clock.now(),
                statements: 0,
            },
            statements: statements.clone(),
            kill: kill.clone(),
        },
    );
    let context = SessionContext {
        session_id,
        actor: actor.clone(),
        source: source.clone(),
        target: target_ref.clone(),
        account: principal.account.clone(),
        credential,
        statements,
        cancel: CancelTarget {
            addr: upstream.addr,
            pid: upstream.backend_key.0,
            secret: upstream.backend_key.1,
        },
    };
    let ended = relay::run(gw.clone(), context, stream, buf, upstream, kill, stopped).await;
    lock(&gw.sessions).remove(&session_id);
    lock(&gw.cancel_keys).remove(&(pid, secret));

    let mut close = event("session.close", Decision::allow(ended.reason.clone()));
    close.outcome = Some(Outcome {
        status: ended.status.to_owned(),
        error: ended.error,
        rows: None,
        bytes_in: Some(ended.bytes_in),
        bytes_out: Some(ended.bytes_out),
        duration_us: Some(elapsed_micros(started)),
    });
    close.action.detail = Some(serde_json::json!({ "statements": ended.statements }));
    if let Err(e) = gw.door.ledger.record(close).await {
        tracing::error!(error = %e, session = %session_id, "could not record a session's close");
    }
}

fn record_outcome(
    gw: &Arc<PgGateway>,
    event_id: Uuid,
    status: &str,
    error: Option<String>,
    started: Instant,
) {
    let outcome = Outcome {
        status: status.to_owned(),
        error,
        duration_us: Some(elapsed_micros(started)),
        ..Outcome::default()
    };
    gw.door.ledger.park_outcome(event_id, outcome);
}

/// A fresh cancel key for the client, mapped to the upstream backend's.
fn new_cancel_key(gw: &PgGateway, addr: SocketAddr, backend: (i32, i32)) -> (i32, i32) {
    let mut keys = lock(&gw.cancel_keys);
    loop {
        let pid = rand::random::<i32>().wrapping_abs().max(1);
        let secret = rand::random::<i32>();
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry((pid, secret)) {
            slot.insert(CancelTarget {
                addr,
                pid: backend.0,
                secret: backend.1,
            });
            return (pid, secret);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn account_and_target_from_user_or_database() {
        let (a, t) = names(&p(&[("user", "etl"), ("database", "orders")]))
            .ok()
            .unwrap();
        assert_eq!((a.as_str(), t.as_str()), ("etl", "orders"));
        let (a, t) = names(&p(&[("user", "etl@orders"), ("database", "x")]))
            .ok()
            .unwrap();
        assert_eq!((a.as_str(), t.as_str()), ("etl", "orders"));
        // libpq defaults the database to the user name: that names no target.
        assert_eq!(
            names(&p(&[("user", "etl"), ("database", "etl")]))
                .err()
                .unwrap()
                .code,
            "3D000"
        );
        assert_eq!(names(&p(&[("database", "x")])).err().unwrap().code, "28000");
    }
}
