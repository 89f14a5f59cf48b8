//! Lifecycle policies: the automation that keeps service accounts owned, needed and rotated.
//! Each policy is off by default and can be planned (a dry run listing what it would do) before
//! it is turned on; `warden serve` runs the enabled ones on a cron schedule.
//!
//! - `disable_inactive`: disables accounts unused for `after` (PCI DSS 8.2.6 uses 90 days).
//! - `expire_old_keys`: gives keys that reach `max_age - warn_before` an expiry at `max_age`
//!   (at least `warn_before` away) and warns the owner; the key then stops on its own.
//! - `require_owner`: disables accounts without an owner on record or a purpose.
//! - `rotate_keys`: issues a new key for accounts whose newest key is older than `every`, writes
//!   it to `deliver_dir/<account>.key` (mode 0600, where the deployment picks it up), and
//!   retires the old keys after `grace`.
//!
//! What to act on comes from the accountability analysis (`warden-access`), so a policy and the
//! finding that justifies it can never disagree. Every action is an admin event by Warden itself,
//! and the owner is told through the alert sinks (an alert per account and policy; never a
//! secret).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use warden_access::{FindingKind, Options};
use warden_core::event::{Action, Actor, Category, Decision, Event, Source};
use warden_core::{Severity, Timestamp};
use warden_detect::Finding;

use crate::api::{ApiError, App};

/// Lifecycle settings (`[lifecycle]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// When enabled policies run: a cron expression in UTC (`min hour day month weekday`, or
    /// with seconds first). Default: every day at 03:00.
    pub schedule: String,
    /// Disable accounts unused this long.
    pub disable_inactive: DisableInactive,
    /// Expire keys older than a maximum age, after warning.
    pub expire_old_keys: ExpireOldKeys,
    /// Disable accounts without an owner on record or a purpose.
    pub require_owner: RequireOwner,
    /// Rotate keys on a schedule, delivering the new key to a directory.
    pub rotate_keys: RotateKeys,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            schedule: "0 3 * * *".to_owned(),
            disable_inactive: DisableInactive::default(),
            expire_old_keys: ExpireOldKeys::default(),
            require_owner: RequireOwner::default(),
            rotate_keys: RotateKeys::default(),
        }
    }
}

/// `lifecycle.disable_inactive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisableInactive {
    /// Run it.
    pub enabled: bool,
    /// Unused this long (default 90 days).
    #[serde(with = "crate::config::humantime_serde_str")]
    pub after: Duration,
}

impl Default for DisableInactive {
    fn default() -> Self {
        Self {
            enabled: false,
            after: Duration::from_secs(90 * 86_400),
        }
    }
}

/// `lifecycle.expire_old_keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpireOldKeys {
    /// Run it.
    pub enabled: bool,
    /// Keys stop working at this age (default 90 days, PCI DSS 8.3.9).
    #[serde(with = "crate::config::humantime_serde_str")]
    pub max_age: Duration,
    /// The owner is warned this long before (default 14 days).
    #[serde(with = "crate::config::humantime_serde_str")]
    pub warn_before: Duration,
}

impl Default for ExpireOldKeys {
    fn default() -> Self {
        Self {
            enabled: false,
            max_age: Duration::from_secs(90 * 86_400),
            warn_before: Duration::from_secs(14 * 86_400),
        }
    }
}

/// `lifecycle.require_owner`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequireOwner {
    /// Run it.
    pub enabled: bool,
}

/// `lifecycle.rotate_keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotateKeys {
    /// Run it.
    pub enabled: bool,
    /// Rotate when the newest key is older than this (default 30 days).
    #[serde(with = "crate::config::humantime_serde_str")]
    pub every: Duration,
    /// The old keys keep working this long after (default 7 days).
    #[serde(with = "crate::config::humantime_serde_str")]
    pub grace: Duration,
    /// Where the new key is written, as `<account>.key` (mode 0600). Required to enable.
    pub deliver_dir: Option<PathBuf>,
}

impl Default for RotateKeys {
    fn default() -> Self {
        Self {
            enabled: false,
            every: Duration::from_secs(30 * 86_400),
            grace: Duration::from_secs(7 * 86_400),
            deliver_dir: None,
        }
    }
}

impl LifecycleConfig {
    /// Problems with these settings, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = schedule(&self.schedule) {
            problems.push(format!("lifecycle.schedule: {e}"));
        }
        let k = &self.expire_old_keys;
        if k.warn_before >= k.max_age {
            problems.push(
                "lifecycle.expire_old_keys.warn_before: must be shorter than max_age".to_owned(),
            );
        }
        if self.rotate_keys.enabled && self.rotate_keys.deliver_dir.is_none() {
            problems.push(
                "lifecycle.rotate_keys.deliver_dir: required when rotate_keys is enabled (where \
                 the new keys are written for the deployment to pick up)"
                    .to_owned(),
            );
        }
        if self.disable_inactive.after.is_zero() || self.rotate_keys.every.is_zero() {
            problems.push("lifecycle: durations must be longer than 0s".to_owned());
        }
        problems
    }
}

/// The cron schedule of `expr`: five fields (minutes first) or six/seven (seconds first).
pub fn schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_owned()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// One thing a policy does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Disable an account.
    DisableAccount {
        /// The account.
        account: String,
        /// Why (stored as the disabled reason).
        reason: String,
    },
    /// Make a key stop working at `at`, and warn the owner.
    ExpireKey {
        /// The account.
        account: String,
        /// The key.
        key_id: String,
        /// When it stops.
        at: Timestamp,
    },
    /// Issue a new key, deliver it, and retire the old ones after the grace period.
    RotateKeys {
        /// The account.
        account: String,
        /// Where the new key goes.
        deliver_to: PathBuf,
        /// When the old keys stop.
        grace_until: Timestamp,
    },
}

impl Step {
    fn account(&self) -> &str {
        match self {
            Self::DisableAccount { account, .. }
            | Self::ExpireKey { account, .. }
            | Self::RotateKeys { account, .. } => account,
        }
    }
}

/// A policy's plan: what it would do now, and whether it is enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyPlan {
    /// The policy.
    pub policy: &'static str,
    /// Whether `warden serve` runs it.
    pub enabled: bool,
    /// What it would do now.
    pub steps: Vec<Step>,
}

/// How many policies there are (the length of [`plan`]'s answer).
const POLICIES: usize = 4;

/// What every policy would do at `now` (a dry run), enabled or not.
pub async fn plan(app: &App, config: &LifecycleConfig) -> Result<Vec<PolicyPlan>, ApiError> {
    let now = app.clock.now();
    let options = Options {
        unused_after: config.disable_inactive.after,
        max_key_age: config.expire_old_keys.max_age,
        people: app.people.clone(),
        ..Options::default()
    };
    let loaded = crate::api::access::Loaded::load(app, None, &options).await?;
    let analysis = warden_access::analyze(&loaded.population(), now, &options);
    let active: Vec<&warden_access::AccountReport> = analysis
        .accounts
        .iter()
        .filter(|r| r.status == warden_core::AccountStatus::Active)
        .collect();
    let has = |r: &warden_access::AccountReport, kinds: &[FindingKind]| {
        r.findings
            .iter()
            .find(|f| kinds.contains(&f.kind))
            .map(|f| f.message.clone())
    };

    let disable_inactive = active
        .iter()
        .filter_map(|r| {
            has(
                r,
                &[FindingKind::InactiveAccount, FindingKind::NeverUsedAccount],
            )
            .map(|why| Step::DisableAccount {
                account: r.account.clone(),
                reason: format!("lifecycle policy disable_inactive: {why}"),
            })
        })
        .collect();
    let require_owner = active
        .iter()
        .filter_map(|r| {
            has(
                r,
                &[
                    FindingKind::NoOwner,
                    FindingKind::OwnerNotOnRecord,
                    FindingKind::NoPurpose,
                ],
            )
            .map(|why| Step::DisableAccount {
                account: r.account.clone(),
                reason: format!("lifecycle policy require_owner: {why}"),
            })
        })
        .collect();

    let k = &config.expire_old_keys;
    let mut expire = Vec::new();
    let mut rotate = Vec::new();
    let r = &config.rotate_keys;
    for report in &active {
        let usable: Vec<&warden_core::KeyRecord> = loaded
            .keys
            .iter()
            .filter(|key| key.account.as_str() == report.account && key.state(now).is_usable())
            .collect();
        for key in usable.iter().filter(|key| key.expires_at.is_none()) {
            let warn_from = key
                .created_at
                .saturating_add(k.max_age.saturating_sub(k.warn_before));
            if warn_from <= now {
                let at = key
                    .created_at
                    .saturating_add(k.max_age)
                    .max(now.saturating_add(k.warn_before));
                expire.push(Step::ExpireKey {
                    account: report.account.clone(),
                    key_id: key.key_id.clone(),
                    at,
                });
            }
        }
        let newest = usable.iter().map(|key| key.created_at).max();
        if let (Some(newest), Some(dir)) = (newest, &r.deliver_dir) {
            if newest.saturating_add(r.every) <= now {
                rotate.push(Step::RotateKeys {
                    account: report.account.clone(),
                    deliver_to: dir.join(format!("{}.key", report.account)),
                    grace_until: now.saturating_add(r.grace),
                });
            }
        }
    }
    Ok(vec![
        PolicyPlan {
            policy: "disable_inactive",
            enabled: config.disable_inactive.enabled,
            steps: disable_inactive,
        },
        PolicyPlan {
            policy: "expire_old_keys",
            enabled: k.enabled,
            steps: expire,
        },
        PolicyPlan {
            policy: "require_owner",
            enabled: config.require_owner.enabled,
            steps: require_owner,
        },
        PolicyPlan {
            policy: "rotate_keys",
            enabled: r.enabled,
            steps: rotate,
        },
    ])
}

/// Carries out the enabled policies' steps, each as an admin event by Warden, telling owners
/// through the alert sinks. Policies run in order, each planned after the previous one acted (an
/// account disabled as inactive is not then rotated). Returns the steps taken (a failed step is
/// logged and skipped).
pub async fn run(app: &App, config: &LifecycleConfig) -> Result<Vec<PolicyPlan>, ApiError> {
    let mut done = Vec::new();
    for index in 0..POLICIES {
        let Some(plan) = plan(app, config).await?.into_iter().nth(index) else {
            break;
        };
        if !plan.enabled {
            continue;
        }
        let mut taken = Vec::new();
        for step in plan.steps {
            match take(app, plan.policy, &step).await {
                Ok(()) => taken.push(step),
                Err(e) => {
                    tracing::error!(policy = plan.policy, account = step.account(), error = %e, "lifecycle step failed");
                }
            }
        }
        done.push(PolicyPlan {
            policy: plan.policy,
            enabled: true,
            steps: taken,
        });
    }
    Ok(done)
}

async fn take(app: &App, policy: &'static str, step: &Step) -> Result<(), ApiError> {
    let now = app.clock.now();
    let account = step.account().to_owned();
    let event = Event::new(
        now,
        Actor::system(),
        Source::default(),
        Action {
            category: Category::Admin,
            verb: format!("lifecycle.{policy}"),
            resource: Some(format!("account/{account}")),
            detail: serde_json::to_value(step).ok(),
        },
        Decision::allow(format!("lifecycle policy {policy}")),
    );
    let (receipt, result) = app
        .recorded_at(event, async {
            match step {
                Step::DisableAccount { account, reason } => {
                    app.store
                        .set_account_disabled(account, Some(reason))
                        .await?;
                    Ok(format!("{account} was disabled: {reason}"))
                }
                Step::ExpireKey {
                    account,
                    key_id,
                    at,
                } => {
                    app.store.expire_key(key_id, *at).await?;
                    Ok(format!(
                        "{account}'s key {key_id} stops working at {at}; rotate it before then \
                         (warden key rotate {account})"
                    ))
                }
                Step::RotateKeys {
                    account,
                    deliver_to,
                    grace_until,
                } => {
                    let name = warden_core::AccountName::parse(account)?;
                    let (credential, record) =
                        crate::api::keys::new_key(app, name, "warden", now, None);
                    deliver(deliver_to, &credential.expose())?;
                    app.store.rotate_keys(&record, *grace_until).await?;
                    Ok(format!(
                        "{account} has a new key {} (written to {}); its old keys stop at \
                         {grace_until}",
                        record.key_id,
                        deliver_to.display()
                    ))
                }
            }
        })
        .await?;
    let summary = result?;
    let finding = Finding {
        detector: format!("lifecycle:{policy}"),
        severity: match step {
            Step::DisableAccount { .. } => Severity::Medium,
            _ => Severity::Low,
        },
        account: Some(account.clone()),
        key_id: None,
        target: None,
        subject: account,
        summary,
        event_id: receipt.event_id,
        seq: receipt.seq,
        time: now,
        source_ip: None,
    };
    if let Err(e) = app.alerts.raise(finding).await {
        tracing::error!(error = %e, policy, "could not notify the owner");
    }
    Ok(())
}

/// Writes a new key where the deployment picks it up: a temporary file (mode 0600) renamed into
/// place, so a reader never sees half a key.
fn deliver(path: &Path, secret: &str) -> Result<(), ApiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail =
        |e: std::io::Error| ApiError::Internal(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("key.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(secret.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Runs the enabled policies on `config.schedule` until `stop` turns true.
pub async fn scheduled(app: Arc<App>, config: LifecycleConfig, mut stop: watch::Receiver<bool>) {
    if !(config.disable_inactive.enabled
        || config.expire_old_keys.enabled
        || config.require_owner.enabled
        || config.rotate_keys.enabled)
    {
        return;
    }
    let Ok(cron) = schedule(&config.schedule) else {
        return;
    };
    loop {
        let Some(next) = cron.upcoming(chrono::Utc).next() else {
            return;
        };
        let wait = (next - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        match run(&app, &config).await {
            Ok(done) => {
                let steps: usize = done.iter().map(|p| p.steps.len()).sum();
                tracing::info!(steps, "lifecycle policies ran");
            }
            Err(e) => tracing::error!(error = %e, "lifecycle policies could not run"),
        }
    }
}
