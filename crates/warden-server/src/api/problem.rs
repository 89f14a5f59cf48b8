//! Errors as RFC 9457 `application/problem+json`. Each kind of error has a stable `type` URI
//! (`urn:warden:problem:<slug>`) that clients can match on; `detail` says what happened in this
//! case, and validation errors name the offending `field`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use warden_store::StoreError;

use warden_ledger::LedgerError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Every error the API returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field is invalid.
    #[error("{field}: {message}")]
    Validation {
        /// Which field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The body is not valid JSON of the expected shape.
    #[error("{0}")]
    BadJson(String),
    /// The body is larger than allowed.
    #[error("request body is larger than this server accepts (see `max_body_bytes`)")]
    TooLarge,
    /// No valid credential. Deliberately says nothing about why.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A valid credential without the right to do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such object.
    #[error("{0} not found")]
    NotFound(String),
    /// The object already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The object is not in a state that allows this (an alert already resolved, nothing left
    /// to apply), said in a sentence.
    #[error("{0}")]
    WrongState(String),
    /// Warden itself failed (a file it must write, …), said in a sentence.
    #[error("{0}")]
    Internal(String),
    /// The audit ledger cannot record the action, so it is refused (fail closed).
    #[error(transparent)]
    LedgerUnavailable(#[from] LedgerError),
    /// The database failed.
    #[error("the database is unavailable")]
    StoreUnavailable,
    /// An upstream (a target) failed an operation Warden performs on it.
    #[error("{0}")]
    Upstream(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Validation { .. } => (StatusCode::BAD_REQUEST, "validation", "Invalid field"),
            Self::BadJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            ),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Already exists"),
            Self::WrongState(_) => (StatusCode::CONFLICT, "conflict", "Not possible now"),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            Self::LedgerUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger-unavailable",
                "Audit ledger unavailable",
            ),
            Self::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Database unavailable",
            ),
            Self::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "upstream-failed",
                "Upstream failed",
            ),
        }
    }

    /// The problem's stable type slug, as recorded in audit outcomes.
    pub fn slug(&self) -> &'static str {
        self.parts().1
    }
}

impl From<warden_core::ValidationError> for ApiError {
    fn from(e: warden_core::ValidationError) -> Self {
        Self::Validation {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::NotFound(what) => Self::NotFound(what),
            other => {
                tracing::error!(error = %other, "store operation failed");
                Self::StoreUnavailable
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let field = match &self {
            Self::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let detail = match &self {
            Self::Validation { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:warden:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: Some(detail),
            field,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
