//! Export for SIEMs: every event on the ledger, as OCSF JSON, appended to each `jsonl_file`
//! sink. Alerts reach these files as their `alert.open` / `alert.ack` / `alert.resolve` events
//! (OCSF Detection Findings), so a file holds the whole story once, in ledger order.
//!
//! An event is exported once it is a few seconds old, with its outcome when that has been
//! recorded by then (outcomes are separate, later ledger entries). Each file's position (the
//! last exported sequence number) is saved after every appended batch, so a restart resumes where
//! it stopped; a crash between the append and the save repeats at most that batch (collectors
//! de-duplicate on `metadata.uid`). A new file starts at the beginning of the ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warden_core::Clock;
use warden_sinks::EventFile;
use warden_store::{EventQuery, Store};

/// Events read per store query.
const BATCH: u32 = 500;
/// How long after an event its outcome is waited for.
const SETTLE: Duration = Duration::from_secs(2);
/// Pause when there is nothing (old enough) to export, or after an error.
const PAUSE: Duration = Duration::from_millis(500);

/// Appends the ledger to one OCSF JSONL file.
pub struct Exporter {
    /// The store the ledger lives in.
    pub store: Arc<dyn Store>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// The `jsonl_file` sink.
    pub export: EventFile,
}

impl Exporter {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let key = format!("export.{}.position", self.export.name);
        while !*stop.borrow() {
            let pause = match self.step(&key).await {
                Ok(true) => continue,
                Ok(false) => PAUSE,
                Err(e) => {
                    tracing::warn!(sink = %self.export.name, error = %e, "OCSF export failed; retrying");
                    PAUSE * 4
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Exports one batch; `Ok(true)` when a full batch went out (there may be more at once).
    async fn step(&self, key: &str) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let after = self
            .store
            .setting(key)
            .await?
            .and_then(|v| v.parse::<u64>().ok());
        let query = EventQuery {
            after_seq: after,
            limit: BATCH,
            ..EventQuery::default()
        };
        let settled = self.clock.now().saturating_sub(SETTLE);
        let events = self.store.events(&query).await?;
        let full = events.len() == BATCH as usize;
        let ready: Vec<_> = events.iter().take_while(|e| e.time <= settled).collect();
        let Some(last) = ready.last().and_then(|e| e.seq) else {
            return Ok(false);
        };
        let lines: Vec<serde_json::Value> = ready.iter().map(|e| warden_ocsf::event(e)).collect();
        self.export.file.append_batch(&lines).await?;
        self.store.set_setting(key, &last.to_string()).await?;
        metrics::counter!("warden_export_events_total", "sink" => self.export.name.clone())
            .increment(lines.len() as u64);
        Ok(full && ready.len() == events.len())
    }
}
