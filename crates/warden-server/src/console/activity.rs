//! The activity log: the ledger's events, newest first, 50 at most per page, filtered by
//! `?account=`, `?target=`, `?category=` (in the store) and `?decision=allow|deny` (here), paged
//! by sequence number with `?before=SEQ`, and exported as CSV (the page shown) with
//! `?format=csv`.
//!
//! Each page reads one bounded window of ledger positions just below `before` (the store returns
//! events oldest first after a position), so a page costs the same at the ledger's head as
//! millions of events in. A filter can leave a window sparse: the page then shows fewer rows and
//! still offers the older ones.
//!
//! The newest page is live: `assets/console.js` follows `/console/activity/stream` (the API's
//! event stream with the same filters, resuming after the page's newest position, so nothing
//! falls between the page and the stream) and puts each new row at the top. The stream sends the
//! rows already shaped as the table shows them ([`RowView`]), so the page and the feed never
//! disagree about what a row says.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use warden_core::event::Event;
use warden_store::EventQuery;

use super::{csv_table, html, when, Console, Failure, Layout, SignedIn};
use crate::api::events::{event_stream, StreamFilter};

/// The most events shown per page.
const PAGE: usize = 50;
/// Ledger positions read per page (outcomes take positions too, so more than a page of them).
const WINDOW: u64 = 4 * PAGE as u64;

/// The page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    /// Only this account's (or admin's) events.
    account: Option<String>,
    /// Only events on this target.
    target: Option<String>,
    /// Only this category (`auth`, `admin`, `http`…).
    category: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
    /// Only events before this sequence number (the "Older" cursor).
    before: Option<u64>,
    /// `csv` for a download of this page instead of the page.
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "console/activity.html")]
struct ActivityPage {
    layout: Layout,
    account: String,
    target: String,
    category: String,
    decision: &'static str,
    paged: bool,
    rows: Vec<RowView>,
    /// What the table says when it has no rows.
    empty: String,
    older_link: Option<String>,
    newest_link: String,
    csv_link: String,
    /// The live feed's address, on the newest page only.
    live_link: Option<String>,
}

/// One row of an events table, as the pages render it and the live feed sends it.
#[derive(Serialize)]
pub(super) struct RowView {
    pub(super) seq: String,
    pub(super) time: String,
    pub(super) category: &'static str,
    pub(super) actor: String,
    pub(super) verb: String,
    pub(super) resource: String,
    pub(super) target: String,
    pub(super) allowed: bool,
    pub(super) status: String,
}

impl From<&Event> for RowView {
    fn from(e: &Event) -> Self {
        Self {
            seq: e.seq.map(|s| s.to_string()).unwrap_or_default(),
            time: when(e.time),
            category: e.action.category.as_str(),
            actor: e.actor.account.clone().unwrap_or_else(|| "-".to_owned()),
            verb: e.action.verb.clone(),
            resource: e.action.resource.clone().unwrap_or_default(),
            target: e
                .target
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            allowed: e.decision.allowed,
            status: e
                .outcome
                .as_ref()
                .map(|o| o.status.clone())
                .unwrap_or_default(),
        }
    }
}

/// A filter's value: trimmed, and `None` when empty.
fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `GET /console/activity`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<ActivityQuery>,
) -> Result<Response, Failure> {
    let store = &console.app.store;
    let account = given(query.account.as_ref());
    let target = given(query.target.as_ref());
    let category = given(query.category.as_ref());
    let decision = match query.decision.as_deref() {
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        _ => None,
    };
    // Positions below `before`: the newest page starts just past the ledger's head.
    let before = match query.before {
        Some(b) => b,
        None => store.last_seq().await?.map_or(0, |s| s.saturating_add(1)),
    };
    // The window is `low..before`; the ledger's first position is 0.
    let low = before.saturating_sub(WINDOW);
    let events = if before == 0 {
        Vec::new()
    } else {
        store
            .events(&EventQuery {
                account: account.clone(),
                target: target.clone(),
                category: category.clone(),
                since: None,
                after_seq: low.checked_sub(1),
                before_seq: Some(before),
                limit: u32::try_from(WINDOW).unwrap_or(u32::MAX),
            })
            .await?
    };
    // The window, newest first.
    let mut shown: Vec<&Event> = events
        .iter()
        .filter(|e| decision.is_none_or(|d| d == e.decision.allowed))
        .collect();
    shown.reverse();
    // Older events remain below the last one shown when the page is full, else below the window.
    let older = if shown.len() > PAGE {
        shown.truncate(PAGE);
        shown.last().and_then(|e| e.seq)
    } else {
        (low > 0).then_some(low)
    };
    let rows: Vec<RowView> = shown.into_iter().map(RowView::from).collect();

    if query.format.as_deref() == Some("csv") {
        return Ok(csv("warden-activity.csv", &rows));
    }
    let decision_name = match decision {
        Some(true) => "allow",
        Some(false) => "deny",
        None => "",
    };
    let link = |before: Option<u64>, format: Option<&str>| {
        let mut pairs: Vec<(&str, String)> = [
            ("account", &account),
            ("target", &target),
            ("category", &category),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect();
        if !decision_name.is_empty() {
            pairs.push(("decision", decision_name.to_owned()));
        }
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        if let Some(f) = format {
            pairs.push(("format", f.to_owned()));
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        if query.is_empty() {
            "/console/activity".to_owned()
        } else {
            format!("/console/activity?{query}")
        }
    };
    // The feed resumes right after the newest position this page looked at.
    let live_link = query.before.is_none().then(|| {
        let head = before.checked_sub(1).map(|s| s.to_string());
        let pairs = [
            ("account", account.clone()),
            ("target", target.clone()),
            ("category", category.clone()),
            (
                "decision",
                (!decision_name.is_empty()).then(|| decision_name.to_owned()),
            ),
            ("after", head),
        ];
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))))
            .finish();
        format!("/console/activity/stream?{query}")
    });
    let page = ActivityPage {
        layout: who.layout("activity"),
        live_link,
        older_link: older.map(|b| link(Some(b), None)),
        newest_link: link(None, None),
        csv_link: link(query.before, Some("csv")),
        paged: query.before.is_some(),
        account: account.clone().unwrap_or_default(),
        target: target.clone().unwrap_or_default(),
        category: category.clone().unwrap_or_default(),
        decision: decision_name,
        empty: format!(
            "No events {}{}.",
            if query.before.is_some() {
                "in this stretch of the ledger"
            } else {
                "among the newest"
            },
            if [&account, &target, &category].iter().any(|v| v.is_some()) || decision.is_some() {
                " match these filters"
            } else {
                ""
            }
        ),
        rows,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `GET /console/activity/stream`: the live feed (Server-Sent Events of [`RowView`]s).
pub async fn stream(
    State(console): State<Console>,
    _who: SignedIn,
    headers: HeaderMap,
    Query(filter): Query<StreamFilter>,
) -> Result<Response, Failure> {
    let render = |e: &Event| serde_json::to_string(&RowView::from(e)).ok();
    let sse = event_stream(console.app, &headers, filter, render).await?;
    Ok(sse.into_response())
}

/// Rows as a CSV download named `filename`, with a header line.
pub(super) fn csv(filename: &str, rows: &[RowView]) -> Response {
    let lines = rows.iter().map(|r| {
        [
            r.seq.as_str(),
            &r.time,
            r.category,
            &r.actor,
            &r.verb,
            &r.resource,
            &r.target,
            if r.allowed { "allow" } else { "deny" },
            &r.status,
        ]
    });
    let header = "seq,time,category,actor,verb,resource,target,decision,status";
    csv_table(filename, header, lines)
}
