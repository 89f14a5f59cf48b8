//! `/v1/grants`: what each account may do on each target. Deny by default; a grant may expire
//! (just-in-time access) and records when it was last used.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::{Grant, Rule, Timestamp};

use super::extract::{AdminCaller, ApiJson};
use super::keys::expiry;
use super::problem::{ApiError, Problem};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_grant, list_grants))
        .routes(routes!(remove_grant))
}

/// A new grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The account.
    account: String,
    /// The target.
    target: String,
    /// For HTTP targets, `METHOD /path-glob` (`GET /v1/orders/*`, `* /v1/**`); for databases,
    /// `CLASS[:schema.table-glob]` (`read`, `write:public.orders`, `read:analytics.*`).
    allow: String,
    /// Just-in-time access: the grant lapses after this long (`4h`).
    expires_in: Option<String>,
}

/// A grant as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    /// Id, named by every decision it allows.
    pub id: String,
    /// Account.
    pub account: String,
    /// Target.
    pub target: String,
    /// What it allows.
    pub allow: String,
    /// `active` or `expired`.
    pub state: String,
    /// Who granted it.
    pub created_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it lapses.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// When it last allowed an action (updated within about a second).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl GrantView {
    fn new(g: Grant, now: Timestamp) -> Self {
        Self {
            state: if g.is_active(now) {
                "active"
            } else {
                "expired"
            }
            .to_owned(),
            id: g.id,
            account: g.account,
            target: g.target,
            allow: g.rule.to_string(),
            created_by: g.created_by,
            created_at: g.created_at,
            expires_at: g.expires_at,
            last_used_at: g.last_used_at,
        }
    }
}

/// Grants an account a rule on a target.
#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = NewGrant,
    responses((status = 201, body = GrantView), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn create_grant(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewGrant>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    let now = app.clock.now();
    let expires_at = expiry(now, req.expires_in.as_deref())?;
    if app.store.account(&req.account).await?.is_none() {
        return Err(ApiError::NotFound(format!("account {}", req.account)));
    }
    let Some(target) = app.store.target(&req.target).await? else {
        return Err(ApiError::NotFound(format!("target {}", req.target)));
    };
    let rule = Rule::parse(target.kind, &req.allow)?;
    let id = format!("g_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let grant = Grant {
        id: id.clone(),
        account: req.account.clone(),
        target: req.target.clone(),
        rule,
        created_by: who.admin.name.clone(),
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    let detail = serde_json::json!({
        "grant_id": id, "account": grant.account, "target": grant.target,
        "allow": grant.rule.to_string(), "expires_at": expires_at,
    });
    app.audited(
        &who.admin,
        &who.caller,
        "grant.create",
        format!("account/{}", req.account),
        Some(detail),
        async {
            app.store.insert_grant(&grant).await?;
            Ok(())
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(GrantView::new(grant, now))))
}

/// Which grants to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    /// Only this account's.
    account: Option<String>,
    /// Only on this target.
    target: Option<String>,
}

/// Lists grants.
#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantFilter),
    responses((status = 200, body = Vec<GrantView>)))]
async fn list_grants(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(f): Query<GrantFilter>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let now = app.clock.now();
    let grants = app
        .store
        .grants(f.account.as_deref(), f.target.as_deref())
        .await?;
    Ok(Json(
        grants.into_iter().map(|g| GrantView::new(g, now)).collect(),
    ))
}

/// Removes a grant; it stops applying at once.
#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "grants",
    params(("id" = String, Path, description = "Grant id")),
    responses((status = 200, body = GrantView), (status = 404, body = Problem)))]
async fn remove_grant(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    let now = app.clock.now();
    let grant = app
        .audited(
            &who.admin,
            &who.caller,
            "grant.remove",
            format!("grant/{id}"),
            None,
            async { Ok(app.store.remove_grant(&id, now).await?) },
        )
        .await?;
    Ok(Json(GrantView::new(grant, now)))
}
