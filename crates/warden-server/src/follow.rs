//! Reading the ledger as it grows: the entries from a position on, in order, waking when the
//! writer commits (and polling, for commits by other instances sharing the database). Detection
//! follows the ledger this way, behind the gateways rather than in their path, so it can never
//! slow or block a request.
//!
//! A follower that has caught up reads again at most once per its pace: under load the writer
//! commits hundreds of small batches a second, and reading (and, for the usage rollup, writing)
//! after each one cost the gateways a fifth of their CPU and competed with the ledger for the
//! database. Reading every 100 ms instead reads the same entries in a few large batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use warden_core::event::{Event, OutcomeRecord};
use warden_store::{EntryKind, LedgerEntry, Store};

/// Entries fetched per store query.
const BATCH: u32 = 1000;
/// Longest wait before looking at the store again when nothing was signalled.
const POLL: Duration = Duration::from_millis(500);
/// Wait after a store error before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// One ledger entry, decoded.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An event.
    Event(Box<Event>),
    /// The outcome of an earlier event.
    Outcome(OutcomeRecord),
}

/// A reader of the ledger from a position on.
pub struct Follower {
    store: Arc<dyn Store>,
    next: u64,
    committed: watch::Receiver<u64>,
    pace: Duration,
    /// When the last read that found the ledger's end was made.
    caught_up_at: Option<Instant>,
}

impl Follower {
    /// A follower whose first entry is the one at `from`, reading again at most every `pace`
    /// once it has caught up with the ledger.
    pub fn new(
        store: Arc<dyn Store>,
        from: u64,
        committed: watch::Receiver<u64>,
        pace: Duration,
    ) -> Self {
        Self {
            store,
            next: from,
            committed,
            pace,
            caught_up_at: None,
        }
    }

    /// The position of the next entry to be read.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next entries (at least one) with their positions, waiting for them to be written;
    /// `None` once `stop` turns true. Pruned entries (bodies removed by retention) and entries
    /// that do not decode are skipped, the latter with a warning.
    pub async fn next_batch(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<(u64, Entry)>> {
        loop {
            if *stop.borrow() {
                return None;
            }
            if let Some(at) = self.caught_up_at {
                tokio::select! {
                    _ = tokio::time::sleep_until(at + self.pace) => {}
                    _ = stop.changed() => {}
                }
            }
            match self.store.entries(self.next, BATCH).await {
                Ok(entries) if !entries.is_empty() => {
                    // A short read reached the end: the next one waits for the pace.
                    self.caught_up_at = (entries.len() < BATCH as usize).then(Instant::now);
                    self.next = entries.last().map_or(self.next, |e| e.seq + 1);
                    let decoded: Vec<_> = entries.iter().filter_map(decode).collect();
                    if !decoded.is_empty() {
                        return Some(decoded);
                    }
                    continue;
                }
                Ok(_) => {
                    self.caught_up_at = None;
                    tokio::select! {
                        changed = self.committed.changed() => {
                            // The writer is gone (shutting down): fall back to polling.
                            if changed.is_err() {
                                tokio::time::sleep(POLL).await;
                            }
                        }
                        _ = tokio::time::sleep(POLL) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, position = self.next, "cannot read the ledger; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }
}

fn decode(entry: &LedgerEntry) -> Option<(u64, Entry)> {
    if entry.pruned_at.is_some() || entry.body.is_empty() {
        return None;
    }
    let decoded = match entry.kind {
        EntryKind::Event => serde_json::from_slice(&entry.body).map(|e| Entry::Event(Box::new(e))),
        EntryKind::Outcome => serde_json::from_slice(&entry.body).map(Entry::Outcome),
    };
    match decoded {
        Ok(d) => Some((entry.seq, d)),
        Err(e) => {
            tracing::warn!(seq = entry.seq, error = %e, "a ledger entry does not decode; skipped");
            None
        }
    }
}
