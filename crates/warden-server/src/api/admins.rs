//! `/v1/admins`: the humans who administer Warden. An admin creates another and receives that
//! admin's token once, to hand over. Each admin may also set a password of their own for the web
//! console (stored as an argon2id hash; see [`crate::passwords`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::account::validate_label;
use warden_core::{Admin, Credential, CredentialKind, Timestamp};
use warden_store::AdminPassword;

use super::extract::{AdminCaller, ApiJson};
use super::problem::{ApiError, Problem};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_admin, list_admins))
        .routes(routes!(set_password))
}

/// A new admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    /// Unique lowercase name, e.g. `ada`.
    name: String,
}

/// A newly created admin with their token, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedAdmin {
    /// The admin's name.
    pub name: String,
    /// The token's public id.
    pub token_id: String,
    /// The full token (`wda_<id>_<secret>`).
    pub token: String,
}

/// An admin as listings show them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminView {
    /// Name.
    pub name: String,
    /// Their token's public id.
    pub token_id: String,
    /// Who created them.
    pub created_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Creates an admin and returns their token once.
#[utoipa::path(post, path = "/v1/admins", tag = "admins", request_body = NewAdmin,
    responses((status = 201, body = IssuedAdmin), (status = 409, body = Problem)))]
async fn create_admin(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewAdmin>,
) -> Result<(StatusCode, Json<IssuedAdmin>), ApiError> {
    validate_label("name", &req.name)?;
    let credential = Credential::generate(CredentialKind::AdminToken);
    let admin = Admin {
        name: req.name.clone(),
        token_id: credential.id().to_owned(),
        digest: credential.digest(),
        created_by: who.admin.name.clone(),
        created_at: app.clock.now(),
    };
    let detail = serde_json::json!({ "token_id": admin.token_id });
    app.audited(
        &who.admin,
        &who.caller,
        "admin.create",
        format!("admin/{}", req.name),
        Some(detail),
        async {
            app.store.insert_admin(&admin).await?;
            Ok(())
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedAdmin {
            name: admin.name,
            token_id: admin.token_id,
            token: credential.expose(),
        }),
    ))
}

/// Lists admins.
#[utoipa::path(get, path = "/v1/admins", tag = "admins", responses((status = 200, body = Vec<AdminView>)))]
async fn list_admins(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<AdminView>>, ApiError> {
    let admins = app.store.list_admins().await?;
    Ok(Json(
        admins
            .into_iter()
            .map(|a| AdminView {
                name: a.name,
                token_id: a.token_id,
                created_by: a.created_by,
                created_at: a.created_at,
            })
            .collect(),
    ))
}

/// A new console password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// At least 12 characters.
    password: String,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword { password: <redacted> }")
    }
}

/// Sets the calling admin's own console password (replacing any earlier one, which ends the
/// console sessions opened with it). Audited as `admin.set_password`; the password is never
/// recorded.
#[utoipa::path(put, path = "/v1/admins/me/password", tag = "admins", request_body = NewPassword,
    responses((status = 204), (status = 400, body = Problem)))]
async fn set_password(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    crate::passwords::validate(&req.password)?;
    let hash = crate::passwords::hash(req.password)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let password = AdminPassword {
        hash,
        set_at: app.clock.now(),
    };
    let name = who.admin.name.clone();
    app.audited(
        &who.admin,
        &who.caller,
        "admin.set_password",
        format!("admin/{name}"),
        None,
        async {
            app.store.set_admin_password(&name, &password).await?;
            Ok(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
