//! The alerts list (open and acknowledged by default, or resolved, or all; most recently seen
//! first; exported as CSV with `?format=csv`) with an Acknowledge and a Resolve button per alert,
//! and each alert's detail page: what raised it and why the detector exists, its lifecycle, and
//! the events that raised it, read from the ledger by position. Both actions go through the
//! [`AlertBook`](crate::alerts::AlertBook), as the API's `POST /v1/alerts/{id}/ack` and
//! `/resolve` do, which records `alert.ack` or `alert.resolve` on the ledger with the signed-in
//! admin as actor before changing the alert; an optional note goes with them.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use uuid::Uuid;
use warden_core::{Alert, AlertStatus};
use warden_store::{AlertQuery, EventQuery};

use super::activity::{self, RowView};
use super::{
    accepted, csv_table, forbidden, html, see_other, when, Console, Failure, Layout, PostForm,
    SignedIn,
};
use crate::alerts::AlertError;

/// The most alerts listed per state.
const LIMIT: u32 = 200;

/// Longest note kept with an acknowledgement or resolution.
const MAX_NOTE: usize = 500;

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `active` (open and acknowledged, the default), `open`, `acknowledged`, `resolved` or `all`.
    status: Option<String>,
    /// `csv` for a download of the list instead of the page.
    format: Option<String>,
    /// The outcome of the last action, shown after the redirect.
    done: Option<String>,
}

/// The list's views, as `?status=` names them.
const VIEWS: [(&str, &str); 5] = [
    ("active", "Open and acknowledged"),
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
    ("all", "All"),
];

#[derive(Template)]
#[template(path = "console/alerts.html")]
struct AlertsPage {
    layout: Layout,
    notice: Option<&'static str>,
    view: &'static str,
    views: Vec<(&'static str, &'static str)>,
    alerts: Vec<AlertView>,
    csv_link: String,
}

#[derive(Template)]
#[template(path = "console/alert.html")]
struct AlertPage {
    layout: Layout,
    notice: Option<&'static str>,
    alert: AlertView,
    target: String,
    subject: String,
    first_seen: String,
    rationale: Option<&'static str>,
    lifecycle: Vec<(&'static str, String)>,
    note: Option<String>,
    rows: Vec<RowView>,
    empty: String,
    linked: usize,
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
    can_resolve: bool,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id.to_string(),
            severity: a.severity.as_str(),
            status: a.status.as_str(),
            detector: a.detector.clone(),
            account: a.account.clone().unwrap_or_else(|| "-".to_owned()),
            summary: a.summary.clone(),
            count: a.count,
            last_seen: when(a.last_seen),
            acknowledged_by: a.acknowledged_by.clone(),
            can_acknowledge: a.status == AlertStatus::Open,
            can_resolve: a.status != AlertStatus::Resolved,
        }
    }
}

/// What a `?done=` outcome says.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("ack") => Some("Alert acknowledged."),
        Some("resolve") => Some("Alert resolved."),
        Some("conflict") => Some("That alert had already changed; this shows where it is now."),
        Some("missing") => Some("That alert no longer exists."),
        Some("note") => Some("The note is too long: keep it under 500 characters."),
        _ => None,
    }
}

/// `GET /console/alerts`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response, Failure> {
    let view = VIEWS
        .iter()
        .map(|(name, _)| *name)
        .find(|name| Some(*name) == query.status.as_deref())
        .unwrap_or("active");
    let states: &[Option<AlertStatus>] = match view {
        "open" => &[Some(AlertStatus::Open)],
        "acknowledged" => &[Some(AlertStatus::Acknowledged)],
        "resolved" => &[Some(AlertStatus::Resolved)],
        "all" => &[None],
        _ => &[Some(AlertStatus::Open), Some(AlertStatus::Acknowledged)],
    };
    let mut alerts = Vec::new();
    for status in states {
        let query = AlertQuery {
            status: *status,
            account: None,
            limit: LIMIT,
        };
        alerts.extend(console.app.store.alerts(&query).await?);
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.last_seen));
    if query.format.as_deref() == Some("csv") {
        return Ok(csv(&alerts));
    }
    let page = AlertsPage {
        layout: who.layout("alerts"),
        notice: notice(query.done.as_deref()),
        view,
        views: VIEWS.to_vec(),
        alerts: alerts.iter().map(AlertView::from).collect(),
        csv_link: format!("/console/alerts?status={view}&format=csv"),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The alerts as CSV, with a header line.
fn csv(alerts: &[Alert]) -> Response {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let lines = alerts.iter().map(|a| {
        [
            a.id.to_string(),
            a.severity.as_str().to_owned(),
            a.status.as_str().to_owned(),
            a.detector.clone(),
            text(&a.account),
            text(&a.target),
            a.subject.clone(),
            a.summary.clone(),
            a.count.to_string(),
            a.first_seen.to_string(),
            a.last_seen.to_string(),
            text(&a.acknowledged_by),
            text(&a.resolved_by),
            text(&a.note),
        ]
    });
    let header = "id,severity,status,detector,account,target,subject,summary,count,first_seen,\
                  last_seen,acknowledged_by,resolved_by,note";
    csv_table("warden-alerts.csv", header, lines)
}

/// The detail page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// `csv` for the triggering events as a download.
    format: Option<String>,
    /// The outcome of the last action.
    done: Option<String>,
}

/// `GET /console/alerts/{id}`.
pub async fn detail(
    State(console): State<Console>,
    who: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, Failure> {
    let store = &console.app.store;
    let alert = match Uuid::parse_str(&id) {
        Ok(id) => store.alert(id).await?,
        Err(_) => None,
    };
    let Some(alert) = alert else {
        return Err(crate::api::ApiError::NotFound(format!("alert `{id}`")).into());
    };
    // The linked events, by ledger position (an alert links at most a few dozen).
    let mut rows = Vec::with_capacity(alert.seqs.len());
    for &seq in &alert.seqs {
        let found = store
            .events(&EventQuery {
                after_seq: seq.checked_sub(1),
                before_seq: Some(seq.saturating_add(1)),
                limit: 1,
                ..EventQuery::default()
            })
            .await?;
        rows.extend(found.iter().map(RowView::from));
    }
    if query.format.as_deref() == Some("csv") {
        return Ok(activity::csv("warden-alert-events.csv", &rows));
    }
    let mut lifecycle = vec![("Raised", when(alert.first_seen))];
    if let (Some(by), Some(at)) = (&alert.acknowledged_by, alert.acknowledged_at) {
        lifecycle.push(("Acknowledged", format!("{} by {by}", when(at))));
    }
    if let (Some(by), Some(at)) = (&alert.resolved_by, alert.resolved_at) {
        lifecycle.push(("Resolved", format!("{} by {by}", when(at))));
    }
    let rationale = warden_detect::Detector::from_name(&alert.detector).map(|d| d.info().rationale);
    let page = AlertPage {
        layout: who.layout("alerts"),
        notice: notice(query.done.as_deref()),
        target: alert.target.clone().unwrap_or_else(|| "-".to_owned()),
        subject: alert.subject.clone(),
        first_seen: when(alert.first_seen),
        rationale,
        lifecycle,
        note: alert.note.clone(),
        linked: alert.seqs.len(),
        empty: "The events this alert links to are no longer in the ledger's store.".to_owned(),
        rows,
        alert: AlertView::from(&alert),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The fields of an acknowledge or resolve form.
#[derive(Debug, Deserialize)]
pub struct ActForm {
    /// The session's CSRF token.
    csrf: Option<String>,
    /// A note to keep with the change.
    note: Option<String>,
    /// `detail` to come back to the alert's page rather than the list.
    back: Option<String>,
}

impl PostForm for ActForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /console/alerts/{id}/ack`.
pub async fn acknowledge(
    State(console): State<Console>,
    who: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Result<Response, Failure> {
    act(&console, &who, &id, form, AlertStatus::Acknowledged).await
}

/// `POST /console/alerts/{id}/resolve`.
pub async fn resolve(
    State(console): State<Console>,
    who: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Result<Response, Failure> {
    act(&console, &who, &id, form, AlertStatus::Resolved).await
}

async fn act(
    console: &Console,
    who: &SignedIn,
    id: &str,
    form: Result<Form<ActForm>, FormRejection>,
    to: AlertStatus,
) -> Result<Response, Failure> {
    let Some(form) = accepted(who, form) else {
        return Ok(forbidden());
    };
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(see_other("/console/alerts?done=missing"));
    };
    let back = |done: &str| {
        if form.back.as_deref() == Some("detail") {
            see_other(&format!("/console/alerts/{uuid}?done={done}"))
        } else {
            see_other(&format!("/console/alerts?done={done}"))
        }
    };
    let note = form
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Ok(back("note"));
    }
    let book = &console.app.alerts;
    let (actor, source) = (who.admin.actor(), who.caller.source());
    let result = book.transition(uuid, &actor, source, note, to).await;
    let done = match result {
        Ok(_) if to == AlertStatus::Acknowledged => "ack",
        Ok(_) => "resolve",
        Err(AlertError::NotFound(_)) => return Ok(see_other("/console/alerts?done=missing")),
        Err(AlertError::Conflict { .. }) => "conflict",
        Err(AlertError::Ledger(e)) => return Err(crate::api::ApiError::from(e).into()),
        Err(AlertError::Store(e)) => return Err(e.into()),
    };
    Ok(back(done))
}
