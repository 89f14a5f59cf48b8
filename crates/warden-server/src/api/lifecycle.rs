//! `/v1/lifecycle`: what the lifecycle policies would do now (a dry run, for every policy
//! whether enabled or not), and running the enabled ones at once instead of waiting for their
//! schedule.

use axum::extract::State;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::AdminCaller;
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::lifecycle::{self, PolicyPlan};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plan))
        .routes(routes!(run))
}

/// What each policy would do now, and whether it is enabled. Changes nothing.
#[utoipa::path(get, path = "/v1/lifecycle/plan", tag = "accountability",
    responses((status = 200, body = Vec<Object>, description = "Each policy's plan")))]
async fn plan(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<PolicyPlan>>, ApiError> {
    Ok(Json(lifecycle::plan(&app, &app.lifecycle).await?))
}

/// Runs the enabled policies now; returns the steps taken. Each step is an admin event by
/// Warden; this request itself is one by the admin.
#[utoipa::path(post, path = "/v1/lifecycle/run", tag = "accountability",
    responses((status = 200, body = Vec<Object>, description = "The steps taken"),
        (status = 503, body = Problem)))]
async fn run(
    State(app): State<AppState>,
    who: AdminCaller,
) -> Result<Json<Vec<PolicyPlan>>, ApiError> {
    let done = app
        .audited(
            &who.admin,
            &who.caller,
            "lifecycle.run",
            "lifecycle".to_owned(),
            None,
            lifecycle::run(&app, &app.lifecycle),
        )
        .await?;
    Ok(Json(done))
}
