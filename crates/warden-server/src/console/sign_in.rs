//! Signing in with a name and password or with an admin token, and signing out.
//!
//! A token is verified by the same [`Authenticator`](warden_gateway::auth::Authenticator) as
//! the API's bearer tokens, and a failed attempt is recorded on the ledger exactly as a failed
//! admin authentication at the API (`auth` / `admin.authenticate`, denied, with the failure
//! code). A password is checked against the admin's argon2id hash ([`crate::passwords`]); a
//! failed attempt is recorded as `auth` / `console.sign_in`, denied, with `detail.failure`
//! `wrong_password` (whether or not the name exists, which the answer does not reveal either).
//! After [`MAX_FAILURES`] failed passwords for one name within [`FAILURE_WINDOW`], that name's
//! password sign-ins are refused until the window passes (recorded as `locked_out`), so
//! guessing is slow even from many addresses; while failures for very many names are in the
//! window, names not among them are refused too rather than counted nowhere. The token path
//! is unaffected, as tokens are not guessable. A successful sign-in is recorded as
//! `console.sign_in`, signing out as `console.sign_out`.
//!
//! The sign-in form has no session to bind a CSRF token to; a POST whose `Origin` header names
//! another site is refused instead (browsers send `Origin` on every cross-site form POST).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use warden_core::event::{Actor, ActorKind, AuthMethod, Decision};
use warden_gateway::auth::{AdminPrincipal, AuthFailure, Principal};

use super::session::{clear_cookie, needs_secure, set_cookie, Session, SignedInWith};
use super::{csrf_ok, forbidden, html, see_other, Console, CsrfForm, Failure, SignedIn};
use crate::api::Caller;

/// Failed passwords for one name within [`FAILURE_WINDOW`] before its password sign-ins pause.
pub const MAX_FAILURES: usize = 5;
/// How long a failed password counts against its name.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names whose failures are tracked at once; beyond it, password sign-ins for other names wait
/// (fail closed) until failures age out of the window.
const MAX_TRACKED: usize = 10_000;

/// Recent failed passwords per admin name.
#[derive(Debug, Default)]
pub struct Throttle {
    // Held only for map operations, never across an `.await`.
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Throttle {
    /// Whether `name` has used up its failed attempts for now. While failures for
    /// [`MAX_TRACKED`] names are within the window (someone is spraying names), a name not among
    /// them is refused too: dropping its failures instead would let guesses at it go uncounted.
    fn locked(&self, name: &str) -> bool {
        let mut map = self.lock();
        if let Some(times) = map.get_mut(name) {
            times.retain(|t| t.elapsed() < FAILURE_WINDOW);
            return times.len() >= MAX_FAILURES;
        }
        if map.len() >= MAX_TRACKED {
            map.retain(|_, times| times.iter().any(|t| t.elapsed() < FAILURE_WINDOW));
        }
        map.len() >= MAX_TRACKED
    }

    /// Counts a failed password for `name` (checked by [`Self::locked`] first, so there is
    /// room for it).
    fn failed(&self, name: &str) {
        self.lock()
            .entry(name.to_owned())
            .or_default()
            .push(Instant::now());
    }

    fn succeeded(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    error: Option<String>,
    username: String,
}

fn page(status: StatusCode, error: Option<&str>) -> Response {
    page_for(status, error, "")
}

fn page_for(status: StatusCode, error: Option<&str>, username: &str) -> Response {
    html(
        status,
        SignInPage {
            error: error.map(str::to_owned),
            username: username.to_owned(),
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

/// The sign-in forms' fields: a name and password, or a token.
#[derive(Deserialize)]
pub struct Credentials {
    /// The admin's name (with `password`).
    username: Option<String>,
    /// Their password.
    password: Option<String>,
    /// An admin token.
    token: Option<String>,
}

/// `POST /console/sign-in`: verifies the name and password, or the token, and opens a session.
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
    let Ok(Form(credentials)) = form else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            Some("Enter your name and password, or an admin token."),
        ));
    };
    let given = |v: Option<String>| v.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(name) = given(credentials.username) {
        let password = credentials.password.unwrap_or_default();
        return with_password(&console, &parts, &caller, name, password).await;
    }
    let token = given(credentials.token);
    let app = &console.app;
    match app.auth.authenticate(token.as_deref()).await {
        Ok(Principal::Admin(admin)) => {
            let session = console
                .sessions
                .open(SignedInWith::Token(token.unwrap_or_default()));
            app.record_auth(
                &caller,
                "console.sign_in",
                admin.actor(),
                Decision::allow("admin token"),
            )
            .await?;
            Ok(signed_in(&session, &parts))
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

/// The answer to a successful sign-in: the session cookie, and on to the overview.
fn signed_in(session: &Session, parts: &Parts) -> Response {
    let mut response = see_other("/console/");
    let cookie = set_cookie(&session.id, needs_secure(parts));
    if let Ok(v) = cookie.parse() {
        response.headers_mut().insert(SET_COOKIE, v);
    }
    response
}

/// Signs in with a name and password (see the module docs for the throttle).
async fn with_password(
    console: &Console,
    parts: &Parts,
    caller: &Caller,
    name: String,
    password: String,
) -> Result<Response, Failure> {
    let app = &console.app;
    // Who tried, as the ledger names them: the name as typed, cut to a sane length.
    let tried = Actor {
        kind: ActorKind::Human,
        account: Some(name.chars().take(64).collect()),
        key_id: None,
        auth: AuthMethod::None,
    };
    let refuse = |failure: &str| {
        let detail = serde_json::json!({ "failure": failure, "method": "password" });
        app.record_auth_detail(
            caller,
            "console.sign_in",
            tried.clone(),
            Decision::deny(format!("password sign-in refused: {failure}")),
            Some(detail),
        )
    };
    if console.throttle.locked(&name) {
        refuse("locked_out").await?;
        return Ok(page_for(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed attempts for this name. Wait 15 minutes, or sign in with an admin token."),
            &name,
        ));
    }
    let stored = app.store.admin_password(&name).await?;
    let hash = stored.as_ref().map(|(_, p)| p.hash.clone());
    let matched = crate::passwords::verify(password, hash).await;
    match stored {
        Some((admin, p)) if matched => {
            console.throttle.succeeded(&name);
            let principal = AdminPrincipal {
                name: admin.name.clone(),
                token_id: admin.token_id,
            };
            let session = console.sessions.open(SignedInWith::Password {
                name: admin.name,
                hash: p.hash,
            });
            app.record_auth(
                caller,
                "console.sign_in",
                principal.actor(),
                Decision::allow("password"),
            )
            .await?;
            Ok(signed_in(&session, parts))
        }
        _ => {
            console.throttle.failed(&name);
            refuse("wrong_password").await?;
            Ok(page_for(
                StatusCode::UNAUTHORIZED,
                Some("That name and password were not accepted. Check them and try again."),
                &name,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_locks_after_its_failures_and_a_success_clears_them() {
        let throttle = Throttle::default();
        for _ in 0..MAX_FAILURES {
            assert!(!throttle.locked("ada"));
            throttle.failed("ada");
        }
        assert!(throttle.locked("ada"));
        assert!(!throttle.locked("grace"), "other names are not affected");
        throttle.succeeded("ada");
        assert!(!throttle.locked("ada"));
    }

    #[test]
    fn spraying_names_fails_closed_for_names_not_yet_tracked() {
        let throttle = Throttle::default();
        throttle.failed("ada");
        for i in 1..MAX_TRACKED {
            throttle.failed(&format!("spray-{i}"));
        }
        assert!(throttle.locked("grace"), "an untracked name waits");
        assert!(
            !throttle.locked("ada"),
            "a tracked name still has its own count"
        );
    }
}
