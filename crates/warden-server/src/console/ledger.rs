//! The ledger: its size, the latest signed checkpoint (with the signed note itself), every
//! checkpoint newest first (paged with `?before=SIZE`, the page shown exported as CSV with
//! `?format=csv`), a "Verify now" button and the audit bundle download.
//!
//! "Verify now" runs [`warden_ledger::live::verify`], the checks `warden audit verify` makes on
//! a store (every entry against its leaf hash, the tree recomputed, every checkpoint's signature
//! and root), on the live store, trusting this server's own key, as one background task: it
//! yields between slices of entries and reads the store in pages, so the gateways keep their
//! threads. Only one runs at a time; its progress and the verdict of the latest run stay in
//! memory ([`Verifications`]) and its page refreshes itself while it runs (no script). The
//! bundle is [`warden_ledger::live::Export`], the format `warden audit export` writes, streamed
//! page by page.

use std::sync::{Arc, Mutex};

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use warden_core::Timestamp;
use warden_ledger::live::{self, Export, ExportError, Progress};
use warden_ledger::{Checkpoint, Problem, Verified};

use super::{
    csrf_ok, csv_table, forbidden, html, see_other, when, Console, CsrfForm, Failure, Layout,
    SignedIn,
};
use crate::api::ledger::tree_size;
use crate::api::{ApiError, AppState};

/// Checkpoints shown per page.
const PAGE: usize = 50;

/// Where a verification's progress is shown.
const VERIFICATION: &str = "/console/ledger/verification";

/// The verifications of the live store since the server started: at most one running, the
/// latest kept.
#[derive(Debug, Default)]
pub struct Verifications {
    // Held only to read or update, never across an `.await`.
    latest: Mutex<Option<Run>>,
}

/// One verification.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Who asked for it.
    pub(crate) started_by: String,
    /// When.
    pub(crate) started_at: Timestamp,
    /// How far it got.
    pub(crate) progress: Progress,
    /// How it ended, once it has.
    pub(crate) verdict: Option<(Timestamp, Verdict)>,
}

/// How a verification ended.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// The ledger is intact.
    Verified(Verified),
    /// The first thing wrong with it.
    Failed(Problem),
    /// The store could not be read to the end, so nothing was decided.
    Unreadable(String),
}

impl Verifications {
    /// The latest verification since the server started, running or finished.
    pub(crate) fn latest(&self) -> Option<Run> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Run>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a verification of `app`'s store for `admin`, unless one is running.
    fn start(self: &Arc<Self>, app: &AppState, admin: &str) {
        {
            let mut latest = self.lock();
            if latest.as_ref().is_some_and(|r| r.verdict.is_none()) {
                return;
            }
            *latest = Some(Run {
                started_by: admin.to_owned(),
                started_at: app.clock.now(),
                progress: Progress {
                    checked: 0,
                    total: 0,
                },
                verdict: None,
            });
        }
        let (store, verifier) = (app.store.clone(), app.verifier.clone());
        let progress = Arc::clone(self);
        let work = tokio::spawn(async move {
            live::verify(store, &verifier, &[], |p| {
                if let Some(run) = progress.lock().as_mut() {
                    run.progress = p;
                }
            })
            .await
        });
        let (this, clock) = (Arc::clone(self), app.clock.clone());
        // A second task awaits the first so that even a panic ends the run with a verdict.
        tokio::spawn(async move {
            let verdict = match work.await {
                Ok(Ok(Ok(verified))) => Verdict::Verified(verified),
                Ok(Ok(Err(problem))) => Verdict::Failed(problem),
                Ok(Err(e)) => Verdict::Unreadable(e.to_string()),
                Err(e) => Verdict::Unreadable(format!("the verification stopped: {e}")),
            };
            if let Verdict::Failed(p) = &verdict {
                tracing::error!(position = p.position(), problem = %p, "ledger verification failed");
            }
            if let Some(run) = this.lock().as_mut() {
                run.verdict = Some((clock.now(), verdict));
            }
        });
    }
}

/// The page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    /// Only checkpoints smaller than this (the "Older" cursor).
    before: Option<u64>,
    /// `csv` for a download of the checkpoints shown instead of the page.
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "console/ledger.html")]
struct LedgerPage {
    layout: Layout,
    size: u64,
    key: String,
    latest: Option<CheckpointRow>,
    note: String,
    rows: Vec<CheckpointRow>,
    paged: bool,
    older_link: Option<String>,
    csv_link: String,
    verification: Option<RunView>,
}

struct CheckpointRow {
    size: u64,
    root: String,
    signed_at: String,
}

/// `GET /console/ledger`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<LedgerQuery>,
) -> Result<Response, Failure> {
    let app = &console.app;
    let size = tree_size(app).await?;
    let mut all = app.store.checkpoints().await?;
    all.reverse();
    let row = |c: &warden_store::StoredCheckpoint| CheckpointRow {
        size: c.size,
        root: Checkpoint::open(&c.note, &app.verifier)
            .map(|o| o.root.to_hex())
            .unwrap_or_else(|e| format!("does not verify: {e}")),
        signed_at: when(c.created_at),
    };
    let latest = all.first().map(row);
    let note = all.first().map(|c| c.note.clone()).unwrap_or_default();
    let shown: Vec<&warden_store::StoredCheckpoint> = all
        .iter()
        .filter(|c| query.before.is_none_or(|b| c.size < b))
        .take(PAGE + 1)
        .collect();
    let older = (shown.len() > PAGE).then(|| shown[PAGE - 1].size);
    let rows: Vec<CheckpointRow> = shown.into_iter().take(PAGE).map(row).collect();
    if query.format.as_deref() == Some("csv") {
        let lines = rows
            .iter()
            .map(|r| [r.size.to_string(), r.root.clone(), r.signed_at.clone()]);
        let header = "size,root_hash,signed_at";
        return Ok(csv_table("warden-checkpoints.csv", header, lines));
    }
    let page = LedgerPage {
        layout: who.layout("ledger"),
        size,
        key: app.verifier.to_key_string(),
        latest,
        note,
        rows,
        paged: query.before.is_some(),
        older_link: older.map(|b| format!("/console/ledger?before={b}")),
        csv_link: match query.before {
            Some(b) => format!("/console/ledger?before={b}&format=csv"),
            None => "/console/ledger?format=csv".to_owned(),
        },
        verification: console.verifications.latest().map(RunView::from),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /console/ledger/verify`: starts a verification (or finds the running one) and shows it.
pub async fn verify(
    State(console): State<Console>,
    who: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if !csrf_ok(&who, form) {
        return forbidden();
    }
    console.verifications.start(&console.app, &who.admin.name);
    see_other(VERIFICATION)
}

#[derive(Template)]
#[template(path = "console/verification.html")]
struct VerificationPage {
    layout: Layout,
    run: Option<RunView>,
}

/// A run as the pages (this one's and the overview) show it.
pub(super) struct RunView {
    pub(super) running: bool,
    pub(super) started_by: String,
    pub(super) started_at: String,
    pub(super) checked: u64,
    pub(super) total: u64,
    pub(super) finished_at: String,
    pub(super) ok: bool,
    pub(super) result: String,
}

impl From<Run> for RunView {
    fn from(run: Run) -> Self {
        let (finished_at, ok, result) = match &run.verdict {
            None => (String::new(), false, String::new()),
            Some((at, Verdict::Verified(v))) => {
                let caveat = if v.checkpoints == 0 && v.size > 0 {
                    "; no checkpoint is signed yet, so each entry matched its recorded hash but \
                     nothing signed vouches for the ledger as a whole"
                        .to_owned()
                } else if v.checkpointed_size < v.size {
                    format!(
                        "; entries from {} on are newer than the last checkpoint and matched \
                         their recorded hashes only",
                        v.checkpointed_size
                    )
                } else {
                    String::new()
                };
                (when(*at), true, format!("ok: {v}{caveat}"))
            }
            Some((at, Verdict::Failed(p))) => (
                when(*at),
                false,
                format!("FAILED at position {}: {p}", p.position()),
            ),
            Some((at, Verdict::Unreadable(e))) => (
                when(*at),
                false,
                format!("not finished: the store could not be read ({e})"),
            ),
        };
        Self {
            running: run.verdict.is_none(),
            started_by: run.started_by,
            started_at: when(run.started_at),
            checked: run.progress.checked.min(run.progress.total),
            total: run.progress.total,
            finished_at,
            ok,
            result,
        }
    }
}

/// `GET /console/ledger/verification`: the latest verification's progress or verdict.
pub async fn verification(State(console): State<Console>, who: SignedIn) -> Response {
    let page = VerificationPage {
        layout: who.layout("ledger"),
        run: console.verifications.latest().map(RunView::from),
    };
    html(StatusCode::OK, page.render())
}

/// `GET /console/ledger/bundle`: the whole ledger as an audit bundle, streamed.
pub async fn bundle(State(console): State<Console>, _who: SignedIn) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();
    let export = match Export::start(app.store.clone(), &app.verifier, now.to_string()).await {
        Ok(export) => export,
        Err(ExportError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(ApiError::Internal(e.to_string()).into()),
    };
    let chunks = futures_util::stream::unfold(Some(export), |export| async move {
        let mut export = export?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(export))),
            Ok(None) => None,
            Err(e) => {
                // The file ends short; its verifier reports it as incomplete.
                tracing::error!(error = %e, "the audit bundle download stopped");
                Some((Err(e), None))
            }
        }
    });
    let day: String = now
        .to_string()
        .chars()
        .take(10)
        .filter(char::is_ascii_digit)
        .collect();
    Ok((
        [
            (CONTENT_TYPE, "application/jsonl".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"warden-ledger-{day}.jsonl\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
