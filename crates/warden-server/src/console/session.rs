//! Console sessions: a random 32-byte id in the `warden_session` cookie, held in memory and
//! mapped to the admin who signed in, with an idle expiry; and the CSRF token bound to each
//! session, which every form carries and every POST must present.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends
//! it) and `Path=/`. It is `Secure` unless the request came over plain HTTP from the loopback
//! interface: Warden's API listens on plain HTTP, and a browser never sends a `Secure` cookie
//! back over `http://`, so without that exception nobody could sign in at
//! `http://127.0.0.1:8470/`. A request from anywhere else (or one a loopback reverse proxy marks
//! `X-Forwarded-Proto: https`) gets a `Secure` cookie: an admin session is not to travel in the
//! clear over a network.
//!
//! Sessions live in memory only: a restart signs everyone out, which is the safe default.
//!
//! A session can also hold one newly issued key for the length of a redirect: the POST that
//! issues it hands it over ([`Sessions::hold_key`]) and the page it redirects to takes it
//! ([`Sessions::take_key`]), so the secret is shown exactly once and reloading that page never
//! issues another key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::api::keys::IssuedKey;

/// The cookie's name.
pub const COOKIE_NAME: &str = "warden_session";

/// A session ends after this long without a request.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(8 * 60 * 60);

/// At most this many sessions are held; signing in beyond it ends the least recently used.
const MAX_SESSIONS: usize = 1024;

/// One signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id (hex), as in the cookie.
    pub id: String,
    /// What the session was opened with, re-checked on every request.
    pub credential: SignedInWith,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    last_seen: Instant,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// How an admin signed in. Either is re-checked on every request: revoking the token, or
/// setting a new password, ends the sessions opened with the old one.
#[derive(Clone, PartialEq, Eq)]
pub enum SignedInWith {
    /// Their admin token.
    Token(String),
    /// Their name and password.
    Password {
        /// The admin's name.
        name: String,
        /// The stored hash the password matched (a new password has a new salt, so a new hash).
        hash: String,
    },
}

impl std::fmt::Debug for SignedInWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Password { name, .. } => write!(f, "Password({name})"),
        }
    }
}

/// The sessions of one server.
#[derive(Default)]
pub struct Sessions {
    // Held only for map operations, never across an `.await`.
    by_id: Mutex<HashMap<String, Session>>,
    /// Per session id, a key issued but not yet shown.
    keys: Mutex<HashMap<String, IssuedKey>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// Opens a session for an admin whose credential was just verified.
    pub fn open(&self, credential: SignedInWith) -> Session {
        let session = Session {
            id: random_hex(),
            credential,
            csrf: random_hex(),
            last_seen: Instant::now(),
        };
        let mut map = self.lock();
        map.retain(|_, s| s.last_seen.elapsed() < IDLE_EXPIRY);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .values()
                .min_by_key(|s| s.last_seen)
                .map(|s| s.id.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session named by the request's cookie, its idle timer restarted.
    pub fn find(&self, parts: &Parts) -> Option<Session> {
        let id = cookie(parts, COOKIE_NAME)?;
        let mut map = self.lock();
        let session = map.get_mut(id)?;
        if session.last_seen.elapsed() >= IDLE_EXPIRY {
            map.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    /// Ends a session (and drops a key it was holding).
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
        self.keys_lock().remove(id);
    }

    /// Holds `key` for session `id` until [`Self::take_key`], replacing one not yet taken.
    pub fn hold_key(&self, id: &str, key: IssuedKey) {
        let live = self.lock();
        let mut keys = self.keys_lock();
        // Keys of sessions that have ended go with them.
        keys.retain(|session, _| live.contains_key(session));
        keys.insert(id.to_owned(), key);
    }

    /// The key held for session `id`, once.
    pub fn take_key(&self, id: &str) -> Option<IssuedKey> {
        self.keys_lock().remove(id)
    }

    fn keys_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, IssuedKey>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 32 random bytes from the operating system, as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The value of cookie `name` in the request, if present.
fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the session cookie must be `Secure` for this request (see the module docs).
pub fn needs_secure(parts: &Parts) -> bool {
    let loopback = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    let forwarded_https = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    !loopback || forwarded_https
}

/// The `Set-Cookie` value that stores `id`.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        IDLE_EXPIRY.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cookie: &str) -> Parts {
        let (parts, ()) = axum::http::Request::builder()
            .header(COOKIE, cookie)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_closed() {
        let sessions = Sessions::default();
        let s = sessions.open(SignedInWith::Token("token".into()));
        assert_eq!(s.id.len(), 64);
        assert_ne!(s.id, s.csrf);
        let found = sessions
            .find(&parts(&format!("other=1; {COOKIE_NAME}={}", s.id)))
            .unwrap();
        assert_eq!(found.credential, SignedInWith::Token("token".into()));
        assert!(found.csrf_matches(Some(&s.csrf)));
        assert!(!found.csrf_matches(Some("nope")));
        assert!(!found.csrf_matches(None));
        sessions.close(&s.id);
        assert!(sessions
            .find(&parts(&format!("{COOKIE_NAME}={}", s.id)))
            .is_none());
    }

    #[test]
    fn a_request_without_a_known_cookie_has_no_session() {
        let sessions = Sessions::default();
        sessions.open(SignedInWith::Token("token".into()));
        assert!(sessions
            .find(&parts(&format!("{COOKIE_NAME}=abc")))
            .is_none());
        assert!(sessions.find(&parts("x=y")).is_none());
    }

    #[test]
    fn the_cookie_is_secure_except_over_plain_http_from_loopback() {
        let mut p = parts("");
        assert!(needs_secure(&p), "no peer known");
        p.extensions
            .insert(ConnectInfo::<SocketAddr>("127.0.0.1:5000".parse().unwrap()));
        assert!(!needs_secure(&p));
        p.headers
            .insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(needs_secure(&p));
        let mut remote = parts("");
        remote
            .extensions
            .insert(ConnectInfo::<SocketAddr>("10.0.0.7:5000".parse().unwrap()));
        assert!(needs_secure(&remote));
        assert!(set_cookie("x", true).contains("; Secure"));
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
