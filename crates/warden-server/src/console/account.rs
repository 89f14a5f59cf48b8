//! One service account (`/console/accounts/{name}`): who owns it and why, its status, use and
//! risk; its keys; its grants with their use in the analysis window; a 30-day activity chart;
//! its latest events; the accountability findings and the least-privilege recommendation as a
//! diff. Each table downloads as CSV with `?format=csv&table=keys|grants|events`.
//!
//! Every action goes through the function the REST API's handler uses (`api::accounts::disable`
//! and `enable`, `api::keys::issue`, `rotate` and `revoke`, `api::access::apply`), so it lands
//! on the ledger as the same admin event, with the signed-in admin as actor. The destructive ones
//! (disable, revoke a key, rotate, apply the recommendation) take two steps without script: the
//! button is a link to a confirmation page (`confirm?action=…`) that says what will happen and
//! holds the POST form; the POST acts and redirects back with a `?done=` notice. A new key's
//! secret is shown once: the POST that made it hands it to the session and redirects to
//! `…/new-key`, which takes it from there, so reloading that page never issues another key and
//! the secret is never stored.

use std::collections::VecDeque;
use std::time::Duration;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use warden_access::{AccountReport, Recommendation};
use warden_core::event::Event;
use warden_core::{KeyRecord, KeyState, Timestamp};
use warden_store::EventQuery;

use super::activity::{self, RowView};
use super::{
    accepted, csv_table, forbidden, html, see_other, when, Console, Failure, Layout, PostForm,
    SignedIn,
};
use crate::api::access::{self, Loaded};
use crate::api::keys::{IssuedKey, Rotation, DEFAULT_GRACE};
use crate::api::{accounts, keys, ApiError, App};

/// Days in the activity chart, today included.
const CHART_DAYS: u32 = 30;
/// Events listed under "Recent events".
const RECENT: usize = 20;
/// Ledger positions in the first window searched for recent events (each next one is 4 times
/// larger, further back).
const FIRST_WINDOW: u64 = 256;
/// Events read per query while searching a window.
const EVENT_PAGE: u32 = 500;
const DAY: Duration = Duration::from_secs(86_400);

/// The page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// The outcome of the last action, shown after the redirect.
    done: Option<String>,
    /// The grant set version an applied recommendation kept.
    version: Option<u64>,
    /// `csv` for a download of one table instead of the page.
    format: Option<String>,
    /// Which table: `keys`, `grants` or `events`.
    table: Option<String>,
}

/// The confirmation page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmQuery {
    /// `disable`, `revoke-key`, `rotate` or `apply-recommendation`.
    action: Option<String>,
    /// The key, for `revoke-key`.
    key: Option<String>,
}

/// The fields of every form on these pages (each form sends the ones it has).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The session's CSRF token.
    csrf: Option<String>,
    /// Why the account is disabled.
    reason: Option<String>,
    /// How long rotated-out keys keep working.
    grace: Option<String>,
    /// The new key's lifetime.
    expires_in: Option<String>,
}

impl PostForm for ActionForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A form value: trimmed, and `None` when empty.
fn given(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The page of account `name`.
fn page_of(name: &str) -> String {
    format!("/console/accounts/{name}")
}

/// Back to the account's page with a notice.
fn done(name: &str, notice: &str) -> Response {
    see_other(&format!("{}?done={notice}", page_of(name)))
}

/// Everything the page shows about one account, from one load of the analysis' inputs.
struct Detail {
    loaded: Loaded,
    report: AccountReport,
    recommendation: Recommendation,
}

async fn load(app: &App, name: &str) -> Result<Detail, Failure> {
    let options = access::default_options(app);
    let (recommendation, loaded) = access::recommend(app, name, &options).await?;
    let report = warden_access::analyze(&loaded.population(), app.clock.now(), &options)
        .accounts
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("account {name}")))?;
    Ok(Detail {
        loaded,
        report,
        recommendation,
    })
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    layout: Layout,
    notice: Option<String>,
    name: String,
    base: String,
    owner: String,
    purpose: String,
    labels: Vec<(String, String)>,
    status: &'static str,
    disabled_reason: Option<String>,
    created: String,
    created_by: String,
    expires: Option<String>,
    last_used: String,
    risk: u32,
    keys: Vec<KeyRow>,
    grants: Vec<GrantRow>,
    window_days: u64,
    chart: Chart,
    /// The newest events, as every events table shows them.
    rows: Vec<RowView>,
    /// What the events table says when there are none.
    empty: String,
    activity_link: String,
    findings: Vec<FindingRow>,
    diff: Vec<DiffLine>,
    can_apply: bool,
}

struct KeyRow {
    key_id: String,
    state: &'static str,
    /// The state in words: `rotated out, works until …` for a key in its grace period.
    state_text: String,
    created_by: String,
    created: Timestamp,
    expires: Option<Timestamp>,
    last_used: Option<Timestamp>,
    revoked: Option<Timestamp>,
    superseded_by: Option<String>,
    usable: bool,
}

impl KeyRow {
    fn new(k: &KeyRecord, now: Timestamp) -> Self {
        let state = k.state(now);
        let state_text = match (state, k.expires_at) {
            (KeyState::Rotating, Some(until)) => {
                format!("rotated out, works until {}", when(until))
            }
            (KeyState::Rotating, None) => "rotated out".to_owned(),
            _ => state.as_str().to_owned(),
        };
        Self {
            key_id: k.key_id.clone(),
            state: state.as_str(),
            state_text,
            created_by: k.created_by.clone(),
            created: k.created_at,
            expires: k.expires_at,
            last_used: k.last_used_at,
            revoked: k.revoked_at,
            superseded_by: k.superseded_by.clone(),
            usable: state.is_usable(),
        }
    }
}

impl KeyRow {
    fn created_text(&self) -> String {
        when(self.created)
    }

    fn expires_text(&self) -> String {
        shown(self.expires, "never")
    }

    fn last_used_text(&self) -> String {
        shown(self.last_used, "never")
    }
}

/// A time as the page shows it, or `none`.
fn shown(t: Option<Timestamp>, none: &str) -> String {
    t.map_or_else(|| none.to_owned(), when)
}

struct GrantRow {
    grant_id: String,
    target: String,
    rule: String,
    created: Timestamp,
    expires: Option<Timestamp>,
    expired: bool,
    used: bool,
    uses: u64,
    last_use: Option<Timestamp>,
}

impl GrantRow {
    fn expires_text(&self) -> String {
        match self.expires {
            Some(t) if self.expired => format!("expired {}", when(t)),
            t => shown(t, "never"),
        }
    }

    fn last_use_text(&self) -> String {
        shown(self.last_use, "never")
    }
}

struct FindingRow {
    severity: &'static str,
    kind: String,
    subject: String,
    message: String,
    controls: String,
}

/// One line of the recommendation's diff, with its kind (`head`, `add`, `remove`, `keep`) for
/// styling.
struct DiffLine {
    kind: &'static str,
    text: String,
}

fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|l| DiffLine {
            kind: if l.starts_with("---") || l.starts_with("+++") {
                "head"
            } else if l.starts_with('+') {
                "add"
            } else if l.starts_with('-') {
                "remove"
            } else {
                "keep"
            },
            text: l.to_owned(),
        })
        .collect()
}

/// An inline SVG bar chart: one bar per day.
struct Chart {
    bars: Vec<Bar>,
    total: u64,
    peak: u64,
    label: String,
}

struct Bar {
    x: u32,
    y: u32,
    height: u32,
    day: String,
    count: u64,
    tick: Option<String>,
}

/// Chart geometry, in SVG units.
const BAR_STEP: u32 = 16;
const CHART_HEIGHT: u32 = 100;

/// `GET /console/accounts/{name}`.
pub async fn page(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();
    let Detail {
        loaded,
        report,
        recommendation,
    } = load(app, &name).await?;
    let Some(account) = loaded.accounts.first() else {
        return Err(ApiError::NotFound(format!("account {name}")).into());
    };
    let keys: Vec<KeyRow> = loaded.keys.iter().map(|k| KeyRow::new(k, now)).collect();
    let grants: Vec<GrantRow> = report
        .grants
        .iter()
        .map(|g| GrantRow {
            grant_id: g.grant_id.clone(),
            target: g.target.clone(),
            rule: g.rule.clone(),
            created: g.created_at,
            expires: g.expires_at,
            expired: g.expires_at.is_some_and(|e| e <= now),
            used: g.used,
            uses: g.uses,
            last_use: g.last_use,
        })
        .collect();

    if query.format.as_deref() == Some("csv") {
        let name = account.name.as_str();
        return match query.table.as_deref() {
            Some("keys") => Ok(keys_csv(name, &keys)),
            Some("grants") => Ok(grants_csv(name, &grants)),
            Some("events") => {
                let events = recent_events(app, name).await?;
                let rows: Vec<RowView> = events.iter().map(RowView::from).collect();
                Ok(activity::csv(&format!("warden-{name}-events.csv"), &rows))
            }
            _ => Err(ApiError::Validation {
                field: "table".into(),
                message: "must be keys, grants or events".into(),
            }
            .into()),
        };
    }

    let events = recent_events(app, &name).await?;
    let chart = chart(&daily(app, &name, now).await?);
    let notice = match query.done.as_deref() {
        Some("created") => Some("Account created. Issue it a key below.".to_owned()),
        Some("disabled") => {
            Some("Account disabled: its keys and tokens no longer work.".to_owned())
        }
        Some("enabled") => Some("Account enabled.".to_owned()),
        Some("revoked") => Some("Key revoked: it no longer works.".to_owned()),
        Some("applied") => Some(match query.version {
            Some(v) => {
                format!("Recommendation applied. The grants as they were are kept as version {v}.")
            }
            None => "Recommendation applied.".to_owned(),
        }),
        Some("nothing-to-apply") => {
            Some("Nothing was applied: the grants already match what the account uses.".to_owned())
        }
        Some("key-shown") => Some(
            "That key was shown once already and is not kept: if it was not copied, revoke it \
             and issue another."
                .to_owned(),
        ),
        _ => None,
    };
    let activity_link = format!(
        "/console/activity?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("account", &name)
            .finish()
    );
    let page = AccountPage {
        layout: who.layout("accounts"),
        notice,
        base: page_of(account.name.as_str()),
        name: account.name.to_string(),
        owner: account.owner.to_string(),
        purpose: account.purpose.clone(),
        labels: account
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        status: account.status(now).as_str(),
        disabled_reason: account.disabled_reason.clone(),
        created: when(account.created_at),
        created_by: account.created_by.clone(),
        expires: account.expires_at.map(when),
        last_used: shown(report.last_used_at, "never"),
        risk: report.risk,
        keys,
        grants,
        window_days: recommendation.window.days,
        chart,
        rows: events.iter().map(RowView::from).collect(),
        empty: "No events yet.".to_owned(),
        activity_link,
        findings: report
            .findings
            .iter()
            .map(|f| FindingRow {
                severity: f.severity.as_str(),
                kind: serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                subject: f.subject.clone(),
                message: f.message.clone(),
                controls: f.controls.join(", "),
            })
            .collect(),
        diff: diff_lines(&recommendation.diff()),
        can_apply: !recommendation.is_empty(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// Allowed actions per day over the last [`CHART_DAYS`] days, oldest first, from the usage
/// rollup (one query; days without use are zero).
async fn daily(app: &App, account: &str, now: Timestamp) -> Result<Vec<(Timestamp, u64)>, Failure> {
    let day_micros = 86_400_000_000;
    let today = Timestamp::from_micros(now.as_micros() - now.as_micros().rem_euclid(day_micros));
    let first = today.saturating_sub(DAY * (CHART_DAYS - 1));
    let used: std::collections::HashMap<Timestamp, u64> = app
        .store
        .daily_usage(first, Some(account))
        .await?
        .into_iter()
        .collect();
    Ok((0..CHART_DAYS)
        .map(|i| {
            let day = first.saturating_add(DAY * i);
            (day, used.get(&day).copied().unwrap_or(0))
        })
        .collect())
}

fn chart(days: &[(Timestamp, u64)]) -> Chart {
    let peak = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let total = days.iter().map(|(_, n)| *n).sum();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (start, count))| {
            // Scaled to the busiest day; at least one unit for a day with any use, so it shows.
            let height = (count * u64::from(CHART_HEIGHT))
                .checked_div(peak)
                .map_or(0, |h| {
                    u32::try_from(h)
                        .unwrap_or(CHART_HEIGHT)
                        .max(u32::from(*count > 0))
                });
            let date = when(*start);
            let day = date.get(..10).unwrap_or(&date).to_owned();
            let i = u32::try_from(i).unwrap_or(0);
            Bar {
                x: i * BAR_STEP + 2,
                y: CHART_HEIGHT - height,
                height,
                tick: (i % 7 == 0).then(|| day.get(5..).unwrap_or(&day).to_owned()),
                day,
                count: *count,
            }
        })
        .collect();
    let busiest = days
        .iter()
        .filter(|(_, n)| *n == peak && peak > 0)
        .map(|(d, _)| {
            let date = when(*d);
            format!(", on {}", date.get(..10).unwrap_or(&date))
        })
        .next_back()
        .unwrap_or_default();
    let label = format!(
        "Allowed requests per day over the last {CHART_DAYS} days: {total} in all, at most {peak} in one day{busiest}."
    );
    Chart {
        bars,
        total,
        peak,
        label,
    }
}

/// The account's newest [`RECENT`] events, newest first.
///
/// The store returns events oldest first within a range of ledger positions; searching
/// backwards from the head in windows that grow fourfold finds a busy account's latest events in
/// the first window and a quiet account's in a few more, never scanning the whole ledger.
async fn recent_events(app: &App, account: &str) -> Result<Vec<Event>, Failure> {
    let Some(last) = app.store.last_seq().await? else {
        return Ok(Vec::new());
    };
    let mut newest_first = Vec::new();
    let mut high = last.saturating_add(1);
    let mut size = FIRST_WINDOW;
    while high > 0 && newest_first.len() < RECENT {
        let low = high.saturating_sub(size);
        // The window's newest events; it may hold more than a page of them.
        let mut window: VecDeque<Event> = VecDeque::new();
        let mut after = low.checked_sub(1);
        loop {
            let page = app
                .store
                .events(&EventQuery {
                    account: Some(account.to_owned()),
                    after_seq: after,
                    before_seq: Some(high),
                    limit: EVENT_PAGE,
                    ..EventQuery::default()
                })
                .await?;
            let full = page.len() >= EVENT_PAGE as usize;
            after = page.last().and_then(|e| e.seq);
            for e in page {
                window.push_back(e);
                if window.len() > RECENT {
                    window.pop_front();
                }
            }
            if !full || after.is_none() {
                break;
            }
        }
        newest_first.extend(window.into_iter().rev());
        high = low;
        size = size.saturating_mul(4);
    }
    newest_first.truncate(RECENT);
    Ok(newest_first)
}

fn time_cell(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

fn keys_csv(account: &str, rows: &[KeyRow]) -> Response {
    let lines = rows.iter().map(|k| {
        [
            k.key_id.clone(),
            k.state.to_owned(),
            k.created_by.clone(),
            k.created.to_string(),
            time_cell(k.expires),
            time_cell(k.last_used),
            time_cell(k.revoked),
            k.superseded_by.clone().unwrap_or_default(),
        ]
    });
    let header =
        "key_id,state,created_by,created_at,expires_at,last_used_at,revoked_at,superseded_by";
    csv_table(&format!("warden-{account}-keys.csv"), header, lines)
}

fn grants_csv(account: &str, rows: &[GrantRow]) -> Response {
    let lines = rows.iter().map(|g| {
        [
            g.grant_id.clone(),
            g.target.clone(),
            g.rule.clone(),
            g.created.to_string(),
            time_cell(g.expires),
            (if g.used { "used" } else { "unused" }).to_owned(),
            g.uses.to_string(),
            time_cell(g.last_use),
        ]
    });
    let header = "grant_id,target,rule,created_at,expires_at,used,uses,last_use";
    csv_table(&format!("warden-{account}-grants.csv"), header, lines)
}

/// An action that is confirmed on its own page first, or (for issuing a key) whose form is
/// shown again there when what was entered is invalid.
enum Act {
    Disable,
    RevokeKey(String),
    Rotate,
    ApplyRecommendation,
    IssueKey,
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    name: String,
    base: String,
    title: String,
    consequences: Vec<String>,
    diff: Vec<DiffLine>,
    post_to: String,
    fields: Vec<Field>,
    error: Option<String>,
    button: &'static str,
    can_confirm: bool,
}

/// A text field of a confirmation form.
struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
    hint: &'static str,
    required: bool,
    invalid: bool,
}

/// What was entered, kept when a form is shown again, and what was wrong with it.
#[derive(Default)]
struct Entered {
    reason: String,
    grace: String,
    expires_in: String,
    error: Option<(String, String)>,
}

impl Entered {
    fn from_form(form: &ActionForm) -> Self {
        Self {
            reason: form.reason.clone().unwrap_or_default(),
            grace: form.grace.clone().unwrap_or_default(),
            expires_in: form.expires_in.clone().unwrap_or_default(),
            error: None,
        }
    }

    fn field(
        &self,
        name: &'static str,
        label: &'static str,
        value: &str,
        hint: &'static str,
        required: bool,
    ) -> Field {
        Field {
            name,
            label,
            value: value.to_owned(),
            hint,
            required,
            invalid: self.error.as_ref().is_some_and(|(f, _)| f == name),
        }
    }
}

/// The confirmation (or form) page for `act` on account `name`.
async fn confirmation(
    console: &Console,
    who: &SignedIn,
    name: &str,
    act: Act,
    entered: Entered,
) -> Result<ConfirmPage, Failure> {
    let app = &console.app;
    let now = app.clock.now();
    let Detail {
        loaded,
        recommendation,
        ..
    } = load(app, name).await?;
    let Some(account) = loaded.accounts.first() else {
        return Err(ApiError::NotFound(format!("account {name}")).into());
    };
    let name = account.name.to_string();
    let base = page_of(&name);
    let lifetime = "How long the new key works, like 90d or 12h; leave empty for a key that works until revoked.";
    let mut page = ConfirmPage {
        layout: who.layout("accounts"),
        title: String::new(),
        consequences: Vec::new(),
        diff: Vec::new(),
        post_to: String::new(),
        fields: Vec::new(),
        error: entered.error.as_ref().map(|(_, m)| m.clone()),
        button: "Confirm",
        can_confirm: true,
        base: base.clone(),
        name: name.clone(),
    };
    match act {
        Act::Disable => {
            page.title = format!("Disable {name}?");
            page.consequences = vec![
                format!("Every key and token of {name} stops working at once, at the gateways and at the API."),
                "Its keys and grants are kept: enabling it again gives it back the same access.".to_owned(),
                "The reason is recorded on the account and on the audit ledger.".to_owned(),
            ];
            page.post_to = format!("{base}/disable");
            page.fields = vec![entered.field(
                "reason",
                "Reason",
                &entered.reason,
                "Why it is disabled, for the audit trail and whoever finds it disabled.",
                true,
            )];
            page.button = "Disable account";
        }
        Act::RevokeKey(key_id) => {
            let Some(key) = loaded.keys.iter().find(|k| k.key_id == key_id) else {
                return Err(ApiError::NotFound(format!("key {key_id} of account {name}")).into());
            };
            page.title = format!("Revoke key {key_id}?");
            page.post_to = format!("{base}/keys/{key_id}/revoke");
            page.button = "Revoke key";
            if key.state(now) == KeyState::Revoked {
                page.consequences = vec!["This key is already revoked.".to_owned()];
                page.can_confirm = false;
            } else {
                page.consequences = vec![
                    format!(
                        "Key {key_id} stops working at once: the gateways and the API refuse it."
                    ),
                    "This cannot be undone. Issue a new key if the account still needs one."
                        .to_owned(),
                ];
            }
        }
        Act::Rotate => {
            let usable: Vec<&str> = loaded
                .keys
                .iter()
                .filter(|k| k.state(now) == KeyState::Active)
                .map(|k| k.key_id.as_str())
                .collect();
            page.title = format!("Rotate {name}'s keys?");
            page.consequences = vec![
                "A new key is issued and shown once, on the next page.".to_owned(),
                if usable.is_empty() {
                    "The account has no active key now, so nothing else changes.".to_owned()
                } else {
                    format!(
                        "Its current keys ({}) keep working for the grace period, then stop.",
                        usable.join(", ")
                    )
                },
            ];
            page.post_to = format!("{base}/keys/rotate");
            let grace = if entered.grace.is_empty() {
                DEFAULT_GRACE
            } else {
                &entered.grace
            };
            page.fields = vec![
                entered.field(
                    "grace",
                    "Grace period",
                    grace,
                    "How long the current keys keep working, like 24h or 7d; 0s ends them at once.",
                    true,
                ),
                entered.field(
                    "expires_in",
                    "New key expires in",
                    &entered.expires_in,
                    lifetime,
                    false,
                ),
            ];
            page.button = "Rotate keys";
        }
        Act::ApplyRecommendation => {
            page.title = format!("Apply the recommendation to {name}'s grants?");
            page.post_to = format!("{base}/recommendation/apply");
            page.button = "Apply recommendation";
            if recommendation.is_empty() {
                page.consequences = vec![
                    "Nothing to apply: the grants already match what the account uses.".to_owned(),
                ];
                page.can_confirm = false;
            } else {
                page.consequences = vec![
                    "Grants marked - are removed and grants marked + are created; the others stay.".to_owned(),
                    "Requests only the removed grants allowed are refused from then on.".to_owned(),
                    format!("The grants as they are now are kept as a version, so the change can be rolled back (POST /v1/accounts/{name}/grants/rollback)."),
                ];
                page.diff = diff_lines(&recommendation.diff());
            }
        }
        Act::IssueKey => {
            page.title = format!("Issue a new key for {name}");
            page.consequences = vec!["The new key is shown once, on the next page.".to_owned()];
            page.post_to = format!("{base}/keys");
            page.fields = vec![entered.field(
                "expires_in",
                "Expires in",
                &entered.expires_in,
                lifetime,
                false,
            )];
            page.button = "Issue key";
        }
    }
    Ok(page)
}

/// `GET /console/accounts/{name}/confirm?action=…`: what the action will do, and its form.
pub async fn confirm(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Response, Failure> {
    let act = match (query.action.as_deref(), query.key) {
        (Some("disable"), _) => Act::Disable,
        (Some("revoke-key"), Some(key)) => Act::RevokeKey(key),
        (Some("rotate"), _) => Act::Rotate,
        (Some("apply-recommendation"), _) => Act::ApplyRecommendation,
        _ => {
            return Err(ApiError::Validation {
                field: "action".into(),
                message: "must be disable, revoke-key (with key), rotate or apply-recommendation"
                    .into(),
            }
            .into())
        }
    };
    let page = confirmation(&console, &who, &name, act, Entered::default()).await?;
    Ok(html(StatusCode::OK, page.render()))
}

/// The form shown again with what was entered and what is wrong with it, or the failure.
async fn again(
    console: &Console,
    who: &SignedIn,
    name: &str,
    act: Act,
    form: &ActionForm,
    error: ApiError,
) -> Result<Response, Failure> {
    let ApiError::Validation { field, message } = error else {
        return Err(error.into());
    };
    let entered = Entered {
        error: Some((field.clone(), format!("{field}: {message}"))),
        ..Entered::from_form(form)
    };
    let page = confirmation(console, who, name, act, entered).await?;
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
}

/// `POST /console/accounts/{name}/disable` (`csrf`, `reason`).
pub async fn disable(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(form) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let reason = form.reason.as_deref().unwrap_or_default().trim();
    match accounts::disable(&console.app, &who.admin, &who.caller, &name, reason).await {
        Ok(_) => Ok(done(&name, "disabled")),
        Err(e) => again(&console, &who, &name, Act::Disable, &form, e).await,
    }
}

/// `POST /console/accounts/{name}/enable` (`csrf`).
pub async fn enable(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    if accepted(&who, form).is_none() {
        return Ok(forbidden());
    }
    accounts::enable(&console.app, &who.admin, &who.caller, &name).await?;
    Ok(done(&name, "enabled"))
}

#[derive(Template)]
#[template(path = "console/new_key.html")]
struct NewKeyPage {
    layout: Layout,
    name: String,
    base: String,
    key_id: String,
    secret: String,
    expires: Option<String>,
    superseded: Vec<String>,
    grace_until: Option<String>,
}

/// After issuing: hold the key in the session and send the browser to the page that shows it,
/// so that reloading that page never issues another key.
fn show_once(console: &Console, who: &SignedIn, issued: IssuedKey) -> Response {
    let to = format!("{}/new-key", page_of(&issued.account));
    console.sessions.hold_key(&who.session.id, issued);
    see_other(&to)
}

/// `GET /console/accounts/{name}/new-key`: the key just issued, shown once.
pub async fn new_key(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
) -> Response {
    let Some(issued) = console
        .sessions
        .take_key(&who.session.id)
        .filter(|k| k.account == name)
    else {
        return done(&name, "key-shown");
    };
    let page = NewKeyPage {
        layout: who.layout("accounts"),
        base: page_of(&issued.account),
        name: issued.account,
        key_id: issued.key_id,
        secret: issued.secret,
        expires: issued.expires_at.map(when),
        superseded: issued.superseded,
        grace_until: issued.grace_until.map(when),
    };
    html(StatusCode::OK, page.render())
}

/// `POST /console/accounts/{name}/keys` (`csrf`, `expires_in`): issues a key and redirects to
/// the page that shows it once.
pub async fn issue_key(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(form) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let expires_in = given(form.expires_in.as_deref());
    match keys::issue(
        &console.app,
        &who.admin,
        &who.caller,
        &name,
        expires_in.as_deref(),
    )
    .await
    {
        Ok(issued) => Ok(show_once(&console, &who, issued)),
        Err(e) => again(&console, &who, &name, Act::IssueKey, &form, e).await,
    }
}

/// `POST /console/accounts/{name}/keys/rotate` (`csrf`, `grace`, `expires_in`): rotates and
/// redirects to the page that shows the new key once.
pub async fn rotate_keys(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    let Some(form) = accepted(&who, form) else {
        return Ok(forbidden());
    };
    let rotation = Rotation {
        grace: given(form.grace.as_deref()),
        expires_in: given(form.expires_in.as_deref()),
    };
    match keys::rotate(&console.app, &who.admin, &who.caller, &name, &rotation).await {
        Ok(issued) => Ok(show_once(&console, &who, issued)),
        Err(e) => again(&console, &who, &name, Act::Rotate, &form, e).await,
    }
}

/// `POST /console/accounts/{name}/keys/{key_id}/revoke` (`csrf`).
pub async fn revoke_key(
    State(console): State<Console>,
    who: SignedIn,
    Path((name, key_id)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    if accepted(&who, form).is_none() {
        return Ok(forbidden());
    }
    let app = &console.app;
    // Only a key of the account whose page this is: the redirect goes back to that page.
    let owned = app
        .store
        .list_keys(Some(&name))
        .await?
        .iter()
        .any(|k| k.key_id == key_id);
    if !owned {
        return Err(ApiError::NotFound(format!("key {key_id} of account {name}")).into());
    }
    keys::revoke(app, &who.admin, &who.caller, &key_id).await?;
    Ok(done(&name, "revoked"))
}

/// `POST /console/accounts/{name}/recommendation/apply` (`csrf`).
pub async fn apply_recommendation(
    State(console): State<Console>,
    who: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Failure> {
    if accepted(&who, form).is_none() {
        return Ok(forbidden());
    }
    let app = &console.app;
    match access::apply(
        app,
        &who.admin,
        &who.caller,
        &name,
        &access::default_options(app),
    )
    .await
    {
        Ok(change) => Ok(see_other(&format!(
            "{}?done=applied&version={}",
            page_of(&name),
            change.version
        ))),
        Err(ApiError::WrongState(_)) => Ok(done(&name, "nothing-to-apply")),
        Err(e) => Err(e.into()),
    }
}
