//! `/v1/alerts`: what detection raised, with the events behind each alert, acknowledging and
//! resolving them; and `/v1/detection`: the detectors, the baselines' size, the sinks' backlog,
//! and one account's baseline.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use warden_core::event::Event;
use warden_core::{Alert, AlertStatus};
use warden_store::{AlertQuery, EventQuery};

use super::extract::{AdminCaller, ApiJson};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::alerts::AlertError;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(show_alert))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(resolve_alert))
        .routes(routes!(detection_status))
        .routes(routes!(account_baseline))
}

/// Filters for `GET /v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    /// `open`, `acknowledged` or `resolved`.
    status: Option<String>,
    /// Only this account's alerts.
    account: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

/// Alerts, most recently seen first.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertFilter),
    responses((status = 200, body = Vec<Object>, description = "Alerts"), (status = 400, body = Problem)))]
async fn list_alerts(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let status = match filter.status.as_deref() {
        None => None,
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| ApiError::Validation {
            field: "status".into(),
            message: format!("`{s}` is not an alert status: use open, acknowledged or resolved"),
        })?),
    };
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let query = AlertQuery {
        status,
        account: filter.account,
        limit,
    };
    Ok(Json(app.store.alerts(&query).await?))
}

/// An alert with the events that raised it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertDetail {
    /// The alert.
    #[schema(value_type = Object)]
    alert: Alert,
    /// The events it links to (its first sightings), oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<Event>,
}

/// One alert and the events behind it.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem)))]
async fn show_alert(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ApiError> {
    let id = alert_id(&id)?;
    let alert = app
        .store
        .alert(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("alert {id}")))?;
    let mut events = Vec::with_capacity(alert.seqs.len());
    for &seq in &alert.seqs {
        let query = EventQuery {
            after_seq: seq.checked_sub(1),
            limit: 1,
            ..EventQuery::default()
        };
        events.extend(
            app.store
                .events(&query)
                .await?
                .into_iter()
                .filter(|e| e.seq == Some(seq)),
        );
    }
    Ok(Json(AlertDetail { alert, events }))
}

/// A note left with an acknowledgement or resolution.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertNote {
    /// Why (shown with the alert and recorded on the ledger).
    note: Option<String>,
}

/// Acknowledges an open alert: someone is on it. Recorded on the ledger as `alert.ack` by the
/// admin.
#[utoipa::path(post, path = "/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")), request_body = AlertNote,
    responses((status = 200, body = Object, description = "The alert"),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn acknowledge_alert(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(id): Path<String>,
    body: Option<ApiJson<AlertNote>>,
) -> Result<Json<Alert>, ApiError> {
    change(&app, &who, &id, body, AlertStatus::Acknowledged).await
}

/// Resolves an alert. A later finding of the same kind opens a new alert. Recorded on the ledger
/// as `alert.resolve` by the admin.
#[utoipa::path(post, path = "/v1/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")), request_body = AlertNote,
    responses((status = 200, body = Object, description = "The alert"),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn resolve_alert(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(id): Path<String>,
    body: Option<ApiJson<AlertNote>>,
) -> Result<Json<Alert>, ApiError> {
    change(&app, &who, &id, body, AlertStatus::Resolved).await
}

/// Moves an alert to `to` on behalf of the admin, with the note from the body.
async fn change(
    app: &AppState,
    who: &AdminCaller,
    id: &str,
    body: Option<ApiJson<AlertNote>>,
    to: AlertStatus,
) -> Result<Json<Alert>, ApiError> {
    let id = alert_id(id)?;
    let note = body.map(|b| b.0).unwrap_or_default().note;
    let alert = app
        .alerts
        .transition(id, &who.admin.actor(), who.caller.source(), note, to)
        .await
        .map_err(api_error)?;
    Ok(Json(alert))
}

/// An alert id from the path: anything that is not one names no alert.
fn alert_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("alert {id}")))
}

fn api_error(e: AlertError) -> ApiError {
    match e {
        AlertError::NotFound(id) => ApiError::NotFound(format!("alert {id}")),
        e @ AlertError::Conflict { .. } => ApiError::WrongState(e.to_string()),
        AlertError::Ledger(e) => e.into(),
        AlertError::Store(e) => e.into(),
    }
}

/// Detection's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DetectionStatus {
    /// Whether detection runs on this instance.
    enabled: bool,
    /// The ledger position of the next entry detection examines.
    position: Option<u64>,
    /// Entries in the ledger: detection has caught up when `position` reaches it.
    ledger_size: u64,
    /// Accounts with a baseline.
    accounts: u64,
    /// Approximate memory held by the baselines, in bytes.
    baseline_bytes: u64,
    /// The detectors, with their default severity and rationale.
    #[schema(value_type = Vec<Object>)]
    detectors: serde_json::Value,
    /// Alerts waiting per sink.
    #[schema(value_type = Vec<Object>)]
    outboxes: Vec<serde_json::Value>,
}

/// Detection's detectors, the size of its baselines and the sinks' backlog.
#[utoipa::path(get, path = "/v1/detection", tag = "alerts",
    responses((status = 200, body = DetectionStatus)))]
async fn detection_status(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<DetectionStatus>, ApiError> {
    let (accounts, baseline_bytes) = match &app.detection {
        Some(engine) => {
            let stats = engine.lock().unwrap_or_else(|p| p.into_inner()).stats();
            (stats.accounts as u64, stats.approx_bytes as u64)
        }
        None => (0, 0),
    };
    let outboxes = app
        .store
        .outbox_backlog()
        .await?
        .into_iter()
        .map(|b| serde_json::json!({ "sink": b.sink, "pending": b.pending, "last_error": b.last_error }))
        .collect();
    let position = app
        .store
        .setting(crate::detection::POSITION)
        .await?
        .and_then(|p| p.parse().ok());
    let ledger_size = app.store.last_seq().await?.map_or(0, |s| s + 1);
    Ok(Json(DetectionStatus {
        enabled: app.detection.is_some(),
        position,
        ledger_size,
        accounts,
        baseline_bytes,
        detectors: serde_json::to_value(warden_detect::catalogue()).unwrap_or_default(),
        outboxes,
    }))
}

/// What detection has learned about one account: targets, actions, networks, hours, rate.
#[utoipa::path(get, path = "/v1/detection/baselines/{account}", tag = "alerts",
    params(("account" = String, Path, description = "Service account")),
    responses((status = 200, body = Object, description = "The baseline"), (status = 404, body = Problem)))]
async fn account_baseline(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(account): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let summary = app.detection.as_ref().and_then(|engine| {
        engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .baseline(&account)
    });
    let summary = summary.ok_or_else(|| ApiError::NotFound(format!("baseline of {account}")))?;
    Ok(Json(serde_json::to_value(summary).unwrap_or_default()))
}
