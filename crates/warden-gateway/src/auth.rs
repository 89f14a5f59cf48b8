//! Authentication of bearer credentials: service-account API keys, the short-lived access tokens
//! they obtain (see [`crate::token`]), and admin tokens.
//!
//! Verification is one primary-key lookup (the key id is in the credential) plus a constant-time
//! digest comparison. Key records are cached per process to keep the database off the hot path.
//! Revocation stays immediate because every change to accounts or keys made through this process
//! clears the cache before the change is acknowledged, and expiry is evaluated against the clock on
//! every request, never cached. Another instance sharing the database sees a change within
//! `cache_ttl` (the cache's only staleness bound across instances).
//!
//! Failures carry no hint of why: an unknown key id, a wrong secret, a revoked or expired key and
//! a disabled account all look the same to the client (the reason is kept for the audit event).
//! Unknown ids are compared against a dummy digest so they cost the same work as wrong secrets.
//!
//! An access token is checked in two steps: its signature, issuer and lifetime by the
//! [`TokenService`], then the key that obtained it and its account through the same cached
//! lookup as the API key itself. So revoking the key or disabling (or expiring) the account stops
//! its live tokens on the next request, exactly as it stops the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warden_core::event::{Actor, ActorKind, AuthMethod};
use warden_core::{
    Account, AccountStatus, Clock, Credential, CredentialKind, KeyRecord, SecretDigest, Timestamp,
};
use warden_store::{Store, StoreError, Usage};

use crate::token::{looks_like_jwt, TokenError, TokenService};

/// Entries beyond which the cache is emptied rather than grown.
const MAX_CACHED_KEYS: usize = 100_000;

/// A service account that proved itself.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    /// Its account.
    pub account: String,
    /// The key it used, or that obtained the token it used.
    pub key_id: String,
    /// How it proved itself: [`AuthMethod::ApiKey`] or [`AuthMethod::Token`].
    pub method: AuthMethod,
}

/// An admin that proved themself.
#[derive(Debug, Clone)]
pub struct AdminPrincipal {
    /// The admin's name.
    pub name: String,
    /// Their token's id.
    pub token_id: String,
}

/// Who presented a credential, once verified.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A service account's API key.
    Service(ServicePrincipal),
    /// An admin token.
    Admin(AdminPrincipal),
}

/// Why authentication failed. Never shown to the client; recorded in the audit event.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// No credential was presented.
    #[error("no credential presented")]
    Missing,
    /// The presented string is not a Warden credential.
    #[error("malformed credential")]
    Malformed,
    /// No credential has that id.
    #[error("unknown credential id")]
    Unknown {
        /// The id presented.
        key_id: String,
    },
    /// The secret does not match.
    #[error("wrong secret")]
    WrongSecret {
        /// The id presented.
        key_id: String,
    },
    /// The key exists but cannot be used now.
    #[error("key is {state}")]
    KeyUnusable {
        /// The key.
        key_id: String,
        /// Its account.
        account: String,
        /// `revoked` or `expired`.
        state: &'static str,
    },
    /// The key's account cannot be used now.
    #[error("account is {status}")]
    AccountUnusable {
        /// The key.
        key_id: String,
        /// Its account.
        account: String,
        /// `disabled` or `expired`.
        status: &'static str,
    },
    /// A bearer shaped like an access token that does not verify (malformed, wrong algorithm or
    /// signing key, bad signature, expired, …).
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// A valid access token whose key or account can no longer be used (revoked or expired key,
    /// disabled or expired account).
    #[error("token {jti} refused: {reason}")]
    TokenRefused {
        /// The key that obtained the token.
        key_id: String,
        /// The token's account.
        account: String,
        /// The token's id.
        jti: String,
        /// Why, e.g. `key is revoked` or `account is disabled`.
        reason: String,
    },
    /// The store failed; authentication fails closed.
    #[error("credential store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl ServicePrincipal {
    /// The actor that events by this principal name.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Service,
            account: Some(self.account.clone()),
            key_id: Some(self.key_id.clone()),
            auth: self.method,
        }
    }
}

impl AdminPrincipal {
    /// The actor that events by this admin name.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Human,
            account: Some(self.name.clone()),
            key_id: Some(self.token_id.clone()),
            auth: AuthMethod::ApiKey,
        }
    }
}

impl Principal {
    /// The actor that events by this principal name.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Service(s) => s.actor(),
            Self::Admin(a) => a.actor(),
        }
    }
}

/// The bearer credential of a request: `Authorization: Bearer …`, or, where `warden_key_header`
/// is given and present, that header (for clients that need `Authorization` for something else).
pub fn bearer(headers: &http::HeaderMap, warden_key_header: Option<&str>) -> Option<String> {
    if let Some(v) = warden_key_header
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
    {
        return Some(v.trim().to_owned());
    }
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl AuthFailure {
    /// The actor recorded for this failed attempt: only what was presented, never the secret.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Service,
            account: self.account().map(str::to_owned),
            key_id: self.key_id().map(str::to_owned),
            auth: AuthMethod::None,
        }
    }

    /// The credential id presented, when there was a well-formed one.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Unknown { key_id }
            | Self::WrongSecret { key_id }
            | Self::KeyUnusable { key_id, .. }
            | Self::AccountUnusable { key_id, .. }
            | Self::TokenRefused { key_id, .. } => Some(key_id),
            Self::InvalidToken(e) => e.key_id(),
            _ => None,
        }
    }

    /// A stable code for why authentication failed, recorded as `action.detail.failure` so
    /// detectors and reports need not parse the human-readable reason: `missing`, `malformed`,
    /// `unknown_key`, `wrong_secret`, `key_revoked`, `key_expired`, `account_disabled`,
    /// `account_expired`, `invalid_token`, `token_refused`, `store_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown { .. } => "unknown_key",
            Self::WrongSecret { .. } => "wrong_secret",
            Self::KeyUnusable {
                state: "revoked", ..
            } => "key_revoked",
            Self::KeyUnusable { .. } => "key_expired",
            Self::AccountUnusable {
                status: "disabled", ..
            } => "account_disabled",
            Self::AccountUnusable { .. } => "account_expired",
            Self::InvalidToken(_) => "invalid_token",
            Self::TokenRefused { .. } => "token_refused",
            Self::Store(_) => "store_unavailable",
        }
    }

    /// The `action.detail` of the audit event for this failure: `{"failure": code}`.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({ "failure": self.code() })
    }

    /// The account the presented key belongs to, when that is known.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::KeyUnusable { account, .. }
            | Self::AccountUnusable { account, .. }
            | Self::TokenRefused { account, .. } => Some(account),
            Self::InvalidToken(e) => e.account(),
            _ => None,
        }
    }
}

struct CachedKey {
    key: KeyRecord,
    account: Account,
    fetched: Instant,
}

/// Whether a verified key and its account may be used at `now`.
fn usable(
    entry: &CachedKey,
    now: Timestamp,
    method: AuthMethod,
) -> Result<ServicePrincipal, AuthFailure> {
    let key_id = entry.key.key_id.clone();
    let account = entry.account.name.to_string();
    let state = entry.key.state(now);
    if !state.is_usable() {
        return Err(AuthFailure::KeyUnusable {
            key_id,
            account,
            state: state.as_str(),
        });
    }
    let status = entry.account.status(now);
    if status != AccountStatus::Active {
        return Err(AuthFailure::AccountUnusable {
            key_id,
            account,
            status: status.as_str(),
        });
    }
    Ok(ServicePrincipal {
        account,
        key_id,
        method,
    })
}

/// Verifies credentials and remembers their use.
pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, Arc<CachedKey>>>,
    usage: Mutex<HashMap<String, Usage>>,
    tokens: Option<Arc<TokenService>>,
}

impl Authenticator {
    /// An authenticator over `store` whose cached key records live at most `cache_ttl`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache_ttl: Duration) -> Self {
        Self {
            store,
            clock,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            tokens: None,
        }
    }

    /// Also accepts the access tokens `tokens` issues. Without it, tokens are refused as
    /// malformed credentials.
    pub fn with_tokens(mut self, tokens: Arc<TokenService>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The service that issues and verifies access tokens, when there is one.
    pub fn tokens(&self) -> Option<&Arc<TokenService>> {
        self.tokens.as_ref()
    }

    /// Verifies a bearer string of any kind: API key, access token or admin token.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, AuthFailure> {
        let bearer = bearer.ok_or(AuthFailure::Missing)?;
        if let Ok(c) = Credential::parse(CredentialKind::ApiKey, bearer) {
            return self.service(&c).await.map(Principal::Service);
        }
        if let Ok(c) = Credential::parse(CredentialKind::AdminToken, bearer) {
            return self.admin(&c).await.map(Principal::Admin);
        }
        if let (Some(tokens), true) = (&self.tokens, looks_like_jwt(bearer)) {
            return self.token(tokens, bearer).await.map(Principal::Service);
        }
        Err(AuthFailure::Malformed)
    }

    /// Verifies a service account's API key, and nothing else (not an access token, not an admin
    /// token): what the OAuth token endpoint accepts as a client secret.
    pub async fn authenticate_key(&self, key: &str) -> Result<ServicePrincipal, AuthFailure> {
        let c =
            Credential::parse(CredentialKind::ApiKey, key).map_err(|_| AuthFailure::Malformed)?;
        self.service(&c).await
    }

    /// The SCRAM verifiers of `account`'s usable keys, with their key ids, for a database
    /// client's SCRAM-SHA-256 login.
    pub async fn scram_candidates(
        &self,
        account: &str,
    ) -> Result<Vec<(String, String)>, AuthFailure> {
        let now = self.clock.now();
        Ok(self
            .store
            .list_keys(Some(account))
            .await?
            .into_iter()
            .filter(|k| k.state(now).is_usable())
            .filter_map(|k| k.scram.map(|v| (k.key_id, v)))
            .collect())
    }

    /// A key whose possession the client has already proven (by SCRAM), checked like a
    /// presented key: it and its account must be usable now.
    pub async fn authenticate_proven(&self, key_id: &str) -> Result<ServicePrincipal, AuthFailure> {
        let Some(entry) = self.lookup(key_id).await? else {
            return Err(AuthFailure::Unknown {
                key_id: key_id.to_owned(),
            });
        };
        let now = self.clock.now();
        let principal = usable(&entry, now, AuthMethod::ApiKey)?;
        self.note_use(&principal.key_id, &principal.account, now);
        Ok(principal)
    }

    async fn service(&self, presented: &Credential) -> Result<ServicePrincipal, AuthFailure> {
        let entry = self.lookup(presented.id()).await?;
        let Some(entry) = entry else {
            // Same work as a wrong secret, so timing does not reveal which ids exist.
            let _ = SecretDigest::unmatchable().matches(presented);
            return Err(AuthFailure::Unknown {
                key_id: presented.id().to_owned(),
            });
        };
        if !entry.key.digest.matches(presented) {
            return Err(AuthFailure::WrongSecret {
                key_id: presented.id().to_owned(),
            });
        }
        let now = self.clock.now();
        let principal = usable(&entry, now, AuthMethod::ApiKey)?;
        self.note_use(&principal.key_id, &principal.account, now);
        Ok(principal)
    }

    /// An access token: signature and lifetime first, then its key and account, looked up (and
    /// cached) exactly like the API key's, so revocation and disabling reach live tokens.
    async fn token(
        &self,
        tokens: &TokenService,
        bearer: &str,
    ) -> Result<ServicePrincipal, AuthFailure> {
        let claims = tokens.verify(bearer, self.clock.now())?;
        let refused = |reason: String| AuthFailure::TokenRefused {
            key_id: claims.key_id.clone(),
            account: claims.sub.clone(),
            jti: claims.jti.clone(),
            reason,
        };
        let Some(entry) = self.lookup(&claims.key_id).await? else {
            return Err(refused("its key no longer exists".to_owned()));
        };
        if entry.account.name.as_str() != claims.sub {
            return Err(refused("its key belongs to another account".to_owned()));
        }
        let now = self.clock.now();
        let principal =
            usable(&entry, now, AuthMethod::Token).map_err(|e| refused(e.to_string()))?;
        self.note_use(&principal.key_id, &principal.account, now);
        Ok(principal)
    }

    async fn admin(&self, presented: &Credential) -> Result<AdminPrincipal, AuthFailure> {
        let admin = self.store.admin_by_token_id(presented.id()).await?;
        let digest = admin
            .as_ref()
            .map_or(SecretDigest::unmatchable(), |a| a.digest);
        match admin {
            Some(a) if digest.matches(presented) => Ok(AdminPrincipal {
                name: a.name,
                token_id: a.token_id,
            }),
            Some(_) => Err(AuthFailure::WrongSecret {
                key_id: presented.id().to_owned(),
            }),
            None => Err(AuthFailure::Unknown {
                key_id: presented.id().to_owned(),
            }),
        }
    }

    async fn lookup(&self, key_id: &str) -> Result<Option<Arc<CachedKey>>, AuthFailure> {
        if let Some(hit) = self.lock_cache().get(key_id) {
            if hit.fetched.elapsed() < self.cache_ttl {
                return Ok(Some(hit.clone()));
            }
        }
        let Some((key, account)) = self.store.key_with_account(key_id).await? else {
            return Ok(None);
        };
        let entry = Arc::new(CachedKey {
            key,
            account,
            fetched: Instant::now(),
        });
        let mut cache = self.lock_cache();
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(key_id.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CachedKey>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every cached key record. Called on every change to accounts or keys, before the
    /// change is acknowledged, so that the next request sees it.
    pub fn invalidate(&self) {
        self.lock_cache().clear();
    }

    fn note_use(&self, key_id: &str, account: &str, at: Timestamp) {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        usage.insert(
            key_id.to_owned(),
            Usage {
                key_id: key_id.to_owned(),
                account: account.to_owned(),
                at,
            },
        );
    }

    /// Writes the uses noted since the last flush (`last_used_at`), in one batch. Run
    /// periodically: usage bookkeeping must not add a write to every request.
    pub async fn flush_usage(&self) -> Result<(), StoreError> {
        let uses: Vec<Usage> = {
            let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            usage.drain().map(|(_, u)| u).collect()
        };
        if uses.is_empty() {
            return Ok(());
        }
        self.store.record_usage(&uses).await
    }
}
