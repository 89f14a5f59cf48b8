//! Detection inside `warden serve`: follows the ledger, feeds every entry to the baselines and
//! detectors of `warden-detect`, and hands findings to the [`AlertBook`].
//!
//! On start the baselines are rebuilt from the ledger: the entries of the configured history
//! (default 30 days) up to the saved position are replayed with their findings discarded (they
//! were raised when they happened), then entries after it raise alerts. The position (the next
//! entry to examine) is saved after each batch's alerts are stored, so after a crash at most one
//! batch is examined twice, and its findings fold into the alerts already open.
//!
//! On first start (no saved position) detection begins at the end of the ledger: history
//! teaches the baselines but raises nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use warden_core::Clock;
use warden_detect::{Engine, Finding};
use warden_store::Store;

use crate::alerts::AlertBook;
use crate::follow::{Entry, Follower};

/// The settings row holding the position of the next entry detection examines.
pub const POSITION: &str = "detection.position";
/// Replay progress is logged every this many entries.
const PROGRESS_EVERY: u64 = 100_000;
/// How often caught-up detection reads the ledger again: well inside the one second in which
/// an alert must reach its sinks.
const PACE: Duration = Duration::from_millis(100);

/// Everything the detection task needs.
pub struct DetectionTask {
    /// The store the ledger lives in.
    pub store: Arc<dyn Store>,
    /// Wakes the task when the ledger grows.
    pub committed: watch::Receiver<u64>,
    /// Where "now" comes from (for the replay window).
    pub clock: Arc<dyn Clock>,
    /// How much history rebuilds the baselines.
    pub history: Duration,
    /// The engine.
    pub engine: Arc<Mutex<Engine>>,
    /// Where findings go.
    pub book: Arc<AlertBook>,
}

impl DetectionTask {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some((replay_from, live_from)) = self.positions(&mut stop).await else {
            return;
        };
        let mut follower = Follower::new(
            self.store.clone(),
            replay_from,
            self.committed.clone(),
            PACE,
        );
        let started = Instant::now();
        let mut replayed = 0u64;
        let mut replaying = replay_from < live_from;
        if replaying {
            tracing::info!(
                from = replay_from,
                to = live_from,
                "rebuilding detection baselines from the ledger"
            );
        }
        while let Some(batch) = follower.next_batch(&mut stop).await {
            let mut findings: Vec<Finding> = Vec::new();
            {
                let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
                for (seq, entry) in &batch {
                    let found = match entry {
                        Entry::Event(e) => engine.observe_event(e, *seq),
                        Entry::Outcome(o) => engine.observe_outcome(o, *seq),
                    };
                    if *seq >= live_from {
                        findings.extend(found);
                    } else {
                        replayed += 1;
                        if replayed.is_multiple_of(PROGRESS_EVERY) {
                            tracing::info!(
                                replayed,
                                of = live_from - replay_from,
                                "rebuilding baselines"
                            );
                        }
                    }
                }
                let stats = engine.stats();
                metrics::gauge!("warden_detection_accounts").set(stats.accounts as f64);
                metrics::gauge!("warden_detection_baseline_bytes").set(stats.approx_bytes as f64);
            }
            if replaying && follower.position() >= live_from {
                replaying = false;
                tracing::info!(
                    entries = replayed,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "detection baselines rebuilt"
                );
            }
            for finding in findings {
                if let Err(e) = self.book.raise(finding).await {
                    tracing::error!(error = %e, "could not store an alert");
                }
            }
            if let Err(e) = self.book.flush().await {
                tracing::error!(error = %e, "could not update alerts");
            }
            let position = follower.position();
            if !replaying {
                if let Err(e) = self
                    .store
                    .set_setting(POSITION, &position.to_string())
                    .await
                {
                    tracing::warn!(error = %e, "could not save the detection position");
                }
            }
            metrics::gauge!("warden_detection_position").set(position as f64);
        }
        if let Err(e) = self.book.flush().await {
            tracing::error!(error = %e, "could not update alerts");
        }
    }

    /// Where the replay starts and where live detection starts, saving the latter on first start.
    async fn positions(&self, stop: &mut watch::Receiver<bool>) -> Option<(u64, u64)> {
        loop {
            match self.try_positions().await {
                Ok(p) => return Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "detection cannot read its position; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return None,
                    }
                }
            }
        }
    }

    async fn try_positions(&self) -> Result<(u64, u64), warden_store::StoreError> {
        let saved = self
            .store
            .setting(POSITION)
            .await?
            .and_then(|v| v.parse::<u64>().ok());
        let live_from = match saved {
            Some(p) => p,
            None => {
                let end = self.store.last_seq().await?.map_or(0, |s| s + 1);
                self.store.set_setting(POSITION, &end.to_string()).await?;
                end
            }
        };
        let since = self.clock.now().saturating_sub(self.history);
        let replay_from = self
            .store
            .first_seq_since(since)
            .await?
            .map_or(live_from, |s| s.min(live_from));
        Ok((replay_from, live_from))
    }
}
