//! The accounts table: every service account with its owner, status, last use, usable keys,
//! accountability findings and risk (from `warden-access`'s analysis), searchable with `?q=`,
//! sortable with `?sort=`, and exported as CSV with `?format=csv`; each name links to the
//! account's own page ([`account`](super::account)).
//!
//! The "New service account" form posts here and creates the account through the function
//! behind `POST /v1/accounts` (an `account.create` admin event with the signed-in admin as
//! actor). What the API would refuse shows the form again, with the message and what was
//! entered, and creates nothing.

use std::cmp::Reverse;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::{
    accepted, csv_table, forbidden, html, see_other, when, Console, Failure, Layout, PostForm,
    SignedIn,
};
use crate::api::access::{self, Loaded};
use crate::api::accounts::{self, NewAccount};
use crate::api::ApiError;

/// The columns, as `?sort=` names them, with their headings.
const COLUMNS: [(&str, &str); 9] = [
    ("name", "Name"),
    ("owner", "Owner"),
    ("status", "Status"),
    ("last_used", "Last used"),
    ("keys", "Keys"),
    ("key_age", "Oldest key (days)"),
    ("unused_grants", "Unused grants"),
    ("findings", "Findings"),
    ("risk", "Risk"),
];

/// The table's query string.
#[derive(Debug, Default, Deserialize)]
pub struct TableQuery {
    /// Only accounts whose name, owner or purpose contains this (case-insensitive).
    q: Option<String>,
    /// The column to sort by (default `name`); numbers and times sort largest or latest first.
    sort: Option<String>,
    /// `csv` for a download instead of the page.
    format: Option<String>,
}

/// One row.
struct Row {
    name: String,
    owner: String,
    purpose: String,
    status: &'static str,
    last_used: Option<warden_core::Timestamp>,
    keys: usize,
    /// Age in days of the oldest key that still authenticates.
    key_age: Option<u64>,
    /// Grants not used in the analysis window.
    unused_grants: usize,
    findings: usize,
    risk: u32,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    layout: Layout,
    q: String,
    sort: &'static str,
    columns: Vec<Column>,
    rows: Vec<RowView>,
    total: usize,
    csv_link: String,
    draft: Draft,
    error: Option<FormError>,
}

impl AccountsPage {
    /// Whether the form's error is about `field`.
    fn invalid(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.about(field))
    }
}

/// The "New service account" form's fields, as entered (kept when the form is shown again).
#[derive(Debug, Default, Deserialize)]
pub struct Draft {
    /// The session's CSRF token.
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    purpose: String,
    /// One `key: value` label per line.
    #[serde(default)]
    labels: String,
    /// A date (`YYYY-MM-DD`) or an RFC 3339 time; empty for never.
    #[serde(default)]
    expires_at: String,
}

impl PostForm for Draft {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// What is wrong with the form: the field (as the API names it) and the message.
struct FormError {
    field: String,
    message: String,
}

impl FormError {
    /// Whether the error is about `field` (`labels` covers `labels.team`).
    fn about(&self, field: &str) -> bool {
        self.field == field || self.field.starts_with(&format!("{field}."))
    }
}

struct Column {
    heading: &'static str,
    link: String,
    current: bool,
}

struct RowView {
    name: String,
    owner: String,
    purpose: String,
    status: &'static str,
    last_used: String,
    keys: usize,
    key_age: String,
    unused_grants: usize,
    findings: usize,
    risk: u32,
}

/// `GET /console/accounts`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<TableQuery>,
) -> Result<Response, Failure> {
    render(
        &console,
        &who,
        &query,
        Draft::default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /console/accounts` (`csrf`, `name`, `owner`, `purpose`, `labels`, `expires_at`):
/// creates the account and goes to its page, or shows the form again with what is wrong.
pub async fn create(
    State(console): State<Console>,
    who: SignedIn,
    form: Result<Form<Draft>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(draft) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let request = match parse_labels(&draft.labels) {
        Ok(labels) => NewAccount {
            name: draft.name.trim().to_owned(),
            owner: draft.owner.trim().to_owned(),
            purpose: draft.purpose.trim().to_owned(),
            labels,
            expires_at: Some(draft.expires_at.trim().to_owned()).filter(|s| !s.is_empty()),
        },
        Err(e) => return refused(&console, &who, draft, e).await,
    };
    match accounts::create(&console.app, &who.admin, &who.caller, request).await {
        Ok(account) => Ok(see_other(&format!(
            "/console/accounts/{}?done=created",
            account.name
        ))),
        Err(e) => refused(&console, &who, draft, e).await,
    }
}

/// The form shown again after the API's function refused it (422 for an invalid field, 409 for
/// a name in use), or the failure when it failed for another reason.
async fn refused(
    console: &Console,
    who: &SignedIn,
    draft: Draft,
    error: ApiError,
) -> Result<Response, Failure> {
    let (status, error) = match error {
        ApiError::Validation { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            FormError {
                message: format!("{field}: {message}"),
                field,
            },
        ),
        ApiError::Conflict(_) => (
            StatusCode::CONFLICT,
            FormError {
                message: format!(
                    "name: an account named `{}` already exists",
                    draft.name.trim()
                ),
                field: "name".into(),
            },
        ),
        other => return Err(other.into()),
    };
    let query = TableQuery::default();
    render(console, who, &query, draft, Some(error), status).await
}

/// Labels from the form's text: one `key: value` per line, blank lines ignored.
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| ApiError::Validation {
                    field: "labels".into(),
                    message: format!("`{line}` is not `key: value`"),
                })
        })
        .collect()
}

/// The page (or its CSV), with the form holding `draft` and `error`, answered with `status`.
async fn render(
    console: &Console,
    who: &SignedIn,
    query: &TableQuery,
    draft: Draft,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();
    let options = access::default_options(app);
    let loaded = Loaded::load(app, None, &options).await?;
    let analysis = warden_access::analyze(&loaded.population(), now, &options);
    let q = query
        .q
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let needle = q.to_lowercase();
    let sort = COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .find(|c| query.sort.as_deref() == Some(*c))
        .unwrap_or("name");
    let total = analysis.accounts.len();
    let mut rows: Vec<Row> = analysis
        .accounts
        .into_iter()
        .filter(|a| {
            needle.is_empty()
                || [&a.account, &a.owner, &a.purpose]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
        })
        .map(|a| Row {
            keys: a.keys.iter().filter(|k| k.state.is_usable()).count(),
            key_age: a
                .keys
                .iter()
                .filter(|k| k.state.is_usable())
                .map(|k| k.age_days)
                .max(),
            unused_grants: a.grants.iter().filter(|g| g.uses == 0).count(),
            findings: a.findings.len(),
            name: a.account,
            owner: a.owner,
            purpose: a.purpose,
            status: a.status.as_str(),
            last_used: a.last_used_at,
            risk: a.risk,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    match sort {
        "owner" => rows.sort_by(|a, b| a.owner.cmp(&b.owner)),
        "status" => rows.sort_by_key(|r| r.status),
        "last_used" => rows.sort_by_key(|r| Reverse(r.last_used)),
        "keys" => rows.sort_by_key(|r| Reverse(r.keys)),
        "key_age" => rows.sort_by_key(|r| Reverse(r.key_age)),
        "unused_grants" => rows.sort_by_key(|r| Reverse(r.unused_grants)),
        "findings" => rows.sort_by_key(|r| Reverse(r.findings)),
        "risk" => rows.sort_by_key(|r| Reverse(r.risk)),
        _ => {}
    }

    if query.format.as_deref() == Some("csv") {
        return Ok(csv(&rows));
    }
    let link = |sort: &str, format: Option<&str>| {
        let mut pairs = vec![("sort", sort.to_owned())];
        if !q.is_empty() {
            pairs.push(("q", q.clone()));
        }
        if let Some(f) = format {
            pairs.push(("format", f.to_owned()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect();
        format!("/console/accounts?{}", query.join("&"))
    };
    let page = AccountsPage {
        layout: who.layout("accounts"),
        columns: COLUMNS
            .iter()
            .map(|(name, heading)| Column {
                heading,
                link: link(name, None),
                current: *name == sort,
            })
            .collect(),
        csv_link: link(sort, Some("csv")),
        rows: rows
            .into_iter()
            .map(|r| RowView {
                last_used: r.last_used.map_or_else(|| "never".to_owned(), when),
                name: r.name,
                owner: r.owner,
                purpose: r.purpose,
                status: r.status,
                keys: r.keys,
                key_age: r.key_age.map(|d| d.to_string()).unwrap_or_default(),
                unused_grants: r.unused_grants,
                findings: r.findings,
                risk: r.risk,
            })
            .collect(),
        q,
        sort,
        total,
        draft,
        error,
    };
    Ok(html(status, page.render()))
}

/// The rows as CSV, with a header line.
fn csv(rows: &[Row]) -> Response {
    let lines = rows.iter().map(|r| {
        [
            r.name.clone(),
            r.owner.clone(),
            r.purpose.clone(),
            r.status.to_owned(),
            r.last_used.map(|t| t.to_string()).unwrap_or_default(),
            r.keys.to_string(),
            r.key_age.map(|d| d.to_string()).unwrap_or_default(),
            r.unused_grants.to_string(),
            r.findings.to_string(),
            r.risk.to_string(),
        ]
    });
    let header =
        "name,owner,purpose,status,last_used,keys,oldest_key_days,unused_grants,findings,risk";
    csv_table("warden-accounts.csv", header, lines)
}
