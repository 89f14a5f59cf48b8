//! The control-plane REST API under `/v1/`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Handlers are thin: they validate input, call the store, and record every change as an `admin`
//! event through [`App::audited`], which writes the event before the change is made (so a change
//! is never made that the ledger did not accept) and its outcome after. The OpenAPI document at
//! `/v1/openapi.json` is generated from the handlers' annotations.

pub(crate) mod access;
pub(crate) mod accounts;
mod admins;
mod alerts;
pub(crate) mod events;
mod extract;
mod grants;
mod health;
pub(crate) mod keys;
pub(crate) mod ledger;
mod lifecycle;
mod oauth;
pub mod problem;
pub(crate) mod reports;
pub(crate) mod reviews;
mod sessions;
pub(crate) mod targets;
mod whoami;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use warden_core::event::{Action, Actor, Category, Decision, Event, Outcome};
use warden_core::Clock;
use warden_store::Store;

pub use extract::Caller;
pub use problem::ApiError;
use warden_gateway::auth::{AdminPrincipal, AuthFailure, Authenticator};
use warden_gateway::policy::Policy;
use warden_ledger::LedgerWriter;

/// The addresses the gateways listen on.
#[derive(Debug, Clone, Copy)]
pub struct Gateways {
    /// The HTTP gateway.
    pub http: std::net::SocketAddr,
    /// The PostgreSQL gateway.
    pub postgres: std::net::SocketAddr,
}

/// Everything a request handler needs.
pub struct App {
    /// Where the gateways listen.
    pub gateways: Gateways,
    /// The database.
    pub store: Arc<dyn Store>,
    /// The one writer of events.
    pub ledger: LedgerWriter,
    /// Credential verification.
    pub auth: Arc<Authenticator>,
    /// Targets and grants as the gateways see them.
    pub policy: Arc<Policy>,
    /// Issues access tokens (the same service `auth` verifies them with).
    pub tokens: Arc<warden_gateway::token::TokenService>,
    /// Lifetime of an issued access token.
    pub token_ttl: std::time::Duration,
    /// The public half of the checkpoint signing key.
    pub verifier: warden_ledger::Verifier,
    /// Seals and opens upstream credentials under the master key.
    pub sealer: warden_core::Sealer,
    /// Hashes sensitive values under the data directory's key.
    pub redactor: warden_core::Redactor,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The PostgreSQL gateway, for its live sessions.
    pub pg: Arc<warden_gateway::postgres::PgGateway>,
    /// Emails of the humans on record, for the accountability analysis.
    pub people: Vec<String>,
    /// The lifecycle policies.
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// Alerts: raising, acknowledging, resolving, delivering.
    pub alerts: Arc<crate::alerts::AlertBook>,
    /// The detection engine (baselines and detectors), when detection runs here.
    pub detection: Option<Arc<std::sync::Mutex<warden_detect::Engine>>>,
    /// Turns true when the server is stopping: long-lived responses (event streams) end then,
    /// so a graceful shutdown does not wait on them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl App {
    /// Records an admin change around `change`: the event (who, what, on what) is made durable
    /// first, then the change runs, then its outcome is recorded. If the ledger refuses the event
    /// the change does not happen.
    pub async fn audited<T>(
        &self,
        admin: &AdminPrincipal,
        caller: &Caller,
        verb: &str,
        resource: String,
        detail: Option<serde_json::Value>,
        change: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let event = Event::new(
            self.clock.now(),
            admin.actor(),
            caller.source(),
            Action {
                category: Category::Admin,
                verb: verb.to_owned(),
                resource: Some(resource),
                detail,
            },
            Decision::allow("admin token"),
        );
        self.recorded(event, change).await
    }

    /// Records `event` (an admin change by anyone, Warden's own jobs included) around
    /// `change`, exactly as [`App::audited`] does.
    pub async fn recorded<T>(
        &self,
        event: Event,
        change: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        self.recorded_at(event, change).await?.1
    }

    /// As [`App::recorded`], also returning where the event is on the ledger: the outer error is
    /// the ledger refusing the event (nothing changed), the inner result is the change's.
    pub async fn recorded_at<T>(
        &self,
        event: Event,
        change: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<(warden_ledger::Receipt, Result<T, ApiError>), ApiError> {
        let receipt = self.ledger.record(event).await?;
        let started = Instant::now();
        let result = change.await;
        if result.is_ok() {
            self.auth.invalidate();
            self.policy.invalidate();
        }
        let outcome = Outcome {
            status: match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.slug().to_owned(),
            },
            error: result.as_ref().err().map(ToString::to_string),
            duration_us: Some(warden_core::elapsed_micros(started)),
            ..Outcome::default()
        };
        if let Err(e) = self.ledger.record_outcome(receipt.event_id, outcome).await {
            // The change is made and its intent is on the ledger; only the outcome entry is
            // missing. The client still needs the result (it may hold a secret shown once).
            tracing::error!(error = %e, event_id = %receipt.event_id, "could not record the outcome of an admin change");
        }
        Ok((receipt, result))
    }

    /// Records a completed authentication attempt (success or failure).
    pub async fn record_auth(
        &self,
        caller: &Caller,
        verb: &str,
        actor: Actor,
        decision: Decision,
    ) -> Result<(), ApiError> {
        self.record_auth_detail(caller, verb, actor, decision, None)
            .await
    }

    /// Records a failed authentication attempt: what was presented, why it failed (the reason in
    /// words and as a stable `detail.failure` code).
    pub async fn record_auth_failure(
        &self,
        caller: &Caller,
        verb: &str,
        failure: &AuthFailure,
    ) -> Result<(), ApiError> {
        self.record_auth_detail(
            caller,
            verb,
            failure.actor(),
            Decision::deny(failure.to_string()),
            Some(failure.detail()),
        )
        .await
    }

    /// Records a completed authentication attempt with `action.detail` (never a secret).
    pub async fn record_auth_detail(
        &self,
        caller: &Caller,
        verb: &str,
        actor: Actor,
        decision: Decision,
        detail: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
        let mut event = Event::new(
            self.clock.now(),
            actor,
            caller.source(),
            Action {
                category: Category::Auth,
                verb: verb.to_owned(),
                resource: None,
                detail,
            },
            decision,
        );
        event.outcome = Some(Outcome {
            status: if event.decision.allowed {
                "ok"
            } else {
                "denied"
            }
            .to_owned(),
            ..Outcome::default()
        });
        self.ledger.record(event).await?;
        Ok(())
    }
}

/// Shared state of every handler.
pub type AppState = Arc<App>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden control-plane API",
        description = "Service accounts, API keys, admins and the audit trail. Errors are RFC 9457 problem documents.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(problem::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // OAuth client authentication at `/oauth/token`: key id and API key as HTTP Basic.
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The whole API as one router.
pub fn router(app: AppState, max_body_bytes: usize) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(accounts::routes())
        .merge(keys::routes())
        .merge(admins::routes())
        .merge(events::routes())
        .merge(whoami::routes())
        .merge(ledger::routes())
        .merge(targets::routes())
        .merge(grants::routes())
        .merge(oauth::routes())
        .merge(sessions::routes())
        .merge(alerts::routes())
        .merge(access::routes())
        .merge(reports::routes())
        .merge(lifecycle::routes())
        .merge(reviews::routes())
        .split_for_parts();
    let openapi: Arc<str> = openapi.to_json().unwrap_or_default().into();
    api.route(
        "/v1/openapi.json",
        axum::routing::get(move || {
            let doc = openapi.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc.to_string(),
                )
            }
        }),
    )
    .merge(health::routes())
    .merge(crate::console::router(app.clone()))
    .route_layer(middleware::from_fn(count_requests))
    .fallback(|| async { ApiError::NotFound("route".into()) })
    .layer(DefaultBodyLimit::max(max_body_bytes))
    .with_state(app)
}

/// Counts requests per route and status for `/metrics`.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("warden_api_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("warden_api_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
