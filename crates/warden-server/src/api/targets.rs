//! `/v1/targets`: the upstream APIs and databases, with the credentials Warden injects. Those
//! credentials are sealed before they reach the store and never appear in a response, an event or
//! a log line: responses and events name the injected headers, not their values.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::target::validate_target;
use warden_core::{Target, TargetKind, Timestamp, UpstreamCredentials};

use super::extract::{AdminCaller, ApiJson};
use super::problem::{ApiError, Problem};
use super::{App, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_target, list_targets))
        .routes(routes!(show_target))
        .routes(routes!(rotate_target))
}

/// A new target.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// Unique lowercase name; the first path segment on the HTTP gateway.
    name: String,
    /// `http` or `postgres`.
    kind: String,
    /// Base URL of the upstream, e.g. `https://api.internal:443`.
    upstream: String,
    /// Headers to inject, `Name: value` (write-only).
    #[serde(default)]
    inject_headers: Vec<String>,
    /// `user:password` for basic auth or the database login (write-only).
    basic_auth: Option<String>,
    /// Extra CA certificates (PEM) to trust for the upstream.
    ca_bundle: Option<String>,
    /// Database targets: rotate the upstream password automatically this often (`30d`).
    rotation_period: Option<String>,
}

/// A target as the API shows it: never the credentials.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetView {
    /// Name.
    pub name: String,
    /// `http` or `postgres`.
    pub kind: String,
    /// Upstream base URL.
    pub upstream: String,
    /// Names of the injected headers (values are never shown).
    pub injected: Vec<String>,
    /// Whether a custom CA bundle is configured.
    pub custom_ca: bool,
    /// Who registered it.
    pub created_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// How often the upstream password is rotated automatically (`30d`), if it is.
    pub rotation_period: Option<String>,
    /// When the upstream password was last rotated.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<Timestamp>,
    /// When the next scheduled rotation is due.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_rotation: Option<Timestamp>,
}

impl TargetView {
    fn new(app: &AppState, t: Target) -> Self {
        let injected = t
            .credentials
            .as_deref()
            .and_then(|sealed| app.sealer.open(sealed, &t.name).ok())
            .and_then(|plain| serde_json::from_slice::<UpstreamCredentials>(&plain).ok())
            .map(|c| c.header_names())
            .unwrap_or_default();
        let next_rotation = t.rotation_due();
        Self {
            name: t.name,
            kind: t.kind.as_str().to_owned(),
            upstream: t.upstream,
            injected,
            custom_ca: t.ca_bundle.is_some(),
            rotation_period: t
                .rotation_period_secs
                .map(|s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string()),
            rotated_at: t.rotated_at,
            next_rotation,
            created_by: t.created_by,
            created_at: t.created_at,
        }
    }
}

/// Registers a target.
#[utoipa::path(post, path = "/v1/targets", tag = "targets", request_body = NewTarget,
    responses((status = 201, body = TargetView), (status = 400, body = Problem), (status = 409, body = Problem)))]
async fn create_target(
    State(app): State<AppState>,
    who: AdminCaller,
    ApiJson(req): ApiJson<NewTarget>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    let kind = TargetKind::parse(&req.kind)?;
    let upstream = validate_target(&req.name, kind, &req.upstream)?;
    let credentials = UpstreamCredentials::parse(&req.inject_headers, req.basic_auth.as_deref())?;
    if kind == TargetKind::Postgres {
        if !credentials.headers.is_empty() {
            return Err(ApiError::Validation {
                field: "inject_headers".into(),
                message:
                    "a postgres target takes a login (basic_auth `role:password`), not headers"
                        .into(),
            });
        }
        if credentials.basic.is_none() {
            return Err(ApiError::Validation {
                field: "basic_auth".into(),
                message: "a postgres target needs the login Warden uses upstream (`role:password`)"
                    .into(),
            });
        }
    }
    if let Some(pem) = &req.ca_bundle {
        warden_gateway::tls::validate_ca_bundle(pem).map_err(|e| ApiError::Validation {
            field: "ca_bundle".into(),
            message: format!("not a usable PEM certificate bundle: {e}"),
        })?;
    }
    let rotation_period_secs = match req.rotation_period.as_deref() {
        None => None,
        Some(_) if kind != TargetKind::Postgres => {
            return Err(ApiError::Validation {
                field: "rotation_period".into(),
                message: "only database (postgres) targets rotate their upstream password".into(),
            })
        }
        Some(p) => {
            let d = super::keys::parse_duration("rotation_period", p)?;
            if d < std::time::Duration::from_secs(60) {
                return Err(ApiError::Validation {
                    field: "rotation_period".into(),
                    message: "must be at least 1m".into(),
                });
            }
            Some(d.as_secs())
        }
    };
    let sealed = (!credentials.is_empty()).then(|| {
        let plain = serde_json::to_vec(&credentials).unwrap_or_default();
        app.sealer.seal(&plain, &req.name)
    });
    let target = Target {
        name: req.name.clone(),
        kind,
        upstream,
        ca_bundle: req.ca_bundle,
        credentials: sealed,
        created_by: who.admin.name.clone(),
        created_at: app.clock.now(),
        rotation_period_secs,
        rotated_at: None,
    };
    let detail = serde_json::json!({
        "kind": kind.as_str(),
        "upstream": target.upstream,
        "injected": credentials.header_names(),
        "custom_ca": target.ca_bundle.is_some(),
        "rotation_period_secs": target.rotation_period_secs,
    });
    app.audited(
        &who.admin,
        &who.caller,
        "target.create",
        format!("target/{}", target.name),
        Some(detail),
        async {
            app.store.insert_target(&target).await?;
            Ok(())
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(TargetView::new(&app, target))))
}

/// Lists targets.
#[utoipa::path(get, path = "/v1/targets", tag = "targets", responses((status = 200, body = Vec<TargetView>)))]
async fn list_targets(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<TargetView>>, ApiError> {
    let targets = app.store.list_targets().await?;
    Ok(Json(
        targets
            .into_iter()
            .map(|t| TargetView::new(&app, t))
            .collect(),
    ))
}

/// Shows a target.
#[utoipa::path(get, path = "/v1/targets/{name}", tag = "targets",
    params(("name" = String, Path, description = "Target name")),
    responses((status = 200, body = TargetView), (status = 404, body = Problem)))]
async fn show_target(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    let t = app
        .store
        .target(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("target {name}")))?;
    Ok(Json(TargetView::new(&app, t)))
}

/// Rotates a target's upstream password and stores the new one, sealed.
pub(crate) async fn rotate(
    app: &App,
    resolved: &warden_gateway::policy::ResolvedTarget,
) -> Result<(), ApiError> {
    let name = &resolved.target.name;
    let fresh = app
        .pg
        .rotate(resolved)
        .await
        .map_err(|e| ApiError::Upstream(format!("rotation of target {name} failed: {e}")))?;
    let plain = serde_json::to_vec(&fresh).unwrap_or_default();
    let sealed = app.sealer.seal(&plain, name);
    app.store
        .set_target_credentials(name, &sealed, app.clock.now())
        .await?;
    Ok(())
}

/// Rotates a database target's upstream password: Warden sets a new random password on the
/// upstream role, proves it works, then stores it (encrypted). Open sessions are not dropped.
/// A failed rotation leaves the old password working (502 with the reason).
#[utoipa::path(post, path = "/v1/targets/{name}/rotate", tag = "targets",
    params(("name" = String, Path, description = "Target name")),
    responses((status = 200, body = TargetView), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn rotate_target(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    let resolved = app
        .policy
        .target(&name)
        .await
        .map_err(|e| ApiError::Upstream(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("target {name}")))?;
    if resolved.target.kind != TargetKind::Postgres {
        return Err(ApiError::Validation {
            field: "name".into(),
            message: format!("target {name} is not a database; only postgres targets rotate"),
        });
    }
    app.audited(
        &who.admin,
        &who.caller,
        "target.rotate",
        format!("target/{name}"),
        None,
        rotate(&app, &resolved),
    )
    .await?;
    let target = app
        .store
        .target(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("target {name}")))?;
    Ok(Json(TargetView::new(&app, target)))
}
