//! Authentication of bearer credentials: service-account API keys and admin tokens.
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warden_core::{
    Account, AccountStatus, Clock, Credential, CredentialKind, KeyRecord, SecretDigest, Timestamp,
};
use warden_store::{Store, StoreError, Usage};

/// Entries beyond which the cache is emptied rather than grown.
const MAX_CACHED_KEYS: usize = 100_000;

/// A service account that proved itself.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    /// Its account.
    pub account: String,
    /// The key it used.
    pub key_id: String,
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
    /// The store failed; authentication fails closed.
    #[error("credential store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl AuthFailure {
    /// The credential id presented, when there was a well-formed one.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Unknown { key_id }
            | Self::WrongSecret { key_id }
            | Self::KeyUnusable { key_id, .. }
            | Self::AccountUnusable { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// The account the presented key belongs to, when that is known.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::KeyUnusable { account, .. } | Self::AccountUnusable { account, .. } => {
                Some(account)
            }
            _ => None,
        }
    }
}

struct CachedKey {
    key: KeyRecord,
    account: Account,
    fetched: Instant,
}

/// Verifies credentials and remembers their use.
pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, Arc<CachedKey>>>,
    usage: Mutex<HashMap<String, Usage>>,
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
        }
    }

    /// Verifies a bearer string of either kind.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, AuthFailure> {
        let bearer = bearer.ok_or(AuthFailure::Missing)?;
        if let Ok(c) = Credential::parse(CredentialKind::ApiKey, bearer) {
            return self.service(&c).await.map(Principal::Service);
        }
        if let Ok(c) = Credential::parse(CredentialKind::AdminToken, bearer) {
            return self.admin(&c).await.map(Principal::Admin);
        }
        Err(AuthFailure::Malformed)
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
        self.note_use(&key_id, &account, now);
        Ok(ServicePrincipal { account, key_id })
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
