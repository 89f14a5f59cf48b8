//! Access reviews: the open review's progress and reminders (undecided accounts per owner), a
//! decide form per account, starting a review when none is open, closing one behind a
//! confirmation page, and every review's read-only detail with what changed since the one
//! before. Each table is exported as CSV with `?format=csv` (and `&table=` where a page has
//! several).
//!
//! Starting, deciding and closing call the functions behind `/v1/reviews`
//! ([`reviews::start`], [`reviews::decide_item`], [`reviews::close`]), so they are validated,
//! applied and recorded on the ledger (`review.start`, `review.decide`, `review.close`) exactly
//! as the API's are, with the signed-in admin as actor.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use warden_core::Grant;
use warden_store::ReviewStatus;

use super::{
    accepted, csv_table, forbidden, html, see_other, when, Console, Failure, Layout, PostForm,
    SignedIn,
};
use crate::api::reviews::{self, ItemView, NewDecision, ReviewDetail, ReviewSummary};
use crate::api::ApiError;

/// A page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// The outcome of the last action, shown after the redirect.
    done: Option<String>,
    /// `csv` for a download of one of the page's tables instead of the page.
    format: Option<String>,
    /// Which table the CSV holds (each page says which it has).
    table: Option<String>,
}

#[derive(Template)]
#[template(path = "console/reviews.html")]
struct ReviewsPage {
    layout: Layout,
    notice: Option<&'static str>,
    error: Option<String>,
    open: Option<OpenReview>,
    past: Vec<SummaryRow>,
    name: String,
}

/// The open review, as its page section shows it.
struct OpenReview {
    name: String,
    started_by: String,
    started_at: String,
    decided: usize,
    total: usize,
    reminders: Vec<ReminderRow>,
    items: Vec<ItemRow>,
}

struct ReminderRow {
    owner: String,
    count: usize,
    accounts: String,
}

/// One account of the open review, with what its decide form needs.
struct ItemRow {
    account: String,
    owner: String,
    findings: usize,
    decision: String,
    decided_by: String,
    justification: String,
    grants: Vec<GrantBox>,
}

/// A grant a `modify` decision may remove.
struct GrantBox {
    id: String,
    label: String,
    checked: bool,
}

struct SummaryRow {
    name: String,
    status: String,
    started_by: String,
    started_at: String,
    closed_by: String,
    closed_at: String,
    decided: usize,
    total: usize,
}

impl From<&ReviewSummary> for SummaryRow {
    fn from(r: &ReviewSummary) -> Self {
        Self {
            name: r.name.clone(),
            status: r.status.clone(),
            started_by: r.started_by.clone(),
            started_at: when(r.started_at),
            closed_by: r.closed_by.clone().unwrap_or_default(),
            closed_at: r.closed_at.map(when).unwrap_or_default(),
            decided: r.progress.decided,
            total: r.progress.total,
        }
    }
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("started") => Some("Review started: every account is in it, undecided."),
        Some("decided") => Some("Decision recorded."),
        Some("closed") => Some("Review closed; its decisions are applied."),
        _ => None,
    }
}

/// The status of an error a reviewer can correct (bad input, a review in another state), to
/// show on the page; `None` for a failure of Warden itself.
fn correctable(e: &ApiError) -> Option<StatusCode> {
    match e {
        ApiError::Validation { .. } | ApiError::BadJson(_) => Some(StatusCode::BAD_REQUEST),
        ApiError::NotFound(_) => Some(StatusCode::NOT_FOUND),
        ApiError::Conflict(_) | ApiError::WrongState(_) => Some(StatusCode::CONFLICT),
        _ => None,
    }
}

/// `GET /console/reviews`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, Failure> {
    let (open, past) = load(&console).await?;
    if query.format.as_deref() == Some("csv") {
        return Ok(match (query.table.as_deref(), &open) {
            (Some("items"), Some(open)) => items_csv(open),
            (Some("reminders"), Some(open)) => reminders_csv(open),
            _ => reviews_csv(&past),
        });
    }
    let page = ReviewsPage {
        layout: who.layout("reviews"),
        notice: notice(query.done.as_deref()),
        error: None,
        open,
        past,
        name: String::new(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The page again with `error` on it, for a form that was refused.
async fn refused(
    console: &Console,
    who: &SignedIn,
    error: ApiError,
    name: String,
) -> Result<Response, Failure> {
    let Some(status) = correctable(&error) else {
        return Err(error.into());
    };
    let (open, past) = load(console).await?;
    let page = ReviewsPage {
        layout: who.layout("reviews"),
        notice: None,
        error: Some(error.to_string()),
        open,
        past,
        name,
    };
    Ok(html(status, page.render()))
}

/// The open review (if any) and the closed ones, newest first.
async fn load(console: &Console) -> Result<(Option<OpenReview>, Vec<SummaryRow>), Failure> {
    let app = &console.app;
    let all = reviews::list(app).await?;
    let past = all
        .iter()
        .rev()
        .filter(|r| r.status != ReviewStatus::Open.as_str())
        .map(SummaryRow::from)
        .collect();
    let Some(current) = all.iter().find(|r| r.status == ReviewStatus::Open.as_str()) else {
        return Ok((None, past));
    };
    let detail = reviews::detail(app, &current.name).await?;
    let reminders = reviews::owner_reminders(app, &current.name)
        .await?
        .owners
        .into_iter()
        .map(|o| ReminderRow {
            owner: o.owner,
            count: o.accounts.len(),
            accounts: o.accounts.join(", "),
        })
        .collect();
    let mut grants: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
    for g in app.store.grants(None, None).await? {
        grants.entry(g.account.clone()).or_default().push(g);
    }
    let items = detail
        .items
        .iter()
        .map(|i| ItemRow {
            account: i.account.clone(),
            owner: i.owner.clone(),
            findings: i.findings,
            decision: i.decision.clone().unwrap_or_default(),
            decided_by: i.decided_by.clone().unwrap_or_default(),
            justification: i.justification.clone().unwrap_or_default(),
            grants: grants
                .get(&i.account)
                .map(|held| {
                    held.iter()
                        .map(|g| GrantBox {
                            id: g.id.clone(),
                            label: format!("{} {}", g.target, g.rule),
                            checked: i.remove_grants.contains(&g.id),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let open = OpenReview {
        name: current.name.clone(),
        started_by: current.started_by.clone(),
        started_at: when(current.started_at),
        decided: current.progress.decided,
        total: current.progress.total,
        reminders,
        items,
    };
    Ok((Some(open), past))
}

/// The start form.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
    name: Option<String>,
}

impl PostForm for StartForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /console/reviews`: starts a review.
pub async fn start(
    State(console): State<Console>,
    who: SignedIn,
    form: Result<Form<StartForm>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(form) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let name = form.name.unwrap_or_default().trim().to_owned();
    match reviews::start(&console.app, &who.admin, &who.caller, &name).await {
        Ok(_) => Ok(see_other("/console/reviews?done=started")),
        Err(e) => refused(&console, &who, e, name).await,
    }
}

/// `POST /console/reviews/{name}/items/{account}`: decides one account. The form's fields are
/// `csrf`, `decision`, `justification` and `remove_grants` (repeated, one per ticked grant), read
/// from the raw body since the repetition is more than a flat form struct holds.
pub async fn decide(
    State(console): State<Console>,
    who: SignedIn,
    Path((name, account)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut csrf = None;
    let (mut decision, mut justification) = (String::new(), String::new());
    let mut remove_grants = Vec::new();
    for (field, value) in url::form_urlencoded::parse(&body) {
        match &*field {
            "csrf" => csrf = Some(value.into_owned()),
            "decision" => decision = value.into_owned(),
            "justification" => justification = value.into_owned(),
            "remove_grants" => remove_grants.push(value.into_owned()),
            _ => {}
        }
    }
    if !who.session.csrf_matches(csrf.as_deref()) {
        return Ok(forbidden());
    }
    // The grant boxes are labelled as applying to "modify" only; with another decision a
    // leftover tick means nothing.
    if decision != "modify" {
        remove_grants.clear();
    }
    let req = NewDecision {
        account: account.clone(),
        decision,
        // A justification is one line on the ledger: the text area's line breaks become spaces.
        justification: justification
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        remove_grants,
    };
    match reviews::decide_item(&console.app, &who.admin, &who.caller, &name, req).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/reviews?done=decided#item-{account}"
        ))),
        Err(e) => refused(&console, &who, e, String::new()).await,
    }
}

#[derive(Template)]
#[template(path = "console/review_close.html")]
struct ClosePage {
    layout: Layout,
    error: Option<String>,
    name: String,
    keep: usize,
    revoke: Vec<String>,
    modify: Vec<(String, String)>,
    undecided: Vec<String>,
}

/// `GET /console/reviews/{name}/close`: what closing will do, and the button that does it.
pub async fn confirm_close(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    close_page(&console, &who, &name, None, StatusCode::OK).await
}

async fn close_page(
    console: &Console,
    who: &SignedIn,
    name: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let detail = reviews::detail(&console.app, name).await?;
    if detail.review.status != ReviewStatus::Open.as_str() {
        return Ok(see_other(&format!("/console/reviews/{name}")));
    }
    let decided = |d: &'static str| {
        detail
            .items
            .iter()
            .filter(move |i| i.decision.as_deref() == Some(d))
    };
    let page = ClosePage {
        layout: who.layout("reviews"),
        error,
        name: name.to_owned(),
        keep: decided("keep").count(),
        revoke: decided("revoke").map(|i| i.account.clone()).collect(),
        modify: decided("modify")
            .map(|i| (i.account.clone(), i.remove_grants.join(", ")))
            .collect(),
        undecided: detail.undecided.clone(),
    };
    Ok(html(status, page.render()))
}

/// The close form.
#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf: Option<String>,
    /// Present (`on`) when the reviewer closes with undecided accounts.
    force: Option<String>,
}

impl PostForm for CloseForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /console/reviews/{name}/close`: closes the review, applying its decisions.
pub async fn close(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<CloseForm>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(form) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let force = form.force.is_some();
    match reviews::close(&console.app, &who.admin, &who.caller, &name, force).await {
        Ok(_) => Ok(see_other(&format!("/console/reviews/{name}?done=closed"))),
        Err(e) => match correctable(&e) {
            Some(status) if status != StatusCode::NOT_FOUND => {
                close_page(&console, &who, &name, Some(e.to_string()), status).await
            }
            _ => Err(e.into()),
        },
    }
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct ReviewPage {
    layout: Layout,
    notice: Option<&'static str>,
    summary: SummaryRow,
    open: bool,
    complete: bool,
    population: usize,
    digest: String,
    checkpoint: Option<(u64, String)>,
    items: Vec<DetailRow>,
    changes: Option<ChangesView>,
}

/// One account of a review, read-only.
struct DetailRow {
    account: String,
    owner: String,
    status: String,
    findings: usize,
    risk: u32,
    decision: String,
    justification: String,
    decided_by: String,
    decided_at: String,
    remove_grants: String,
    outcome: String,
}

impl From<&ItemView> for DetailRow {
    fn from(i: &ItemView) -> Self {
        Self {
            account: i.account.clone(),
            owner: i.owner.clone(),
            status: i.status.clone(),
            findings: i.findings,
            risk: i.risk,
            decision: i.decision.clone().unwrap_or_default(),
            justification: i.justification.clone().unwrap_or_default(),
            decided_by: i.decided_by.clone().unwrap_or_default(),
            decided_at: i.decided_at.map(when).unwrap_or_default(),
            remove_grants: i.remove_grants.join(", "),
            outcome: i.outcome.clone().unwrap_or_default(),
        }
    }
}

struct ChangesView {
    previous: String,
    accounts_added: Vec<String>,
    accounts_removed: Vec<String>,
    owners_changed: Vec<String>,
    grants: Vec<(String, String, String)>,
    previous_decisions: Vec<PastRow>,
}

struct PastRow {
    account: String,
    decision: String,
    justification: String,
    decided_by: String,
    outcome: String,
}

/// `GET /console/reviews/{name}`: one review, read-only, as `GET /v1/reviews/{name}` has it.
pub async fn detail(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, Failure> {
    let detail = reviews::detail(&console.app, &name).await?;
    let changes = changes_view(&detail);
    if query.format.as_deref() == Some("csv") {
        return Ok(match (query.table.as_deref(), &changes) {
            (Some("grants"), Some(c)) => grant_changes_csv(&name, c),
            (Some("previous"), Some(c)) => previous_csv(&name, c),
            _ => detail_csv(&name, &detail),
        });
    }
    let page = ReviewPage {
        layout: who.layout("reviews"),
        notice: notice(query.done.as_deref()),
        summary: SummaryRow::from(&detail.review),
        open: detail.review.status == ReviewStatus::Open.as_str(),
        complete: detail.complete,
        population: detail.snapshot.population.accounts,
        digest: detail.snapshot.population.digest.clone(),
        checkpoint: detail
            .snapshot
            .checkpoint
            .as_ref()
            .map(|c| (c.size, c.root.clone().unwrap_or_default())),
        items: detail.items.iter().map(DetailRow::from).collect(),
        changes,
    };
    Ok(html(StatusCode::OK, page.render()))
}

fn changes_view(detail: &ReviewDetail) -> Option<ChangesView> {
    let c = detail.changes_since_previous.as_ref()?;
    Some(ChangesView {
        previous: c.previous.clone(),
        accounts_added: c.accounts_added.clone(),
        accounts_removed: c.accounts_removed.clone(),
        owners_changed: c.owners_changed.clone(),
        grants: c
            .grants
            .iter()
            .map(|g| (g.account.clone(), g.added.join("; "), g.removed.join("; ")))
            .collect(),
        previous_decisions: c
            .previous_decisions
            .iter()
            .map(|d| PastRow {
                account: d.account.clone(),
                decision: d.decision.clone().unwrap_or_default(),
                justification: d.justification.clone().unwrap_or_default(),
                decided_by: d.decided_by.clone().unwrap_or_default(),
                outcome: d.outcome.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

/// A review name in a file name: names are letters, digits, `-`, `_` and `.` already, but the
/// header must never carry a quote whatever the store holds.
fn file_part(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

fn items_csv(open: &OpenReview) -> Response {
    let findings: Vec<String> = open.items.iter().map(|i| i.findings.to_string()).collect();
    csv_table(
        &format!("warden-review-{}-items.csv", file_part(&open.name)),
        "account,owner,findings,decision,decided_by,justification",
        open.items.iter().zip(&findings).map(|(i, f)| {
            vec![
                i.account.as_str(),
                &i.owner,
                f,
                &i.decision,
                &i.decided_by,
                &i.justification,
            ]
        }),
    )
}

fn reminders_csv(open: &OpenReview) -> Response {
    let counts: Vec<String> = open.reminders.iter().map(|r| r.count.to_string()).collect();
    csv_table(
        &format!("warden-review-{}-reminders.csv", file_part(&open.name)),
        "owner,undecided,accounts",
        open.reminders
            .iter()
            .zip(&counts)
            .map(|(r, n)| vec![r.owner.as_str(), n, &r.accounts]),
    )
}

fn reviews_csv(past: &[SummaryRow]) -> Response {
    let numbers: Vec<(String, String)> = past
        .iter()
        .map(|r| (r.decided.to_string(), r.total.to_string()))
        .collect();
    csv_table(
        "warden-reviews.csv",
        "name,status,started_by,started_at,closed_by,closed_at,decided,total",
        past.iter().zip(&numbers).map(|(r, (d, t))| {
            vec![
                r.name.as_str(),
                &r.status,
                &r.started_by,
                &r.started_at,
                &r.closed_by,
                &r.closed_at,
                d,
                t,
            ]
        }),
    )
}

fn detail_csv(name: &str, detail: &ReviewDetail) -> Response {
    let rows: Vec<DetailRow> = detail.items.iter().map(DetailRow::from).collect();
    let numbers: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.findings.to_string(), r.risk.to_string()))
        .collect();
    csv_table(
        &format!("warden-review-{}.csv", file_part(name)),
        "account,owner,status,findings,risk,decision,justification,decided_by,decided_at,remove_grants,outcome",
        rows.iter().zip(&numbers).map(|(r, (f, k))| {
            vec![
                r.account.as_str(),
                &r.owner,
                &r.status,
                f,
                k,
                &r.decision,
                &r.justification,
                &r.decided_by,
                &r.decided_at,
                &r.remove_grants,
                &r.outcome,
            ]
        }),
    )
}

fn grant_changes_csv(name: &str, c: &ChangesView) -> Response {
    csv_table(
        &format!("warden-review-{}-grant-changes.csv", file_part(name)),
        "account,added,removed",
        c.grants
            .iter()
            .map(|(a, added, removed)| vec![a.as_str(), added, removed]),
    )
}

fn previous_csv(name: &str, c: &ChangesView) -> Response {
    csv_table(
        &format!("warden-review-{}-previous-decisions.csv", file_part(name)),
        "account,decision,justification,decided_by,outcome",
        c.previous_decisions.iter().map(|d| {
            vec![
                d.account.as_str(),
                &d.decision,
                &d.justification,
                &d.decided_by,
                &d.outcome,
            ]
        }),
    )
}
