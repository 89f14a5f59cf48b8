//! The ledger as stored: verifying it in place ([`verify`], what `warden audit verify` does on
//! a data directory or database and the console's "Verify now" runs) and streaming it out as an
//! audit bundle ([`Export`], what the console's bundle download serves).
//!
//! Both read the store in pages and cover the ledger as it stood when they started: its
//! checkpoints are read first, then its size, so every checkpoint commits to at most that many
//! entries and entries appended meanwhile are left for the next run. The checks themselves are
//! [`Audit`]'s and the format [`crate::bundle`]'s; this module only feeds them.

use std::sync::Arc;

use warden_store::{LedgerEntry, Store, StoreError};

use crate::bundle::{write_entry_line, write_pruned_entry_line, BundleHeader, BundleWriter};
use crate::hash::Hash;
use crate::note::Verifier;
use crate::verify::{Audit, Problem, Verified};

/// Entries read from the store at once.
const PAGE: u32 = 10_000;
/// Entries audited between two yields to the runtime, so that a verification running beside
/// the gateways never holds a worker thread for long.
const SLICE: usize = 1_000;

/// How far a verification has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Entries checked so far.
    pub checked: u64,
    /// Entries to check: the ledger's size when the verification started.
    pub total: u64,
}

/// Verifies the ledger in `store` with the checks of [`Audit`], trusting `verifier` and also
/// checking the `external` checkpoints (signed notes held outside Warden). `progress` is told
/// the total first and then how many entries are checked after every page.
///
/// The outer error is the store failing to answer; the inner result is the verdict.
pub async fn verify(
    store: Arc<dyn Store>,
    verifier: &Verifier,
    external: &[String],
    progress: impl FnMut(Progress),
) -> Result<Result<Verified, Problem>, StoreError> {
    verify_paged(store, verifier, external, progress, PAGE).await
}

async fn verify_paged(
    store: Arc<dyn Store>,
    verifier: &Verifier,
    external: &[String],
    mut progress: impl FnMut(Progress),
    page_size: u32,
) -> Result<Result<Verified, Problem>, StoreError> {
    let notes: Vec<String> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    let total = size(&*store).await?;
    let mut audit = Audit::new(verifier, &notes, external);
    let mut checked = 0;
    progress(Progress { checked, total });
    let mut page = within(store.entries(0, page_size).await?, total);
    // Each page is read while the previous one is audited.
    while let Some(last) = page.last() {
        let from = last.seq.saturating_add(1);
        let read_next = async {
            if from < total {
                store
                    .entries(from, page_size)
                    .await
                    .map(|p| within(p, total))
            } else {
                Ok(Vec::new())
            }
        };
        let (next, ()) = tokio::join!(read_next, feed(&mut audit, &page));
        checked += page.len() as u64;
        progress(Progress { checked, total });
        if audit.is_decided() {
            break;
        }
        page = next?;
    }
    Ok(audit.finish())
}

/// Feeds `page` to `audit`, yielding between slices.
async fn feed(audit: &mut Audit, page: &[LedgerEntry]) {
    for slice in page.chunks(SLICE) {
        for e in slice {
            if e.pruned_at.is_some() {
                audit.push_pruned(e.seq, Hash(e.leaf_hash));
            } else {
                audit.push(e.seq, &e.body, Some(Hash(e.leaf_hash)));
            }
        }
        tokio::task::yield_now().await;
    }
}

/// The ledger's size: one past its last position.
async fn size(store: &dyn Store) -> Result<u64, StoreError> {
    Ok(store.last_seq().await?.map_or(0, |s| s.saturating_add(1)))
}

/// The entries of `page` below position `size`.
fn within(mut page: Vec<LedgerEntry>, size: u64) -> Vec<LedgerEntry> {
    page.retain(|e| e.seq < size);
    page
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error("reading the ledger: {0}")]
    Store(#[from] StoreError),
    /// An entry cannot be written to a bundle (its body is not UTF-8).
    #[error("writing the bundle: {0}")]
    Write(#[from] std::io::Error),
}

/// The stored ledger as an audit bundle, produced in chunks: the header and checkpoints, then
/// one page of entries per [`Export::next_chunk`]. The header's size is the ledger's size when
/// the export started, and exactly the entries below it follow.
pub struct Export {
    store: Arc<dyn Store>,
    head: Option<Vec<u8>>,
    next: u64,
    size: u64,
    page_size: u32,
}

impl Export {
    /// Starts an export of `store`'s ledger, signed by the key `verifier` checks, stamped
    /// `exported_at` (RFC 3339).
    pub async fn start(
        store: Arc<dyn Store>,
        verifier: &Verifier,
        exported_at: String,
    ) -> Result<Self, ExportError> {
        let checkpoints = store.checkpoints().await?;
        let size = size(&*store).await?;
        let header = BundleHeader::new(verifier, size, exported_at);
        let mut head = BundleWriter::new(Vec::new(), &header)?;
        for c in &checkpoints {
            head.write_checkpoint(&c.note)?;
        }
        Ok(Export {
            store,
            head: Some(head.finish()?),
            next: 0,
            size,
            page_size: PAGE,
        })
    }

    /// How many entries the bundle holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next part of the bundle, or `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        if let Some(head) = self.head.take() {
            return Ok(Some(head));
        }
        if self.next >= self.size {
            return Ok(None);
        }
        let page = within(
            self.store.entries(self.next, self.page_size).await?,
            self.size,
        );
        let Some(last) = page.last() else {
            // Positions missing up to the size: the bundle ends short, as the store does, and
            // its verifier says so.
            self.next = self.size;
            return Ok(None);
        };
        self.next = last.seq.saturating_add(1);
        let mut out = Vec::with_capacity(page.len() * 512);
        for e in &page {
            if e.pruned_at.is_some() {
                write_pruned_entry_line(&mut out, e.seq, &Hash(e.leaf_hash))?;
            } else {
                write_entry_line(&mut out, e.seq, &e.body, &Hash(e.leaf_hash))?;
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use warden_core::event::{Action, Actor, Category, Decision, Event, Source};
    use warden_core::{Clock, SystemClock};
    use warden_store::SqliteStore;

    use super::*;
    use crate::bundle::BundleReader;
    use crate::note::Signer;
    use crate::writer::{LedgerWriter, WriterConfig};

    /// A store holding `n` events, checkpointed every 4 entries.
    async fn ledger(dir: &std::path::Path, n: usize) -> (Arc<dyn Store>, Verifier) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("l.db")).await.unwrap());
        let signer = Signer::from_seed("test.example/ledger", [3; 32]).unwrap();
        let verifier = signer.verifier();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let writer = LedgerWriter::start(
            store.clone(),
            clock.clone(),
            WriterConfig {
                max_batch: 64,
                write_timeout: Duration::from_secs(10),
                signer,
                checkpoint_every: 4,
                checkpoint_interval: Duration::from_secs(3600),
                checkpoint_dir: None,
            },
        );
        for i in 0..n {
            let event = Event::new(
                clock.now(),
                Actor::system(),
                Source::default(),
                Action {
                    category: Category::Admin,
                    verb: "test".into(),
                    resource: Some(format!("thing/{i}")),
                    detail: None,
                },
                Decision::allow("test"),
            );
            writer.record(event).await.unwrap();
        }
        writer.flush().await;
        (store, verifier)
    }

    #[tokio::test]
    async fn a_store_verifies_across_pages_and_exports_a_bundle_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (store, verifier) = ledger(dir.path(), 11).await;
        let mut seen = Vec::new();
        let verified = verify_paged(store.clone(), &verifier, &[], |p| seen.push(p), 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(verified.entries, 11);
        assert!(verified.checkpoints >= 2, "{verified:?}");
        assert_eq!(
            seen.first(),
            Some(&Progress {
                checked: 0,
                total: 11
            })
        );
        assert_eq!(
            seen.last(),
            Some(&Progress {
                checked: 11,
                total: 11
            })
        );
        assert_eq!(seen.len(), 1 + 4, "one report per page of 3: {seen:?}");

        // Another key finds every checkpoint forged.
        let other = Signer::from_seed("test.example/ledger", [4; 32])
            .unwrap()
            .verifier();
        let problem = verify(store.clone(), &other, &[], |_| {})
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(problem.kind(), "forged_checkpoint");

        let mut export = Export::start(store, &verifier, "2027-01-01T00:00:00Z".into())
            .await
            .unwrap();
        export.page_size = 3;
        assert_eq!(export.size(), 11);
        let mut bundle = Vec::new();
        while let Some(chunk) = export.next_chunk().await.unwrap() {
            bundle.extend(chunk);
        }
        let mut reader = BundleReader::open(&bundle[..]).unwrap();
        assert_eq!(reader.header().size, 11);
        let mut audit = Audit::new(&verifier, reader.checkpoints(), Vec::<String>::new());
        while let Some(e) = reader.next_entry().unwrap() {
            audit.push(e.seq, e.body.as_bytes(), Some(e.leaf_hash));
        }
        assert_eq!(audit.finish().unwrap().entries, 11);
    }
}
