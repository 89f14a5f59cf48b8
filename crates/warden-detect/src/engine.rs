//! The engine: fed every ledger entry in sequence order, it updates the baselines and runs the
//! detectors, returning findings. It reads each entry's own time, never the clock, so rebuilding
//! state on start is just replaying the ledger through the same two methods.
//!
//! Which events teach what:
//!
//! - Admin and alert events, and events by humans or Warden itself, are not service-account
//!   behaviour: they feed no baseline (custom rules still see admin events).
//! - A failed authentication feeds no baseline either (nobody got in); it goes to
//!   `dead_credential` and `auth_failure_burst`.
//! - Every other event with an account (allowed or denied) marks the account active: first and
//!   last seen, hour of day, source network and rate.
//! - Only allowed actions teach targets, action keys and result sizes: a denied action is not
//!   something the account normally does, and learning it would hide the next attempt.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use rustc_hash::FxHashMap;
use serde::Serialize;
use warden_core::event::{ActorKind, Category, Outcome, OutcomeRecord};
use warden_core::{Event, Timestamp};

use crate::baseline::{AccountBaseline, BaselineSummary, Large, Learned};
use crate::catalogue::Detector;
use crate::config::{human, micros, ConfigError, DetectConfig, Settings};
use crate::finding::{Finding, Origin};
use crate::pending::{Awaiting, Pending};
use crate::rules::RuleCounters;
use crate::shape::{self, format_network, network};
use crate::window::Burst;

/// Distinct action key names kept for summaries (shared by all accounts). Beyond it, a key is
/// shown by its hash (`#…`).
pub const MAX_ACTION_NAMES: usize = 100_000;
/// Key ids and addresses tracked for `auth_failure_burst`. When full, entries idle for a window
/// are dropped; if none are, new keys go untracked for one window.
pub const MAX_AUTH_FAILURE_KEYS: usize = 100_000;
/// Past active windows an account needs before `rate_spike` can fire.
pub const MIN_RATE_WINDOWS: u32 = 5;
/// Action keys shown in [`BaselineSummary::action_sample`].
const ACTION_SAMPLE: usize = 20;
/// `detail.failure` codes that mean the credential should no longer exist.
const DEAD_FAILURES: [&str; 5] = [
    "key_revoked",
    "key_expired",
    "account_disabled",
    "account_expired",
    "token_refused",
];
/// A failure that is Warden's, not the client's: not counted as a failed authentication.
const NOT_CLIENT_FAILURE: &str = "store_unavailable";
const HOUR_US: i64 = 3_600_000_000;

/// Sizes of the engine's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Accounts with a baseline.
    pub accounts: usize,
    /// Approximate memory of all state, in bytes.
    pub approx_bytes: usize,
    /// Allowed events waiting for their outcome.
    pub pending_outcomes: usize,
}

/// Names stored once and referred to by a small id. Looked up by a randomly keyed 64-bit hash of
/// the name, so the hot path never touches the stored string; two names colliding (about one
/// chance in 10⁹ with 100,000 names) would share a baseline.
#[derive(Debug, Default)]
struct Interner {
    hasher: RandomState,
    ids: FxHashMap<u64, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `name`, and whether it was new.
    fn intern(&mut self, name: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(name);
        if let Some(&id) = self.ids.get(&hash) {
            return (id, false);
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(hash, id);
        self.names.push(name.into());
        (id, true)
    }

    /// The id of `name`, if interned.
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(&self.hasher.hash_one(name)).copied()
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn approx_bytes(&self) -> usize {
        self.ids.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.names.capacity() * size_of::<Box<str>>()
            + self.names.iter().map(|n| n.len()).sum::<usize>()
    }
}

/// The verb of the event that records the end of a database session.
const SESSION_CLOSE: &str = "session.close";

/// How an event is treated.
enum Kind<'a> {
    /// Not service-account behaviour.
    Ignored,
    /// A failed authentication.
    AuthFailure,
    /// Behaviour of this account.
    Account(&'a str),
}

fn kind(event: &Event) -> Kind<'_> {
    let category = event.action.category;
    // A session's close is recorded when the session ends, however it ends (the client left, an
    // idle timeout, an admin's kill, Warden stopping): not something the account did.
    if event.actor.kind == ActorKind::System
        || matches!(category, Category::Admin | Category::Alert)
        || event.action.verb == SESSION_CLOSE
    {
        return Kind::Ignored;
    }
    if category == Category::Auth && !event.decision.allowed {
        return Kind::AuthFailure;
    }
    match (&event.actor.kind, &event.actor.account) {
        (ActorKind::Human, _) | (_, None) => Kind::Ignored,
        (_, Some(account)) => Kind::Account(account),
    }
}

/// Adds a finding of `detector` unless it is disabled for the origin's account.
fn emit(
    settings: &Settings,
    out: &mut Vec<Finding>,
    origin: &Origin,
    detector: Detector,
    subject: String,
    summary: String,
) {
    if settings.enabled(detector.name(), origin.account) {
        out.push(origin.finding(detector.name(), detector.severity(), subject, summary));
    }
}

/// Per-account baselines and the detectors over them.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    /// Account names; an account's id indexes `accounts`.
    account_names: Interner,
    accounts: Vec<AccountBaseline>,
    targets: Interner,
    action_names: FxHashMap<u64, Box<str>>,
    /// Hashes action keys; randomly keyed so that keys cannot be crafted to collide.
    key_hasher: RandomState,
    /// Reused for building action keys.
    key_buf: String,
    pending: Pending,
    auth_failures: HashMap<Box<str>, Burst>,
    /// While full of live entries, new keys are not tracked until this time.
    auth_failures_full_until: i64,
    /// One per rule, in rule order.
    rule_counters: Vec<RuleCounters>,
}

impl Engine {
    /// An engine with empty baselines, after validating `config`.
    pub fn new(config: DetectConfig) -> Result<Engine, ConfigError> {
        let settings = Settings::compile(&config)?;
        let rule_counters = settings
            .rules
            .iter()
            .map(|_| RuleCounters::default())
            .collect();
        Ok(Engine {
            pending: Pending::new(config.max_pending_outcomes),
            settings,
            account_names: Interner::default(),
            accounts: Vec::new(),
            targets: Interner::default(),
            action_names: FxHashMap::default(),
            key_hasher: RandomState::new(),
            key_buf: String::with_capacity(256),
            auth_failures: HashMap::new(),
            auth_failures_full_until: i64::MIN,
            rule_counters,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectConfig {
        &self.settings.config
    }

    /// Learns from and runs the detectors over one event; `seq` is its ledger position.
    pub fn observe_event(&mut self, event: &Event, seq: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        let origin = Origin {
            account: event.actor.account.as_deref(),
            key_id: event.actor.key_id.as_deref(),
            target: event.target.as_ref().map(|t| t.name.as_str()),
            event_id: event.id,
            seq,
            time: event.time,
            source_ip: event.source.ip.as_deref(),
        };
        let class = shape::sql_class(event);
        self.apply_rules(event, class, &origin, &mut out);
        match kind(event) {
            Kind::Ignored => {}
            Kind::AuthFailure => self.auth_failure(event, &origin, &mut out),
            Kind::Account(name) => {
                if let Some(awaiting) = self.account_event(event, name, class, &origin, &mut out) {
                    match &event.outcome {
                        Some(outcome) => {
                            if let Some(large) = self.judge(awaiting, outcome) {
                                self.emit_large(awaiting.action, large, &origin, &mut out);
                            }
                        }
                        None => self.pending.insert(event.id, awaiting),
                    }
                }
            }
        }
        out
    }

    /// Learns from and judges the outcome of an earlier event; `seq` is this entry's position.
    /// Outcomes of events the engine did not keep waiting (denied, unknown, or dropped beyond
    /// `max_pending_outcomes`) are ignored.
    pub fn observe_outcome(&mut self, record: &OutcomeRecord, seq: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(awaiting) = self.pending.take(&record.event_id) else {
            return out;
        };
        let Some(large) = self.judge(awaiting, &record.outcome) else {
            return out;
        };
        let origin = Origin {
            account: Some(self.account_names.name(awaiting.account)),
            key_id: None,
            target: awaiting.target.map(|t| self.targets.name(t)),
            event_id: record.event_id,
            seq,
            time: record.time,
            source_ip: None,
        };
        self.emit_large(awaiting.action, large, &origin, &mut out);
        out
    }

    /// Sizes of the engine's state. Walks every baseline: call it for metrics, not per event.
    pub fn stats(&self) -> EngineStats {
        let baselines: usize = self
            .accounts
            .iter()
            .map(AccountBaseline::approx_bytes)
            .sum();
        let action_names = self.action_names.capacity() * (size_of::<(u64, Box<str>)>() + 1)
            + self.action_names.values().map(|n| n.len()).sum::<usize>();
        let auth = self.auth_failures.capacity() * (size_of::<(Box<str>, Burst)>() + 1)
            + self
                .auth_failures
                .iter()
                .map(|(k, b)| k.len() + b.approx_bytes())
                .sum::<usize>();
        let rules: usize = self
            .rule_counters
            .iter()
            .map(RuleCounters::approx_bytes)
            .sum();
        EngineStats {
            accounts: self.accounts.len(),
            approx_bytes: size_of::<Self>()
                + self.accounts.capacity() * size_of::<AccountBaseline>()
                - self.accounts.len() * size_of::<AccountBaseline>()
                + baselines
                + self.account_names.approx_bytes()
                + self.targets.approx_bytes()
                + action_names
                + self.pending.approx_bytes()
                + auth
                + rules
                + self.key_buf.capacity(),
            pending_outcomes: self.pending.len(),
        }
    }

    /// What has been learned about `account`, if it was ever seen.
    pub fn baseline(&self, account: &str) -> Option<BaselineSummary> {
        let id = self.account_names.get(account)?;
        let b = &self.accounts[id as usize];
        let c = &self.settings.config;
        let mut action_sample: Vec<String> = b
            .actions
            .sample(ACTION_SAMPLE)
            .into_iter()
            .map(|k| self.action_name(k))
            .collect();
        action_sample.sort();
        let (rate_per_window, rate_windows) = b.rate.average();
        Some(BaselineSummary {
            account: account.to_owned(),
            first_seen: Timestamp::from_micros(b.first_seen),
            last_seen: Timestamp::from_micros(b.last_seen),
            learning_until: Timestamp::from_micros(
                b.first_seen.saturating_add(self.settings.learning_us),
            ),
            targets: b
                .targets
                .iter()
                .map(|&t| self.targets.name(t).to_owned())
                .collect(),
            actions: b.actions.len(),
            action_sample,
            networks: b
                .networks
                .iter()
                .map(|&n| format_network(n, c.network_prefix_v4, c.network_prefix_v6))
                .collect(),
            active_hours: b.active_hours(),
            rate_per_window,
            rate_windows,
            saturated: b.saturated_sets(),
            approx_bytes: b.approx_bytes(),
        })
    }

    fn action_name(&self, key: u64) -> String {
        match self.action_names.get(&key) {
            Some(name) => name.to_string(),
            None => format!("#{key:016x}"),
        }
    }

    fn apply_rules(
        &mut self,
        event: &Event,
        class: Option<&str>,
        origin: &Origin,
        out: &mut Vec<Finding>,
    ) {
        let time = event.time.as_micros();
        let settings = &self.settings;
        for (rule, counters) in settings.rules.iter().zip(&mut self.rule_counters) {
            if rule.matches(event, class)
                && counters.hit(rule, origin.account, time)
                && settings.enabled(&rule.detector, origin.account)
            {
                let summary = rule.summary(origin.who());
                out.push(origin.finding(&rule.detector, rule.severity, rule.name.clone(), summary));
            }
        }
    }

    fn auth_failure(&mut self, event: &Event, origin: &Origin, out: &mut Vec<Finding>) {
        let failure = event
            .action
            .detail
            .as_ref()
            .and_then(|d| d.get("failure"))
            .and_then(|f| f.as_str())
            .unwrap_or("unknown");
        let from = origin.source_ip.unwrap_or("an unknown address");
        if DEAD_FAILURES.contains(&failure) {
            let subject = origin.key_id.or(origin.account).unwrap_or("unknown");
            emit(
                &self.settings,
                out,
                origin,
                Detector::DeadCredential,
                subject.to_owned(),
                format!(
                    "{} presented a dead credential ({failure}) from {from}",
                    origin.who()
                ),
            );
        }
        if failure == NOT_CLIENT_FAILURE {
            return;
        }
        let (what, subject) = match (origin.key_id, origin.source_ip) {
            (Some(key), _) => ("key", key),
            (None, Some(ip)) => ("address", ip),
            (None, None) => return,
        };
        let time = event.time.as_micros();
        let burst = &self.settings.config.auth_failure_burst;
        let (count, window_us) = (burst.count, micros(burst.window));
        let key = format!("{what} {subject}");
        if !self.auth_failures.contains_key(key.as_str())
            && !self.room_for_auth_key(time, window_us)
        {
            return;
        }
        let counter = self.auth_failures.entry(key.into()).or_default();
        if counter.hit(time, count as usize, window_us) {
            emit(
                &self.settings,
                out,
                origin,
                Detector::AuthFailureBurst,
                subject.to_owned(),
                format!(
                    "{count} failed authentications with {what} {subject} within {}, latest from {from}",
                    human(window_us)
                ),
            );
        }
    }

    /// Whether a new key can be tracked for `auth_failure_burst`, making room if needed.
    fn room_for_auth_key(&mut self, time: i64, window_us: i64) -> bool {
        if self.auth_failures.len() < MAX_AUTH_FAILURE_KEYS {
            return true;
        }
        if time < self.auth_failures_full_until {
            return false;
        }
        let horizon = time.saturating_sub(window_us);
        self.auth_failures
            .retain(|_, b| b.last().is_some_and(|last| last > horizon));
        if self.auth_failures.len() < MAX_AUTH_FAILURE_KEYS {
            return true;
        }
        self.auth_failures_full_until = time.saturating_add(window_us);
        false
    }

    /// Learns and judges one event of account `name`. Returns what its outcome must be judged
    /// against, for allowed actions.
    fn account_event(
        &mut self,
        event: &Event,
        name: &str,
        class: Option<&str>,
        origin: &Origin,
        out: &mut Vec<Finding>,
    ) -> Option<Awaiting> {
        let Engine {
            settings,
            account_names,
            accounts,
            targets,
            action_names,
            key_hasher,
            key_buf,
            ..
        } = self;
        let c = &settings.config;
        let time = event.time.as_micros();
        let (id, new_account) = account_names.intern(name);
        if new_account {
            accounts.push(AccountBaseline::new(time));
        }
        let account = &mut accounts[id as usize];

        let silence = time.saturating_sub(account.last_seen);
        if !new_account && silence >= settings.dormant_us {
            emit(
                settings,
                out,
                origin,
                Detector::DormantWakeup,
                "dormant".to_owned(),
                format!(
                    "{name} is active again after {} of silence (last seen {})",
                    human(silence),
                    Timestamp::from_micros(account.last_seen)
                ),
            );
        }
        account.last_seen = account.last_seen.max(time);
        let learning = time < account.first_seen.saturating_add(settings.learning_us);

        let hour = time.div_euclid(HOUR_US).rem_euclid(24) as u32;
        if account.learn_hour(hour) && !learning {
            emit(
                settings,
                out,
                origin,
                Detector::UnusualHour,
                format!("{hour:02}"),
                format!("{name} is active at {hour:02}:00 UTC, an hour it was never active in"),
            );
        }

        let net = origin
            .source_ip
            .and_then(|ip| network(ip, c.network_prefix_v4, c.network_prefix_v6));
        if let Some(net) = net {
            if account.learn_network(net, c.max_networks) == Learned::New && !learning {
                let net = format_network(net, c.network_prefix_v4, c.network_prefix_v6);
                let summary = format!("{name} called from a new network {net}");
                emit(
                    settings,
                    out,
                    origin,
                    Detector::NewSourceNetwork,
                    net,
                    summary,
                );
            }
        }

        let spike = account.rate.hit(
            time,
            settings.rate_window_us,
            (c.rate.factor, c.rate.min_events),
            MIN_RATE_WINDOWS,
        );
        if let (Some((count, average)), false) = (spike, learning) {
            emit(
                settings,
                out,
                origin,
                Detector::RateSpike,
                "rate".to_owned(),
                format!(
                    "{name} made {count} calls in one {} window, {:.0}× its average of {average:.1}",
                    human(settings.rate_window_us),
                    f64::from(count) / average.max(1.0),
                ),
            );
        }

        let category = event.action.category;
        let acts = matches!(category, Category::Http | Category::Sql);
        if acts && !event.decision.allowed {
            let burst = &c.denied_burst;
            let window_us = micros(burst.window);
            if account.denied.hit(time, burst.count as usize, window_us) {
                emit(
                    settings,
                    out,
                    origin,
                    Detector::DeniedBurst,
                    "denied".to_owned(),
                    format!(
                        "{name} was denied {} actions within {}",
                        burst.count,
                        human(window_us)
                    ),
                );
            }
        }
        if category == Category::Sql {
            sensitive(settings, event, name, class, origin, key_buf, out);
        }
        if !event.decision.allowed {
            return None;
        }

        let target = origin.target.map(|t| targets.intern(t).0);
        if let Some(target_id) = target {
            if account.learn_target(target_id, c.max_targets) == Learned::New && !learning {
                let target = targets.name(target_id);
                emit(
                    settings,
                    out,
                    origin,
                    Detector::NewTarget,
                    target.to_owned(),
                    format!("{name} used a new target {target}"),
                );
            }
        }

        let mut first_action = None;
        shape::for_each_action_key(event, class, key_buf, |key| {
            let hash = key_hasher.hash_one(key);
            first_action.get_or_insert(hash);
            if account.learn_action(hash, c.max_actions) != Learned::New {
                return;
            }
            if action_names.len() < MAX_ACTION_NAMES {
                action_names.entry(hash).or_insert_with(|| key.into());
            }
            if !learning {
                emit(
                    settings,
                    out,
                    origin,
                    Detector::NewAction,
                    key.to_owned(),
                    format!("{name} performed a new action {key}"),
                );
            }
        });
        first_action.map(|action| Awaiting {
            account: id,
            action,
            target,
        })
    }

    /// Adds an outcome to the baseline of the action it completes; the large measure, if any.
    fn judge(&mut self, awaiting: Awaiting, outcome: &Outcome) -> Option<Large> {
        self.accounts[awaiting.account as usize].judge_result(
            awaiting.action,
            outcome,
            &self.settings.config.large_result,
        )
    }

    fn emit_large(
        &self,
        action: u64,
        Large { value, mean, unit }: Large,
        origin: &Origin,
        out: &mut Vec<Finding>,
    ) {
        let key = self.action_name(action);
        let summary = format!(
            "{} received {value} {unit} from {key}, {:.0}× its usual {mean:.0}",
            origin.who(),
            value as f64 / mean.max(1.0)
        );
        emit(
            &self.settings,
            out,
            origin,
            Detector::LargeResult,
            key,
            summary,
        );
    }
}

/// `sensitive_action` for one SQL event: `ddl` and `admin` statements, and sensitive tables.
/// `buf` is scratch space for qualifying table names.
fn sensitive(
    settings: &Settings,
    event: &Event,
    name: &str,
    class: Option<&str>,
    origin: &Origin,
    buf: &mut String,
    out: &mut Vec<Finding>,
) {
    let did = if event.decision.allowed {
        "ran"
    } else {
        "tried (denied)"
    };
    let verb = &event.action.verb;
    if let Some(class @ ("ddl" | "admin")) = class {
        let what = if class == "ddl" {
            "a schema change"
        } else {
            "a privileged statement"
        };
        emit(
            settings,
            out,
            origin,
            Detector::SensitiveAction,
            format!("{class} {verb}"),
            format!("{name} {did} {what}: {verb}"),
        );
    }
    if settings.sensitive.is_empty() {
        return;
    }
    for table in shape::sql_tables(event) {
        let qualified = if table.contains('.') {
            table
        } else {
            buf.clear();
            buf.push_str("public.");
            buf.push_str(table);
            buf.as_str()
        };
        if settings.sensitive.is_match(qualified) {
            emit(
                settings,
                out,
                origin,
                Detector::SensitiveAction,
                qualified.to_owned(),
                format!("{name} {did} {verb} on sensitive table {qualified}"),
            );
        }
    }
}
