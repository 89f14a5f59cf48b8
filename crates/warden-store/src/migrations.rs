//! The schema, as an ordered list of migrations shared by both backends. Each migration runs
//! once, in order, inside a transaction, and is recorded in `schema_migrations`. The dialect
//! differences are two placeholders: the type of the ledger's sequence column (`{seq}`), where
//! SQLite's `INTEGER PRIMARY KEY` makes it the rowid, so appends are cheap, and PostgreSQL uses
//! `BIGINT`; and `{clustered}` after a table whose primary key is its only access path, which
//! SQLite stores as that key's B-tree alone (`WITHOUT ROWID`).
//!
//! Times are `BIGINT` microseconds since the Unix epoch (UTC) in both backends.

/// One schema change.
pub struct Migration {
    /// Position, from 1, without gaps.
    pub version: i64,
    /// What it does.
    pub name: &'static str,
    /// SQL statements separated by `;`, with `{seq}` and `{clustered}` (see the module doc).
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts, keys, admins, the ledger, its Merkle tree and checkpoints",
        sql: "
CREATE TABLE admins (
    name TEXT PRIMARY KEY,
    token_id TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL,
    labels TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    disabled_reason TEXT,
    last_used_at BIGINT
);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(name),
    digest TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    superseded_by TEXT
);
CREATE INDEX api_keys_account ON api_keys (account);
CREATE TABLE ledger_entries (
    seq {seq} PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    time BIGINT NOT NULL,
    account TEXT,
    category TEXT NOT NULL,
    target TEXT,
    body TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    pruned_at BIGINT
);
CREATE INDEX ledger_entries_account ON ledger_entries (account, seq) WHERE kind = 'event';
CREATE INDEX ledger_entries_time ON ledger_entries (time) WHERE kind = 'event';
CREATE INDEX ledger_entries_outcome ON ledger_entries (event_id) WHERE kind = 'outcome';
CREATE TABLE ledger_tree (
    idx BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE ledger_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
",
    },
    Migration {
        version: 2,
        name: "targets and grants",
        sql: "
CREATE TABLE targets (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    upstream TEXT NOT NULL,
    ca_bundle TEXT,
    credentials TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(name),
    target TEXT NOT NULL REFERENCES targets(name),
    rule TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    removed_at BIGINT
);
CREATE INDEX grants_account_target ON grants (account, target)
",
    },
    Migration {
        version: 3,
        name: "SCRAM-SHA-256 verifiers of API keys",
        sql: "ALTER TABLE api_keys ADD COLUMN scram TEXT",
    },
    Migration {
        version: 4,
        name: "scheduled rotation of database targets' upstream passwords",
        sql: "ALTER TABLE targets ADD COLUMN rotation_period_secs BIGINT;
ALTER TABLE targets ADD COLUMN rotated_at BIGINT",
    },
    Migration {
        version: 5,
        name: "alerts, their delivery outboxes, and named positions of ledger followers",
        sql: "
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    detector TEXT NOT NULL,
    account TEXT,
    severity TEXT NOT NULL,
    last_seen BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX alerts_status ON alerts (status, last_seen);
CREATE INDEX alerts_account ON alerts (account, last_seen);
CREATE TABLE alert_outbox (
    sink TEXT NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    attempts BIGINT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (sink, alert_id)
)
",
    },
    Migration {
        version: 6,
        name: "daily usage of grants, and versions of accounts' grant sets",
        sql: "
CREATE TABLE usage_daily (
    day BIGINT NOT NULL,
    account TEXT NOT NULL,
    target TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    action TEXT NOT NULL,
    count BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (day, account, target, grant_id, action)
);
CREATE INDEX usage_daily_account ON usage_daily (account, day);
CREATE TABLE grant_versions (
    account TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account, version)
)
",
    },
    Migration {
        version: 7,
        name: "access reviews and their items (one per account, with its decision)",
        sql: "
CREATE TABLE reviews (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    closed_by TEXT,
    closed_at BIGINT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX reviews_one_open ON reviews (status) WHERE status = 'open';
CREATE TABLE review_items (
    review TEXT NOT NULL REFERENCES reviews(name),
    account TEXT NOT NULL,
    decision TEXT,
    justification TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    remove_grants TEXT NOT NULL,
    outcome TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (review, account)
)
",
    },
    Migration {
        version: 8,
        name: "admins' console passwords (argon2 hashes)",
        sql: "
CREATE TABLE admin_passwords (
    name TEXT PRIMARY KEY REFERENCES admins(name),
    hash TEXT NOT NULL,
    set_at BIGINT NOT NULL
)
",
    },
    Migration {
        version: 9,
        name: "the ledger's account index, filled in bulk instead of with every append",
        sql: "
CREATE TABLE ledger_account_seqs (
    account TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (account, seq)
){clustered};
INSERT INTO ledger_account_seqs (account, seq)
    SELECT account, seq FROM ledger_entries WHERE kind = 'event' AND account IS NOT NULL;
CREATE TABLE ledger_account_index (
    indexed_below BIGINT NOT NULL
);
INSERT INTO ledger_account_index (indexed_below)
    SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entries;
DROP INDEX ledger_entries_account
",
    },
];

/// How a backend spells what differs between the dialects.
pub struct Dialect {
    /// The sequence column's type.
    pub seq: &'static str,
    /// What follows a table stored as its primary key alone.
    pub clustered: &'static str,
}

/// SQLite's spelling.
pub const SQLITE: Dialect = Dialect {
    seq: "INTEGER",
    clustered: " WITHOUT ROWID",
};

/// PostgreSQL's spelling.
pub const POSTGRES: Dialect = Dialect {
    seq: "BIGINT",
    clustered: "",
};

/// The statements of `m` in `dialect`.
pub fn statements(m: &Migration, dialect: &Dialect) -> Vec<String> {
    m.sql
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("{seq}", dialect.seq)
                .replace("{clustered}", dialect.clustered)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }
}
