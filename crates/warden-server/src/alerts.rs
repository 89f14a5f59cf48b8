//! Alerts: turning detection's findings into de-duplicated alerts with a lifecycle, recording
//! them on the ledger, and delivering them to the configured sinks through durable outboxes.
//!
//! - A finding joins the unresolved alert with the same detector, account and subject when that
//!   alert was last seen within the de-duplication window (its count and last sighting grow);
//!   otherwise it opens a new alert. Opening is an `alert.open` event on the ledger (actor:
//!   Warden), acknowledging and resolving are `alert.ack` / `alert.resolve` events by the admin.
//! - A new alert is stored together with one outbox row per sink that wants its severity, in one
//!   transaction, so an alert is never stored without being queued. Each sink has its own worker
//!   that delivers its outbox oldest first; a failed delivery stays queued and the worker backs off
//!   (doubling up to a maximum) before trying again, so a sink that is down receives everything,
//!   in order, once it is back, also across a restart. Workers are independent: a hung sink only
//!   delays itself, and never the gateways (detection runs behind the ledger, not in front of it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;
use warden_core::alert::MAX_LINKED_EVENTS;
use warden_core::event::{Action, Actor, Category, Decision, Event, Source};
use warden_core::{Alert, AlertStatus, Clock};
use warden_detect::Finding;
use warden_ledger::{LedgerError, LedgerWriter};
use warden_sinks::Sink;
use warden_store::{AlertQuery, Store, StoreError};

/// Alerts loaded into memory on start for de-duplication (the unresolved ones, newest first).
const MAX_LOADED: u32 = 10_000;
/// Outbox rows fetched per store query.
const OUTBOX_BATCH: u32 = 100;
/// First wait after a failed delivery.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How often a worker looks at its outbox unprompted (alerts queued by other instances).
const OUTBOX_POLL: Duration = Duration::from_secs(5);

/// The de-duplication key: detector, account, subject.
type Key = (String, Option<String>, String);

fn key_of(alert: &Alert) -> Key {
    (
        alert.detector.clone(),
        alert.account.clone(),
        alert.subject.clone(),
    )
}

/// Why an alert could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// No alert has that id.
    #[error("no alert {0}")]
    NotFound(Uuid),
    /// The change does not apply to the alert's state.
    #[error("alert {id} is {status}: {message}")]
    Conflict {
        /// The alert.
        id: Uuid,
        /// Its state.
        status: &'static str,
        /// What cannot be done.
        message: &'static str,
    },
    /// The ledger could not record the change, so it was not made.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The unresolved alerts, the sinks, and how findings become alerts.
pub struct AlertBook {
    store: Arc<dyn Store>,
    ledger: LedgerWriter,
    clock: Arc<dyn Clock>,
    dedup_window: Duration,
    sinks: Vec<SinkSlot>,
    /// Unresolved alerts by key, with whether they changed since the last flush.
    open: Mutex<HashMap<Key, (Alert, bool)>>,
}

struct SinkSlot {
    sink: Arc<Sink>,
    wake: Arc<Notify>,
}

impl AlertBook {
    /// A book over the alerts in `store` delivering to `sinks`, with unresolved alerts loaded.
    pub async fn open(
        store: Arc<dyn Store>,
        ledger: LedgerWriter,
        clock: Arc<dyn Clock>,
        dedup_window: Duration,
        sinks: Vec<Sink>,
    ) -> Result<Self, StoreError> {
        let mut open = HashMap::new();
        for status in [AlertStatus::Open, AlertStatus::Acknowledged] {
            let query = AlertQuery {
                status: Some(status),
                account: None,
                limit: MAX_LOADED,
            };
            for alert in store.alerts(&query).await? {
                open.entry(key_of(&alert)).or_insert((alert, false));
            }
        }
        Ok(Self {
            store,
            ledger,
            clock,
            dedup_window,
            sinks: sinks
                .into_iter()
                .map(|sink| SinkSlot {
                    sink: Arc::new(sink),
                    wake: Arc::new(Notify::new()),
                })
                .collect(),
            open: Mutex::new(open),
        })
    }

    /// Folds a finding into its alert, opening (recording, storing and queueing) a new one when
    /// there is no unresolved alert for it seen within the de-duplication window.
    pub async fn raise(&self, finding: Finding) -> Result<(), StoreError> {
        let mut open = self.open.lock().await;
        let key = (
            finding.detector.clone(),
            finding.account.clone(),
            finding.subject.clone(),
        );
        if let Some((alert, dirty)) = open.get_mut(&key) {
            let recent = finding.time.saturating_sub(self.dedup_window) <= alert.last_seen;
            if recent {
                alert.count += 1;
                alert.last_seen = alert.last_seen.max(finding.time);
                if alert.seqs.len() < MAX_LINKED_EVENTS {
                    alert.seqs.push(finding.seq);
                }
                *dirty = true;
                metrics::counter!("warden_alert_findings_total", "detector" => finding.detector)
                    .increment(1);
                return Ok(());
            }
        }
        let alert = Alert {
            id: Uuid::now_v7(),
            detector: finding.detector,
            severity: finding.severity,
            status: AlertStatus::Open,
            account: finding.account,
            target: finding.target,
            subject: finding.subject,
            summary: finding.summary,
            count: 1,
            first_seen: finding.time,
            last_seen: finding.time,
            seqs: vec![finding.seq],
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            note: None,
        };
        let event = self.lifecycle_event(&alert, "alert.open", Actor::system(), Source::default());
        if let Err(e) = self.ledger.record(event).await {
            // The alert matters more than its ledger entry: store and deliver it anyway.
            tracing::error!(error = %e, alert = %alert.id, "could not record an alert on the ledger");
        }
        let sinks: Vec<String> = self
            .sinks
            .iter()
            .filter(|s| s.sink.wants(alert.severity))
            .map(|s| s.sink.name().to_owned())
            .collect();
        self.store.insert_alert(&alert, &sinks).await?;
        metrics::counter!("warden_alerts_total",
            "detector" => alert.detector.clone(), "severity" => alert.severity.as_str())
        .increment(1);
        metrics::counter!("warden_alert_findings_total", "detector" => alert.detector.clone())
            .increment(1);
        tracing::warn!(alert = %alert.id, detector = %alert.detector, severity = alert.severity.as_str(),
            account = alert.account.as_deref().unwrap_or("-"), "{}", alert.summary);
        for slot in self
            .sinks
            .iter()
            .filter(|s| sinks.iter().any(|n| n == s.sink.name()))
        {
            slot.wake.notify_one();
        }
        open.insert(key, (alert, false));
        Ok(())
    }

    /// Writes the counts and sightings that grew since the last flush.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let changed: Vec<Alert> = {
            let mut open = self.open.lock().await;
            open.values_mut()
                .filter(|(_, dirty)| *dirty)
                .map(|(alert, dirty)| {
                    *dirty = false;
                    alert.clone()
                })
                .collect()
        };
        for alert in changed {
            self.store.update_alert(&alert).await?;
        }
        Ok(())
    }

    /// Moves an alert to `to` (acknowledged or resolved) on behalf of `by`, recorded on the
    /// ledger before it is stored.
    pub async fn transition(
        &self,
        id: Uuid,
        by: &Actor,
        source: Source,
        note: Option<String>,
        to: AlertStatus,
    ) -> Result<Alert, AlertError> {
        let mut open = self.open.lock().await;
        let mut alert = match open.values().find(|(a, _)| a.id == id) {
            Some((a, _)) => a.clone(),
            None => self
                .store
                .alert(id)
                .await?
                .ok_or(AlertError::NotFound(id))?,
        };
        let refused = match (alert.status, to) {
            (AlertStatus::Resolved, _) => Some("it cannot change any more"),
            (AlertStatus::Acknowledged, AlertStatus::Acknowledged) => {
                Some("it is already acknowledged")
            }
            _ => None,
        };
        if let Some(message) = refused {
            return Err(AlertError::Conflict {
                id,
                status: alert.status.as_str(),
                message,
            });
        }
        let now = self.clock.now();
        let who = by.account.clone();
        alert.status = to;
        match to {
            AlertStatus::Acknowledged => {
                alert.acknowledged_by = who;
                alert.acknowledged_at = Some(now);
            }
            _ => {
                alert.resolved_by = who;
                alert.resolved_at = Some(now);
            }
        }
        if note.is_some() {
            alert.note = note;
        }
        let verb = match to {
            AlertStatus::Acknowledged => "alert.ack",
            _ => "alert.resolve",
        };
        // The change is made only once the ledger holds it.
        self.ledger
            .record(self.lifecycle_event(&alert, verb, by.clone(), source))
            .await?;
        self.store.update_alert(&alert).await?;
        // The entry for this key may be a newer alert (this one's window ran out): leave it be.
        if let Some(entry) = open.get_mut(&key_of(&alert)).filter(|(a, _)| a.id == id) {
            if to == AlertStatus::Resolved {
                open.remove(&key_of(&alert));
            } else {
                entry.0 = alert.clone();
            }
        }
        Ok(alert)
    }

    /// The ledger event for a step of `alert`'s lifecycle; its detail is the alert itself, so
    /// the ledger alone tells the whole story (and exports map it to a finding).
    fn lifecycle_event(&self, alert: &Alert, verb: &str, actor: Actor, source: Source) -> Event {
        Event::new(
            self.clock.now(),
            actor,
            source,
            Action {
                category: Category::Alert,
                verb: verb.to_owned(),
                resource: Some(format!("alert/{}", alert.id)),
                detail: serde_json::to_value(alert).ok(),
            },
            Decision::allow(alert.summary.clone()),
        )
    }

    /// Starts one delivery worker per sink; each ends when `stop` turns true.
    pub fn spawn_workers(
        &self,
        max_backoff: Duration,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        self.sinks
            .iter()
            .map(|slot| {
                let worker = Worker {
                    store: self.store.clone(),
                    sink: slot.sink.clone(),
                    wake: slot.wake.clone(),
                    max_backoff,
                };
                tokio::spawn(worker.run(stop.clone()))
            })
            .collect()
    }
}

/// Delivers one sink's outbox.
struct Worker {
    store: Arc<dyn Store>,
    sink: Arc<Sink>,
    wake: Arc<Notify>,
    max_backoff: Duration,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.sink.name().to_owned();
        let mut backoff = FIRST_BACKOFF;
        loop {
            if *stop.borrow() {
                return;
            }
            let pause = match self.deliver_due().await {
                Ok(true) => {
                    backoff = FIRST_BACKOFF;
                    None
                }
                Ok(false) => {
                    backoff = FIRST_BACKOFF;
                    Some(OUTBOX_POLL)
                }
                Err(()) => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.max_backoff);
                    Some(wait)
                }
            };
            if let Ok(backlog) = self.store.outbox_backlog().await {
                let pending = backlog
                    .iter()
                    .find(|b| b.sink == name)
                    .map_or(0, |b| b.pending);
                metrics::gauge!("warden_alert_outbox_pending", "sink" => name.clone())
                    .set(pending as f64);
            }
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.wake.notified(), if pause == OUTBOX_POLL => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Delivers the outbox oldest first until it is empty or a delivery fails. `Ok(true)` when
    /// something was delivered (look again at once), `Ok(false)` when it was empty, `Err` after
    /// a failure (recorded on the alert's outbox row).
    async fn deliver_due(&self) -> Result<bool, ()> {
        let name = self.sink.name();
        let due = match self.store.outbox_due(name, OUTBOX_BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(sink = name, error = %e, "cannot read the sink's outbox");
                return Err(());
            }
        };
        if due.is_empty() {
            return Ok(false);
        }
        for item in due {
            let delivery = format!("{}:{}", item.alert.id, name);
            match self.sink.deliver(&item.alert, &delivery).await {
                Ok(()) => {
                    metrics::counter!("warden_alert_deliveries_total", "sink" => name.to_owned(), "result" => "ok")
                        .increment(1);
                    if let Err(e) = self.store.outbox_delivered(name, item.alert.id).await {
                        // Delivered but still queued: it will be delivered again (receivers
                        // de-duplicate on the delivery id).
                        tracing::warn!(sink = name, error = %e, "cannot clear a delivered alert");
                        return Err(());
                    }
                }
                Err(e) => {
                    metrics::counter!("warden_alert_deliveries_total", "sink" => name.to_owned(), "result" => "error")
                        .increment(1);
                    tracing::warn!(sink = name, alert = %item.alert.id, attempts = item.attempts + 1,
                        error = %e, "alert delivery failed; will retry");
                    let _ = self
                        .store
                        .outbox_failed(name, item.alert.id, &e.to_string())
                        .await;
                    return Err(());
                }
            }
        }
        Ok(true)
    }
}
