//! The one place events are written: a single writer task that sequences entries, extends the
//! Merkle tree, commits both in batches (group commit) and signs checkpoints.
//!
//! Callers hand an event over and get an acknowledgement only after the batch holding it is
//! durable. Under light load a lone event is committed at once; under heavy load everything that
//! queued during the previous commit shares the next transaction. Each batch stores, in the same
//! transaction, the entries (with their leaf hashes) and every tree hash they complete, so the
//! tree is never recomputed and never out of step with the entries.
//!
//! If the store cannot write, every waiting caller gets an error (nothing unwritten is ever
//! acknowledged), the writer reports itself unhealthy, and the next batch reloads the last stored
//! position and tree frontier so the sequence continues without a gap or fork once the store is
//! back. A signed checkpoint is made every `checkpoint_every` entries or `checkpoint_interval`,
//! whichever comes first, and can be copied to a directory outside Warden.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;
use warden_core::event::{Event, Outcome, OutcomeRecord};
use warden_core::Clock;
use warden_store::{EntryKind, LedgerEntry, Store, StoreError, StoredCheckpoint, TreeHash};

/// How many times in a row a batch may lose the race for the next position to another instance
/// before it is refused.
const MAX_RACES: usize = 64;
/// How often an idle writer checks for due checkpoints and, when unhealthy, for recovery.
const TICK: Duration = Duration::from_secs(1);

use crate::tree::{split_stored_hash_index, stored_hash_count, HashReader, ReadError, RootBuilder};
use crate::{leaf_hash, Checkpoint, Hash, Signer};

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

/// Tuning and keys for the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most entries in one transaction.
    pub max_batch: usize,
    /// How long a caller waits for its acknowledgement before giving up.
    pub write_timeout: Duration,
    /// Signs checkpoints; its key name is the log's origin.
    pub signer: Signer,
    /// Make a checkpoint after this many new entries…
    pub checkpoint_every: u64,
    /// …or after this long, if anything was appended since the last one.
    pub checkpoint_interval: Duration,
    /// Also write each checkpoint to `<dir>/<size>.checkpoint` (and `latest.checkpoint`).
    pub checkpoint_dir: Option<PathBuf>,
}

/// Proof that an event is durably recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The event's ledger position.
    pub seq: u64,
    /// The event's id, to link its outcome to it.
    pub event_id: Uuid,
}

/// An entry serialised by its producer, before it has a position. Serialising on the producer's
/// task keeps that work off the single writer; the writer only splices the position in.
struct Item {
    /// The entry with every field but `seq` filled in, and `"seq":null` in its place.
    entry: LedgerEntry,
    /// Where `null` starts in `entry.body`.
    seq_at: usize,
}

/// The placeholder the canonical JSON of an unsequenced entry holds for its position.
const SEQ_PLACEHOLDER: &[u8] = b"\"seq\":null";

impl Item {
    fn new(entry: LedgerEntry) -> Self {
        // `seq` is the second member of both entry types, after a UUID, so the first match is
        // the top-level member and cannot come from user data.
        let seq_at = entry
            .body
            .windows(SEQ_PLACEHOLDER.len())
            .position(|w| w == SEQ_PLACEHOLDER)
            .map_or(0, |i| i + SEQ_PLACEHOLDER.len() - 4);
        Self { entry, seq_at }
    }

    fn event(e: &Event) -> Self {
        Self::new(LedgerEntry {
            seq: 0,
            event_id: e.id,
            kind: EntryKind::Event,
            time: e.time,
            account: e.actor.account.clone(),
            category: e.action.category.as_str().to_owned(),
            target: e.target.as_ref().map(|t| t.name.clone()),
            body: e.canonical_bytes(),
            leaf_hash: [0; 32],
            pruned_at: None,
        })
    }

    fn outcome(o: &OutcomeRecord) -> Self {
        Self::new(LedgerEntry {
            seq: 0,
            event_id: o.event_id,
            kind: EntryKind::Outcome,
            time: o.time,
            account: None,
            category: "outcome".to_owned(),
            target: None,
            body: o.canonical_bytes(),
            leaf_hash: [0; 32],
            pruned_at: None,
        })
    }

    /// The entry at position `seq`: its body with the position spliced in, and its leaf hash.
    fn at(&self, seq: u64) -> LedgerEntry {
        let digits = seq.to_string();
        let old = &self.entry.body;
        let mut body = Vec::with_capacity(old.len() + digits.len());
        body.extend_from_slice(&old[..self.seq_at]);
        body.extend_from_slice(digits.as_bytes());
        body.extend_from_slice(&old[self.seq_at + 4..]);
        let e = &self.entry;
        LedgerEntry {
            seq,
            event_id: e.event_id,
            kind: e.kind,
            time: e.time,
            account: e.account.clone(),
            category: e.category.clone(),
            target: e.target.clone(),
            leaf_hash: leaf_hash(&body).0,
            body,
            pruned_at: None,
        }
    }
}

struct Request {
    item: Item,
    /// Where to acknowledge; `None` for parked outcomes, whose callers do not wait (a failure
    /// is logged by the writer instead).
    ack: Option<oneshot::Sender<Result<u64, LedgerError>>>,
}

impl Request {
    /// Whether a caller waits for this request (an abandoned one is not written).
    fn wanted(&self) -> bool {
        self.ack.as_ref().is_none_or(|a| !a.is_closed())
    }

    fn answer(self, result: Result<u64, LedgerError>) {
        match self.ack {
            Some(ack) => {
                let _ = ack.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::error!(error = %e, event_id = %self.item.entry.event_id, "could not record an outcome");
                }
            }
        }
    }
}

/// Labels of `warden_events_total`: every recorded event counted per category, account, target
/// and decision. Refused authentications are not labelled with an account: the name a failed
/// login claims is the client's choice and would let anyone grow the metric without bound.
fn metric_labels(e: &Event) -> Vec<metrics::Label> {
    let refused_login =
        e.action.category == warden_core::event::Category::Auth && !e.decision.allowed;
    let account = match (&e.actor.account, refused_login) {
        (Some(a), false) => a.clone(),
        _ => "-".to_owned(),
    };
    let target = e
        .target
        .as_ref()
        .map_or_else(|| "-".to_owned(), |t| t.name.clone());
    let decision = if e.decision.allowed { "allow" } else { "deny" };
    vec![
        metrics::Label::new("category", e.action.category.as_str()),
        metrics::Label::new("account", account),
        metrics::Label::new("target", target),
        metrics::Label::new("decision", decision),
    ]
}

/// How long a parked outcome may wait for the next event, so both share one commit, before it
/// is written on its own.
const OUTCOME_PARK: Duration = Duration::from_millis(2);

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<Request>,
    healthy: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
    write_timeout: Duration,
    /// Outcomes not yet queued (see [`LedgerWriter::park_outcome`]).
    parked: Arc<Mutex<Vec<OutcomeRecord>>>,
    /// The ledger's size after the last commit by this writer.
    committed: tokio::sync::watch::Receiver<u64>,
}

impl LedgerWriter {
    /// Starts the writer task over `store`.
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.max_batch.saturating_mul(4).max(16));
        let healthy = Arc::new(AtomicBool::new(true));
        let write_timeout = config.write_timeout;
        let (committed_tx, committed) = tokio::sync::watch::channel(0);
        let task = Sequencer {
            committed: committed_tx,
            store,
            clock: clock.clone(),
            healthy: healthy.clone(),
            config,
            tree: None,
            last_checkpoint: None,
            last_checkpoint_at: Instant::now(),
        };
        tokio::spawn(task.run(rx));
        Self {
            tx,
            healthy,
            clock,
            write_timeout,
            parked: Arc::new(Mutex::new(Vec::new())),
            committed,
        }
    }

    /// Changes whenever this writer commits a batch, to the ledger's new size: live readers
    /// wait on it instead of polling (other instances' commits are not seen here).
    pub fn committed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Whether the last write succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records an event; returns once it is durable. Parked outcomes are queued just ahead of
    /// it, so they share its commit.
    pub async fn record(&self, event: Event) -> Result<Receipt, LedgerError> {
        let event_id = event.id;
        self.unpark();
        let labels = metric_labels(&event);
        let seq = self.submit(Item::event(&event)).await?;
        metrics::counter!("warden_events_total", labels).increment(1);
        Ok(Receipt { seq, event_id })
    }

    /// Records the outcome of an event recorded earlier; returns once it is durable.
    pub async fn record_outcome(
        &self,
        event_id: Uuid,
        outcome: Outcome,
    ) -> Result<u64, LedgerError> {
        self.submit(Item::outcome(&OutcomeRecord {
            event_id,
            seq: None,
            time: self.clock.now(),
            outcome,
        }))
        .await
    }

    /// Records an outcome without waiting: it is held until the next event is recorded (so both
    /// share one commit, instead of the event waiting behind a commit of its own) or for at most
    /// 2 ms, then queued with no one waiting for it (no task, timer or reply per outcome).
    /// A client's next request usually follows its previous response within a round trip, so
    /// under any load this halves the commits a request costs. Errors are logged.
    /// [`LedgerWriter::flush`] writes everything parked and waits for it (at shutdown).
    pub fn park_outcome(&self, event_id: Uuid, outcome: Outcome) {
        let record = OutcomeRecord {
            event_id,
            seq: None,
            time: self.clock.now(),
            outcome,
        };
        let first = {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            parked.push(record);
            parked.len() == 1
        };
        if first {
            let writer = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(OUTCOME_PARK).await;
                writer.unpark();
            });
        }
    }

    /// Queues every parked outcome, in order, with no one waiting for it. When the queue is full
    /// (the writer is behind), the rest wait for room on a task of their own.
    fn unpark(&self) {
        let mut rest = self.take_parked().into_iter().map(|record| Request {
            item: Item::outcome(&record),
            ack: None,
        });
        while let Some(request) = rest.next() {
            match self.tx.try_send(request) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(request)) => {
                    let (tx, rest): (_, Vec<Request>) = (self.tx.clone(), rest.collect());
                    tokio::spawn(async move {
                        for request in std::iter::once(request).chain(rest) {
                            if let Err(e) = tx.send(request).await {
                                e.0.answer(Err(LedgerError::Closed));
                            }
                        }
                    });
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(request)) => {
                    request.answer(Err(LedgerError::Closed));
                }
            }
        }
    }

    /// Writes every parked outcome and waits until they are durable.
    pub async fn flush(&self) {
        let durable: Vec<_> = self
            .take_parked()
            .iter()
            .map(|record| (record.event_id, self.submit(Item::outcome(record))))
            .collect();
        for (event_id, durable) in durable {
            if let Err(e) = durable.await {
                tracing::error!(error = %e, %event_id, "could not record an outcome");
            }
        }
    }

    fn take_parked(&self) -> Vec<OutcomeRecord> {
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    /// Enqueues `item` at once when the queue has room (so entries keep the order of the calls),
    /// and returns a future that waits for it to be durable, or until the write timeout.
    fn submit(
        &self,
        item: Item,
    ) -> impl std::future::Future<Output = Result<u64, LedgerError>> + Send + 'static {
        let (ack, done) = oneshot::channel();
        let queued = self.tx.try_send(Request {
            item,
            ack: Some(ack),
        });
        let (tx, healthy, write_timeout) =
            (self.tx.clone(), self.healthy.clone(), self.write_timeout);
        async move {
            let wait = async {
                match queued {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(request)) => {
                        tx.send(request).await.map_err(|_| LedgerError::Closed)?;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return Err(LedgerError::Closed),
                }
                done.await.map_err(|_| LedgerError::Closed)?
            };
            tokio::time::timeout(write_timeout, wait)
                .await
                .map_err(|_| {
                    healthy.store(false, Ordering::Relaxed);
                    LedgerError::Timeout(write_timeout)
                })?
        }
    }
}

/// Reads stored tree hashes for the tree functions, which make one synchronous read per
/// operation: the indexes are fetched from the store first, then served from memory.
pub async fn with_stored_hashes<T>(
    store: &dyn Store,
    f: impl Fn(&dyn HashReader) -> Result<T, crate::TreeError>,
) -> Result<T, LedgerError> {
    struct Recorder(Mutex<Vec<u64>>);
    impl HashReader for Recorder {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(indexes);
            Ok(vec![Hash([0; 32]); indexes.len()])
        }
    }
    struct Fetched(std::collections::HashMap<u64, Hash>);
    impl HashReader for Fetched {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
            indexes
                .iter()
                .map(|i| {
                    self.0
                        .get(i)
                        .copied()
                        .ok_or_else(|| format!("tree hash {i} was not fetched").into())
                })
                .collect()
        }
    }
    let bad = |e: crate::TreeError| LedgerError::Unavailable(format!("ledger tree: {e}"));
    let recorder = Recorder(Mutex::new(Vec::new()));
    f(&recorder).map_err(bad)?;
    let indexes = recorder.0.into_inner().unwrap_or_else(|p| p.into_inner());
    // Leaf hashes (level 0) live with their entries; only interior nodes are in the tree table.
    let (leaves, interior): (Vec<u64>, Vec<u64>) = indexes
        .into_iter()
        .partition(|&i| split_stored_hash_index(i).0 == 0);
    let positions: Vec<u64> = leaves
        .iter()
        .map(|&i| split_stored_hash_index(i).1)
        .collect();
    let unavailable = |e: StoreError| LedgerError::Unavailable(e.to_string());
    let leaf_hashes = store.leaf_hashes(&positions).await.map_err(unavailable)?;
    let node_hashes = store.tree_hashes(&interior).await.map_err(unavailable)?;
    let fetched = Fetched(
        leaves
            .into_iter()
            .zip(leaf_hashes)
            .chain(interior.into_iter().zip(node_hashes))
            .map(|(i, h)| (i, Hash(h)))
            .collect(),
    );
    f(&fetched).map_err(bad)
}

struct Sequencer {
    committed: tokio::sync::watch::Sender<u64>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    healthy: Arc<AtomicBool>,
    config: WriterConfig,
    /// The tree as stored; `None` until (re)loaded from the store.
    tree: Option<RootBuilder>,
    last_checkpoint: Option<u64>,
    last_checkpoint_at: Instant,
}

impl Sequencer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch: Vec<Request> = Vec::with_capacity(self.config.max_batch);
        let mut tick = tokio::time::interval(TICK.min(self.config.checkpoint_interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                first = rx.recv() => match first {
                    Some(first) => batch.push(first),
                    None => break,
                },
                _ = tick.tick() => {
                    if !self.healthy.load(Ordering::Relaxed) {
                        self.recover().await;
                    }
                    self.maybe_checkpoint().await;
                    continue;
                }
            }
            while batch.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            // Callers that gave up (timed out) are dropped before sequencing, so their events are
            // neither written nor acknowledged.
            batch.retain(Request::wanted);
            if batch.is_empty() {
                continue;
            }
            let result = self.write_batch(&batch).await;
            self.healthy.store(result.is_ok(), Ordering::Relaxed);
            match result {
                Ok(first_seq) => {
                    self.committed.send_replace(first_seq + batch.len() as u64);
                    metrics::counter!("warden_ledger_entries_total").increment(batch.len() as u64);
                    metrics::histogram!("warden_ledger_batch_size").record(batch.len() as f64);
                    for (i, r) in batch.drain(..).enumerate() {
                        r.answer(Ok(first_seq + i as u64));
                    }
                    self.maybe_checkpoint().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "ledger write failed; refusing events until it recovers");
                    self.tree = None;
                    for r in batch.drain(..) {
                        r.answer(Err(e.clone()));
                    }
                }
            }
        }
        self.maybe_checkpoint().await;
    }

    /// The tree as stored, reloading position and frontier from the store when unknown.
    async fn tree(&mut self) -> Result<RootBuilder, LedgerError> {
        if let Some(t) = &self.tree {
            return Ok(t.clone());
        }
        let unavailable = |e: warden_store::StoreError| LedgerError::Unavailable(e.to_string());
        let size = self
            .store
            .last_seq()
            .await
            .map_err(unavailable)?
            .map_or(0, |s| s + 1);
        let tree = with_stored_hashes(&*self.store, |r| RootBuilder::from_reader(size, r)).await?;
        if self.last_checkpoint.is_none() {
            self.last_checkpoint = self
                .store
                .latest_checkpoint()
                .await
                .map_err(unavailable)?
                .map(|c| c.size);
        }
        self.tree = Some(tree.clone());
        Ok(tree)
    }

    async fn write_batch(&mut self, batch: &[Request]) -> Result<u64, LedgerError> {
        for _ in 0..MAX_RACES {
            let mut tree = self.tree().await?;
            let first = tree.size();
            let first_index = stored_hash_count(first);
            let entries: Vec<LedgerEntry> = batch
                .iter()
                .enumerate()
                .map(|(i, r)| r.item.at(first + i as u64))
                .collect();
            let mut hashes = Vec::with_capacity(entries.len() * 2);
            for e in &entries {
                tree.push_emitting(Hash(e.leaf_hash), &mut hashes);
            }
            // The leaf hashes are stored with the entries; the tree table keeps interior nodes.
            let tree_hashes: Vec<TreeHash> = hashes
                .iter()
                .enumerate()
                .map(|(i, h)| (first_index + i as u64, h))
                .filter(|(index, _)| split_stored_hash_index(*index).0 > 0)
                .map(|(index, h)| TreeHash { index, hash: h.0 })
                .collect();
            match self.store.append_entries(entries, tree_hashes).await {
                Ok(()) => {
                    self.tree = Some(tree);
                    return Ok(first);
                }
                // Another instance sharing the database appended first: reload and go again.
                Err(StoreError::Conflict(_)) => self.tree = None,
                Err(e) => return Err(LedgerError::Unavailable(e.to_string())),
            }
        }
        Err(LedgerError::Unavailable(format!(
            "lost the race for the next ledger position {MAX_RACES} times in a row"
        )))
    }

    /// After a failed write, checks whether the store is back, so `/readyz` recovers without
    /// waiting for traffic that a load balancer is no longer sending.
    async fn recover(&mut self) {
        self.tree = None;
        if self.tree().await.is_ok() && self.store.ping().await.is_ok() {
            tracing::info!("ledger store reachable again");
            self.healthy.store(true, Ordering::Relaxed);
        }
    }

    /// Signs and stores a checkpoint when enough entries or time have passed since the last.
    async fn maybe_checkpoint(&mut self) {
        let Ok(tree) = self.tree().await else {
            return;
        };
        let size = tree.size();
        let since = size.saturating_sub(self.last_checkpoint.unwrap_or(0));
        let due = self.last_checkpoint != Some(size)
            && size > 0
            && (since >= self.config.checkpoint_every
                || self.last_checkpoint_at.elapsed() >= self.config.checkpoint_interval);
        if !due {
            return;
        }
        let checkpoint = Checkpoint::new(self.config.signer.name(), size, tree.root());
        let note = match checkpoint.sign(&self.config.signer) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign a ledger checkpoint");
                return;
            }
        };
        let stored = StoredCheckpoint {
            size,
            note,
            created_at: self.clock.now(),
        };
        if let Err(e) = self.store.insert_checkpoint(&stored).await {
            tracing::error!(error = %e, "cannot store a ledger checkpoint");
            return;
        }
        self.last_checkpoint = Some(size);
        self.last_checkpoint_at = Instant::now();
        metrics::gauge!("warden_ledger_checkpoint_size").set(size as f64);
        if let Some(dir) = &self.config.checkpoint_dir {
            if let Err(e) = publish(dir, &stored) {
                tracing::error!(error = %e, dir = %dir.display(), "cannot copy a checkpoint to the checkpoint directory");
            }
        }
    }
}

/// Writes a checkpoint to `<dir>/<size>.checkpoint` and atomically replaces `latest.checkpoint`.
fn publish(dir: &std::path::Path, checkpoint: &StoredCheckpoint) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(format!("{}.checkpoint", checkpoint.size)),
        &checkpoint.note,
    )?;
    let tmp = dir.join(".latest.checkpoint.tmp");
    std::fs::write(&tmp, &checkpoint.note)?;
    std::fs::rename(tmp, dir.join("latest.checkpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::event::{Action, Actor, ActorKind, AuthMethod, Category, Decision, Source};
    use warden_core::Timestamp;

    #[test]
    fn splicing_the_position_equals_serialising_with_it() {
        let mut e = Event::new(
            Timestamp::from_micros(1),
            Actor {
                kind: ActorKind::Service,
                account: Some("svc\"seq\":null".into()),
                key_id: None,
                auth: AuthMethod::ApiKey,
            },
            Source::default(),
            Action {
                category: Category::Http,
                verb: "GET".into(),
                resource: Some("/x?seq=null".into()),
                detail: None,
            },
            Decision::allow("test"),
        );
        let item = Item::event(&e);
        for seq in [0, 7, 1234567890123] {
            e.seq = Some(seq);
            let spliced = item.at(seq);
            assert_eq!(spliced.body, e.canonical_bytes());
            assert_eq!(spliced.leaf_hash, leaf_hash(&e.canonical_bytes()).0);
        }
        let mut o = OutcomeRecord {
            event_id: e.id,
            seq: None,
            time: Timestamp::from_micros(2),
            outcome: Outcome::default(),
        };
        let item = Item::outcome(&o);
        o.seq = Some(42);
        assert_eq!(item.at(42).body, o.canonical_bytes());
    }
}
