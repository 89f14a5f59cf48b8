//! `/v1/sessions`: the live PostgreSQL gateway sessions of this instance, and ending one.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use warden_core::Timestamp;

use super::extract::AdminCaller;
use super::problem::{ApiError, Problem};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(kill_session))
}

/// A live session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (on every event of the session).
    #[schema(value_type = String)]
    id: Uuid,
    /// The service account.
    account: String,
    /// The key it logged in with.
    key_id: String,
    /// The target database.
    target: String,
    /// The client's address.
    client: String,
    /// The client's `application_name`.
    application: Option<String>,
    /// When it opened.
    #[schema(value_type = String, format = DateTime)]
    started_at: Timestamp,
    /// Statements recorded so far.
    statements: u64,
}

impl From<warden_gateway::postgres::SessionInfo> for SessionView {
    fn from(s: warden_gateway::postgres::SessionInfo) -> Self {
        Self {
            id: s.id,
            account: s.account,
            key_id: s.key_id,
            target: s.target,
            client: s.client,
            application: s.application,
            started_at: s.started_at,
            statements: s.statements,
        }
    }
}

/// Lists the live database sessions on this instance, oldest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses((status = 200, body = Vec<SessionView>)))]
async fn list_sessions(
    State(app): State<AppState>,
    _who: AdminCaller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(
        app.pg
            .sessions()
            .into_iter()
            .map(SessionView::from)
            .collect(),
    ))
}

/// Ends a live session on both sides: the client gets `57P01` and the upstream connection is
/// closed. Recorded as an admin event; the session's own close event follows.
#[utoipa::path(post, path = "/v1/sessions/{id}/kill", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 404, body = Problem)))]
async fn kill_session(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(id): Path<Uuid>,
) -> Result<Json<SessionView>, ApiError> {
    let Some(session) = app.pg.sessions().into_iter().find(|s| s.id == id) else {
        return Err(ApiError::NotFound(format!("session {id}")));
    };
    let detail = serde_json::json!({
        "account": session.account, "target": session.target, "client": session.client,
    });
    app.audited(
        &who.admin,
        &who.caller,
        "session.kill",
        format!("session/{id}"),
        Some(detail),
        async {
            if app.pg.kill(id) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!("session {id}")))
            }
        },
    )
    .await?;
    Ok(Json(SessionView::from(session)))
}
