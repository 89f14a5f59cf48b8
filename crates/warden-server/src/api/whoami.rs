//! `GET /v1/whoami`: a credential proves itself. Every attempt, successful or not, is recorded
//! as an `auth` event with the caller's address and user agent. Failures all get the same 401.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::event::Decision;

use super::extract::Caller;
use super::problem::{ApiError, Problem};
use super::AppState;
use warden_gateway::auth::{AuthFailure, Principal};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami))
}

/// Who the presented credential belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Identity {
    /// `service` for an API key, `admin` for an admin token.
    pub kind: String,
    /// The service account or admin name.
    pub account: String,
    /// The credential's public id (for an access token, the id of the key that obtained it).
    pub key_id: String,
}

/// Verifies the bearer credential and says whose it is.
#[utoipa::path(get, path = "/v1/whoami", tag = "auth",
    responses((status = 200, body = Identity), (status = 401, body = Problem)))]
async fn whoami(State(app): State<AppState>, caller: Caller) -> Result<Json<Identity>, ApiError> {
    match app.auth.authenticate(caller.bearer()).await {
        Ok(principal) => {
            let actor = principal.actor();
            let (kind, account, key_id) = match principal {
                Principal::Service(s) => ("service", s.account, s.key_id),
                Principal::Admin(a) => ("admin", a.name, a.token_id),
            };
            app.record_auth(
                &caller,
                "whoami",
                actor,
                Decision::allow("valid credential"),
            )
            .await?;
            Ok(Json(Identity {
                kind: kind.to_owned(),
                account,
                key_id,
            }))
        }
        Err(AuthFailure::Store(e)) => Err(e.into()),
        Err(failure) => {
            app.record_auth_failure(&caller, "whoami", &failure).await?;
            Err(ApiError::Unauthorized)
        }
    }
}
