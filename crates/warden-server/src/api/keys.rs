//! API keys: issue, list, rotate (with a grace period) and revoke. The secret is in the response
//! to issue and rotate, and nowhere else, ever.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::{AccountName, Credential, CredentialKind, KeyRecord, Timestamp};
use warden_gateway::auth::AdminPrincipal;

use super::extract::{AdminCaller, ApiJson, Caller};
use super::problem::{ApiError, Problem};
use super::{App, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(rotate_keys))
        .routes(routes!(revoke_key))
}

/// Options for a new key.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Lifetime, e.g. `90d`, `12h`; none means until revoked.
    expires_in: Option<String>,
}

/// Options for a rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the previous keys keep working, e.g. `24h` (default `24h`; `0s` ends them now).
    pub(crate) grace: Option<String>,
    /// Lifetime of the new key.
    pub(crate) expires_in: Option<String>,
}

/// How long rotated-out keys keep working when a rotation does not say.
pub(crate) const DEFAULT_GRACE: &str = "24h";

/// A newly issued key. `secret` is shown here once and cannot be retrieved again.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    /// Public id.
    pub key_id: String,
    /// The full key (`wdn_<key_id>_<secret>`), to hand to the service account.
    pub secret: String,
    /// Its account.
    pub account: String,
    /// When it expires.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Keys this one replaced (rotation only), valid until `grace_until`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<String>,
    /// End of the replaced keys' grace period (rotation only).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<Timestamp>,
}

/// Without the secret, so that no log line or panic message can carry it.
impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .field("superseded", &self.superseded)
            .field("grace_until", &self.grace_until)
            .finish()
    }
}

/// A key as listings show it (never the secret, never the digest).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Public id.
    pub key_id: String,
    /// Its account.
    pub account: String,
    /// `active`, `rotating`, `expired` or `revoked`.
    pub state: String,
    /// The admin who issued it.
    pub created_by: String,
    /// When it was issued.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it expires (for a rotated key, the end of its grace).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Last successful use.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    /// The key that replaced it.
    pub superseded_by: Option<String>,
}

impl KeyView {
    fn new(k: KeyRecord, now: Timestamp) -> Self {
        Self {
            state: k.state(now).as_str().to_owned(),
            key_id: k.key_id,
            account: k.account.to_string(),
            created_by: k.created_by,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            superseded_by: k.superseded_by,
        }
    }
}

/// Parses a human duration (`90d`, `24h`, `15m`) for `field`.
pub fn parse_duration(field: &str, s: &str) -> Result<Duration, ApiError> {
    humantime::parse_duration(s).map_err(|e| ApiError::Validation {
        field: field.to_owned(),
        message: format!("`{s}` is not a duration like 90d, 24h or 15m: {e}"),
    })
}

/// The instant `expires_in` (a duration such as `4h`; zero is refused) after `now`, if given.
pub fn expiry(now: Timestamp, expires_in: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    expires_in
        .map(|s| {
            let d = parse_duration("expires_in", s)?;
            if d.is_zero() {
                return Err(ApiError::Validation {
                    field: "expires_in".into(),
                    message: "must be longer than 0s".into(),
                });
            }
            Ok(now.saturating_add(d))
        })
        .transpose()
}

async fn existing_account(app: &App, name: &str) -> Result<AccountName, ApiError> {
    let account = app
        .store
        .account(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {name}")))?;
    Ok(account.name)
}

/// A new key for `account` and its record (digest and SCRAM verifier; never the secret).
pub(crate) fn new_key(
    app: &App,
    account: AccountName,
    created_by: &str,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> (Credential, KeyRecord) {
    let credential = Credential::generate(CredentialKind::ApiKey);
    let scram = warden_gateway::postgres::scram_verifier(
        &app.redactor,
        account.as_str(),
        &credential.expose(),
    );
    let record = KeyRecord {
        key_id: credential.id().to_owned(),
        account,
        digest: credential.digest(),
        created_by: created_by.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
        superseded_by: None,
        scram: Some(scram),
    };
    (credential, record)
}

/// Issues a new API key for an account. The secret is in this response only.
#[utoipa::path(post, path = "/v1/accounts/{name}/keys", tag = "keys", request_body = NewKey,
    params(("name" = String, Path, description = "Account name")),
    responses((status = 201, body = IssuedKey), (status = 404, body = Problem)))]
async fn create_key(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    body: Option<ApiJson<NewKey>>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let issued = issue(
        &app,
        &who.admin,
        &who.caller,
        &name,
        req.expires_in.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Issues a new key for account `name` as `admin`, an audited `key.create`: the API's
/// `POST /v1/accounts/{name}/keys` and the console's form both come here.
pub(crate) async fn issue(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
    expires_in: Option<&str>,
) -> Result<IssuedKey, ApiError> {
    let now = app.clock.now();
    let expires_at = expiry(now, expires_in)?;
    let account = existing_account(app, name).await?;
    let (credential, record) = new_key(app, account, &admin.name, now, expires_at);
    let detail = serde_json::json!({ "key_id": record.key_id, "expires_at": expires_at });
    app.audited(
        admin,
        caller,
        "key.create",
        format!("account/{name}"),
        Some(detail),
        async {
            app.store.insert_key(&record).await?;
            Ok(())
        },
    )
    .await?;
    Ok(IssuedKey {
        key_id: record.key_id,
        secret: credential.expose(),
        account: name.to_owned(),
        expires_at,
        superseded: Vec::new(),
        grace_until: None,
    })
}

/// Lists an account's keys with their states.
#[utoipa::path(get, path = "/v1/accounts/{name}/keys", tag = "keys",
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = Vec<KeyView>), (status = 404, body = Problem)))]
async fn list_keys(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    existing_account(&app, &name).await?;
    let now = app.clock.now();
    let keys = app.store.list_keys(Some(&name)).await?;
    Ok(Json(
        keys.into_iter().map(|k| KeyView::new(k, now)).collect(),
    ))
}

/// Issues a new key and retires the account's current keys after a grace period.
#[utoipa::path(post, path = "/v1/accounts/{name}/keys/rotate", tag = "keys", request_body = Rotation,
    params(("name" = String, Path, description = "Account name")),
    responses((status = 201, body = IssuedKey), (status = 404, body = Problem)))]
async fn rotate_keys(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    body: Option<ApiJson<Rotation>>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let issued = rotate(&app, &who.admin, &who.caller, &name, &req).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Rotates account `name`'s keys as `admin`, an audited `key.rotate`: a new key, and the
/// current ones kept working until the grace period ends.
pub(crate) async fn rotate(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    name: &str,
    req: &Rotation,
) -> Result<IssuedKey, ApiError> {
    let now = app.clock.now();
    let grace = parse_duration("grace", req.grace.as_deref().unwrap_or(DEFAULT_GRACE))?;
    let grace_until = now.saturating_add(grace);
    let expires_at = expiry(now, req.expires_in.as_deref())?;
    let account = existing_account(app, name).await?;
    let (credential, record) = new_key(app, account, &admin.name, now, expires_at);
    let detail = serde_json::json!({ "key_id": record.key_id, "grace_until": grace_until, "expires_at": expires_at });
    let superseded = app
        .audited(
            admin,
            caller,
            "key.rotate",
            format!("account/{name}"),
            Some(detail),
            async { Ok(app.store.rotate_keys(&record, grace_until).await?) },
        )
        .await?;
    Ok(IssuedKey {
        key_id: record.key_id,
        secret: credential.expose(),
        account: name.to_owned(),
        expires_at,
        superseded,
        grace_until: Some(grace_until),
    })
}

/// Revokes a key at once.
#[utoipa::path(post, path = "/v1/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 404, body = Problem)))]
async fn revoke_key(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(key_id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let key = revoke(&app, &who.admin, &who.caller, &key_id).await?;
    Ok(Json(KeyView::new(key, app.clock.now())))
}

/// Revokes key `key_id` at once as `admin`, an audited `key.revoke`.
pub(crate) async fn revoke(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    key_id: &str,
) -> Result<KeyRecord, ApiError> {
    let now = app.clock.now();
    app.audited(
        admin,
        caller,
        "key.revoke",
        format!("key/{key_id}"),
        None,
        async { Ok(app.store.revoke_key(key_id, now).await?) },
    )
    .await
}
