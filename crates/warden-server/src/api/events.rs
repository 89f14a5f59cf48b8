//! `/v1/events`: the recorded events, oldest first, filtered and paged by sequence number; and
//! `/v1/events/stream`, the same as a live Server-Sent Events stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::event::Event;
use warden_core::Timestamp;
use warden_store::EventQuery;

use super::extract::AdminCaller;
use super::keys::parse_duration;
use super::problem::{ApiError, Problem};
use super::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Events fetched per store query while streaming.
const STREAM_BATCH: u32 = 200;
/// Longest a stream waits before looking at the store again (commits by other instances sharing
/// the database are not signalled to this one).
const STREAM_POLL: Duration = Duration::from_millis(500);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(stream_events))
}

/// Filters for `GET /v1/events/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamFilter {
    /// Only this account's (or admin's) events.
    pub account: Option<String>,
    /// Only events on this target.
    pub target: Option<String>,
    /// Only this category (`auth`, `admin`, `http`, `sql`…).
    pub category: Option<String>,
    /// Only `allow`ed or only `deny`ed actions.
    pub decision: Option<String>,
    /// Start after this sequence number (the `Last-Event-ID` header takes precedence); without
    /// either, the stream starts with the next event recorded.
    pub after: Option<u64>,
}

/// Streams events as they are recorded (Server-Sent Events): each is an `event` message whose
/// `id` is its ledger sequence number and whose data is the event as JSON. Reconnecting with
/// `Last-Event-ID` resumes right after that event, without a gap. An event's outcome, when it is
/// recorded after the event is streamed, is in `GET /v1/events`.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamFilter),
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events"),
        (status = 400, body = Problem)))]
async fn stream_events(
    State(app): State<AppState>,
    _who: AdminCaller,
    headers: HeaderMap,
    Query(filter): Query<StreamFilter>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    event_stream(app, &headers, filter, |e| serde_json::to_string(e).ok()).await
}

/// A live stream of the events matching `filter`, each sent as an `event` message whose `id` is
/// its sequence number and whose data is `render(event)` (events it renders as `None` are
/// skipped). The API sends events as they are; the console sends the rows it shows. Resumes
/// after `Last-Event-ID` or `filter.after`, else starts with the next event recorded.
pub(crate) async fn event_stream(
    app: AppState,
    headers: &HeaderMap,
    filter: StreamFilter,
    render: fn(&Event) -> Option<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>>, ApiError> {
    let decision = match filter.decision.as_deref() {
        None => None,
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some(other) => {
            return Err(ApiError::Validation {
                field: "decision".into(),
                message: format!("`{other}` is not a decision: use allow or deny"),
            })
        }
    };
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::Validation {
                    field: "Last-Event-ID".into(),
                    message: "must be the sequence number of an event from this stream".into(),
                })?,
        ),
    };
    let after = match resume.or(filter.after) {
        Some(seq) => Some(seq),
        None => app.store.last_seq().await?,
    };
    let query = EventQuery {
        account: filter.account,
        target: filter.target,
        category: filter.category,
        since: None,
        after_seq: after,
        before_seq: None,
        limit: STREAM_BATCH,
    };
    let state = Follow {
        committed: app.ledger.committed(),
        stopping: app.stopping.clone(),
        app,
        query,
        decision,
        render,
        pending: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let mut stopping = s.stopping.clone();
        tokio::select! {
            message = s.next() => Some((Ok(message), s)),
            _ = stopping.wait_for(|stop| *stop) => None,
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A live stream's position and what it has fetched but not yet sent.
struct Follow {
    app: AppState,
    query: EventQuery,
    decision: Option<bool>,
    render: fn(&Event) -> Option<String>,
    committed: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    pending: VecDeque<SseEvent>,
}

impl Follow {
    /// The next message: an event, or (when the store fails) an `error` message before retrying.
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return m;
            }
            match self.app.store.events(&self.query).await {
                Ok(events) => {
                    let fetched = events.len();
                    for e in events {
                        if let Some(seq) = e.seq {
                            self.query.after_seq = Some(seq);
                        }
                        if self.decision.is_some_and(|d| d != e.decision.allowed) {
                            continue;
                        }
                        let id = e.seq.map(|s| s.to_string()).unwrap_or_default();
                        if let Some(data) = (self.render)(&e) {
                            self.pending
                                .push_back(SseEvent::default().event("event").id(id).data(data));
                        }
                    }
                    if fetched > 0 {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read events");
                    tokio::time::sleep(STREAM_POLL).await;
                    return SseEvent::default()
                        .event("error")
                        .data("the event store is unavailable; retrying");
                }
            }
            if let Ok(Err(_)) = tokio::time::timeout(STREAM_POLL, self.committed.changed()).await {
                // The writer is gone (shutting down): fall back to polling.
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
    }
}

/// Filters for `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only this account's (or admin's) events.
    account: Option<String>,
    /// Only events on this target.
    target: Option<String>,
    /// Only this category (`auth`, `admin`, `http`, `sql`…).
    category: Option<String>,
    /// Only events newer than this: a duration (`1h`, `7d`) or an RFC 3339 time.
    since: Option<String>,
    /// Only events after this sequence number (use the previous page's `next_after`).
    after: Option<u64>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

/// One page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Events, oldest first, each with its outcome when recorded.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Event>,
    /// Pass as `after` to get the next page; absent when this page is the last so far.
    pub next_after: Option<u64>,
}

/// Lists recorded events.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventFilter),
    responses((status = 200, body = EventPage), (status = 400, body = Problem)))]
async fn list_events(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(filter): Query<EventFilter>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let since = filter
        .since
        .as_deref()
        .map(|s| since(app.clock.now(), s))
        .transpose()?;
    let query = EventQuery {
        account: filter.account,
        target: filter.target,
        category: filter.category,
        since,
        after_seq: filter.after,
        before_seq: None,
        limit,
    };
    let events = app.store.events(&query).await?;
    let next_after = (events.len() == limit as usize)
        .then(|| events.last().and_then(|e| e.seq))
        .flatten();
    Ok(Json(EventPage { events, next_after }))
}

fn since(now: Timestamp, s: &str) -> Result<Timestamp, ApiError> {
    match Timestamp::parse(s) {
        Ok(t) => Ok(t),
        Err(_) => parse_duration("since", s).map(|d| now.saturating_sub(d)),
    }
}
