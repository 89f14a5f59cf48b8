//! The relay between a logged-in client and its upstream connection.
//!
//! Two halves run side by side. The *requests* half reads the client's messages, tracks its
//! prepared statements and portals, and for every statement that would run (`Q`, `Execute`,
//! `F`) classifies it, decides it against the account's grants and records it on the ledger
//! before sending it on. The *responses* half relays the upstream's messages, matching each
//! `CommandComplete` or `ErrorResponse` to the statement it ends so the outcome can be recorded.
//! The halves share one queue, in wire order, of what the upstream still owes: statements
//! awaiting completion, denials awaiting their stand-in error, and `Sync` points.
//!
//! Writes are batched: each half flushes only when it has no complete message left to process,
//! so a pipelined batch costs one write, not one per message.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;
use warden_core::event::{Action, Actor, Category, Decision, Event, Outcome, Source, TargetRef};
use warden_core::sql_rule::SqlClass;
use warden_core::{decide_sql, elapsed_micros, SqlDecision};
use warden_pgwire::{
    build, parse_backend, parse_frontend, Backend, ErrorFields, Frame, Frontend, WireError,
};
use warden_sql::Statement;

use super::session::fatal;
use super::upstream::{BoxIo, Upstream};
use super::{lock, CancelTarget, PgGateway};
use crate::auth::{AuthFailure, Principal};

/// Distinct statement texts whose classification is kept; the cache is emptied when full.
const CLASSIFICATION_CACHE_SIZE: usize = 10_000;

/// Classifications by statement text, shared by all sessions: drivers send the same few
/// statements over and over, and parsing is the costliest step of a decision.
#[derive(Default)]
pub struct ClassificationCache(Mutex<HashMap<Arc<str>, Arc<Vec<Statement>>>>);

impl ClassificationCache {
    fn get(&self, sql: &str) -> Arc<Vec<Statement>> {
        if let Some(c) = lock(&self.0).get(sql) {
            return c.clone();
        }
        let classified = Arc::new(warden_sql::classify(sql));
        let mut cache = lock(&self.0);
        if cache.len() >= CLASSIFICATION_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(Arc::from(sql), classified.clone());
        classified
    }
}

/// Who and what a session is, for its events.
pub struct SessionContext {
    /// The session's id.
    pub session_id: Uuid,
    /// The logged-in service account.
    pub actor: Actor,
    /// The client.
    pub source: Source,
    /// The target database.
    pub target: TargetRef,
    /// The account's name.
    pub account: String,
    /// What the session logged in with, re-checked (from the authenticator's cache) before
    /// every statement so that revoking the key or disabling the account ends the session at
    /// its next statement.
    pub credential: SessionCredential,
    /// Statements recorded so far (shown by `warden sessions list`).
    pub statements: Arc<AtomicU64>,
    /// The upstream backend, for cancelling a statement that runs too long.
    pub cancel: CancelTarget,
}

/// What a session logged in with.
pub enum SessionCredential {
    /// An API key or access token, sent as the password.
    Presented(String),
    /// The id of a key the client proved it holds (SCRAM).
    Proven(String),
}

/// How a session ended, for its close event.
pub struct Ended {
    /// `ok`, or the SQLSTATE the session was closed with.
    pub status: &'static str,
    /// Why, in words.
    pub reason: String,
    /// An error, when it ended on one.
    pub error: Option<String>,
    /// Statements recorded.
    pub statements: u64,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
}

/// What the upstream still owes, in wire order.
enum Owed {
    /// A statement that was recorded and sent; ends with `CommandComplete`,
    /// `EmptyQueryResponse`, `PortalSuspended` or `ErrorResponse`.
    Statement {
        event_id: Uuid,
        started: Instant,
        bytes_in: u64,
        bytes_out: u64,
    },
    /// A denied statement: the upstream's error for the stand-in `Execute` is replaced by this
    /// (already encoded) `ErrorResponse`.
    Denial(Bytes),
    /// A `Sync` (or the end of a simple query): ends with `ReadyForQuery`.
    Sync,
}

/// The queue both halves share.
#[derive(Default)]
struct Ledgerbook {
    owed: Mutex<VecDeque<Owed>>,
    /// Serial of the last statement that completed (for statement timeouts).
    completed: AtomicU64,
    /// Signalled whenever the queue empties (for graceful shutdown).
    drained: Notify,
}

/// Something the requests half asks the responses half to do.
enum Control {
    /// Send this FATAL error to the client and stop.
    Close(BytesMut),
}

/// Runs the relay until either side closes, the session is killed or the server stops.
pub async fn run(
    gw: Arc<PgGateway>,
    ctx: SessionContext,
    client: BoxIo,
    client_buf: BytesMut,
    upstream: Upstream,
    kill: Arc<Notify>,
    stopped: watch::Receiver<bool>,
) -> Ended {
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream.stream);
    let book = Arc::new(Ledgerbook::default());
    let (control, control_rx) = mpsc::channel(1);
    let bytes_out = Arc::new(AtomicU64::new(0));
    let mut responses = tokio::spawn(responses(
        gw.clone(),
        upstream_read,
        upstream.leftover,
        client_write,
        book.clone(),
        control_rx,
        bytes_out.clone(),
    ));
    let mut requests = Requests {
        gw: gw.clone(),
        ctx,
        book: book.clone(),
        statements: HashMap::new(),
        portals: HashMap::new(),
        search_path: vec!["public".to_owned()],
        skipping: false,
        denied_portal: format!("warden_denied_{}", Uuid::new_v4().simple()),
        out: BytesMut::with_capacity(8192),
        bytes_in: 0,
        serial: 0,
    };
    let mut input = ClientInput {
        read: client_read,
        buf: client_buf,
    };
    let mut upstream_write = upstream_write;
    let (status, reason, error) = tokio::select! {
        end = requests.serve(&mut input, &mut upstream_write, kill, stopped) => end,
        _ = &mut responses => ("08006", "the database closed the connection".to_owned(), None),
    };
    // Whatever ended it: tell the client why (unless it left), end the upstream session, and
    // let the responses half finish writing.
    if status != "ok" {
        let _ = control.send(Control::Close(fatal(status, &reason))).await;
    } else {
        drop(control);
    }
    let mut bye = BytesMut::new();
    frontend::terminate(&mut bye);
    let _ = upstream_write.write_all(&bye).await;
    let _ = upstream_write.shutdown().await;
    if !responses.is_finished() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut responses).await;
        responses.abort();
    }
    // Statements the upstream never finished.
    let unfinished: Vec<Owed> = lock(&book.owed).drain(..).collect();
    for owed in unfinished {
        if let Owed::Statement {
            event_id, started, ..
        } = owed
        {
            let outcome = Outcome {
                status: "08006".to_owned(),
                error: Some(reason.clone()),
                duration_us: Some(elapsed_micros(started)),
                ..Outcome::default()
            };
            gw.door.ledger.park_outcome(event_id, outcome);
        }
    }
    Ended {
        status,
        reason,
        error,
        statements: requests.ctx.statements.load(Ordering::Relaxed),
        bytes_in: requests.bytes_in,
        bytes_out: bytes_out.load(Ordering::Relaxed),
    }
}

struct ClientInput {
    read: ReadHalf<BoxIo>,
    buf: BytesMut,
}

/// A statement prepared by the client (`Parse`).
struct Prepared {
    classified: Arc<Vec<Statement>>,
}

/// A portal bound by the client (`Bind`).
struct Portal {
    prepared: Option<Arc<Prepared>>,
    params: Vec<Option<String>>,
    statement_name: String,
}

/// The requests half.
struct Requests {
    gw: Arc<PgGateway>,
    ctx: SessionContext,
    book: Arc<Ledgerbook>,
    statements: HashMap<String, Arc<Prepared>>,
    portals: HashMap<String, Portal>,
    /// The session's `search_path`, to resolve unqualified table names.
    search_path: Vec<String>,
    /// After a denial in an extended-protocol batch, the rest of it is dropped until `Sync`,
    /// as PostgreSQL itself skips it after an error.
    skipping: bool,
    /// The portal name of the stand-in `Execute`: random, so no client can bind it.
    denied_portal: String,
    out: BytesMut,
    bytes_in: u64,
    serial: u64,
}

type End = (&'static str, String, Option<String>);

impl Requests {
    async fn serve(
        &mut self,
        input: &mut ClientInput,
        upstream: &mut WriteHalf<BoxIo>,
        kill: Arc<Notify>,
        mut stopped: watch::Receiver<bool>,
    ) -> End {
        let max = self.gw.config.max_message_bytes;
        let idle = self.gw.config.idle_timeout;
        loop {
            // Process every complete message already buffered, then flush once.
            loop {
                let frame = match warden_pgwire::decode_frame(&mut input.buf, max) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return protocol_violation(&e),
                };
                self.bytes_in += frame.len_on_wire() as u64;
                match self.handle(frame).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let _ = upstream.write_all(&self.out).await;
                        return ("ok", "the client closed the session".to_owned(), None);
                    }
                    Err(end) => return end,
                }
            }
            if !self.out.is_empty() {
                if let Err(e) = upstream.write_all(&self.out).await {
                    return (
                        "08006",
                        "lost the connection to the database".to_owned(),
                        Some(e.to_string()),
                    );
                }
                self.out.clear();
            }
            let read = async {
                if input.buf.capacity() - input.buf.len() < 4096 {
                    input.buf.reserve(8192);
                }
                tokio::io::AsyncReadExt::read_buf(&mut input.read, &mut input.buf).await
            };
            let idle_timer = async {
                match idle {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            // Kill and shutdown come first: a session told to end runs nothing more.
            tokio::select! {
                biased;
                () = kill.notified() => {
                    return ("57P01", "terminating connection due to administrator command (warden sessions kill)".to_owned(), None);
                }
                () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    self.drain().await;
                    return ("57P01", "terminating connection because Warden is shutting down".to_owned(), None);
                }
                n = read => match n {
                    Ok(0) | Err(_) => {
                        return ("ok", "the client disconnected".to_owned(), None);
                    }
                    Ok(_) => {}
                },
                // A session waiting on a running statement is not idle: look again later.
                () = idle_timer => {
                    if lock(&self.book.owed).is_empty() {
                        return ("57P05", "terminating connection due to idle-session timeout".to_owned(), None);
                    }
                }
            }
        }
    }

    /// Waits (up to the shutdown grace) for the statements already sent to finish.
    async fn drain(&self) {
        let wait = async {
            loop {
                let notified = self.book.drained.notified();
                if lock(&self.book.owed).is_empty() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(self.gw.config.shutdown_grace, wait).await;
    }

    /// Handles one client message; `Ok(false)` when the client said goodbye.
    async fn handle(&mut self, frame: Frame) -> Result<bool, End> {
        let message = parse_frontend(&frame).map_err(|e| protocol_violation(&e))?;
        if self.skipping && !matches!(message, Frontend::Sync | Frontend::Terminate) {
            return Ok(true);
        }
        match message {
            Frontend::Query(sql) => {
                let classified = self.gw.classified.get(sql);
                self.query(&frame, &classified).await?;
                return Ok(true);
            }
            Frontend::Parse { name, query, .. } => {
                let classified = self.gw.classified.get(query);
                self.statements
                    .insert(name.to_owned(), Arc::new(Prepared { classified }));
            }
            Frontend::Bind {
                portal,
                statement,
                params,
                ..
            } => {
                if portal == self.denied_portal {
                    return Err((
                        "08P01",
                        "protocol violation: reserved portal name".to_owned(),
                        None,
                    ));
                }
                let hashed = params
                    .iter()
                    .map(|p| p.as_ref().map(|v| self.gw.door.redactor.hash(v)))
                    .collect();
                self.portals.insert(
                    portal.to_owned(),
                    Portal {
                        prepared: self.statements.get(statement).cloned(),
                        params: hashed,
                        statement_name: statement.to_owned(),
                    },
                );
            }
            Frontend::Execute { portal, .. } => {
                self.execute(&frame, portal).await?;
                return Ok(true);
            }
            Frontend::Close { kind, name } => {
                match kind {
                    warden_pgwire::Target::Statement => self.statements.remove(name),
                    warden_pgwire::Target::Portal => {
                        self.portals.remove(name);
                        None
                    }
                };
            }
            Frontend::Sync => {
                self.skipping = false;
                lock(&self.book.owed).push_back(Owed::Sync);
            }
            Frontend::FunctionCall { function, .. } => {
                // The fast-path interface calls functions by OID, out of sight of any SQL
                // grant; nothing modern needs it.
                let reason = format!(
                    "the fast-path function call interface (function {function}) is not allowed through Warden"
                );
                self.deny_and_sync(&reason);
                return Ok(true);
            }
            Frontend::Terminate => return Ok(false),
            Frontend::Password(_) => {
                return Err((
                    "08P01",
                    "protocol violation: password message after login".to_owned(),
                    None,
                ))
            }
            Frontend::Unknown(tag) => {
                return Err((
                    "08P01",
                    format!("invalid frontend message type {tag:#04x}"),
                    None,
                ))
            }
            Frontend::Describe { .. }
            | Frontend::Flush
            | Frontend::CopyData(_)
            | Frontend::CopyDone
            | Frontend::CopyFail(_) => {}
        }
        frame.encode_to(&mut self.out);
        Ok(true)
    }

    /// A simple query: every statement in it must be allowed, or none runs.
    async fn query(&mut self, frame: &Frame, classified: &[Statement]) -> Result<(), End> {
        let mut decisions = Vec::with_capacity(classified.len());
        for statement in classified {
            let d = self.decide(statement).await?;
            if !d.decision.allowed {
                let event = self.event(statement, d.decision.clone(), None, Vec::new());
                self.record(event).await?;
                let reason = d.decision.reason.unwrap_or_default();
                self.deny_and_sync(&reason);
                return Ok(());
            }
            decisions.push(d);
        }
        let mut owed = Vec::with_capacity(classified.len() + 1);
        for (statement, d) in classified.iter().zip(decisions) {
            self.note_use(&d);
            let event = self.event(statement, d.decision, None, Vec::new());
            let event_id = self.record(event).await?;
            self.track_setting(statement);
            owed.push(self.owed_statement(event_id, frame.len_on_wire() as u64));
        }
        owed.push(Owed::Sync);
        lock(&self.book.owed).extend(owed);
        frame.encode_to(&mut self.out);
        Ok(())
    }

    /// An `Execute`: the portal's statement is decided and recorded each time it runs.
    async fn execute(&mut self, frame: &Frame, portal_name: &str) -> Result<(), End> {
        let Some(portal) = self.portals.get(portal_name) else {
            // Unknown portal: the upstream answers with its own error.
            frame.encode_to(&mut self.out);
            return Ok(());
        };
        let Some(prepared) = portal.prepared.clone() else {
            frame.encode_to(&mut self.out);
            return Ok(());
        };
        let Some(statement) = prepared.classified.first() else {
            // An empty query: nothing runs, nothing to record.
            frame.encode_to(&mut self.out);
            return Ok(());
        };
        let params = portal.params.clone();
        let name = (!portal.statement_name.is_empty()).then(|| portal.statement_name.clone());
        let d = self.decide(statement).await?;
        if !d.decision.allowed {
            let event = self.event(statement, d.decision.clone(), name, params);
            self.record(event).await?;
            let reason = d.decision.reason.unwrap_or_default();
            self.deny(&reason);
            self.skipping = true;
            return Ok(());
        }
        self.note_use(&d);
        let event = self.event(statement, d.decision, name, params);
        let event_id = self.record(event).await?;
        self.track_setting(statement);
        let owed = self.owed_statement(event_id, frame.len_on_wire() as u64);
        lock(&self.book.owed).push_back(owed);
        frame.encode_to(&mut self.out);
        Ok(())
    }

    fn owed_statement(&mut self, event_id: Uuid, bytes_in: u64) -> Owed {
        self.serial += 1;
        self.ctx.statements.fetch_add(1, Ordering::Relaxed);
        if let Some(limit) = self.gw.config.statement_timeout {
            let (book, serial, cancel) = (self.book.clone(), self.serial, self.ctx.cancel.clone());
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                if book.completed.load(Ordering::Relaxed) < serial {
                    let _ = super::upstream::cancel(cancel.addr, cancel.pid, cancel.secret).await;
                }
            });
        }
        Owed::Statement {
            event_id,
            started: Instant::now(),
            bytes_in,
            bytes_out: 0,
        }
    }

    /// Queues the stand-in for a denied statement: an `Execute` of a portal that cannot exist,
    /// whose error the responses half replaces with `reason` as SQLSTATE 42501.
    fn deny(&mut self, reason: &str) {
        let mut error = BytesMut::new();
        let fields = ErrorFields::new(
            "ERROR",
            "42501",
            format!("permission denied by Warden: {reason}"),
        );
        build::error_response(&fields, &mut error);
        lock(&self.book.owed).push_back(Owed::Denial(error.freeze()));
        // Writing to a BytesMut cannot fail; the name is ASCII without NUL.
        let _ = frontend::execute(&self.denied_portal, 0, &mut self.out);
    }

    /// A denial that ends its own batch (a simple query or a function call).
    fn deny_and_sync(&mut self, reason: &str) {
        self.deny(reason);
        frontend::sync(&mut self.out);
        lock(&self.book.owed).push_back(Owed::Sync);
    }

    async fn decide(&self, statement: &Statement) -> Result<SqlDecision, End> {
        let verdict = match &self.ctx.credential {
            SessionCredential::Presented(p) => self.gw.door.auth.authenticate(Some(p)).await,
            SessionCredential::Proven(key_id) => self
                .gw
                .door
                .auth
                .authenticate_proven(key_id)
                .await
                .map(Principal::Service),
        };
        match verdict {
            Ok(Principal::Service(_)) => {}
            Err(AuthFailure::Store(e)) => {
                tracing::error!(error = %e, "credential store unavailable");
                return Err((
                    "57P03",
                    "Warden cannot verify credentials right now".to_owned(),
                    None,
                ));
            }
            Ok(Principal::Admin(_)) => {
                return Err(("28000", "not a service account".to_owned(), None))
            }
            Err(f) => {
                return Err((
                    "28000",
                    format!(
                        "terminating connection: the session's credential is no longer valid ({f})"
                    ),
                    None,
                ))
            }
        }
        let grants = self
            .gw
            .door
            .policy
            .grants(&self.ctx.account, &self.ctx.target.name)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read grants");
                (
                    "57P03",
                    "Warden cannot read its grants right now".to_owned(),
                    None,
                )
            })?;
        let needs = needs(statement, &self.search_path);
        let refs: Vec<_> = needs
            .iter()
            .map(|(c, t)| (*c, t.as_ref().map(|(s, n)| (s.as_str(), n.as_str()))))
            .collect();
        Ok(decide_sql(grants.iter(), &refs, self.gw.door.clock.now()))
    }

    fn note_use(&self, d: &SqlDecision) {
        let now = self.gw.door.clock.now();
        for id in &d.used {
            self.gw.door.policy.note_grant_use(id, now);
        }
    }

    /// Follows `SET search_path`, so unqualified names resolve as the upstream will.
    ///
    /// The path kept is the union of every path the session has set: `SET LOCAL`, a `SET` rolled
    /// back with its transaction, or `RESET` may leave the real path anywhere among them, so an
    /// unqualified name must be allowed in all of them.
    fn track_setting(&mut self, statement: &Statement) {
        if let Some((name, values)) = &statement.setting {
            if name == "search_path" {
                for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    if !self.search_path.iter().any(|s| s == v) {
                        self.search_path.push(v.to_owned());
                    }
                }
            }
        }
    }

    fn event(
        &self,
        statement: &Statement,
        decision: Decision,
        prepared: Option<String>,
        params: Vec<Option<String>>,
    ) -> Event {
        let tables: Vec<String> = statement
            .accesses
            .iter()
            .map(|a| match &a.schema {
                Some(s) => format!("{s}.{}", a.name),
                None => a.name.clone(),
            })
            .collect();
        let mut detail = serde_json::json!({
            "sql": statement.text,
            "class": statement.class.as_str(),
            "tables": tables,
        });
        if let Some(name) = prepared {
            detail["statement"] = serde_json::Value::String(name);
        }
        if !params.is_empty() {
            detail["params"] = serde_json::json!(params);
        }
        let mut e = Event::new(
            self.gw.door.clock.now(),
            self.ctx.actor.clone(),
            self.ctx.source.clone(),
            Action {
                category: Category::Sql,
                verb: statement.verb.clone(),
                resource: tables.into_iter().next(),
                detail: Some(detail),
            },
            decision,
        );
        e.target = Some(self.ctx.target.clone());
        e.session_id = Some(self.ctx.session_id);
        e
    }

    /// Records an event; the session ends if the ledger cannot (fail closed).
    async fn record(&self, event: Event) -> Result<Uuid, End> {
        let id = event.id;
        match self.gw.door.ledger.record(event).await {
            Ok(_) => Ok(id),
            Err(e) => Err((
                "57P03",
                "Warden's audit ledger cannot record statements right now; the session is closed"
                    .to_owned(),
                Some(e.to_string()),
            )),
        }
    }
}

/// What a statement needs granted: its own class first (so the decision names the grant that
/// allows the statement as such), then each table access; unqualified tables resolve against
/// every schema of the session's `search_path` (except `$user`, which Warden assumes names no
/// schema), since Warden cannot know which of them holds the table. PostgreSQL searches
/// `pg_catalog` before the path, and every catalog relation's name starts with `pg_`, so an
/// unqualified `pg_…` name also needs the grant in `pg_catalog`.
pub fn needs(statement: &Statement, search_path: &[String]) -> Vec<Need> {
    fn push(out: &mut Vec<Need>, class: SqlClass, schema: &str, name: &str) {
        let need = (class, Some((schema.to_owned(), name.to_owned())));
        if !out.contains(&need) {
            out.push(need);
        }
    }
    let mut out = Vec::with_capacity(statement.accesses.len() + 1);
    let mut accesses: Vec<_> = statement.accesses.iter().collect();
    // Accesses of the statement's own class first.
    accesses.sort_by_key(|a| a.class != statement.class);
    if accesses.first().is_none_or(|a| a.class != statement.class) {
        out.push((statement.class, None));
    }
    for a in accesses {
        match &a.schema {
            Some(s) => push(&mut out, a.class, s, &a.name),
            None => {
                if a.name.starts_with("pg_") {
                    push(&mut out, a.class, "pg_catalog", &a.name);
                }
                let mut any = false;
                for s in search_path
                    .iter()
                    .filter(|s| !s.eq_ignore_ascii_case("$user"))
                {
                    push(&mut out, a.class, s, &a.name);
                    any = true;
                }
                if !any {
                    push(&mut out, a.class, "public", &a.name);
                }
            }
        }
    }
    out
}

/// One need of a statement: a class of access, to one table (schema, name) or none.
pub type Need = (SqlClass, Option<(String, String)>);

fn protocol_violation(e: &WireError) -> End {
    match e {
        WireError::TooLarge { .. } => ("08P01", format!("message rejected: {e}"), None),
        _ => ("08P01", format!("protocol violation: {e}"), None),
    }
}

/// Rows affected or returned, from a command tag (`SELECT 5`, `INSERT 0 3`, `UPDATE 2`…).
fn rows_from_tag(tag: &str) -> Option<u64> {
    let verb = tag.split(' ').next()?;
    match verb {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY" => {
            tag.rsplit(' ').next()?.parse().ok()
        }
        _ => None,
    }
}

/// The responses half: relays the upstream's messages to the client, completing statements.
async fn responses<R: AsyncRead + Unpin>(
    gw: Arc<PgGateway>,
    mut upstream: R,
    mut buf: BytesMut,
    mut client: WriteHalf<BoxIo>,
    book: Arc<Ledgerbook>,
    mut control: mpsc::Receiver<Control>,
    bytes_out: Arc<AtomicU64>,
) {
    let max = gw.config.max_message_bytes;
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            let frame = match warden_pgwire::decode_frame(&mut buf, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad message from the database");
                    let _ = client.write_all(&out).await;
                    let _ = client
                        .write_all(&fatal(
                            "08P01",
                            &format!("bad message from the database: {e}"),
                        ))
                        .await;
                    return;
                }
            };
            complete(&gw, &book, &frame, &mut out);
            if out.len() >= 64 * 1024 {
                if client.write_all(&out).await.is_err() {
                    return;
                }
                bytes_out.fetch_add(out.len() as u64, Ordering::Relaxed);
                out.clear();
            }
        }
        if !out.is_empty() {
            if client.write_all(&out).await.is_err() {
                return;
            }
            bytes_out.fetch_add(out.len() as u64, Ordering::Relaxed);
            out.clear();
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            Some(Control::Close(message)) = control.recv() => {
                let _ = client.write_all(&message).await;
                let _ = client.shutdown().await;
                return;
            }
            n = tokio::io::AsyncReadExt::read_buf(&mut upstream, &mut buf) => match n {
                Ok(0) | Err(_) => {
                    // The client is told here, since only this half writes to it; the requests
                    // half is woken by this task ending. (When the client itself left first,
                    // this write fails quietly.)
                    let bye = fatal("08006", "terminating connection: the connection to the database was lost");
                    let _ = client.write_all(&bye).await;
                    let _ = client.shutdown().await;
                    return;
                }
                Ok(_) => {}
            },
        }
    }
}

/// Relays one upstream message into `out`, completing what it ends.
fn complete(gw: &PgGateway, book: &Ledgerbook, frame: &Frame, out: &mut BytesMut) {
    let mut owed = lock(&book.owed);
    let ends = match frame.tag {
        b'C' | b'I' | b's' | b'E' | b'Z' => parse_backend(frame).ok(),
        b'D' | b'd' => {
            if let Some(Owed::Statement { bytes_out, .. }) = owed.front_mut() {
                *bytes_out += frame.len_on_wire() as u64;
            }
            None
        }
        _ => None,
    };
    let statement_ends = |owed: &mut VecDeque<Owed>, status: &str, error: Option<String>, rows| {
        if let Some(Owed::Statement { .. }) = owed.front() {
            if let Some(Owed::Statement {
                event_id,
                started,
                bytes_in,
                bytes_out,
                ..
            }) = owed.pop_front()
            {
                book.completed.fetch_add(1, Ordering::Relaxed);
                let outcome = Outcome {
                    status: status.to_owned(),
                    error,
                    rows,
                    bytes_in: Some(bytes_in),
                    bytes_out: Some(bytes_out),
                    duration_us: Some(elapsed_micros(started)),
                };
                gw.door.ledger.park_outcome(event_id, outcome);
            }
        }
    };
    match ends {
        Some(Backend::ErrorResponse(fields)) => {
            if let Some(Owed::Denial(_)) = owed.front() {
                if let Some(Owed::Denial(ours)) = owed.pop_front() {
                    out.extend_from_slice(&ours);
                }
                return;
            }
            statement_ends(&mut owed, &fields.code, Some(fields.message.clone()), None);
        }
        Some(Backend::CommandComplete(tag)) => {
            statement_ends(&mut owed, "ok", None, rows_from_tag(&tag));
        }
        Some(Backend::EmptyQueryResponse) | Some(Backend::PortalSuspended) => {
            statement_ends(&mut owed, "ok", None, None);
        }
        Some(Backend::ReadyForQuery(_)) => {
            // Everything up to the Sync this answers is over; statements still owed were
            // skipped after an error.
            loop {
                match owed.front() {
                    None => break,
                    Some(Owed::Sync) => {
                        owed.pop_front();
                        break;
                    }
                    Some(Owed::Statement { .. }) => statement_ends(
                        &mut owed,
                        "skipped",
                        Some("not run: an earlier statement in the batch failed".to_owned()),
                        None,
                    ),
                    Some(Owed::Denial(_)) => {
                        owed.pop_front();
                    }
                }
            }
            if owed.is_empty() {
                book.drained.notify_waiters();
            }
        }
        _ => {}
    }
    drop(owed);
    frame.encode_to(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_of(sql: &str, path: &[&str]) -> Vec<Need> {
        let statement = warden_sql::classify(sql).remove(0);
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        needs(&statement, &path)
    }

    fn table(class: SqlClass, schema: &str, name: &str) -> Need {
        (class, Some((schema.to_owned(), name.to_owned())))
    }

    #[test]
    fn unqualified_names_need_every_schema_they_could_be_in() {
        let n = needs_of("SELECT * FROM orders", &["$user", "public", "analytics"]);
        assert_eq!(
            n,
            [
                table(SqlClass::Read, "public", "orders"),
                table(SqlClass::Read, "analytics", "orders")
            ]
        );
        // The catalog is searched first.
        let n = needs_of("SELECT * FROM pg_authid", &["public"]);
        assert!(
            n.contains(&table(SqlClass::Read, "pg_catalog", "pg_authid")),
            "{n:?}"
        );
        // Qualified names are taken as written.
        let n = needs_of("SELECT * FROM analytics.daily", &["public"]);
        assert_eq!(n, [table(SqlClass::Read, "analytics", "daily")]);
    }

    #[test]
    fn the_statement_class_comes_first() {
        // A write that also reads: the write is the main need.
        let n = needs_of("INSERT INTO public.a SELECT * FROM public.b", &["public"]);
        assert_eq!(n[0], table(SqlClass::Write, "public", "a"));
        assert!(n.contains(&table(SqlClass::Read, "public", "b")));
        // A class above every access (a dangerous function) is a need of its own.
        let n = needs_of("SELECT pg_read_file('/etc/passwd')", &["public"]);
        assert_eq!(n[0], (SqlClass::Admin, None));
        assert_eq!(needs_of("BEGIN", &["public"]), [(SqlClass::Tx, None)]);
    }

    #[test]
    fn command_tags_give_rows() {
        assert_eq!(rows_from_tag("SELECT 5"), Some(5));
        assert_eq!(rows_from_tag("INSERT 0 3"), Some(3));
        assert_eq!(rows_from_tag("UPDATE 2"), Some(2));
        assert_eq!(rows_from_tag("BEGIN"), None);
        assert_eq!(rows_from_tag("CREATE TABLE"), None);
    }
}
