//! Warden's persistence. [`Store`] is the one interface the rest of Warden uses; it has two
//! backends with the same schema and the same behaviour:
//!
//! - [`sqlite`]: the embedded default (one file, WAL mode, no external service);
//! - [`postgres`]: a shared PostgreSQL, for several Warden instances.
//!
//! [`migrations`] holds the schema for both; [`rows`] converts between stored columns and the
//! domain types of `warden-core`, once for both backends. The ledger's entries are stored here but
//! sequenced elsewhere: this crate appends what it is given and never decides policy or knows about
//! protocols.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod migrations;
pub mod postgres;
pub mod reviews;
pub mod rows;
pub mod sqlite;

use async_trait::async_trait;
use warden_core::event::Event;
use warden_core::{
    Account, Admin, Alert, AlertStatus, Grant, GrantSetVersion, KeyRecord, Target, Timestamp,
};

pub use postgres::PostgresStore;
pub use reviews::{Review, ReviewDecision, ReviewItem, ReviewStatus};

/// An admin's console password, as stored: an argon2 PHC string (algorithm, parameters, salt and
/// hash), never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPassword {
    /// The PHC string.
    pub hash: String,
    /// When it was set.
    pub set_at: Timestamp,
}
pub use sqlite::SqliteStore;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique object already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The referenced object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Stored data could not be read back into a domain value.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The SQLite database failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had.
    #[error("postgres connection pool: {0}")]
    Pool(String),
    /// Opening or preparing the database failed.
    #[error("{0}")]
    Open(String),
    /// A blocking database task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether a ledger entry opens an action or records how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An event: who did what and what Warden decided (and, for actions that complete at once,
    /// the outcome too).
    Event,
    /// The outcome of an earlier event, linked by its `event_id`.
    Outcome,
}

impl EntryKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Outcome => "outcome",
        }
    }
}

/// One sequenced, append-only ledger entry. `body` is the exact byte string the ledger hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Position in the ledger, from 0, without gaps.
    pub seq: u64,
    /// The event this entry belongs to.
    pub event_id: uuid::Uuid,
    /// Event or outcome.
    pub kind: EntryKind,
    /// The event's time (for queries).
    pub time: Timestamp,
    /// The acting account, if any (for queries).
    pub account: Option<String>,
    /// The event's category (for queries).
    pub category: String,
    /// The target's name, if any (for queries).
    pub target: Option<String>,
    /// Canonical bytes.
    pub body: Vec<u8>,
    /// RFC 6962 leaf hash of `body`, as computed by the writer.
    pub leaf_hash: [u8; 32],
    /// When retention removed the body (then `body` is empty and only `leaf_hash` remains).
    pub pruned_at: Option<Timestamp>,
}

/// One stored interior hash of the ledger's Merkle tree, at its permanent storage index (see
/// `warden-ledger`'s `tree` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHash {
    /// Storage index.
    pub index: u64,
    /// The hash.
    pub hash: [u8; 32],
}

/// A signed checkpoint of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size it commits to.
    pub size: u64,
    /// The signed note, exactly as signed.
    pub note: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// When a committed ledger batch counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Flushed to disk (`fsync`) before it is acknowledged: survives a power loss. The default.
    #[default]
    Fsync,
    /// Handed to the operating system before it is acknowledged: survives Warden crashing or
    /// being killed, not the machine losing power. SQLite `synchronous = NORMAL` in WAL mode;
    /// PostgreSQL `synchronous_commit = off` for ledger batches.
    Os,
}

/// A filter over recorded events. Results come in ledger order, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this account's events.
    pub account: Option<String>,
    /// Only events on this target.
    pub target: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events after this sequence number (a paging cursor).
    pub after_seq: Option<u64>,
    /// Only events before this sequence number (bounds a window, so a sparse filter never scans
    /// past it).
    pub before_seq: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// A filter over alerts. Results come most recently seen first.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Only alerts in this state.
    pub status: Option<AlertStatus>,
    /// Only this account's alerts.
    pub account: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// An alert waiting in a sink's outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// The alert as it is now (its count may have grown since it was queued).
    pub alert: Alert,
    /// Failed delivery attempts so far.
    pub attempts: u64,
}

/// How far behind one sink is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// The sink.
    pub sink: String,
    /// Alerts waiting.
    pub pending: u64,
    /// The latest delivery error, if the oldest waiting alert has failed.
    pub last_error: Option<String>,
}

/// Allowed actions of one kind by one account under one grant on one UTC day (or, read back
/// over a window, in the whole window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Midnight (UTC) of the day; the window's start when read back.
    pub day: Timestamp,
    /// The account.
    pub account: String,
    /// The target.
    pub target: String,
    /// The grant that allowed the actions.
    pub grant_id: String,
    /// The narrowest grant rule allowing this kind of action (`GET /v1/orders/*`,
    /// `read:public.orders`).
    pub action: String,
    /// How many.
    pub count: u64,
    /// The first one.
    pub first_at: Timestamp,
    /// The last one.
    pub last_at: Timestamp,
}

/// A credential's successful use, for `last_used_at`.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The key used.
    pub key_id: String,
    /// Its account.
    pub account: String,
    /// When.
    pub at: Timestamp,
}

/// Everything Warden keeps. Both backends pass the same test suite.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<()>;

    /// Sets when ledger batches count as written (see [`Durability`]).
    async fn set_durability(&self, durability: Durability) -> Result<()>;

    /// Stores a new admin; [`StoreError::Conflict`] if the name exists.
    async fn insert_admin(&self, admin: &Admin) -> Result<()>;
    /// The admin holding the token with this id.
    async fn admin_by_token_id(&self, token_id: &str) -> Result<Option<Admin>>;
    /// All admins by name.
    async fn list_admins(&self) -> Result<Vec<Admin>>;
    /// Sets (or replaces) an admin's console password; [`StoreError::NotFound`] if there is no
    /// admin by that name.
    async fn set_admin_password(&self, name: &str, password: &AdminPassword) -> Result<()>;
    /// The admin by that name with their console password, if they set one.
    async fn admin_password(&self, name: &str) -> Result<Option<(Admin, AdminPassword)>>;

    /// Stores a new account; [`StoreError::Conflict`] if the name exists.
    async fn insert_account(&self, account: &Account) -> Result<()>;
    /// One account by name.
    async fn account(&self, name: &str) -> Result<Option<Account>>;
    /// All accounts by name.
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Disables (with a reason) or re-enables an account; [`StoreError::NotFound`] if absent.
    async fn set_account_disabled(&self, name: &str, reason: Option<&str>) -> Result<Account>;

    /// Stores a new key.
    async fn insert_key(&self, key: &KeyRecord) -> Result<()>;
    /// One key with its account, in one lookup by primary key: the authentication hot path.
    async fn key_with_account(&self, key_id: &str) -> Result<Option<(KeyRecord, Account)>>;
    /// All keys of an account (or, with `None`, of every account), newest first.
    async fn list_keys(&self, account: Option<&str>) -> Result<Vec<KeyRecord>>;
    /// Atomically stores `new` and marks every other key of its account that is not yet
    /// superseded as superseded by it, expiring at `grace_until` (or earlier if it already
    /// expired sooner). Returns the ids of the keys superseded.
    async fn rotate_keys(&self, new: &KeyRecord, grace_until: Timestamp) -> Result<Vec<String>>;
    /// Revokes a key at `at`; [`StoreError::NotFound`] if absent. Revoking twice keeps the first
    /// time.
    async fn revoke_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord>;
    /// Sets a key to stop working at `at`, unless it already stops earlier; returns the key.
    /// [`StoreError::NotFound`] if absent.
    async fn expire_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord>;
    /// Records credential uses: `last_used_at` only moves forward.
    async fn record_usage(&self, uses: &[Usage]) -> Result<()>;

    /// Stores a new target; [`StoreError::Conflict`] if the name exists.
    async fn insert_target(&self, target: &Target) -> Result<()>;
    /// One target by name.
    async fn target(&self, name: &str) -> Result<Option<Target>>;
    /// Replaces a target's sealed credentials after a rotation at `at`; [`StoreError::NotFound`]
    /// if there is no such target.
    async fn set_target_credentials(&self, name: &str, sealed: &str, at: Timestamp) -> Result<()>;
    /// All targets by name.
    async fn list_targets(&self) -> Result<Vec<Target>>;

    /// Stores a new grant.
    async fn insert_grant(&self, grant: &Grant) -> Result<()>;
    /// The grants (not removed) of `account`, on `target` if given, oldest first.
    async fn grants(&self, account: Option<&str>, target: Option<&str>) -> Result<Vec<Grant>>;
    /// Removes a grant at `at`; [`StoreError::NotFound`] if absent or already removed.
    async fn remove_grant(&self, id: &str, at: Timestamp) -> Result<Grant>;
    /// Records grant uses: `last_used_at` only moves forward.
    async fn record_grant_use(&self, uses: &[(String, Timestamp)]) -> Result<()>;

    /// Appends ledger entries and the Merkle tree hashes they complete, in one transaction.
    /// The first entry's `seq` must be the next free position, checked inside the transaction
    /// (under a lock that serialises writers from every instance sharing the database); otherwise
    /// nothing is written and the result is [`StoreError::Conflict`], so a writer that lost a race
    /// reloads and retries instead of forking the ledger.
    async fn append_entries(&self, entries: Vec<LedgerEntry>, tree: Vec<TreeHash>) -> Result<()>;
    /// Stored interior tree hashes by storage index, in the order asked; a missing one is
    /// [`StoreError::NotFound`]. (Leaf hashes are kept with their entries: [`Store::leaf_hashes`].)
    async fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>>;
    /// The leaf hashes of the entries at `positions`, in the order asked (also of pruned entries);
    /// a missing one is [`StoreError::NotFound`].
    async fn leaf_hashes(&self, positions: &[u64]) -> Result<Vec<[u8; 32]>>;
    /// Ledger entries with `seq >= from`, in order, at most `limit`.
    async fn entries(&self, from: u64, limit: u32) -> Result<Vec<LedgerEntry>>;
    /// Stores a checkpoint; one per size.
    async fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<()>;
    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>>;
    /// The checkpoint at exactly `size`.
    async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>>;
    /// Every checkpoint, smallest first.
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>>;
    /// Retention: empties the bodies of entries older than `before` and below position `below`
    /// (so only entries already covered by a checkpoint), keeping their leaf hashes and the tree,
    /// which is all that verifying the rest and proving consistency with old checkpoints needs.
    /// Returns how many entries were pruned.
    async fn prune_entries(&self, before: Timestamp, below: u64, at: Timestamp) -> Result<u64>;
    /// Stores `value` under `name` unless a value is already there; returns the stored value.
    /// Used for settings every instance must agree on (the ledger's signing key).
    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String>;
    /// The value stored under `name`, if any.
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Stores `value` under `name`, replacing what was there (positions of ledger followers).
    async fn set_setting(&self, name: &str, value: &str) -> Result<()>;
    /// The highest stored sequence number.
    async fn last_seq(&self) -> Result<Option<u64>>;
    /// The sequence number of the first event recorded at or after `time`.
    async fn first_seq_since(&self, time: Timestamp) -> Result<Option<u64>>;
    /// Events matching `query`, each with its outcome joined in.
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>>;

    /// Stores a new alert and queues it in the outbox of each of `sinks`, in one transaction.
    async fn insert_alert(&self, alert: &Alert, sinks: &[String]) -> Result<()>;
    /// Rewrites an alert (its count, last sighting, status…); [`StoreError::NotFound`] if absent.
    async fn update_alert(&self, alert: &Alert) -> Result<()>;
    /// One alert.
    async fn alert(&self, id: uuid::Uuid) -> Result<Option<Alert>>;
    /// Alerts matching `query`.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>>;
    /// The oldest alerts waiting in `sink`'s outbox, oldest first.
    async fn outbox_due(&self, sink: &str, limit: u32) -> Result<Vec<OutboxItem>>;
    /// Removes a delivered alert from `sink`'s outbox.
    async fn outbox_delivered(&self, sink: &str, alert_id: uuid::Uuid) -> Result<()>;
    /// Notes a failed delivery attempt of an alert that stays in `sink`'s outbox.
    async fn outbox_failed(&self, sink: &str, alert_id: uuid::Uuid, error: &str) -> Result<()>;
    /// Every sink's waiting alerts (sinks with an empty outbox are not listed).
    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>>;

    /// Adds `rows` to the daily usage counts and stores `position` (a follower's setting name
    /// and value) in the same transaction, so usage is counted exactly once.
    async fn add_usage(&self, rows: &[UsageRow], position: (&str, &str)) -> Result<()>;
    /// Usage since `since` (whole days from the one holding it), summed per account, target,
    /// grant and action; one account's, or everyone's.
    async fn usage(&self, since: Timestamp, account: Option<&str>) -> Result<Vec<UsageRow>>;
    /// Allowed actions per day since `since` (whole days from the one holding it), summed over
    /// every account or only `account`'s, as `(midnight UTC, count)`, oldest first, days without
    /// use left out: reports' and the console's activity charts.
    async fn daily_usage(
        &self,
        since: Timestamp,
        account: Option<&str>,
    ) -> Result<Vec<(Timestamp, u64)>>;
    /// Replaces several of an account's grants at once: stores `version` (the set before the
    /// change), removes the grants `remove` names at `at`, inserts `add`, in one transaction.
    async fn replace_grants(
        &self,
        version: &GrantSetVersion,
        remove: &[String],
        add: &[Grant],
        at: Timestamp,
    ) -> Result<()>;
    /// An account's grant set versions, oldest first.
    async fn grant_versions(&self, account: &str) -> Result<Vec<GrantSetVersion>>;

    /// Starts an access review: stores it (open) and its items in one transaction.
    /// [`StoreError::Conflict`] if a review of that name exists or another review is open.
    async fn insert_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()>;
    /// One access review.
    async fn review(&self, name: &str) -> Result<Option<Review>>;
    /// Every access review, oldest first.
    async fn reviews(&self) -> Result<Vec<Review>>;
    /// A review's items, by account.
    async fn review_items(&self, review: &str) -> Result<Vec<ReviewItem>>;
    /// Stores the decision on an item (decision, justification, who, when, grants to remove) of an
    /// open review; [`StoreError::NotFound`] if the review is not open or has no such item.
    async fn decide_review_item(&self, item: &ReviewItem) -> Result<()>;
    /// Closes an open review (`review`'s closed by and at) and stores each of `items`' outcome,
    /// in one transaction; [`StoreError::NotFound`] if the review is not open.
    async fn close_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()>;
}
