//! `/v1/accounts`: create, list, show, disable and enable service accounts.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::account::{validate_labels, validate_purpose, validate_text};
use warden_core::{Account, AccountName, Email, Timestamp};
use warden_gateway::auth::AdminPrincipal;

use super::extract::{AdminCaller, ApiJson, Caller};
use super::problem::{ApiError, Problem};
use super::{App, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_account, list_accounts))
        .routes(routes!(show_account))
        .routes(routes!(disable_account))
        .routes(routes!(enable_account))
}

/// A new service account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Unique lowercase DNS label.
    pub(crate) name: String,
    /// Email of the accountable human.
    pub(crate) owner: String,
    /// Why the account exists.
    pub(crate) purpose: String,
    /// `key: value` labels.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    /// When it stops working (RFC 3339 or `YYYY-MM-DD`).
    pub(crate) expires_at: Option<String>,
}

/// A service account as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Unique name.
    pub name: String,
    /// The accountable human.
    pub owner: String,
    /// Why it exists.
    pub purpose: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The admin who created it.
    pub created_by: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it stops working.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// `active`, `disabled` or `expired`.
    pub status: String,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Last successful authentication (updated within about a second).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl AccountView {
    fn new(a: Account, now: Timestamp) -> Self {
        Self {
            status: a.status(now).as_str().to_owned(),
            name: a.name.to_string(),
            owner: a.owner.to_string(),
            purpose: a.purpose,
            labels: a.labels,
            created_by: a.created_by,
            created_at: a.created_at,
            expires_at: a.expires_at,
            disabled_reason: a.disabled_reason,
            last_used_at: a.last_used_at,
        }
    }
}

/// Why an account is being disabled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableAccount {
    /// Recorded on the account and in the audit event.
    reason: String,
}

/// Creates a service account.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn create_account(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let account = create(&app, &who.admin, &who.caller, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::new(account, app.clock.now())),
    ))
}

/// Validates `req` and creates the account as `admin`, an audited `account.create`: the API's
/// `POST /v1/accounts` and the console's form both come here.
pub(crate) async fn create(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    req: NewAccount,
) -> Result<Account, ApiError> {
    let now = app.clock.now();
    let name = AccountName::parse(&req.name)?;
    let owner = Email::parse("owner", &req.owner)?;
    validate_purpose(&req.purpose)?;
    validate_labels(&req.labels)?;
    let expires_at = req
        .expires_at
        .as_deref()
        .map(Timestamp::parse)
        .transpose()
        .map_err(|e| ApiError::Validation {
            field: "expires_at".into(),
            message: e.message,
        })?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::Validation {
            field: "expires_at".into(),
            message: "must be in the future".into(),
        });
    }
    let account = Account {
        name,
        owner,
        purpose: req.purpose,
        labels: req.labels,
        created_by: admin.name.clone(),
        created_at: now,
        expires_at,
        disabled_reason: None,
        last_used_at: None,
    };
    let detail = serde_json::json!({
        "owner": account.owner.as_str(),
        "purpose": account.purpose,
        "labels": account.labels,
        "expires_at": account.expires_at,
    });
    let resource = format!("account/{}", account.name);
    app.audited(
        admin,
        caller,
        "account.create",
        resource,
        Some(detail),
        async {
            app.store.insert_account(&account).await?;
            Ok(())
        },
    )
    .await?;
    Ok(account)
}

/// Lists every service account.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = Problem)))]
async fn list_accounts(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let now = app.clock.now();
    let accounts = app.store.list_accounts().await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| AccountView::new(a, now))
            .collect(),
    ))
}

/// Shows one service account.
#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
async fn show_account(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = app
        .store
        .account(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {name}")))?;
    Ok(Json(AccountView::new(account, app.clock.now())))
}

/// Disables an account: all of its credentials stop working at once.
#[utoipa::path(post, path = "/v1/accounts/{name}/disable", tag = "accounts", request_body = DisableAccount,
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
async fn disable_account(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DisableAccount>,
) -> Result<Json<AccountView>, ApiError> {
    let account = disable(&app, &who.admin, &who.caller, &name, &req.reason).await?;
    Ok(Json(AccountView::new(account, app.clock.now())))
}

/// Disables account `name` for `reason` as `admin`, an audited `account.disable`.
pub(crate) async fn disable(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
    reason: &str,
) -> Result<Account, ApiError> {
    validate_text("reason", reason, 500)?;
    let detail = serde_json::json!({ "reason": reason });
    app.audited(
        admin,
        caller,
        "account.disable",
        format!("account/{name}"),
        Some(detail),
        async { Ok(app.store.set_account_disabled(name, Some(reason)).await?) },
    )
    .await
}

/// Re-enables a disabled account.
#[utoipa::path(post, path = "/v1/accounts/{name}/enable", tag = "accounts",
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
async fn enable_account(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = enable(&app, &who.admin, &who.caller, &name).await?;
    Ok(Json(AccountView::new(account, app.clock.now())))
}

/// Re-enables account `name` as `admin`, an audited `account.enable`.
pub(crate) async fn enable(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
) -> Result<Account, ApiError> {
    app.audited(
        admin,
        caller,
        "account.enable",
        format!("account/{name}"),
        None,
        async { Ok(app.store.set_account_disabled(name, None).await?) },
    )
    .await
}
