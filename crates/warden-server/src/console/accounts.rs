//! The accounts table: every service account with its owner, status, last use, usable keys,
//! accountability findings and risk (from `warden-access`'s analysis), searchable with `?q=`,
//! sortable with `?sort=`, and exported as CSV with `?format=csv`.

use std::cmp::Reverse;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use warden_access::Options;

use super::{csv_cell, csv_download, html, when, Console, Failure, Layout, SignedIn};
use crate::api::access::Loaded;

/// The columns, as `?sort=` names them, with their headings.
const COLUMNS: [(&str, &str); 7] = [
    ("name", "Name"),
    ("owner", "Owner"),
    ("status", "Status"),
    ("last_used", "Last used"),
    ("keys", "Keys"),
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
    findings: usize,
    risk: u32,
}

/// `GET /console/accounts`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<TableQuery>,
) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();
    let options = Options {
        people: app.people.clone(),
        ..Options::default()
    };
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
            keys: loaded
                .keys
                .iter()
                .filter(|k| k.account.as_str() == a.account && k.state(now).is_usable())
                .count(),
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
                findings: r.findings,
                risk: r.risk,
            })
            .collect(),
        q,
        sort,
        total,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The rows as CSV (RFC 4180), with a header line.
fn csv(rows: &[Row]) -> Response {
    let mut out = String::from("name,owner,purpose,status,last_used,keys,findings,risk\r\n");
    for r in rows {
        let fields = [
            csv_cell(&r.name),
            csv_cell(&r.owner),
            csv_cell(&r.purpose),
            csv_cell(r.status),
            r.last_used.map(|t| t.to_string()).unwrap_or_default(),
            r.keys.to_string(),
            r.findings.to_string(),
            r.risk.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    csv_download("warden-accounts.csv", out)
}
