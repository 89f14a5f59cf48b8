//! Background jobs inside `warden serve`: writing credential and grant use (`last_used_at`) once
//! a second, publishing new checkpoints to a URL, ledger retention, and scheduled rotation of
//! database targets' upstream passwords. Each runs on its own interval until the server stops.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use warden_core::event::{Action, Actor, Category, Decision, Event, Outcome, Source};

use warden_core::Severity;
use warden_detect::Finding;

use crate::api::App;

/// Runs `job` every `every` until `stop` turns true.
pub fn every<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => job().await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
    })
}

/// Writes the credential and grant uses noted since the last flush.
pub async fn flush_usage(app: &App) {
    if let Err(e) = app.auth.flush_usage().await {
        tracing::warn!(error = %e, "could not record credential use");
    }
    if let Err(e) = app.policy.flush_grant_uses().await {
        tracing::warn!(error = %e, "could not record grant use");
    }
}

/// The alert raised when a scheduled rotation fails (Warden's own, not a detector's).
pub const ROTATION_FAILED: &str = "rotation_failed";

/// Rotates the upstream password of every database target whose `rotation_period` has passed,
/// each as an admin event by Warden itself. A failed rotation leaves the old password working,
/// is recorded with its reason, raises a `rotation_failed` alert, and is tried again on the next
/// run (while the alert is unresolved, further failures fold into it).
pub async fn rotate_due(app: Arc<App>) {
    let now = app.clock.now();
    let targets = match app.store.list_targets().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "scheduled rotation: cannot list targets");
            return;
        }
    };
    for target in targets
        .into_iter()
        .filter(|t| t.rotation_due().is_some_and(|d| d <= now))
    {
        let name = target.name.clone();
        let resolved = match app.policy.target(&name).await {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, target = %name, "scheduled rotation: cannot open the target");
                continue;
            }
        };
        let event = Event::new(
            now,
            Actor::system(),
            Source::default(),
            Action {
                category: Category::Admin,
                verb: "target.rotate".to_owned(),
                resource: Some(format!("target/{name}")),
                detail: Some(serde_json::json!({ "scheduled": true })),
            },
            Decision::allow("rotation_period"),
        );
        let time = event.time;
        match app
            .recorded_at(event, crate::api::targets::rotate(&app, &resolved))
            .await
        {
            Ok((_, Ok(()))) => tracing::info!(target = %name, "rotated the upstream password"),
            Ok((receipt, Err(e))) => {
                tracing::error!(error = %e, target = %name, "scheduled rotation failed");
                let finding = Finding {
                    detector: ROTATION_FAILED.to_owned(),
                    severity: Severity::High,
                    account: None,
                    key_id: None,
                    target: Some(name.clone()),
                    subject: name.clone(),
                    summary: format!(
                        "the scheduled rotation of {name}'s upstream password failed ({e}); \
                         the old password stays in use"
                    ),
                    event_id: receipt.event_id,
                    seq: receipt.seq,
                    time,
                    source_ip: None,
                };
                if let Err(e) = app.alerts.raise(finding).await {
                    tracing::error!(error = %e, target = %name, "could not raise an alert");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, target = %name, "scheduled rotation not recorded")
            }
        }
    }
}

/// Retention: empties the bodies of entries older than `keep` that a checkpoint already covers,
/// and records that it did so as an event of its own.
pub async fn prune(app: Arc<App>, keep: Duration) {
    let now = app.clock.now();
    let before = now.saturating_sub(keep);
    let covered = match app.store.latest_checkpoint().await {
        Ok(Some(cp)) => cp.size,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "retention: cannot read the latest checkpoint");
            return;
        }
    };
    match app.store.prune_entries(before, covered, now).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(pruned = n, before = %before, "retention removed old event bodies");
            let mut event = Event::new(
                now,
                Actor::system(),
                Source::default(),
                Action {
                    category: Category::Admin,
                    verb: "ledger.prune".to_owned(),
                    resource: Some("ledger".to_owned()),
                    detail: Some(
                        serde_json::json!({ "pruned": n, "before": before, "below_seq": covered }),
                    ),
                },
                Decision::allow("ledger.retention"),
            );
            event.outcome = Some(Outcome {
                status: "ok".to_owned(),
                rows: Some(n),
                ..Outcome::default()
            });
            if let Err(e) = app.ledger.record(event).await {
                tracing::error!(error = %e, "retention: could not record the pruning");
            }
        }
        Err(e) => tracing::warn!(error = %e, "retention failed"),
    }
}

/// Publishes signed checkpoints to a URL outside Warden. The checkpoints table is the outbox:
/// each run POSTs the latest checkpoint if it is newer than the last one the URL accepted, so a
/// receiver that is down gets the newest one when it returns (older ones add nothing: each
/// checkpoint commits to everything before it), also after a restart.
pub struct CheckpointPublisher {
    url: String,
    http: reqwest::Client,
    published: tokio::sync::Mutex<u64>,
}

impl CheckpointPublisher {
    /// A publisher to `url`.
    pub fn new(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            published: tokio::sync::Mutex::new(0),
        }
    }

    /// POSTs the latest checkpoint if the URL has not accepted it yet.
    pub async fn run(&self, app: &App) {
        let mut published = self.published.lock().await;
        let latest = match app.store.latest_checkpoint().await {
            Ok(Some(cp)) if cp.size > *published => cp,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the latest checkpoint to publish");
                return;
            }
        };
        let sent = self
            .http
            .post(&self.url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(latest.note.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match sent {
            Ok(_) => *published = latest.size,
            Err(e) => {
                // Without the URL: it may carry credentials for the receiver.
                let e = e.without_url();
                tracing::warn!(error = %e, size = latest.size, "could not publish a checkpoint; will retry")
            }
        }
    }
}
