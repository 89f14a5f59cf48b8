//! Access reviews, `/v1/reviews`: the periodic audit of every service account.
//!
//! Starting a review snapshots the whole population: the accountability analysis of every
//! account (owner, purpose, grants and their use, key ages, findings), the ledger's latest signed
//! checkpoint, and a SHA-256 digest of the sorted account names, so the review provably covers
//! every account that existed. Reviewers then decide per account `keep`, `revoke` or `modify`
//! (removing listed grants) with a justification, and may change their minds until the review is
//! closed; the reminders endpoint says, per owner, what is still undecided. Closing applies the
//! decisions (disabling revoked accounts and revoking their keys, removing grants with the
//! previous set kept as a grant set version) and records what each did. Starting, deciding and
//! closing are audited admin events (`review.start`, `review.decide`, `review.close`).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_access::{AccountReport, Summary, Window};
use warden_core::account::validate_text;
use warden_core::{Timestamp, ValidationError};
use warden_store::{Review, ReviewDecision, ReviewItem, ReviewStatus, StoreError};

use warden_gateway::auth::AdminPrincipal;

use super::access::Loaded;
use super::extract::{AdminCaller, ApiJson, Caller};
use super::problem::{ApiError, Problem};
use super::{App, AppState};

/// Longest justification accepted (it becomes part of a disabled account's reason).
const MAX_JUSTIFICATION: usize = 400;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_review, list_reviews))
        .routes(routes!(show_review))
        .routes(routes!(decide))
        .routes(routes!(reminders))
        .routes(routes!(close_review))
}

/// A review's name: 1–64 of letters, digits, `-`, `_` and `.`, starting with a letter or digit
/// (`2026-Q4`).
fn validate_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!(
                "`{name}` must be 1 to 64 letters, digits, '-', '_' or '.', starting with a \
                 letter or digit"
            ),
        ))
    }
}

/// SHA-256 (hex) of the account names, sorted, each followed by a newline: equal digests mean
/// the same population.
pub fn population_digest<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let sorted: BTreeSet<&str> = names.into_iter().collect();
    let mut hash = Sha256::new();
    for name in sorted {
        hash.update(name.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// The population a review covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PopulationProof {
    /// How many accounts existed at the start (one item each).
    pub(crate) accounts: usize,
    /// SHA-256 (hex) of the sorted account names, each followed by `\n`.
    pub(crate) digest: String,
}

/// The ledger as it stood when a review started.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointRef {
    /// Entries the checkpoint commits to.
    pub(crate) size: u64,
    /// Its root hash (hex).
    pub(crate) root: Option<String>,
    /// The signed note, verifiable with the ledger key.
    pub(crate) note: String,
}

/// What a review records at its start (the per-account reports are its items).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// When the analysis was made.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) generated_at: Timestamp,
    /// The usage window it considered.
    #[schema(value_type = Object)]
    pub(crate) window: Window,
    /// Totals over all accounts (findings by kind and severity…).
    #[schema(value_type = Object)]
    pub(crate) summary: Summary,
    /// Every account, provably.
    pub(crate) population: PopulationProof,
    /// The latest signed checkpoint of the ledger at the start, if one was made yet.
    pub(crate) checkpoint: Option<CheckpointRef>,
}

/// Decided out of total.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Accounts decided.
    pub(crate) decided: usize,
    /// Accounts in the review.
    pub(crate) total: usize,
}

impl Progress {
    fn of(items: &[ReviewItem]) -> Self {
        Self {
            decided: items.iter().filter(|i| i.decision.is_some()).count(),
            total: items.len(),
        }
    }
}

/// A review in a listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewSummary {
    /// Its name.
    pub(crate) name: String,
    /// `open` or `closed`.
    pub(crate) status: String,
    /// Who started it.
    pub(crate) started_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) started_at: Timestamp,
    /// Who closed it.
    pub(crate) closed_by: Option<String>,
    /// When.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) closed_at: Option<Timestamp>,
    /// Decisions so far.
    pub(crate) progress: Progress,
}

impl ReviewSummary {
    fn of(review: &Review, items: &[ReviewItem]) -> Self {
        Self {
            name: review.name.clone(),
            status: review.status.as_str().to_owned(),
            started_by: review.started_by.clone(),
            started_at: review.started_at,
            closed_by: review.closed_by.clone(),
            closed_at: review.closed_at,
            progress: Progress::of(items),
        }
    }
}

/// One account in a review: its snapshot and the decision on it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    /// The account.
    pub(crate) account: String,
    /// Its owner at the start.
    pub(crate) owner: String,
    /// Its status at the start.
    pub(crate) status: String,
    /// Findings at the start.
    pub(crate) findings: usize,
    /// Risk score at the start.
    pub(crate) risk: u32,
    /// `keep`, `revoke`, `modify`, or null while undecided.
    pub(crate) decision: Option<String>,
    /// Why.
    pub(crate) justification: Option<String>,
    /// Who decided.
    pub(crate) decided_by: Option<String>,
    /// When.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) decided_at: Option<Timestamp>,
    /// Grants a `modify` decision removes.
    pub(crate) remove_grants: Vec<String>,
    /// What closing the review did.
    pub(crate) outcome: Option<String>,
    /// The account as the review found it.
    #[schema(value_type = Object)]
    pub(crate) snapshot: AccountReport,
}

fn report(item: &ReviewItem) -> Result<AccountReport, ApiError> {
    serde_json::from_value(item.body.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "the snapshot of {} in review {} cannot be read: {e}",
            item.account, item.review
        ))
    })
}

impl ItemView {
    fn of(item: &ReviewItem) -> Result<Self, ApiError> {
        let snapshot = report(item)?;
        Ok(Self {
            account: item.account.clone(),
            owner: snapshot.owner.clone(),
            status: serde_json::to_value(snapshot.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            findings: snapshot.findings.len(),
            risk: snapshot.risk,
            decision: item.decision.map(|d| d.as_str().to_owned()),
            justification: item.justification.clone(),
            decided_by: item.decided_by.clone(),
            decided_at: item.decided_at,
            remove_grants: item.remove_grants.clone(),
            outcome: item.outcome.clone(),
            snapshot,
        })
    }
}

/// A decision of an earlier review.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PastDecision {
    /// The account.
    pub(crate) account: String,
    /// `keep`, `revoke`, `modify`, or null if it was left undecided.
    pub(crate) decision: Option<String>,
    /// Why.
    pub(crate) justification: Option<String>,
    /// Who decided.
    pub(crate) decided_by: Option<String>,
    /// When.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) decided_at: Option<Timestamp>,
    /// What closing that review did.
    pub(crate) outcome: Option<String>,
}

/// How one account's grants differ from the previous review's snapshot.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantChanges {
    /// The account.
    pub(crate) account: String,
    /// Grants it holds now and did not then, as `id target rule`.
    pub(crate) added: Vec<String>,
    /// Grants it held then and does not now.
    pub(crate) removed: Vec<String>,
}

/// What changed since the previous review.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Changes {
    /// The previous review.
    pub(crate) previous: String,
    /// Accounts in this review and not in the previous one.
    pub(crate) accounts_added: Vec<String>,
    /// Accounts in the previous review and no longer here.
    pub(crate) accounts_removed: Vec<String>,
    /// Accounts whose owner changed, as `account: old -> new`.
    pub(crate) owners_changed: Vec<String>,
    /// Accounts (in both) whose grants changed.
    pub(crate) grants: Vec<GrantChanges>,
    /// What the previous review decided, per account.
    pub(crate) previous_decisions: Vec<PastDecision>,
}

/// A review with its items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewDetail {
    /// The review.
    #[serde(flatten)]
    pub(crate) review: ReviewSummary,
    /// What it recorded at its start.
    pub(crate) snapshot: Snapshot,
    /// Whether the items are exactly the population the snapshot's digest names.
    pub(crate) complete: bool,
    /// Every account.
    pub(crate) items: Vec<ItemView>,
    /// Accounts still undecided.
    pub(crate) undecided: Vec<String>,
    /// Differences from the review before this one, if there was one.
    pub(crate) changes_since_previous: Option<Changes>,
}

async fn load_review(app: &App, name: &str) -> Result<(Review, Vec<ReviewItem>), ApiError> {
    let review = app
        .store
        .review(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("review {name}")))?;
    let items = app.store.review_items(name).await?;
    Ok((review, items))
}

fn snapshot_of(review: &Review) -> Result<Snapshot, ApiError> {
    serde_json::from_value(review.body.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "the snapshot of review {} cannot be read: {e}",
            review.name
        ))
    })
}

/// The grants of a snapshot, by id, as `id target rule`.
fn grant_lines(report: &AccountReport) -> BTreeMap<String, String> {
    report
        .grants
        .iter()
        .map(|g| {
            (
                g.grant_id.clone(),
                format!("{} {} {}", g.grant_id, g.target, g.rule),
            )
        })
        .collect()
}

fn changes(
    previous: &Review,
    before: &[ReviewItem],
    now: &[ReviewItem],
) -> Result<Changes, ApiError> {
    let old: BTreeMap<&str, &ReviewItem> = before.iter().map(|i| (i.account.as_str(), i)).collect();
    let new: BTreeMap<&str, &ReviewItem> = now.iter().map(|i| (i.account.as_str(), i)).collect();
    let mut grants = Vec::new();
    let mut owners_changed = Vec::new();
    for (account, item) in &new {
        let Some(was) = old.get(account) else {
            continue;
        };
        let (then, current) = (report(was)?, report(item)?);
        if then.owner != current.owner {
            owners_changed.push(format!("{account}: {} -> {}", then.owner, current.owner));
        }
        let (then, current) = (grant_lines(&then), grant_lines(&current));
        let added: Vec<String> = current
            .iter()
            .filter(|(id, _)| !then.contains_key(*id))
            .map(|(_, line)| line.clone())
            .collect();
        let removed: Vec<String> = then
            .iter()
            .filter(|(id, _)| !current.contains_key(*id))
            .map(|(_, line)| line.clone())
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            grants.push(GrantChanges {
                account: (*account).to_owned(),
                added,
                removed,
            });
        }
    }
    Ok(Changes {
        previous: previous.name.clone(),
        accounts_added: new
            .keys()
            .filter(|a| !old.contains_key(*a))
            .map(|a| (*a).to_owned())
            .collect(),
        accounts_removed: old
            .keys()
            .filter(|a| !new.contains_key(*a))
            .map(|a| (*a).to_owned())
            .collect(),
        owners_changed,
        grants,
        previous_decisions: before
            .iter()
            .map(|i| PastDecision {
                account: i.account.clone(),
                decision: i.decision.map(|d| d.as_str().to_owned()),
                justification: i.justification.clone(),
                decided_by: i.decided_by.clone(),
                decided_at: i.decided_at,
                outcome: i.outcome.clone(),
            })
            .collect(),
    })
}

/// A review with its items, what is undecided and what changed since the previous review: what
/// `GET /v1/reviews/{name}` answers and the console shows.
pub(crate) async fn detail(app: &App, name: &str) -> Result<ReviewDetail, ApiError> {
    let (review, items) = load_review(app, name).await?;
    let snapshot = snapshot_of(&review)?;
    let complete = items.len() == snapshot.population.accounts
        && population_digest(items.iter().map(|i| i.account.as_str()))
            == snapshot.population.digest;
    // The previous review is the one started last before this one.
    let all = app.store.reviews().await?;
    let previous = all
        .iter()
        .take_while(|r| r.name != review.name)
        .filter(|r| r.started_at <= review.started_at)
        .last();
    let changes_since_previous = match previous {
        Some(p) => Some(changes(p, &app.store.review_items(&p.name).await?, &items)?),
        None => None,
    };
    Ok(ReviewDetail {
        review: ReviewSummary::of(&review, &items),
        snapshot,
        complete,
        undecided: items
            .iter()
            .filter(|i| i.decision.is_none())
            .map(|i| i.account.clone())
            .collect(),
        items: items.iter().map(ItemView::of).collect::<Result<_, _>>()?,
        changes_since_previous,
    })
}

/// A review to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    /// Its name (`2026-Q4`): 1–64 letters, digits, `-`, `_` or `.`.
    name: String,
}

/// Starts a review: snapshots every account (one item each) with its analysis, and the ledger's
/// latest checkpoint. One review may be open at a time. An admin event `review.start`.
#[utoipa::path(post, path = "/v1/reviews", tag = "reviews", request_body = NewReview,
    responses((status = 201, body = ReviewDetail), (status = 400, body = Problem),
        (status = 409, body = Problem, description = "The name is taken or another review is open")))]
async fn start_review(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewReview>,
) -> Result<(StatusCode, Json<ReviewDetail>), ApiError> {
    let detail = start(&app, &who.admin, &who.caller, &req.name).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// Starts review `name` as `admin` (see [`start_review`]), for the API and the console.
pub(crate) async fn start(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
) -> Result<ReviewDetail, ApiError> {
    validate_name(name)?;
    if app.store.review(name).await?.is_some() {
        return Err(ApiError::Conflict(format!("review {name}")));
    }
    if let Some(open) = app
        .store
        .reviews()
        .await?
        .into_iter()
        .find(|r| r.status == ReviewStatus::Open)
    {
        return Err(ApiError::Conflict(format!(
            "open review {} (close it first)",
            open.name
        )));
    }
    let options = super::access::default_options(app);
    let now = app.clock.now();
    let loaded = Loaded::load(app, None, &options).await?;
    let population = loaded.population();
    let analysis = warden_access::analyze(&population, now, &options);
    let proof = PopulationProof {
        accounts: population.accounts.len(),
        digest: population_digest(population.accounts.iter().map(|a| a.name.as_str())),
    };
    let checkpoint = app
        .store
        .latest_checkpoint()
        .await?
        .map(|cp| CheckpointRef {
            size: cp.size,
            root: warden_ledger::Checkpoint::open(&cp.note, &app.verifier)
                .ok()
                .map(|c| c.root.to_hex()),
            note: cp.note,
        });
    let snapshot = Snapshot {
        generated_at: analysis.generated_at,
        window: analysis.window,
        summary: analysis.summary.clone(),
        population: proof.clone(),
        checkpoint: checkpoint.clone(),
    };
    let items: Vec<ReviewItem> = analysis
        .accounts
        .iter()
        .map(|r| {
            Ok(ReviewItem {
                review: name.to_owned(),
                account: r.account.clone(),
                decision: None,
                justification: None,
                decided_by: None,
                decided_at: None,
                remove_grants: Vec::new(),
                outcome: None,
                body: serde_json::to_value(r)
                    .map_err(|e| ApiError::Internal(format!("snapshot of {}: {e}", r.account)))?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let review = Review {
        name: name.to_owned(),
        status: ReviewStatus::Open,
        started_by: admin.name.clone(),
        started_at: now,
        closed_by: None,
        closed_at: None,
        body: serde_json::to_value(&snapshot)
            .map_err(|e| ApiError::Internal(format!("review snapshot: {e}")))?,
    };
    let event_detail = serde_json::json!({
        "accounts": proof.accounts,
        "population_digest": proof.digest,
        "findings": analysis.summary.findings,
        "checkpoint_size": checkpoint.as_ref().map(|c| c.size),
        "checkpoint_root": checkpoint.as_ref().and_then(|c| c.root.clone()),
    });
    app.audited(
        admin,
        caller,
        "review.start",
        format!("review/{name}"),
        Some(event_detail),
        async { Ok(app.store.insert_review(&review, &items).await?) },
    )
    .await?;
    detail(app, name).await
}

/// Every review, oldest first, with its progress.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews",
    responses((status = 200, body = Vec<ReviewSummary>)))]
async fn list_reviews(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<ReviewSummary>>, ApiError> {
    Ok(Json(list(&app).await?))
}

/// Every review, oldest first, with its progress.
pub(crate) async fn list(app: &App) -> Result<Vec<ReviewSummary>, ApiError> {
    let mut out = Vec::new();
    for review in app.store.reviews().await? {
        let items = app.store.review_items(&review.name).await?;
        out.push(ReviewSummary::of(&review, &items));
    }
    Ok(out)
}

/// One review: its snapshot, every account with the decision on it, what is undecided, and what
/// changed since the previous review.
#[utoipa::path(get, path = "/v1/reviews/{name}", tag = "reviews",
    params(("name" = String, Path, description = "Review")),
    responses((status = 200, body = ReviewDetail), (status = 404, body = Problem)))]
async fn show_review(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<ReviewDetail>, ApiError> {
    Ok(Json(detail(&app, &name).await?))
}

/// A decision on one account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// The account.
    pub(crate) account: String,
    /// `keep`, `revoke` (disable the account and revoke its keys at close) or `modify`.
    pub(crate) decision: String,
    /// Why (required).
    pub(crate) justification: String,
    /// With `modify`: the grants to remove at close.
    #[serde(default)]
    pub(crate) remove_grants: Vec<String>,
}

fn open_or_refuse(review: &Review) -> Result<(), ApiError> {
    if review.status == ReviewStatus::Open {
        Ok(())
    } else {
        Err(ApiError::WrongState(format!(
            "review {} is closed: its decisions are final",
            review.name
        )))
    }
}

/// Decides (or changes the decision on) one account of an open review. An admin event
/// `review.decide` naming the admin.
#[utoipa::path(post, path = "/v1/reviews/{name}/decisions", tag = "reviews",
    params(("name" = String, Path, description = "Review")), request_body = NewDecision,
    responses((status = 200, body = ItemView), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "The review is closed")))]
async fn decide(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<NewDecision>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(
        decide_item(&app, &who.admin, &who.caller, &name, req).await?,
    ))
}

/// Records `admin`'s decision on one account of open review `name` (see [`decide`]), for the
/// API and the console.
pub(crate) async fn decide_item(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
    req: NewDecision,
) -> Result<ItemView, ApiError> {
    let (review, items) = load_review(app, name).await?;
    open_or_refuse(&review)?;
    let decision = ReviewDecision::parse(&req.decision).ok_or_else(|| ApiError::Validation {
        field: "decision".into(),
        message: format!(
            "`{}` is not a decision: use keep, revoke or modify",
            req.decision
        ),
    })?;
    validate_text("justification", &req.justification, MAX_JUSTIFICATION)?;
    let Some(item) = items.iter().find(|i| i.account == req.account) else {
        return Err(ApiError::NotFound(format!(
            "account {} in review {name}",
            req.account
        )));
    };
    if decision != ReviewDecision::Modify && !req.remove_grants.is_empty() {
        return Err(ApiError::Validation {
            field: "remove_grants".into(),
            message: "only a `modify` decision removes grants".into(),
        });
    }
    let held = app.store.grants(Some(&req.account), None).await?;
    for id in &req.remove_grants {
        if !held.iter().any(|g| &g.id == id) {
            return Err(ApiError::Validation {
                field: "remove_grants".into(),
                message: format!("`{id}` is not a grant of {}", req.account),
            });
        }
    }
    let mut decided = item.clone();
    decided.decision = Some(decision);
    decided.justification = Some(req.justification.clone());
    decided.decided_by = Some(admin.name.clone());
    decided.decided_at = Some(app.clock.now());
    decided.remove_grants = req.remove_grants.clone();
    let event_detail = serde_json::json!({
        "account": req.account,
        "decision": decision.as_str(),
        "justification": req.justification,
        "remove_grants": req.remove_grants,
        "replaces": item.decision.map(|d| serde_json::json!({
            "decision": d.as_str(), "decided_by": item.decided_by, "justification": item.justification,
        })),
    });
    app.audited(
        admin,
        caller,
        "review.decide",
        format!("review/{name}"),
        Some(event_detail),
        async { Ok(app.store.decide_review_item(&decided).await?) },
    )
    .await?;
    ItemView::of(&decided)
}

/// What a reminder to one owner says.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OwnerReminder {
    /// The owner (as the snapshot recorded it).
    pub(crate) owner: String,
    /// Their undecided accounts.
    pub(crate) accounts: Vec<String>,
    /// The reminder.
    pub(crate) message: String,
}

/// Undecided accounts of a review, grouped by owner.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Reminders {
    /// The review.
    pub(crate) review: String,
    /// Decisions so far.
    pub(crate) progress: Progress,
    /// One reminder per owner with undecided accounts, by owner.
    pub(crate) owners: Vec<OwnerReminder>,
}

/// What a reminder would say to each owner with undecided accounts.
#[utoipa::path(get, path = "/v1/reviews/{name}/reminders", tag = "reviews",
    params(("name" = String, Path, description = "Review")),
    responses((status = 200, body = Reminders), (status = 404, body = Problem)))]
async fn reminders(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<Reminders>, ApiError> {
    Ok(Json(owner_reminders(&app, &name).await?))
}

/// The reminders of review `name`: its undecided accounts, per owner (none once closed).
pub(crate) async fn owner_reminders(app: &App, name: &str) -> Result<Reminders, ApiError> {
    let (review, items) = load_review(app, name).await?;
    let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if review.status == ReviewStatus::Open {
        for item in items.iter().filter(|i| i.decision.is_none()) {
            by_owner
                .entry(report(item)?.owner)
                .or_default()
                .push(item.account.clone());
        }
    }
    let owners = by_owner
        .into_iter()
        .map(|(owner, accounts)| OwnerReminder {
            message: format!(
                "Access review {name}: please decide keep, revoke or modify, with a \
                 justification, for {} service account{} you own: {}.",
                accounts.len(),
                if accounts.len() == 1 { "" } else { "s" },
                accounts.join(", ")
            ),
            owner,
            accounts,
        })
        .collect();
    Ok(Reminders {
        review: name.to_owned(),
        progress: Progress::of(&items),
        owners,
    })
}

/// How to close.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseReview {
    /// Close even with undecided accounts (they are recorded as undecided and left as they are).
    #[serde(default)]
    force: bool,
}

/// Applies one item's decision; returns what it did.
async fn apply(
    app: &App,
    review: &str,
    who: &str,
    item: &ReviewItem,
    now: Timestamp,
) -> Result<String, ApiError> {
    let account = item.account.as_str();
    let justification = item.justification.as_deref().unwrap_or_default();
    let reason = format!("access review {review}: {justification}");
    match item.decision {
        None => Ok("undecided".to_owned()),
        Some(ReviewDecision::Keep) => Ok("kept".to_owned()),
        Some(ReviewDecision::Revoke) => {
            match app.store.set_account_disabled(account, Some(&reason)).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => return Ok("the account no longer exists".into()),
                Err(e) => return Err(e.into()),
            }
            let mut revoked = 0;
            for key in app.store.list_keys(Some(account)).await? {
                if key.revoked_at.is_none() {
                    app.store.revoke_key(&key.key_id, now).await?;
                    revoked += 1;
                }
            }
            Ok(format!("disabled; {revoked} key(s) revoked"))
        }
        Some(ReviewDecision::Modify) => {
            let held = app.store.grants(Some(account), None).await?;
            let (remove, gone): (Vec<&String>, Vec<&String>) = item
                .remove_grants
                .iter()
                .partition(|id| held.iter().any(|g| &g.id == *id));
            let mut outcome = Vec::new();
            if !remove.is_empty() {
                let version =
                    super::access::next_grant_version(app, account, &held, reason, who, now)
                        .await?;
                let number = version.version;
                let remove: Vec<String> = remove.into_iter().cloned().collect();
                app.store
                    .replace_grants(&version, &remove, &[], now)
                    .await?;
                outcome.push(format!(
                    "removed {} (previous grants kept as version {number})",
                    remove.join(", ")
                ));
            }
            if !gone.is_empty() {
                outcome.push(format!(
                    "already gone: {}",
                    gone.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if outcome.is_empty() {
                outcome.push("no grants to remove".to_owned());
            }
            Ok(outcome.join("; "))
        }
    }
}

/// Closes a review, applying its decisions: `revoke` disables the account (reason
/// `access review NAME: <justification>`) and revokes its keys, `modify` removes the listed
/// grants (keeping the previous set as a grant set version), `keep` changes nothing. Refused while
/// accounts are undecided unless `force`. An admin event `review.close`.
#[utoipa::path(post, path = "/v1/reviews/{name}/close", tag = "reviews",
    params(("name" = String, Path, description = "Review")), request_body = CloseReview,
    responses((status = 200, body = ReviewDetail), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Closed already, or undecided accounts without force")))]
async fn close_review(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    body: Option<ApiJson<CloseReview>>,
) -> Result<Json<ReviewDetail>, ApiError> {
    let force = body.is_some_and(|b| b.0.force);
    Ok(Json(
        close(&app, &who.admin, &who.caller, &name, force).await?,
    ))
}

/// Closes review `name` as `admin`, applying its decisions (see [`close_review`]), for the API
/// and the console.
pub(crate) async fn close(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
    force: bool,
) -> Result<ReviewDetail, ApiError> {
    let (mut review, items) = load_review(app, name).await?;
    open_or_refuse(&review)?;
    let undecided: Vec<&str> = items
        .iter()
        .filter(|i| i.decision.is_none())
        .map(|i| i.account.as_str())
        .collect();
    if !undecided.is_empty() && !force {
        return Err(ApiError::WrongState(format!(
            "review {name} has {} undecided account(s): {}; decide them, or close with force \
             to record them as undecided",
            undecided.len(),
            undecided.join(", ")
        )));
    }
    let count = |d: ReviewDecision| items.iter().filter(|i| i.decision == Some(d)).count();
    let event_detail = serde_json::json!({
        "keep": count(ReviewDecision::Keep),
        "revoke": count(ReviewDecision::Revoke),
        "modify": count(ReviewDecision::Modify),
        "undecided": undecided,
        "force": force,
    });
    let now = app.clock.now();
    review.status = ReviewStatus::Closed;
    review.closed_by = Some(admin.name.clone());
    review.closed_at = Some(now);
    app.audited(
        admin,
        caller,
        "review.close",
        format!("review/{name}"),
        Some(event_detail),
        async {
            let mut done = Vec::with_capacity(items.len());
            for item in &items {
                let mut item = item.clone();
                item.outcome = Some(apply(app, name, &admin.name, &item, now).await?);
                done.push(item);
            }
            Ok(app.store.close_review(&review, &done).await?)
        },
    )
    .await?;
    detail(app, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["2026-Q4", "q1", "2026.h2_final"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-q4", "2026 Q4", "q4/1", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_ignores_order() {
        assert_eq!(population_digest(["b", "a"]), population_digest(["a", "b"]));
        assert_ne!(population_digest(["a", "b"]), population_digest(["a"]));
        // SHA-256 of the empty string.
        assert_eq!(
            population_digest([]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
