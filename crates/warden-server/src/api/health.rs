//! Liveness, readiness and metrics. `/readyz` fails when the database does not answer or the
//! ledger's last write failed: a load balancer should stop sending traffic that could not be
//! recorded.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let store = app.store.ping().await;
    let ledger = app.ledger.is_healthy();
    let ready = store.is_ok() && ledger;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "store": { "backend": app.store.backend(), "ok": store.is_ok(), "error": store.err().map(|e| e.to_string()) },
        "ledger": { "ok": ledger },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
