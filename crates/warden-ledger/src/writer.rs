//! The one place events are written: a single writer task that sequences events and commits them
//! in batches (group commit). Callers hand an event over and get an acknowledgement only after the
//! batch holding it is durable; under light load a lone event is committed at once, under heavy
//! load everything that queued during the previous commit shares the next transaction.
//!
//! If the store cannot write, every waiting caller gets an error (nothing unwritten is ever
//! acknowledged), the writer reports itself unhealthy for `/readyz`, and the next batch re-reads
//! the last stored position so the sequence continues without a gap once the store is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use warden_core::event::{Event, Outcome, OutcomeRecord};
use warden_core::Clock;
use warden_store::{EntryKind, LedgerEntry, Store};

/// Why an event could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The store refused or failed the write.
    #[error("the audit ledger cannot write: {0}")]
    Unavailable(String),
    /// The writer did not answer in time.
    #[error("the audit ledger did not confirm the write within {0:?}")]
    Timeout(Duration),
    /// The writer task is gone (the server is shutting down).
    #[error("the audit ledger is shut down")]
    Closed,
}

/// Tuning for the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most entries in one transaction.
    pub max_batch: usize,
    /// How long a caller waits for its acknowledgement before giving up.
    pub write_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Proof that an event is durably recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The event's ledger position.
    pub seq: u64,
    /// The event's id, to link its outcome to it.
    pub event_id: Uuid,
}

enum Item {
    Event(Box<Event>),
    Outcome(OutcomeRecord),
}

struct Request {
    item: Item,
    ack: oneshot::Sender<Result<u64, LedgerError>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<Request>,
    healthy: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
}

impl LedgerWriter {
    /// Starts the writer task over `store`.
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.max_batch * 4);
        let healthy = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(store, rx, healthy.clone(), config));
        Self {
            tx,
            healthy,
            clock,
            config,
        }
    }

    /// Whether the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records an event; returns once it is durable.
    pub async fn record(&self, event: Event) -> Result<Receipt, LedgerError> {
        let event_id = event.id;
        let seq = self.submit(Item::Event(Box::new(event))).await?;
        Ok(Receipt { seq, event_id })
    }

    /// Records the outcome of an event recorded earlier; returns once it is durable.
    pub async fn record_outcome(
        &self,
        event_id: Uuid,
        outcome: Outcome,
    ) -> Result<u64, LedgerError> {
        self.submit(Item::Outcome(OutcomeRecord {
            event_id,
            seq: None,
            time: self.clock.now(),
            outcome,
        }))
        .await
    }

    async fn submit(&self, item: Item) -> Result<u64, LedgerError> {
        let (ack, done) = oneshot::channel();
        let wait = async {
            self.tx
                .send(Request { item, ack })
                .await
                .map_err(|_| LedgerError::Closed)?;
            done.await.map_err(|_| LedgerError::Closed)?
        };
        tokio::time::timeout(self.config.write_timeout, wait)
            .await
            .map_err(|_| {
                self.healthy.store(false, Ordering::Relaxed);
                LedgerError::Timeout(self.config.write_timeout)
            })?
    }
}

fn entry(seq: u64, item: &mut Item) -> LedgerEntry {
    match item {
        Item::Event(e) => {
            e.seq = Some(seq);
            LedgerEntry {
                seq,
                event_id: e.id,
                kind: EntryKind::Event,
                time: e.time,
                account: e.actor.account.clone(),
                category: e.action.category.as_str().to_owned(),
                target: e.target.as_ref().map(|t| t.name.clone()),
                body: e.canonical_bytes(),
            }
        }
        Item::Outcome(o) => {
            o.seq = Some(seq);
            LedgerEntry {
                seq,
                event_id: o.event_id,
                kind: EntryKind::Outcome,
                time: o.time,
                account: None,
                category: "outcome".to_owned(),
                target: None,
                body: o.canonical_bytes(),
            }
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    healthy: Arc<AtomicBool>,
    config: WriterConfig,
) {
    let mut next_seq: Option<u64> = None;
    let mut batch: Vec<Request> = Vec::with_capacity(config.max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Callers that gave up (timed out) are dropped before sequencing, so their events are
        // neither written nor acknowledged.
        batch.retain(|r| !r.ack.is_closed());
        if batch.is_empty() {
            continue;
        }
        let result = write_batch(&*store, &mut next_seq, &mut batch).await;
        healthy.store(result.is_ok(), Ordering::Relaxed);
        match result {
            Ok(first_seq) => {
                metrics::counter!("warden_ledger_entries_total").increment(batch.len() as u64);
                metrics::histogram!("warden_ledger_batch_size").record(batch.len() as f64);
                for (i, r) in batch.drain(..).enumerate() {
                    let _ = r.ack.send(Ok(first_seq + i as u64));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger write failed; refusing events until it recovers");
                next_seq = None;
                for r in batch.drain(..) {
                    let _ = r.ack.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn write_batch(
    store: &dyn Store,
    next_seq: &mut Option<u64>,
    batch: &mut [Request],
) -> Result<u64, LedgerError> {
    let unavailable = |e: warden_store::StoreError| LedgerError::Unavailable(e.to_string());
    let first = match *next_seq {
        Some(s) => s,
        None => store
            .last_seq()
            .await
            .map_err(unavailable)?
            .map_or(0, |s| s + 1),
    };
    let entries: Vec<LedgerEntry> = batch
        .iter_mut()
        .enumerate()
        .map(|(i, r)| entry(first + i as u64, &mut r.item))
        .collect();
    store.append_entries(&entries).await.map_err(unavailable)?;
    *next_seq = Some(first + entries.len() as u64);
    Ok(first)
}
