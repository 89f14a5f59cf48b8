//! `/v1/events`: the recorded events, oldest first, filtered and paged by sequence number.

use axum::extract::{Query, State};
use axum::Json;
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

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
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
