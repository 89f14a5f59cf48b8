//! `/v1/reports/{kind}`: audit-ready reports (access review, least privilege, compliance) as a
//! self-contained HTML file, JSON or CSV, each naming the signed ledger checkpoint it was
//! computed from. The reports themselves are `warden-report`; this module gathers their input
//! (the accountability analysis, the latest checkpoint, daily activity) and serves the document.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_access::Options;
use warden_report::{
    CheckpointRef, DailyActivity, Format, ReportInput, ReportKind, ReviewDecision, ReviewSection,
};

use super::access::Loaded;
use super::extract::AdminCaller;
use super::keys::parse_duration;
use super::problem::{ApiError, Problem};
use super::{App, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report))
}

/// How a report is asked for; every field is optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `html` (default), `json` or `csv`.
    pub(crate) format: Option<String>,
    /// Usage considered: this long back (default `90d`).
    pub(crate) window: Option<String>,
    /// Accounts and keys unused this long are findings (default `90d`).
    pub(crate) unused_after: Option<String>,
    /// Keys older than this are findings (default `90d`).
    pub(crate) max_key_age: Option<String>,
    /// Grants younger than this are never findings for being unused (default `14d`).
    pub(crate) protect_new: Option<String>,
}

impl ReportQuery {
    fn options(&self, people: &[String]) -> Result<Options, ApiError> {
        let mut o = Options {
            people: people.to_vec(),
            ..Options::default()
        };
        for (field, value, into) in [
            ("window", &self.window, &mut o.window),
            ("unused_after", &self.unused_after, &mut o.unused_after),
            ("max_key_age", &self.max_key_age, &mut o.max_key_age),
            ("protect_new", &self.protect_new, &mut o.protect_new),
        ] {
            if let Some(v) = value {
                *into = parse_duration(field, v)?;
            }
        }
        Ok(o)
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Validation {
        field: field.to_owned(),
        message,
    }
}

fn choices<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter()
        .map(|x| format!("`{}`", name(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An audit-ready report: `access-review` (every account, its owner, grants, keys, findings and
/// the review's decisions), `least-privilege` (the grant findings) or `compliance` (every
/// finding and the evidence mapping to SOC 2, ISO 27001, PCI DSS, HIPAA and GDPR controls), as
/// one self-contained HTML file, JSON (`docs/schemas/report.schema.json`) or CSV. Each names
/// the latest signed ledger checkpoint (size and root hash; also in the
/// `Warden-Checkpoint-Size` header) so its facts can be verified against the ledger.
#[utoipa::path(get, path = "/v1/reports/{kind}", tag = "accountability",
    params(("kind" = String, Path, description = "access-review, least-privilege or compliance"), ReportQuery),
    responses(
        (status = 200, description = "The report, as an attachment", content_type = "text/html", body = String),
        (status = 400, body = Problem, description = "Unknown kind or format, or a bad duration")))]
async fn report(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(kind): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    download(&app, &who.admin.name, &kind, &query).await
}

/// Report `kind` as asked by `query`, generated for `generated_by`, as an attachment with its
/// file name (see [`report`]): what `/v1/reports/{kind}` and the console's download answer.
pub(crate) async fn download(
    app: &App,
    generated_by: &str,
    kind: &str,
    query: &ReportQuery,
) -> Result<Response, ApiError> {
    let kind = ReportKind::parse(kind).ok_or_else(|| {
        invalid(
            "kind",
            format!(
                "`{kind}` is not a report; use one of {}",
                choices(&ReportKind::ALL, ReportKind::as_str)
            ),
        )
    })?;
    let format = match query.format.as_deref() {
        None => Format::Html,
        Some(f) => Format::parse(f).ok_or_else(|| {
            invalid(
                "format",
                format!(
                    "`{f}` is not a report format; use one of {}",
                    choices(&Format::ALL, Format::as_str)
                ),
            )
        })?,
    };
    let options = query.options(&app.people)?;
    let now = app.clock.now();
    // The checkpoint first: everything loaded after it is at least as recent as it.
    let checkpoint = match app.store.latest_checkpoint().await? {
        None => None,
        Some(cp) => {
            let opened = warden_ledger::Checkpoint::open(&cp.note, &app.verifier)
                .map_err(|e| ApiError::Internal(format!("the latest checkpoint: {e}")))?;
            Some(CheckpointRef {
                size: cp.size,
                root_hash: opened.root.to_hex(),
                note: cp.note,
                signed_at: Some(cp.created_at),
            })
        }
    };
    let loaded = Loaded::load(app, None, &options).await?;
    let activity = app
        .store
        .daily_usage(now.saturating_sub(options.window), None)
        .await?
        .into_iter()
        .map(|(day, count)| DailyActivity {
            day,
            account: None,
            count,
        })
        .collect();
    let review = latest_review(app).await?;
    let generated_by = generated_by.to_owned();
    // Analysing and rendering thousands of accounts is CPU work: off the async workers.
    let (body, size) = tokio::task::spawn_blocking(move || {
        let analysis = warden_access::analyze(&loaded.population(), now, &options);
        let input = ReportInput {
            kind,
            analysis,
            checkpoint,
            activity,
            review,
            generated_at: now,
            generated_by,
        };
        (
            format.render(&input),
            input.checkpoint.as_ref().map(|c| c.size),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("rendering the report failed: {e}")))?;
    let file = warden_report::file_name(kind, format, now);
    let mut response = (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response();
    if let Some(size) = size {
        response
            .headers_mut()
            .insert("warden-checkpoint-size", size.into());
    }
    Ok(response)
}

/// The most recent access review (open or closed) and the decisions made in it so far.
async fn latest_review(app: &App) -> Result<Option<ReviewSection>, ApiError> {
    let Some(review) = app.store.reviews().await?.pop() else {
        return Ok(None);
    };
    let decisions = app
        .store
        .review_items(&review.name)
        .await?
        .into_iter()
        .filter_map(|item| {
            Some(ReviewDecision {
                decision: item.decision?.as_str().to_owned(),
                justification: item.justification.unwrap_or_default(),
                decided_by: item.decided_by.unwrap_or_default(),
                decided_at: item.decided_at?,
                account: item.account,
            })
        })
        .collect();
    Ok(Some(ReviewSection {
        name: review.name,
        status: review.status.as_str().to_owned(),
        decisions,
    }))
}
