//! OAuth 2.0 client credentials (RFC 6749 §4.4): `POST /oauth/token` exchanges an API key for a
//! short-lived access token (an EdDSA JWT, see `warden_gateway::token`), and
//! `GET /.well-known/jwks.json` publishes the public key that verifies it.
//!
//! The client is the API key: `client_id` is its key id and `client_secret` the whole
//! `wdn_…` key, sent in the form body or as HTTP Basic (RFC 6749 §2.3.1), never both. The key is
//! verified exactly as when it is presented directly, so a revoked key, an expired key or a
//! disabled account gets no token. Errors are RFC 6749 §5.2 JSON documents; every attempt,
//! successful or not, is one `auth` event with verb `token.issue`: on success its
//! `action.detail` holds the token's `jti` (never the token), on failure the decision's reason
//! says why (never the secret).

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::event::{Actor, ActorKind, AuthMethod, Decision};
use warden_core::{Credential, CredentialKind};
use warden_gateway::auth::AuthFailure;

use super::extract::Caller;
use super::problem::ApiError;
use super::AppState;

/// The event verb of every token request.
const VERB: &str = "token.issue";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_token))
        .routes(routes!(jwks))
}

/// A token request (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    grant_type: Option<String>,
    /// The API key's id (or send it as the HTTP Basic user name).
    client_id: Option<String>,
    /// The whole API key, `wdn_…` (or send it as the HTTP Basic password).
    client_secret: Option<String>,
    /// Accepted and ignored: a token carries its account's grants, no more and no less.
    scope: Option<String>,
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The access token: present it as `Authorization: Bearer <token>` instead of the API key.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// An error response (RFC 6749 §5.2).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client` or `unsupported_grant_type`.
    pub error: String,
    /// What went wrong, for a human. Says nothing about why client authentication failed.
    pub error_description: String,
}

/// Why a token request was refused: what the client is told, and what the event records.
#[derive(Debug)]
enum Refusal {
    /// 400 `invalid_request`; the description is safe to show and to record.
    InvalidRequest(&'static str),
    /// 400 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// 401 `invalid_client`; the reason is recorded, never shown.
    InvalidClient(String),
    /// 500 `server_error`: the token could not be signed.
    ServerError,
}

impl Refusal {
    fn reason(&self) -> String {
        match self {
            Self::InvalidRequest(d) => format!("invalid_request: {d}"),
            Self::UnsupportedGrantType => "unsupported_grant_type".to_owned(),
            Self::InvalidClient(r) => format!("invalid_client: {r}"),
            Self::ServerError => "server_error: the token could not be signed".to_owned(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only the client_credentials grant is supported",
            ),
            Self::InvalidClient(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            ),
            Self::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the token could not be issued",
            ),
        };
        let mut response = (
            status,
            Json(OAuthError {
                error: error.to_owned(),
                error_description: description.to_owned(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"warden\""),
            );
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The client's credentials, as presented.
struct Client {
    id: String,
    secret: String,
}

/// Issues an access token for an API key (OAuth 2.0 client credentials, RFC 6749 §4.4).
///
/// Authenticate with `client_id` (the key id) and `client_secret` (the whole `wdn_…` key) in
/// the form body, or with HTTP Basic `client_id:client_secret`; not both.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, body = TokenResponse, description = "A token; the response has `Cache-Control: no-store`."),
        (status = 400, body = OAuthError, description = "`invalid_request` or `unsupported_grant_type`."),
        (status = 401, body = OAuthError, description = "`invalid_client`, with `WWW-Authenticate: Basic`."),
    ))]
async fn issue_token(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Until the key verifies, the event names at most the key id the client claimed.
    let mut actor = Actor {
        kind: ActorKind::Service,
        account: None,
        key_id: None,
        auth: AuthMethod::None,
    };
    let mut code = "invalid_request";
    let refusal = match client(&headers, &body) {
        Err(refusal) => refusal,
        Ok(client) => {
            actor.key_id = plausible_key_id(&client.id);
            match authenticate(&app, &caller, client).await {
                Ok(response) => return Ok(response),
                Err(Failure::Store(e)) => return Err(e.into()),
                Err(Failure::Api(e)) => return Err(e),
                Err(Failure::Refused(refusal, failed, failure)) => {
                    if let Some(failed) = failed {
                        actor = failed;
                    }
                    code = failure;
                    refusal
                }
            }
        }
    };
    let detail = serde_json::json!({ "failure": code });
    app.record_auth_detail(
        &caller,
        VERB,
        actor,
        Decision::deny(refusal.reason()),
        Some(detail),
    )
    .await?;
    Ok(refusal.into_response())
}

enum Failure {
    /// Refused, with the actor to record when the key was identified, and the failure's code
    /// (as `AuthFailure::code`).
    Refused(Refusal, Option<Actor>, &'static str),
    Store(warden_store::StoreError),
    Api(ApiError),
}

/// Verifies the client's key, issues the token and records the event (before replying: if the
/// ledger cannot record it, no token is handed out).
async fn authenticate(
    app: &AppState,
    caller: &Caller,
    client: Client,
) -> Result<Response, Failure> {
    // The key id is inside the key: a mismatch is refused before the key is even looked up.
    if let Ok(presented) = Credential::parse(CredentialKind::ApiKey, &client.secret) {
        if presented.id() != client.id {
            let actor = Actor {
                kind: ActorKind::Service,
                account: None,
                key_id: Some(presented.id().to_owned()),
                auth: AuthMethod::None,
            };
            return Err(Failure::Refused(
                Refusal::InvalidClient("client_id does not match the client_secret's key".into()),
                Some(actor),
                "client_id_mismatch",
            ));
        }
    }
    let principal = match app.auth.authenticate_key(&client.secret).await {
        Ok(p) => p,
        Err(AuthFailure::Store(e)) => return Err(Failure::Store(e)),
        Err(AuthFailure::Malformed) => {
            return Err(Failure::Refused(
                Refusal::InvalidClient("client_secret is not an API key".into()),
                None,
                AuthFailure::Malformed.code(),
            ))
        }
        Err(failure) => {
            return Err(Failure::Refused(
                Refusal::InvalidClient(failure.to_string()),
                Some(failure.actor()),
                failure.code(),
            ))
        }
    };
    let issued = app
        .tokens
        .issue(
            &principal.account,
            &principal.key_id,
            app.clock.now(),
            app.token_ttl,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "could not sign an access token");
            Failure::Refused(Refusal::ServerError, None, "server_error")
        })?;
    let actor = principal.actor();
    let detail = serde_json::json!({ "jti": issued.jti, "expires_in": issued.expires_in });
    app.record_auth_detail(
        caller,
        VERB,
        actor,
        Decision::allow("valid API key"),
        Some(detail),
    )
    .await
    .map_err(Failure::Api)?;
    let mut response = Json(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
    })
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Reads the client's credentials from the request, refusing malformed requests (RFC 6749 §3.2:
/// a parameter may not be repeated; §2.3: one authentication method only).
fn client(headers: &HeaderMap, body: &[u8]) -> Result<Client, Refusal> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Refusal::InvalidRequest(
            "expected Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let request = parse_form(body)?;
    match request.grant_type.as_deref() {
        None | Some("") => return Err(Refusal::InvalidRequest("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => return Err(Refusal::UnsupportedGrantType),
    }
    let _ = request.scope; // Accepted and ignored.
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(basic_credentials(value).ok_or_else(|| {
            Refusal::InvalidClient("Authorization is not HTTP Basic client credentials".into())
        })?),
    };
    match (basic, request.client_id, request.client_secret) {
        (Some(_), _, Some(_)) => Err(Refusal::InvalidRequest(
            "use one client authentication method: HTTP Basic or client_secret, not both",
        )),
        (Some((id, secret)), body_id, None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(Refusal::InvalidRequest(
                    "client_id in the body differs from the HTTP Basic user name",
                ));
            }
            Ok(Client { id, secret })
        }
        (None, Some(id), Some(secret)) => Ok(Client { id, secret }),
        (None, None, Some(_)) => Err(Refusal::InvalidRequest(
            "client_id is required with client_secret",
        )),
        (None, _, None) => Err(Refusal::InvalidClient(
            "no client authentication".to_owned(),
        )),
    }
}

/// The form's parameters, each at most once.
fn parse_form(body: &[u8]) -> Result<TokenRequest, Refusal> {
    let mut request = TokenRequest::default();
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut request.grant_type,
            "client_id" => &mut request.client_id,
            "client_secret" => &mut request.client_secret,
            "scope" => &mut request.scope,
            // RFC 6749 §3.2: unrecognised parameters are ignored.
            _ => continue,
        };
        if slot.is_some() {
            return Err(Refusal::InvalidRequest("a request parameter is repeated"));
        }
        *slot = Some(value.into_owned());
    }
    Ok(request)
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((
        form_decode(id)?.into_owned(),
        form_decode(secret)?.into_owned(),
    ))
}

/// Undoes `application/x-www-form-urlencoded` encoding of one value (`+` and `%XX`).
fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A client_id worth recording: shaped like a key id, so that a secret pasted into the wrong
/// field never reaches the ledger.
fn plausible_key_id(id: &str) -> Option<String> {
    (id.len() == warden_core::credential::ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then(|| id.to_owned())
}

/// The public key that verifies access tokens, as a JWK Set (RFC 7517; Ed25519 per RFC 8037).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth", security(()),
    responses((status = 200, description = "`{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": …, \"kid\": …, \"alg\": \"EdDSA\", \"use\": \"sig\"}]}`",
        content_type = "application/json", body = Object)))]
async fn jwks(State(app): State<AppState>) -> Response {
    let mut response = Json(app.tokens.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode() {
        assert_eq!(form_decode("abc").unwrap(), "abc");
        assert_eq!(form_decode("a+b%5F").unwrap(), "a b_");
        assert!(form_decode("%").is_none());
        assert!(form_decode("%+1").is_none());
        assert!(form_decode("%zz").is_none());
        assert!(form_decode("%é").is_none());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_form(b"grant_type=a&grant_type=b").is_err());
        let r = parse_form(b"grant_type=client_credentials&x=1&x=2").unwrap();
        assert_eq!(r.grant_type.as_deref(), Some("client_credentials"));
    }

    #[test]
    fn only_key_shaped_ids_are_recorded() {
        assert!(plausible_key_id("abcdefghijkl").is_some());
        assert!(plausible_key_id("wdn_abcdefghijkl_0123").is_none());
        assert!(plausible_key_id("ABCDEFGHIJKL").is_none());
    }
}
