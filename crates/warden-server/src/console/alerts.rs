//! The alerts list (open and acknowledged, most recently seen first) with an Acknowledge and a
//! Resolve button per alert. Both go through the [`AlertBook`](crate::alerts::AlertBook), as the
//! API's `POST /v1/alerts/{id}/ack` and `/resolve` do, which records `alert.ack` or
//! `alert.resolve` on the ledger with the signed-in admin as actor before changing the alert.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use uuid::Uuid;
use warden_core::{Alert, AlertStatus};
use warden_store::AlertQuery;

use super::{
    csrf_ok, forbidden, html, see_other, when, Console, CsrfForm, Failure, Layout, SignedIn,
};
use crate::alerts::AlertError;

/// The most alerts listed per state.
const LIMIT: u32 = 200;

/// The outcome of the last action, shown after the redirect.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "console/alerts.html")]
struct AlertsPage {
    layout: Layout,
    notice: Option<&'static str>,
    alerts: Vec<AlertView>,
}

struct AlertView {
    id: String,
    severity: &'static str,
    status: &'static str,
    detector: String,
    account: String,
    summary: String,
    count: u64,
    last_seen: String,
    acknowledged_by: Option<String>,
    can_acknowledge: bool,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id.to_string(),
            severity: a.severity.as_str(),
            status: a.status.as_str(),
            detector: a.detector,
            account: a.account.unwrap_or_else(|| "-".to_owned()),
            summary: a.summary,
            count: a.count,
            last_seen: when(a.last_seen),
            acknowledged_by: a.acknowledged_by,
            can_acknowledge: a.status == AlertStatus::Open,
        }
    }
}

/// `GET /console/alerts`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, Failure> {
    let mut alerts = Vec::new();
    for status in [AlertStatus::Open, AlertStatus::Acknowledged] {
        alerts.extend(
            console
                .app
                .store
                .alerts(&AlertQuery {
                    status: Some(status),
                    account: None,
                    limit: LIMIT,
                })
                .await?,
        );
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.last_seen));
    let notice = match notice.done.as_deref() {
        Some("ack") => Some("Alert acknowledged."),
        Some("resolve") => Some("Alert resolved."),
        Some("conflict") => Some("That alert had already changed; the list shows where it is now."),
        Some("missing") => Some("That alert no longer exists."),
        _ => None,
    };
    let page = AlertsPage {
        layout: who.layout("alerts"),
        notice,
        alerts: alerts.into_iter().map(AlertView::from).collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /console/alerts/{id}/ack`.
pub async fn acknowledge(
    State(console): State<Console>,
    who: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    act(&console, &who, &id, form, AlertStatus::Acknowledged).await
}

/// `POST /console/alerts/{id}/resolve`.
pub async fn resolve(
    State(console): State<Console>,
    who: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    act(&console, &who, &id, form, AlertStatus::Resolved).await
}

async fn act(
    console: &Console,
    who: &SignedIn,
    id: &str,
    form: Result<Form<CsrfForm>, FormRejection>,
    to: AlertStatus,
) -> Result<Response, Failure> {
    if !csrf_ok(who, form) {
        return Ok(forbidden());
    }
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(see_other("/console/alerts?done=missing"));
    };
    let book = &console.app.alerts;
    let (actor, source) = (who.admin.actor(), who.caller.source());
    let result = book.transition(id, &actor, source, None, to).await;
    let done = match result {
        Ok(_) if to == AlertStatus::Acknowledged => "ack",
        Ok(_) => "resolve",
        Err(AlertError::NotFound(_)) => "missing",
        Err(AlertError::Conflict { .. }) => "conflict",
        Err(AlertError::Ledger(e)) => return Err(crate::api::ApiError::from(e).into()),
        Err(AlertError::Store(e)) => return Err(e.into()),
    };
    Ok(see_other(&format!("/console/alerts?done={done}")))
}
