//! The web console: server-rendered HTML pages for admins, served on the API address at `/` and
//! under `/console/`, from askama templates compiled into the binary (`templates/console/`) and
//! one embedded stylesheet. Every action is a plain HTML form and every page works without
//! script; one small embedded script (`assets/console.js`) only adds live updates where they
//! help, over the same Server-Sent Events stream the API offers.
//!
//! Admins sign in with their admin token ([`sign_in`]); the session is a cookie ([`session`]),
//! and every form carries the session's CSRF token, checked on every POST. Pages read the store
//! directly; changes go through the same functions the REST API uses (the [`AlertBook`] for
//! alerts), so they land on the ledger exactly as API changes do, with the admin as actor.
//!
//! Pages: [`overview`], [`accounts`] (and each [`account`]), [`activity`], [`alerts`],
//! [`reviews`], [`reports`], [`ledger`].
//!
//! [`AlertBook`]: crate::alerts::AlertBook

pub mod account;
pub mod accounts;
pub mod activity;
pub mod alerts;
pub mod ledger;
pub mod overview;
pub mod reports;
pub mod reviews;
pub mod session;
pub mod sign_in;

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use warden_core::Timestamp;
use warden_gateway::auth::{AdminPrincipal, Principal};

use crate::api::{ApiError, AppState, Caller};
use session::{Session, Sessions, SignedInWith};

/// Where the sign-in form is.
pub const SIGN_IN: &str = "/console/sign-in";

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// The console's state: the API's, plus the sessions.
#[derive(Clone)]
pub struct Console {
    /// Everything the API handlers have.
    pub app: AppState,
    /// Who is signed in.
    pub sessions: Arc<Sessions>,
    /// Recent failed password sign-ins.
    pub throttle: Arc<sign_in::Throttle>,
    /// The ledger verifications started from the console, the latest kept.
    pub verifications: Arc<ledger::Verifications>,
}

/// The console's routes, to merge into the API router.
pub fn router<S: Clone + Send + Sync + 'static>(app: AppState) -> Router<S> {
    let state = Console {
        app,
        sessions: Arc::new(Sessions::default()),
        throttle: Arc::new(sign_in::Throttle::default()),
        verifications: Arc::new(ledger::Verifications::default()),
    };
    Router::new()
        .route("/", get(|| async { see_other("/console/") }))
        .route("/console", get(|| async { see_other("/console/") }))
        .route("/console/", get(overview::page))
        .route(SIGN_IN, get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route(
            "/console/accounts",
            get(accounts::page).post(accounts::create),
        )
        .route("/console/accounts/{name}", get(account::page))
        .route("/console/accounts/{name}/confirm", get(account::confirm))
        .route("/console/accounts/{name}/disable", post(account::disable))
        .route("/console/accounts/{name}/enable", post(account::enable))
        .route("/console/accounts/{name}/keys", post(account::issue_key))
        .route("/console/accounts/{name}/new-key", get(account::new_key))
        .route(
            "/console/accounts/{name}/keys/rotate",
            post(account::rotate_keys),
        )
        .route(
            "/console/accounts/{name}/keys/{key_id}/revoke",
            post(account::revoke_key),
        )
        .route(
            "/console/accounts/{name}/recommendation/apply",
            post(account::apply_recommendation),
        )
        .route("/console/activity", get(activity::page))
        .route("/console/activity/stream", get(activity::stream))
        .route("/console/alerts", get(alerts::page))
        .route("/console/alerts/{id}", get(alerts::detail))
        .route("/console/alerts/{id}/ack", post(alerts::acknowledge))
        .route("/console/alerts/{id}/resolve", post(alerts::resolve))
        .route("/console/reviews", get(reviews::page).post(reviews::start))
        .route("/console/reviews/{name}", get(reviews::detail))
        .route(
            "/console/reviews/{name}/items/{account}",
            post(reviews::decide),
        )
        .route(
            "/console/reviews/{name}/close",
            get(reviews::confirm_close).post(reviews::close),
        )
        .route("/console/reports", get(reports::page))
        .route("/console/reports/download", get(reports::download))
        .route("/console/ledger", get(ledger::page))
        .route("/console/ledger/verify", post(ledger::verify))
        .route("/console/ledger/verification", get(ledger::verification))
        .route("/console/ledger/bundle", get(ledger::bundle))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .layer(middleware::from_fn(harden))
        .with_state(state)
}

/// Headers on every console response: nothing but this origin's own stylesheet and script may
/// load (no inline script, no other origin, connections only back to this one), no other site
/// may frame the page, and nothing is cached (pages show secrets' surroundings and CSRF tokens).
async fn harden(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A `303 See Other` to `to` (after a POST, the browser follows with a GET).
pub fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console/")),
        )],
    )
        .into_response()
}

/// A rendered template as an HTML response.
pub fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A failure while building a page: shown as a short plain page with the API's status code.
pub struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<warden_store::StoreError> for Failure {
    fn from(e: warden_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let status = self.0.into_response().status();
        if status.is_server_error() {
            tracing::error!(error = %message, "console page failed");
        }
        let text = if status.is_server_error() {
            "Something went wrong; the server log has the details.".to_owned()
        } else {
            message
        };
        (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}

/// What every signed-in page's frame shows: who is signed in, the CSRF token for its forms
/// (sign-out included) and which navigation entry is current.
pub struct Layout {
    /// The admin's name.
    pub admin: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The current page: `overview`, `accounts`, `activity`, `alerts`, `reviews`, `reports` or
    /// `ledger`.
    pub page: &'static str,
}

/// A request from a signed-in admin. Without a valid session a GET is sent to the sign-in form
/// and anything else is refused with 403.
pub struct SignedIn {
    /// The admin, as verified on this request.
    pub admin: AdminPrincipal,
    /// Their session.
    pub session: Session,
    /// Their origin, for events.
    pub caller: Caller,
}

impl SignedIn {
    /// The frame for page `page`.
    pub fn layout(&self, page: &'static str) -> Layout {
        Layout {
            admin: self.admin.name.clone(),
            csrf: self.session.csrf.clone(),
            page,
        }
    }
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Ok(caller) = Caller::from_request_parts(parts, console).await;
        let refuse = |parts: &Parts| {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                see_other(SIGN_IN)
            } else {
                forbidden()
            }
        };
        let Some(session) = console.sessions.find(parts) else {
            return Err(refuse(parts));
        };
        match still_valid(console, &session.credential).await {
            Some(admin) => Ok(Self {
                admin,
                session,
                caller,
            }),
            None => {
                console.sessions.close(&session.id);
                Err(refuse(parts))
            }
        }
    }
}

/// The admin a session's credential still stands for: the token still authenticates, or the
/// password is still the one set when the session opened.
async fn still_valid(console: &Console, credential: &SignedInWith) -> Option<AdminPrincipal> {
    match credential {
        SignedInWith::Token(token) => match console.app.auth.authenticate(Some(token)).await {
            Ok(Principal::Admin(admin)) => Some(admin),
            _ => None,
        },
        SignedInWith::Password { name, hash } => {
            match console.app.store.admin_password(name).await {
                Ok(Some((admin, password))) if password.hash == *hash => Some(AdminPrincipal {
                    name: admin.name,
                    token_id: admin.token_id,
                }),
                _ => None,
            }
        }
    }
}

/// The form field every POST carries.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// A POST form, which carries the session's CSRF token.
pub trait PostForm {
    /// The token the form presented.
    fn csrf(&self) -> Option<&str>;
}

impl PostForm for CsrfForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The form, when it parsed and carries the session's CSRF token; when not, answer with
/// [`forbidden`]. Every console POST with a form goes through here.
pub fn accepted<F: PostForm>(who: &SignedIn, form: Result<Form<F>, FormRejection>) -> Option<F> {
    form.ok()
        .map(|Form(f)| f)
        .filter(|f| who.session.csrf_matches(f.csrf()))
}

/// Whether a POST carries the session's CSRF token; when not, answer with [`forbidden`].
pub fn csrf_ok(who: &SignedIn, form: Result<Form<CsrfForm>, FormRejection>) -> bool {
    accepted(who, form).is_some()
}

/// 403 for a POST without a session or without the session's CSRF token.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Forbidden: this form is stale or did not come from a signed-in console page. Reload the page and try again.",
    )
        .into_response()
}

/// A time as the console shows it: `2027-01-31 12:00 UTC`.
pub fn when(t: Timestamp) -> String {
    let s = t.to_string();
    match (s.get(..10), s.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => s,
    }
}

/// One CSV field: quoted when it must be, and with a leading `'` when a spreadsheet would
/// otherwise read it as a formula (`=`, `+`, `-`, `@`).
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// `header` and one line per row of cells (each made safe with [`csv_cell`]), as a CSV
/// download (RFC 4180) named `filename`: how every console table is exported.
pub fn csv_table<R, C>(filename: &str, header: &str, rows: R) -> Response
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let mut out = format!("{header}\r\n");
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| csv_cell(c.as_ref())).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    csv_download(filename, out)
}

/// A CSV body as a download named `filename` (a fixed, quote-free name).
fn csv_download(filename: &str, body: String) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::csv_cell as cell;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("@cmd,x"), "\"'@cmd,x\"");
    }
}
