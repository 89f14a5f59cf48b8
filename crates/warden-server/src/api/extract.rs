//! Request extractors: who is calling ([`Caller`]), the admin check ([`AdminCaller`]) and JSON
//! bodies whose errors become problem documents ([`ApiJson`]).

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use warden_core::event::Source;

use super::problem::ApiError;
use super::AppState;
use warden_gateway::auth::{AdminPrincipal, AuthFailure, Principal};

/// The caller's network origin and presented credential.
#[derive(Debug, Clone)]
pub struct Caller {
    addr: Option<SocketAddr>,
    user_agent: Option<String>,
    bearer: Option<String>,
}

impl Caller {
    /// Where the request came from, for events.
    pub fn source(&self) -> Source {
        Source {
            ip: self.addr.map(|a| a.ip().to_string()),
            port: self.addr.map(|a| a.port()),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The bearer credential, if any.
    pub fn bearer(&self) -> Option<&str> {
        self.bearer.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        let bearer = warden_gateway::auth::bearer(&parts.headers, None);
        Ok(Self {
            addr,
            user_agent,
            bearer,
        })
    }
}

/// An authenticated admin. Rejects with 401 for missing or invalid credentials (recording the
/// attempt) and 403 for a valid service-account key.
pub struct AdminCaller {
    /// The admin.
    pub admin: AdminPrincipal,
    /// Their origin.
    pub caller: Caller,
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, app).await;
        match app.auth.authenticate(caller.bearer()).await {
            Ok(Principal::Admin(admin)) => Ok(Self { admin, caller }),
            Ok(Principal::Service(s)) => Err(ApiError::Forbidden(format!(
                "service account `{}` cannot use the admin API; use an admin token",
                s.account
            ))),
            Err(AuthFailure::Store(e)) => Err(e.into()),
            Err(failure) => {
                app.record_auth_failure(&caller, "admin.authenticate", &failure)
                    .await?;
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// A JSON body whose rejections are problem documents naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge;
    }
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde_path_to_error gives "path: message"; the path is the field.
            let text =
                std::error::Error::source(&e).map_or_else(|| e.body_text(), ToString::to_string);
            let (path, message) = match text.split_once(": ") {
                Some((path, message)) if !path.contains(' ') => (path, message),
                _ => (".", text.as_str()),
            };
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|m| m.split_once('`'))
                .map(|(name, _)| name);
            let field = match (path, missing) {
                (".", Some(name)) => name.to_owned(),
                (path, Some(name)) => format!("{path}.{name}"),
                (".", None) => return ApiError::BadJson(message.to_owned()),
                (path, None) => path.to_owned(),
            };
            ApiError::Validation {
                field,
                message: message.to_owned(),
            }
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::BadJson(
            std::error::Error::source(&e)
                .map_or_else(|| e.body_text(), |s| format!("invalid JSON: {s}")),
        ),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadJson("expected `Content-Type: application/json`".to_owned())
        }
        other => ApiError::BadJson(other.body_text()),
    }
}

/// An optional JSON body: a request without `Content-Type` has none, so `curl -X POST` works for
/// endpoints whose body is all defaults.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}
