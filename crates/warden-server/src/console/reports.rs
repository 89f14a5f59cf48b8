//! Reports: a form choosing the report (access review, least privilege, compliance), its format
//! (HTML, JSON, CSV) and the analysis options `/v1/reports/{kind}` accepts, and the download it
//! submits to, a signed-in GET answered by [`reports::download`], the very function behind the
//! API, so the file (`warden-{kind}-{date}.{ext}`, as an attachment) is the API's byte for byte.
//!
//! The HTML report styles itself inline, which the console's content security policy would
//! block in a page it serves; it never is one here: the download is an attachment, saved and
//! opened from disk, where no policy of this origin applies.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use warden_report::{Format, ReportKind};

use super::{html, Console, Failure, Layout, SignedIn};
use crate::api::reports::{self, ReportQuery};
use crate::api::ApiError;

/// The form's fields, each optional; empty ones mean the API's defaults.
#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    kind: Option<String>,
    format: Option<String>,
    window: Option<String>,
    unused_after: Option<String>,
    max_key_age: Option<String>,
    protect_new: Option<String>,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    layout: Layout,
    error: Option<String>,
    kinds: Vec<(&'static str, &'static str)>,
    formats: Vec<&'static str>,
    kind: String,
    format: String,
    window: String,
    unused_after: String,
    max_key_age: String,
    protect_new: String,
}

/// A field's value: trimmed, and `None` when empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn render(
    who: &SignedIn,
    form: &ReportForm,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let value = |v: &Option<String>| given(v).unwrap_or_default();
    let page = ReportsPage {
        layout: who.layout("reports"),
        error,
        kinds: ReportKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.title()))
            .collect(),
        formats: Format::ALL.iter().map(|f| f.as_str()).collect(),
        kind: given(&form.kind).unwrap_or_else(|| ReportKind::AccessReview.as_str().to_owned()),
        format: given(&form.format).unwrap_or_else(|| Format::Html.as_str().to_owned()),
        window: value(&form.window),
        unused_after: value(&form.unused_after),
        max_key_age: value(&form.max_key_age),
        protect_new: value(&form.protect_new),
    };
    html(status, page.render())
}

/// `GET /console/reports`.
pub async fn page(who: SignedIn) -> Response {
    render(&who, &ReportForm::default(), None, StatusCode::OK)
}

/// `GET /console/reports/download`: the report as a file, or the form again with what is wrong.
pub async fn download(
    State(console): State<Console>,
    who: SignedIn,
    Query(form): Query<ReportForm>,
) -> Result<Response, Failure> {
    let query = ReportQuery {
        format: given(&form.format),
        window: given(&form.window),
        unused_after: given(&form.unused_after),
        max_key_age: given(&form.max_key_age),
        protect_new: given(&form.protect_new),
    };
    let kind = given(&form.kind).unwrap_or_default();
    match reports::download(&console.app, &who.admin.name, &kind, &query).await {
        Ok(file) => Ok(file),
        Err(e @ ApiError::Validation { .. }) => Ok(render(
            &who,
            &form,
            Some(e.to_string()),
            StatusCode::BAD_REQUEST,
        )),
        Err(e) => Err(e.into()),
    }
}
