//! Stored columns ⇄ domain values, written once for both backends. Each backend reads its row
//! into one of these plain structs and converts it here, so the two never drift apart.

use std::collections::BTreeMap;

use warden_core::event::{Event, OutcomeRecord};
use warden_core::{
    Account, AccountName, Admin, Alert, Email, Grant, GrantSetVersion, KeyRecord, Rule,
    SecretDigest, Target, TargetKind, Timestamp,
};

use crate::{Result, StoreError};

/// The `accounts` columns, in `ACCOUNT_COLUMNS` order.
pub struct AccountRow {
    /// `name`
    pub name: String,
    /// `owner`
    pub owner: String,
    /// `purpose`
    pub purpose: String,
    /// `labels` (a JSON object)
    pub labels: String,
    /// `created_by`
    pub created_by: String,
    /// `created_at` (µs)
    pub created_at: i64,
    /// `expires_at` (µs)
    pub expires_at: Option<i64>,
    /// `disabled_reason`
    pub disabled_reason: Option<String>,
    /// `last_used_at` (µs)
    pub last_used_at: Option<i64>,
}

/// Column list matching [`AccountRow`].
pub const ACCOUNT_COLUMNS: &str =
    "name, owner, purpose, labels, created_by, created_at, expires_at, disabled_reason, last_used_at";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self> {
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&r.labels).map_err(|e| corrupt("account labels", e))?;
        Ok(Account {
            name: AccountName::parse(&r.name).map_err(|e| corrupt("account name", e))?,
            owner: Email::parse("owner", &r.owner).map_err(|e| corrupt("account owner", e))?,
            purpose: r.purpose,
            labels,
            created_by: r.created_by,
            created_at: Timestamp::from_micros(r.created_at),
            expires_at: ts(r.expires_at),
            disabled_reason: r.disabled_reason,
            last_used_at: ts(r.last_used_at),
        })
    }
}

/// An account's labels as stored.
pub fn labels_json(account: &Account) -> String {
    serde_json::to_string(&account.labels).unwrap_or_else(|_| "{}".into())
}

/// The `api_keys` columns, in `KEY_COLUMNS` order.
pub struct KeyRow {
    /// `key_id`
    pub key_id: String,
    /// `account`
    pub account: String,
    /// `digest` (hex)
    pub digest: String,
    /// `created_by`
    pub created_by: String,
    /// `created_at`
    pub created_at: i64,
    /// `expires_at`
    pub expires_at: Option<i64>,
    /// `last_used_at`
    pub last_used_at: Option<i64>,
    /// `revoked_at`
    pub revoked_at: Option<i64>,
    /// `superseded_by`
    pub superseded_by: Option<String>,
    /// `scram`
    pub scram: Option<String>,
}

/// Column list matching [`KeyRow`].
pub const KEY_COLUMNS: &str =
    "key_id, account, digest, created_by, created_at, expires_at, last_used_at, revoked_at, superseded_by, scram";

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self> {
        Ok(KeyRecord {
            digest: SecretDigest::from_hex(&r.digest).map_err(|e| corrupt("key digest", e))?,
            account: AccountName::parse(&r.account).map_err(|e| corrupt("key account", e))?,
            key_id: r.key_id,
            created_by: r.created_by,
            created_at: Timestamp::from_micros(r.created_at),
            expires_at: ts(r.expires_at),
            last_used_at: ts(r.last_used_at),
            revoked_at: ts(r.revoked_at),
            superseded_by: r.superseded_by,
            scram: r.scram,
        })
    }
}

/// The `admins` columns, in `ADMIN_COLUMNS` order.
pub struct AdminRow {
    /// `name`
    pub name: String,
    /// `token_id`
    pub token_id: String,
    /// `digest`
    pub digest: String,
    /// `created_by`
    pub created_by: String,
    /// `created_at`
    pub created_at: i64,
}

/// Column list matching [`AdminRow`].
pub const ADMIN_COLUMNS: &str = "name, token_id, digest, created_by, created_at";

/// An admin's [`AdminRow`] columns followed by their password's `hash` and `set_at`, by name
/// (`?1`/`$1`; both backends accept `$1`).
pub const ADMIN_PASSWORD_SELECT: &str = "SELECT a.name, a.token_id, a.digest, a.created_by, \
     a.created_at, p.hash, p.set_at FROM admins a JOIN admin_passwords p ON p.name = a.name \
     WHERE a.name = $1";

impl TryFrom<AdminRow> for Admin {
    type Error = StoreError;
    fn try_from(r: AdminRow) -> Result<Self> {
        Ok(Admin {
            digest: SecretDigest::from_hex(&r.digest).map_err(|e| corrupt("admin digest", e))?,
            name: r.name,
            token_id: r.token_id,
            created_by: r.created_by,
            created_at: Timestamp::from_micros(r.created_at),
        })
    }
}

/// An event entry's body with its outcome entry's body, if any, joined into one [`Event`].
pub fn event_from_bodies(event: &str, outcome: Option<&str>) -> Result<Event> {
    let mut e: Event = serde_json::from_str(event).map_err(|e| corrupt("event", e))?;
    if let Some(o) = outcome {
        let o: OutcomeRecord = serde_json::from_str(o).map_err(|e| corrupt("outcome", e))?;
        e.outcome = Some(o.outcome);
    }
    Ok(e)
}

/// An event query as SQL with numbered placeholders (`?1` for SQLite, `$1` for PostgreSQL,
/// chosen by `sigil`), and the values to bind in order.
///
/// With an account, the query has two arms, because the account index
/// (`ledger_account_seqs`) is filled in bulk ([`index_accounts`]) rather than with every
/// append: positions below `ledger_account_index.indexed_below` are found through the index,
/// the short unindexed tail above it by a bounded scan. The arms cover disjoint positions in
/// order, and each stops at the limit, so the cost is what the old `(account, seq)` index gave.
pub fn event_query(q: &crate::EventQuery, sigil: char) -> (String, Vec<FilterValue>) {
    let mut clauses = vec!["e.kind = 'event' AND e.pruned_at IS NULL".to_owned()];
    // Bounds on the position, with `{seq}` for the column they bound: the indexed arm repeats
    // them on the index so its range scan starts and stops where the window does.
    let mut bounds: Vec<String> = Vec::new();
    let mut values = Vec::new();
    let placeholder = |values: &mut Vec<FilterValue>, v: FilterValue| {
        values.push(v);
        format!("{sigil}{}", values.len())
    };
    if let Some(t) = &q.target {
        let p = placeholder(&mut values, FilterValue::Text(t.clone()));
        clauses.push(format!("e.target = {p}"));
    }
    if let Some(c) = &q.category {
        let p = placeholder(&mut values, FilterValue::Text(c.clone()));
        clauses.push(format!("e.category = {p}"));
    }
    if let Some(s) = q.since {
        // The position of the first event in the window, found through the time index, bounds
        // the scan by position (results come in position order), so a recent window costs what
        // is in it rather than a scan from the start of the ledger. (`+ 0` keeps SQLite from
        // answering MIN by walking the primary key from the start.)
        let p = placeholder(&mut values, FilterValue::Int(s.as_micros()));
        bounds.push(format!(
            "{{seq}} >= (SELECT COALESCE(MIN(w.seq + 0), 9223372036854775807) \
             FROM ledger_entries w WHERE w.kind = 'event' AND w.time >= {p})"
        ));
        clauses.push(format!("e.time >= {p}"));
    }
    let position = |v: u64| FilterValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
    if let Some(a) = q.after_seq {
        let p = placeholder(&mut values, position(a));
        bounds.push(format!("{{seq}} > {p}"));
    }
    if let Some(b) = q.before_seq {
        let p = placeholder(&mut values, position(b));
        bounds.push(format!("{{seq}} < {p}"));
    }
    let on = |column: &str| -> Vec<String> {
        bounds.iter().map(|b| b.replace("{seq}", column)).collect()
    };
    let limit = q.limit;
    let columns = "e.seq AS seq, e.body AS body, o.body AS outcome";
    let outcome_join =
        "LEFT JOIN ledger_entries o ON o.kind = 'outcome' AND o.event_id = e.event_id";
    let sql = match &q.account {
        None => {
            let filter = [clauses, on("e.seq")].concat().join(" AND ");
            format!(
                "SELECT e.body, o.body FROM ledger_entries e {outcome_join} \
                 WHERE {filter} ORDER BY e.seq LIMIT {limit}"
            )
        }
        Some(account) => {
            let p = placeholder(&mut values, FilterValue::Text(account.clone()));
            let indexed = [
                vec![format!("a.account = {p}")],
                clauses.clone(),
                on("a.seq"),
            ]
            .concat()
            .join(" AND ");
            // The tail's scan is bounded by the index mark alone: the window's bounds are
            // applied as filters (`+` hides them from the planner), or a bound far below the
            // mark would make the scan start there.
            let tail = [
                vec![
                    "e.seq >= (SELECT indexed_below FROM ledger_account_index)".to_owned(),
                    format!("e.account = {p}"),
                ],
                clauses,
                on("+e.seq"),
            ]
            .concat()
            .join(" AND ");
            format!(
                "SELECT body, outcome FROM ( \
                 SELECT * FROM (SELECT {columns} FROM ledger_account_seqs a \
                   JOIN ledger_entries e ON e.seq = a.seq {outcome_join} \
                   WHERE {indexed} ORDER BY a.seq LIMIT {limit}) AS indexed \
                 UNION ALL \
                 SELECT * FROM (SELECT {columns} FROM ledger_entries e {outcome_join} \
                   WHERE {tail} ORDER BY e.seq LIMIT {limit}) AS tail \
                 ) AS found ORDER BY seq LIMIT {limit}"
            )
        }
    };
    (sql, values)
}

/// Reads the account index's mark: positions below it are in `ledger_account_seqs`.
pub const ACCOUNT_INDEX_MARK_SQL: &str = "SELECT indexed_below FROM ledger_account_index";

/// How many appended positions wait, unindexed, before an append moves them into the account
/// index. Queries scan at most this many (plus one batch) to cover the tail.
pub const ACCOUNT_INDEX_EVERY: i64 = 8192;

/// When an append that ends at position `end` (exclusive) finds the account index's mark at
/// `indexed_below`, the statements to run in its transaction, in order, and the two values to
/// bind to each (`sigil` chooses `?` or `$` placeholders); `None` while the tail is short.
///
/// Filling the index in bulk touches each account's index page once per fill instead of once
/// per batch: with a thousand active accounts, per-append index inserts were two thirds of the
/// cost of an append (see docs/BENCHMARKS.md). The bounds are bound values, not a subquery, so
/// both planners see a short primary-key range.
pub fn index_accounts(
    indexed_below: i64,
    end: i64,
    sigil: char,
) -> Option<([String; 2], [i64; 2])> {
    (end - indexed_below >= ACCOUNT_INDEX_EVERY).then(|| {
        (
            [
                format!(
                    "INSERT INTO ledger_account_seqs (account, seq) \
                     SELECT account, seq FROM ledger_entries \
                     WHERE seq >= {sigil}1 AND seq < {sigil}2 \
                     AND kind = 'event' AND account IS NOT NULL"
                ),
                format!(
                    "UPDATE ledger_account_index SET indexed_below = {sigil}2 \
                     WHERE indexed_below = {sigil}1"
                ),
            ],
            [indexed_below, end],
        )
    })
}

/// A value bound into an event filter.
#[derive(Debug, Clone)]
pub enum FilterValue {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
}

/// A 32-byte hash as stored: lowercase hex.
pub fn hex32(h: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    // Cannot fail: the output is exactly twice the input's length.
    let _ = hex::encode_to_slice(h, &mut out);
    out.iter().map(|&b| char::from(b)).collect()
}

/// Reads a stored 32-byte hash; `what` names it in the error.
pub fn parse_hex32(what: &str, s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| corrupt(what, e))?;
    Ok(out)
}

/// The `ledger_entries` columns, in `ENTRY_COLUMNS` order.
pub struct EntryRow {
    /// `seq`
    pub seq: i64,
    /// `event_id`
    pub event_id: String,
    /// `kind`
    pub kind: String,
    /// `time`
    pub time: i64,
    /// `account`
    pub account: Option<String>,
    /// `category`
    pub category: String,
    /// `target`
    pub target: Option<String>,
    /// `body`
    pub body: String,
    /// `leaf_hash`
    pub leaf_hash: String,
    /// `pruned_at`
    pub pruned_at: Option<i64>,
}

/// Column list matching [`EntryRow`].
pub const ENTRY_COLUMNS: &str =
    "seq, event_id, kind, time, account, category, target, body, leaf_hash, pruned_at";

impl TryFrom<EntryRow> for crate::LedgerEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self> {
        let what = format!("ledger entry {}", r.seq);
        Ok(crate::LedgerEntry {
            seq: u64::try_from(r.seq).map_err(|e| corrupt(&what, e))?,
            event_id: r.event_id.parse().map_err(|e| corrupt(&what, e))?,
            kind: match r.kind.as_str() {
                "event" => crate::EntryKind::Event,
                "outcome" => crate::EntryKind::Outcome,
                other => return Err(corrupt(&what, format!("unknown kind `{other}`"))),
            },
            time: Timestamp::from_micros(r.time),
            account: r.account,
            category: r.category,
            target: r.target,
            body: r.body.into_bytes(),
            leaf_hash: parse_hex32(&what, &r.leaf_hash)?,
            pruned_at: ts(r.pruned_at),
        })
    }
}

/// A stored checkpoint row.
pub fn checkpoint_from(
    size: i64,
    note: String,
    created_at: i64,
) -> Result<crate::StoredCheckpoint> {
    Ok(crate::StoredCheckpoint {
        size: u64::try_from(size).map_err(|e| corrupt("checkpoint size", e))?,
        note,
        created_at: Timestamp::from_micros(created_at),
    })
}

/// A `u64` position as the `BIGINT` both backends store.
pub fn to_i64(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{what} {v} is beyond the storable range")))
}

/// The `targets` columns, in `TARGET_COLUMNS` order.
pub struct TargetRow {
    /// `name`
    pub name: String,
    /// `kind`
    pub kind: String,
    /// `upstream`
    pub upstream: String,
    /// `ca_bundle`
    pub ca_bundle: Option<String>,
    /// `credentials` (sealed)
    pub credentials: Option<String>,
    /// `created_by`
    pub created_by: String,
    /// `created_at`
    pub created_at: i64,
    /// `rotation_period_secs`
    pub rotation_period_secs: Option<i64>,
    /// `rotated_at`
    pub rotated_at: Option<i64>,
}

/// Column list matching [`TargetRow`].
pub const TARGET_COLUMNS: &str =
    "name, kind, upstream, ca_bundle, credentials, created_by, created_at, rotation_period_secs, rotated_at";

impl TryFrom<TargetRow> for Target {
    type Error = StoreError;
    fn try_from(r: TargetRow) -> Result<Self> {
        Ok(Target {
            kind: TargetKind::parse(&r.kind).map_err(|e| corrupt("target kind", e))?,
            name: r.name,
            upstream: r.upstream,
            ca_bundle: r.ca_bundle,
            credentials: r.credentials,
            created_by: r.created_by,
            created_at: Timestamp::from_micros(r.created_at),
            rotation_period_secs: r
                .rotation_period_secs
                .map(|s| u64::try_from(s).map_err(|e| corrupt("rotation period", e)))
                .transpose()?,
            rotated_at: ts(r.rotated_at),
        })
    }
}

/// The `grants` columns, in `GRANT_COLUMNS` order.
pub struct GrantRow {
    /// `id`
    pub id: String,
    /// `account`
    pub account: String,
    /// `target`
    pub target: String,
    /// `rule`
    pub rule: String,
    /// `created_by`
    pub created_by: String,
    /// `created_at`
    pub created_at: i64,
    /// `expires_at`
    pub expires_at: Option<i64>,
    /// `last_used_at`
    pub last_used_at: Option<i64>,
}

/// Column list matching [`GrantRow`].
pub const GRANT_COLUMNS: &str =
    "id, account, target, rule, created_by, created_at, expires_at, last_used_at";

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self> {
        Ok(Grant {
            rule: Rule::parse_stored(&r.rule).map_err(|e| corrupt("grant rule", e))?,
            id: r.id,
            account: r.account,
            target: r.target,
            created_by: r.created_by,
            created_at: Timestamp::from_micros(r.created_at),
            expires_at: ts(r.expires_at),
            last_used_at: ts(r.last_used_at),
        })
    }
}

/// The `alerts` columns: `id, status, detector, account, severity, last_seen, body`; the first six
/// are copies of fields of `body` (the alert as JSON) kept for filtering.
pub const ALERT_COLUMNS: &str = "id, status, detector, account, severity, last_seen, body";

/// An alert as the JSON `body` column holds it.
pub fn alert_body(alert: &Alert) -> String {
    serde_json::to_string(alert).unwrap_or_default()
}

/// An alert from its `body` column.
pub fn alert_from_body(body: &str) -> Result<Alert> {
    serde_json::from_str(body).map_err(|e| corrupt("alert", e))
}

/// An alert listing as SQL with numbered placeholders (as [`event_query`]) and the values to bind;
/// newest sighting first.
pub fn alert_query(q: &crate::AlertQuery, sigil: char) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    if let Some(status) = q.status {
        values.push(status.as_str().to_owned());
        clauses.push(format!("status = {sigil}{}", values.len()));
    }
    if let Some(account) = &q.account {
        values.push(account.clone());
        clauses.push(format!("account = {sigil}{}", values.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT body FROM alerts {filter} ORDER BY last_seen DESC, id DESC LIMIT {}",
        q.limit
    );
    (sql, values)
}

/// Each sink's waiting alerts and the latest error of its oldest one.
pub const OUTBOX_BACKLOG_SQL: &str = "SELECT sink, COUNT(*), \
     (SELECT h.last_error FROM alert_outbox h WHERE h.sink = o.sink ORDER BY h.alert_id LIMIT 1) \
     FROM alert_outbox o GROUP BY sink ORDER BY sink";

/// Midnight (UTC) of the day holding `t`: the key of its daily usage row.
pub fn day_of(t: Timestamp) -> i64 {
    const DAY_US: i64 = 86_400_000_000;
    t.as_micros().div_euclid(DAY_US) * DAY_US
}

/// Usage per day since placeholder 1 (the first day), summed over every account or over the
/// one in placeholder 2 (`account_cast` as in [`usage_sql`]).
pub fn daily_usage_sql(sigil: char, account_cast: &str) -> String {
    format!(
        "SELECT day, CAST(SUM(count) AS BIGINT) FROM usage_daily WHERE day >= {sigil}1 \
         AND ({sigil}2{account_cast} IS NULL OR account = {sigil}2) GROUP BY day ORDER BY day"
    )
}

/// A grant set version as the `grant_versions.body` column holds it.
pub fn version_body(v: &GrantSetVersion) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A grant set version from its `body` column.
pub fn version_from_body(body: &str) -> Result<GrantSetVersion> {
    serde_json::from_str(body).map_err(|e| corrupt("grant set version", e))
}

/// Usage summed over a window: placeholder 1 is the first day, placeholder 2 the account or
/// NULL (`account_cast` types it where the dialect needs to).
pub fn usage_sql(sigil: char, account_cast: &str) -> String {
    format!(
        "SELECT account, target, grant_id, action, CAST(SUM(count) AS BIGINT), MIN(first_at), MAX(last_at) \
         FROM usage_daily WHERE day >= {sigil}1 AND ({sigil}2{account_cast} IS NULL OR account = {sigil}2) \
         GROUP BY account, target, grant_id, action ORDER BY account, target, grant_id, action"
    )
}
