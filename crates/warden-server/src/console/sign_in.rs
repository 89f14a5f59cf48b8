//! Signing in with an admin token, and signing out.
//!
//! The token is verified by the same [`Authenticator`](warden_gateway::auth::Authenticator) as
//! the API's bearer tokens. A failed attempt is recorded on the ledger exactly as a failed admin
//! authentication at the API (`auth` / `admin.authenticate`, denied, with the failure code); a
//! successful one is recorded as `console.sign_in`, and signing out as `console.sign_out`.
//!
//! The sign-in form has no session to bind a CSRF token to; a POST whose `Origin` header names
//! another site is refused instead (browsers send `Origin` on every cross-site form POST).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use warden_core::event::Decision;
use warden_gateway::auth::{AuthFailure, Principal};

use super::session::{clear_cookie, needs_secure, set_cookie};
use super::{csrf_ok, forbidden, html, see_other, Console, CsrfForm, Failure, SignedIn};
use crate::api::Caller;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    error: Option<String>,
}

fn page(status: StatusCode, error: Option<&str>) -> Response {
    html(
        status,
        SignInPage {
            error: error.map(str::to_owned),
        }
        .render(),
    )
}

/// `GET /console/sign-in`: the form (or the overview, for someone already signed in).
pub async fn form(State(console): State<Console>, parts: Parts) -> Response {
    if console.sessions.find(&parts).is_some() {
        return see_other("/console/");
    }
    page(StatusCode::OK, None)
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The admin token.
    token: Option<String>,
}

/// `POST /console/sign-in`: verifies the token and opens a session.
pub async fn submit(
    State(console): State<Console>,
    parts: Parts,
    caller: Caller,
    form: Result<Form<Credentials>, FormRejection>,
) -> Result<Response, Failure> {
    if !same_origin(&parts) {
        return Ok(page(
            StatusCode::FORBIDDEN,
            Some("This sign-in did not come from Warden's own page."),
        ));
    }
    let token = form
        .ok()
        .and_then(|Form(c)| c.token)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let app = &console.app;
    match app.auth.authenticate(token.as_deref()).await {
        Ok(Principal::Admin(admin)) => {
            let session = console.sessions.open(token.unwrap_or_default());
            app.record_auth(
                &caller,
                "console.sign_in",
                admin.actor(),
                Decision::allow("admin token"),
            )
            .await?;
            let mut response = see_other("/console/");
            let cookie = set_cookie(&session.id, needs_secure(&parts));
            if let Ok(v) = cookie.parse() {
                response.headers_mut().insert(SET_COOKIE, v);
            }
            Ok(response)
        }
        Ok(Principal::Service(_)) => Ok(page(
            StatusCode::FORBIDDEN,
            Some("That is a service account's key; the console needs an admin token."),
        )),
        Err(AuthFailure::Store(e)) => Err(e.into()),
        Err(failure) => {
            app.record_auth_failure(&caller, "admin.authenticate", &failure)
                .await?;
            Ok(page(
                StatusCode::UNAUTHORIZED,
                Some("That token was not accepted. Check it and try again."),
            ))
        }
    }
}

/// `POST /console/sign-out`: ends the session.
pub async fn sign_out(
    State(console): State<Console>,
    parts: Parts,
    who: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Failure> {
    if !csrf_ok(&who, form) {
        return Ok(forbidden());
    }
    console.sessions.close(&who.session.id);
    console
        .app
        .record_auth(
            &who.caller,
            "console.sign_out",
            who.admin.actor(),
            Decision::allow("signed out"),
        )
        .await?;
    let mut response = see_other(super::SIGN_IN);
    if let Ok(v) = clear_cookie(needs_secure(&parts)).parse() {
        response.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(response.into_response())
}

/// Whether the request's `Origin` (when it has one) is the host it was sent to.
fn same_origin(parts: &Parts) -> bool {
    let Some(origin) = parts.headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = parts.headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}
