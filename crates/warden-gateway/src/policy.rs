//! What the front doors need to decide a request, cached per process: targets (with their
//! credentials opened) and each account's grants per target.
//!
//! Like the key cache, every change made through this process clears it before the change is
//! acknowledged, so removing a grant or a target applies to the next request; another instance
//! sharing the database sees the change within `cache_ttl`. Expiry of just-in-time grants is
//! evaluated against the clock on every request, never cached. Grant use (`last_used_at`) is kept
//! in memory and written in batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use warden_core::{Grant, Sealer, Target, Timestamp, UpstreamCredentials};
use warden_store::{Store, StoreError};

/// A target with its upstream credentials opened, ready to forward to.
#[derive(Debug)]
pub struct ResolvedTarget {
    /// The target.
    pub target: Target,
    /// What to inject (empty when none).
    pub credentials: UpstreamCredentials,
}

type Cached<T> = HashMap<String, (Arc<T>, Instant)>;

/// Cached targets and grants.
pub struct Policy {
    store: Arc<dyn Store>,
    sealer: Sealer,
    cache_ttl: Duration,
    targets: Mutex<Cached<ResolvedTarget>>,
    grants: Mutex<Cached<Vec<Grant>>>,
    uses: Mutex<HashMap<String, Timestamp>>,
}

/// Why a target could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target's stored credentials do not open with this master key.
    #[error("the credentials of target {0} cannot be decrypted (wrong master key?)")]
    Sealed(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fresh<T>(cache: &Mutex<Cached<T>>, key: &str, ttl: Duration) -> Option<Arc<T>> {
    lock(cache)
        .get(key)
        .filter(|(_, at)| at.elapsed() < ttl)
        .map(|(v, _)| v.clone())
}

impl Policy {
    /// A policy cache over `store`, opening credentials with `sealer`.
    pub fn new(store: Arc<dyn Store>, sealer: Sealer, cache_ttl: Duration) -> Self {
        Self {
            store,
            sealer,
            cache_ttl,
            targets: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// The target called `name`, if it exists.
    pub async fn target(&self, name: &str) -> Result<Option<Arc<ResolvedTarget>>, PolicyError> {
        if let Some(t) = fresh(&self.targets, name, self.cache_ttl) {
            return Ok(Some(t));
        }
        let Some(target) = self.store.target(name).await? else {
            return Ok(None);
        };
        let credentials = match &target.credentials {
            None => UpstreamCredentials::default(),
            Some(sealed) => self
                .sealer
                .open(sealed, &target.name)
                .ok()
                .and_then(|plain| serde_json::from_slice(&plain).ok())
                .ok_or_else(|| PolicyError::Sealed(target.name.clone()))?,
        };
        let resolved = Arc::new(ResolvedTarget {
            target,
            credentials,
        });
        lock(&self.targets).insert(name.to_owned(), (resolved.clone(), Instant::now()));
        Ok(Some(resolved))
    }

    /// `account`'s grants on `target`.
    pub async fn grants(
        &self,
        account: &str,
        target: &str,
    ) -> Result<Arc<Vec<Grant>>, PolicyError> {
        let key = format!("{account}\n{target}");
        if let Some(g) = fresh(&self.grants, &key, self.cache_ttl) {
            return Ok(g);
        }
        let grants = Arc::new(self.store.grants(Some(account), Some(target)).await?);
        lock(&self.grants).insert(key, (grants.clone(), Instant::now()));
        Ok(grants)
    }

    /// Forgets everything cached; called on every change to targets or grants.
    pub fn invalidate(&self) {
        lock(&self.targets).clear();
        lock(&self.grants).clear();
    }

    /// Notes that grant `id` allowed an action at `at`.
    pub fn note_grant_use(&self, id: &str, at: Timestamp) {
        lock(&self.uses).insert(id.to_owned(), at);
    }

    /// Writes the grant uses noted since the last flush.
    pub async fn flush_grant_uses(&self) -> Result<(), StoreError> {
        let uses: Vec<(String, Timestamp)> = lock(&self.uses).drain().collect();
        if uses.is_empty() {
            return Ok(());
        }
        self.store.record_grant_use(&uses).await
    }
}
