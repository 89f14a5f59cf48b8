//! The PostgreSQL backend, for Warden instances that share one database.
//!
//! Same schema and behaviour as the SQLite backend. Migrations run under a transaction-scoped
//! advisory lock so that instances starting together apply each one exactly once. Ledger batches
//! are inserted with one `UNNEST` statement, so a group commit is one round trip.

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use warden_core::event::Event;
use warden_core::{Account, Admin, Alert, Grant, GrantSetVersion, KeyRecord, Target, Timestamp};

use crate::migrations::{self, statements, MIGRATIONS};
use crate::reviews::{self, Review, ReviewItem, ITEM_COLUMNS, REVIEW_COLUMNS};
use crate::rows::{
    self, AccountRow, AdminRow, EntryRow, FilterValue, GrantRow, KeyRow, TargetRow,
    ACCOUNT_COLUMNS, ADMIN_COLUMNS, ADMIN_PASSWORD_SELECT, ALERT_COLUMNS, ENTRY_COLUMNS,
    GRANT_COLUMNS, KEY_COLUMNS, TARGET_COLUMNS,
};
use crate::{
    AdminPassword, AlertQuery, Durability, EventQuery, LedgerEntry, OutboxBacklog, OutboxItem,
    Result, Store, StoreError, StoredCheckpoint, TreeHash, Usage, UsageRow,
};

/// Advisory lock key that serialises migrations across instances ("wardmig" in ASCII).
const MIGRATION_LOCK: i64 = 0x0077_6172_646d_6967;

/// Advisory lock key held by the instance appending to the ledger ("wardseq").
const SEQUENCER_LOCK: i64 = 0x0077_6172_6473_6571;

/// A Warden store in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    relaxed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`), checks that the database answers and
    /// brings its schema up to date. The error names the host and database, never the password.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Open(format!("invalid database URL: {e}")))?;
        let place = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(2))
            .build()
            .map_err(|e| StoreError::Open(format!("{place}: {e}")))?;
        let store = Self {
            pool,
            relaxed: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let mut client = store.pool.get().await.map_err(|e| {
            StoreError::Open(format!(
                "cannot connect to PostgreSQL at {place}: {}",
                causes(&e)
            ))
        })?;
        migrate(&mut client)
            .await
            .map_err(|e| StoreError::Open(format!("migrating PostgreSQL at {place}: {e}")))?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Pool(e.to_string()))
    }
}

impl PostgresStore {
    async fn checkpoints_where(
        &self,
        clause: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredCheckpoint>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT size, note, created_at FROM ledger_checkpoints {clause}"),
                args,
            )
            .await?;
        rows.iter()
            .map(|r| rows::checkpoint_from(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .collect()
    }
}

/// An error and its causes on one line, skipping repeats (pool errors wrap driver errors that
/// wrap I/O errors, and the useful part, such as "Connection refused", is at the bottom).
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

async fn migrate(client: &mut deadpool_postgres::Object) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        for stmt in statements(m, &migrations::POSTGRES) {
            tx.batch_execute(&stmt).await?;
        }
        let now = warden_core::Clock::now(&warden_core::SystemClock).as_micros();
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn conflict(e: tokio_postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what())
    } else {
        e.into()
    }
}

fn account_row(r: &Row, at: usize) -> Result<Account> {
    Account::try_from(AccountRow {
        name: r.try_get(at)?,
        owner: r.try_get(at + 1)?,
        purpose: r.try_get(at + 2)?,
        labels: r.try_get(at + 3)?,
        created_by: r.try_get(at + 4)?,
        created_at: r.try_get(at + 5)?,
        expires_at: r.try_get(at + 6)?,
        disabled_reason: r.try_get(at + 7)?,
        last_used_at: r.try_get(at + 8)?,
    })
}

fn key_row(r: &Row, at: usize) -> Result<KeyRecord> {
    KeyRecord::try_from(KeyRow {
        key_id: r.try_get(at)?,
        account: r.try_get(at + 1)?,
        digest: r.try_get(at + 2)?,
        created_by: r.try_get(at + 3)?,
        created_at: r.try_get(at + 4)?,
        expires_at: r.try_get(at + 5)?,
        last_used_at: r.try_get(at + 6)?,
        revoked_at: r.try_get(at + 7)?,
        superseded_by: r.try_get(at + 8)?,
        scram: r.try_get(at + 9)?,
    })
}

fn admin_row(r: &Row) -> Result<Admin> {
    Admin::try_from(AdminRow {
        name: r.try_get(0)?,
        token_id: r.try_get(1)?,
        digest: r.try_get(2)?,
        created_by: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn target_row(r: &Row) -> Result<Target> {
    Target::try_from(TargetRow {
        name: r.try_get(0)?,
        kind: r.try_get(1)?,
        upstream: r.try_get(2)?,
        ca_bundle: r.try_get(3)?,
        credentials: r.try_get(4)?,
        created_by: r.try_get(5)?,
        created_at: r.try_get(6)?,
        rotation_period_secs: r.try_get(7)?,
        rotated_at: r.try_get(8)?,
    })
}

fn grant_row(r: &Row) -> Result<Grant> {
    Grant::try_from(GrantRow {
        id: r.try_get(0)?,
        account: r.try_get(1)?,
        target: r.try_get(2)?,
        rule: r.try_get(3)?,
        created_by: r.try_get(4)?,
        created_at: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
    })
}

fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

async fn insert_key_row(
    client: &impl deadpool_postgres::GenericClient,
    k: &KeyRecord,
) -> Result<()> {
    client
        .execute(
            &format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &k.key_id,
                &k.account.as_str(),
                &k.digest.to_hex(),
                &k.created_by,
                &k.created_at.as_micros(),
                &micros(k.expires_at),
                &micros(k.last_used_at),
                &micros(k.revoked_at),
                &k.superseded_by,
                &k.scram,
            ],
        )
        .await
        .map_err(|e| conflict(e, || format!("key {}", k.key_id)))?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn set_durability(&self, durability: Durability) -> Result<()> {
        self.relaxed.store(
            durability == Durability::Os,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.client().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn insert_admin(&self, a: &Admin) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!("INSERT INTO admins ({ADMIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
                &[
                    &a.name,
                    &a.token_id,
                    &a.digest.to_hex(),
                    &a.created_by,
                    &a.created_at.as_micros(),
                ],
            )
            .await
            .map_err(|e| conflict(e, || format!("admin {}", a.name)))?;
        Ok(())
    }

    async fn admin_by_token_id(&self, token_id: &str) -> Result<Option<Admin>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {ADMIN_COLUMNS} FROM admins WHERE token_id = $1"
            ))
            .await?;
        c.query_opt(&st, &[&token_id])
            .await?
            .map(|r| admin_row(&r))
            .transpose()
    }

    async fn set_admin_password(&self, name: &str, p: &AdminPassword) -> Result<()> {
        let c = self.client().await?;
        let exists = c
            .query_opt("SELECT 1 FROM admins WHERE name = $1", &[&name])
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("admin {name}")));
        }
        c.execute(
            "INSERT INTO admin_passwords (name, hash, set_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            &[&name, &p.hash, &p.set_at.as_micros()],
        )
        .await?;
        Ok(())
    }

    async fn admin_password(&self, name: &str) -> Result<Option<(Admin, AdminPassword)>> {
        let c = self.client().await?;
        let Some(r) = c.query_opt(ADMIN_PASSWORD_SELECT, &[&name]).await? else {
            return Ok(None);
        };
        let password = AdminPassword {
            hash: r.try_get(5)?,
            set_at: Timestamp::from_micros(r.try_get(6)?),
        };
        Ok(Some((admin_row(&r)?, password)))
    }

    async fn list_admins(&self) -> Result<Vec<Admin>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(admin_row).collect()
    }

    async fn insert_account(&self, a: &Account) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
                &[
                    &a.name.as_str(),
                    &a.owner.as_str(),
                    &a.purpose,
                    &rows::labels_json(a),
                    &a.created_by,
                    &a.created_at.as_micros(),
                    &micros(a.expires_at),
                    &a.disabled_reason,
                    &micros(a.last_used_at),
                ],
            )
            .await
            .map_err(|e| conflict(e, || format!("account {}", a.name)))?;
        Ok(())
    }

    async fn account(&self, name: &str) -> Result<Option<Account>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"),
                &[&name],
            )
            .await?
            .map(|r| account_row(&r, 0))
            .transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(|r| account_row(r, 0)).collect()
    }

    async fn set_account_disabled(&self, name: &str, reason: Option<&str>) -> Result<Account> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("UPDATE accounts SET disabled_reason = $2 WHERE name = $1 RETURNING {ACCOUNT_COLUMNS}"),
                &[&name, &reason],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {name}")))?;
        account_row(&row, 0)
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        insert_key_row(&self.client().await?, key).await
    }

    async fn key_with_account(&self, key_id: &str) -> Result<Option<(KeyRecord, Account)>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT a.name, a.owner, a.purpose, a.labels, a.created_by, a.created_at, a.expires_at, \
                 a.disabled_reason, a.last_used_at, k.key_id, k.account, k.digest, k.created_by, \
                 k.created_at, k.expires_at, k.last_used_at, k.revoked_at, k.superseded_by, k.scram \
                 FROM api_keys k JOIN accounts a ON a.name = k.account WHERE k.key_id = $1",
            )
            .await?;
        c.query_opt(&st, &[&key_id])
            .await?
            .map(|r| Ok((key_row(&r, 9)?, account_row(&r, 0)?)))
            .transpose()
    }

    async fn list_keys(&self, account: Option<&str>) -> Result<Vec<KeyRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR account = $1) ORDER BY created_at DESC, key_id"),
                &[&account],
            )
            .await?;
        rows.iter().map(|r| key_row(r, 0)).collect()
    }

    async fn rotate_keys(&self, new: &KeyRecord, grace_until: Timestamp) -> Result<Vec<String>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Lock the account row so concurrent rotations of one account serialise.
        tx.execute(
            "SELECT 1 FROM accounts WHERE name = $1 FOR UPDATE",
            &[&new.account.as_str()],
        )
        .await?;
        let rows = tx
            .query(
                "UPDATE api_keys SET superseded_by = $2, expires_at = LEAST(COALESCE(expires_at, $3), $3) \
                 WHERE account = $1 AND superseded_by IS NULL AND revoked_at IS NULL RETURNING key_id",
                &[&new.account.as_str(), &new.key_id, &grace_until.as_micros()],
            )
            .await?;
        insert_key_row(&tx, new).await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn revoke_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_id = $1 RETURNING {KEY_COLUMNS}"
                ),
                &[&key_id, &at.as_micros()],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key {key_id}")))?;
        key_row(&row, 0)
    }

    async fn expire_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE key_id = $1 RETURNING {KEY_COLUMNS}"
                ),
                &[&key_id, &at.as_micros()],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key {key_id}")))?;
        key_row(&row, 0)
    }

    async fn record_usage(&self, uses: &[Usage]) -> Result<()> {
        let keys: Vec<&str> = uses.iter().map(|u| u.key_id.as_str()).collect();
        let accounts: Vec<&str> = uses.iter().map(|u| u.account.as_str()).collect();
        let at: Vec<i64> = uses.iter().map(|u| u.at.as_micros()).collect();
        let c = self.client().await?;
        c.execute(
            "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at) \
             FROM (SELECT key_id, MAX(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS t(key_id, at) GROUP BY key_id) u \
             WHERE k.key_id = u.key_id",
            &[&keys, &at],
        )
        .await?;
        c.execute(
            "UPDATE accounts a SET last_used_at = GREATEST(a.last_used_at, u.at) \
             FROM (SELECT name, MAX(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS t(name, at) GROUP BY name) u \
             WHERE a.name = u.name",
            &[&accounts, &at],
        )
        .await?;
        Ok(())
    }

    async fn set_target_credentials(&self, name: &str, sealed: &str, at: Timestamp) -> Result<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE targets SET credentials = $1, rotated_at = $3 WHERE name = $2",
                &[&sealed, &name, &at.as_micros()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("target {name}")));
        }
        Ok(())
    }

    async fn insert_target(&self, t: &Target) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO targets ({TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &t.name,
                    &t.kind.as_str(),
                    &t.upstream,
                    &t.ca_bundle,
                    &t.credentials,
                    &t.created_by,
                    &t.created_at.as_micros(),
                    &t.rotation_period_secs.map(|s| s as i64),
                    &micros(t.rotated_at),
                ],
            )
            .await
            .map_err(|e| conflict(e, || format!("target {}", t.name)))?;
        Ok(())
    }

    async fn target(&self, name: &str) -> Result<Option<Target>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {TARGET_COLUMNS} FROM targets WHERE name = $1"
            ))
            .await?;
        c.query_opt(&st, &[&name])
            .await?
            .map(|r| target_row(&r))
            .transpose()
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {TARGET_COLUMNS} FROM targets ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(target_row).collect()
    }

    async fn insert_grant(&self, g: &Grant) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &g.id,
                    &g.account,
                    &g.target,
                    &g.rule.to_string(),
                    &g.created_by,
                    &g.created_at.as_micros(),
                    &micros(g.expires_at),
                    &micros(g.last_used_at),
                ],
            )
            .await
            .map_err(|e| conflict(e, || format!("grant {}", g.id)))?;
        Ok(())
    }

    async fn grants(&self, account: Option<&str>, target: Option<&str>) -> Result<Vec<Grant>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE removed_at IS NULL \
                 AND ($1::text IS NULL OR account = $1) AND ($2::text IS NULL OR target = $2) ORDER BY created_at, id"
            ))
            .await?;
        let rows = c.query(&st, &[&account, &target]).await?;
        rows.iter().map(grant_row).collect()
    }

    async fn remove_grant(&self, id: &str, at: Timestamp) -> Result<Grant> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("UPDATE grants SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL RETURNING {GRANT_COLUMNS}"),
                &[&id, &at.as_micros()],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
        grant_row(&row)
    }

    async fn record_grant_use(&self, uses: &[(String, Timestamp)]) -> Result<()> {
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let at: Vec<i64> = uses.iter().map(|(_, t)| t.as_micros()).collect();
        self.client()
            .await?
            .execute(
                "UPDATE grants g SET last_used_at = GREATEST(g.last_used_at, u.at) \
                 FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS t(id, at) GROUP BY id) u \
                 WHERE g.id = u.id",
                &[&ids, &at],
            )
            .await?;
        Ok(())
    }

    async fn append_entries(&self, entries: Vec<LedgerEntry>, tree: Vec<TreeHash>) -> Result<()> {
        let mut seq = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        let mut kinds = Vec::with_capacity(entries.len());
        let mut times = Vec::with_capacity(entries.len());
        let mut accounts = Vec::with_capacity(entries.len());
        let mut categories = Vec::with_capacity(entries.len());
        let mut targets = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        let mut leaves = Vec::with_capacity(entries.len());
        let mut pruned = Vec::with_capacity(entries.len());
        for e in &entries {
            seq.push(rows::to_i64("seq", e.seq)?);
            ids.push(e.event_id.to_string());
            kinds.push(e.kind.as_str());
            times.push(e.time.as_micros());
            accounts.push(e.account.as_deref());
            categories.push(e.category.as_str());
            targets.push(e.target.as_deref());
            bodies.push(std::str::from_utf8(&e.body).map_err(|err| {
                StoreError::Corrupt(format!("entry {} is not UTF-8: {err}", e.seq))
            })?);
            leaves.push(rows::hex32(&e.leaf_hash));
            pruned.push(e.pruned_at.map(Timestamp::as_micros));
        }
        let tree_idx = tree
            .iter()
            .map(|h| rows::to_i64("tree index", h.index))
            .collect::<Result<Vec<_>>>()?;
        let tree_hash: Vec<String> = tree.iter().map(|h| rows::hex32(&h.hash)).collect();
        let mut c = self.client().await?;
        let insert_entries = c
            .prepare_cached(&format!(
                "INSERT INTO ledger_entries ({ENTRY_COLUMNS}) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])"
            ))
            .await?;
        let insert_tree = c
            .prepare_cached(
                "INSERT INTO ledger_tree (idx, hash) SELECT * FROM UNNEST($1::bigint[], $2::text[])",
            )
            .await?;
        let lock_stmt = c.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
        let next_stmt = c
            .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entries")
            .await?;
        let mark_stmt = c.prepare_cached(rows::ACCOUNT_INDEX_MARK_SQL).await?;
        let tx = c.transaction().await?;
        if self.relaxed.load(std::sync::atomic::Ordering::Relaxed) {
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
                .await?;
        }
        // One sequencer at a time across every instance sharing this database: the lock is held
        // until commit, and the next free position is read under it. The three statements are
        // pipelined (sent together, run in order), so a batch costs three round trips in all.
        // Every statement is prepared beforehand, so each request goes out on its first poll.
        let lock = tx.execute(&lock_stmt, &[&SEQUENCER_LOCK]);
        let next = tx.query_one(&next_stmt, &[]);
        let first = seq.first().copied().unwrap_or(0);
        let entries_written = async {
            tx.execute(
                &insert_entries,
                &[
                    &seq,
                    &ids,
                    &kinds,
                    &times,
                    &accounts,
                    &categories,
                    &targets,
                    &bodies,
                    &leaves,
                    &pruned,
                ],
            )
            .await
            .map_err(|e| conflict(e, || format!("ledger position {first}")))
        };
        let tree_written = async {
            tx.execute(&insert_tree, &[&tree_idx, &tree_hash])
                .await
                .map_err(|e| conflict(e, || "tree hash".to_owned()))
        };
        let mark = tx.query_one(&mark_stmt, &[]);
        // `biased` polls in the order written, so the requests go out (and run) in that order:
        // the lock, then the read of the next position, then the inserts, then the account
        // index's mark.
        let (locked, next, entries_written, tree_written, mark) =
            tokio::join!(biased; lock, next, entries_written, tree_written, mark);
        locked?;
        let next: i64 = next?.get(0);
        if !seq.is_empty() && next != first {
            // Dropping the transaction rolls the batch back.
            return Err(StoreError::Conflict(format!(
                "ledger position {first} (next free is {next})"
            )));
        }
        entries_written?;
        tree_written?;
        let mark: i64 = mark?.get(0);
        let end = seq.last().map_or(0, |s| s + 1);
        if let Some((statements, bounds)) = rows::index_accounts(mark, end, '$') {
            // Not prepared ahead: planned with the bounds' values (a short range), once per
            // fill.
            for sql in statements {
                tx.execute(sql.as_str(), &[&bounds[0], &bounds[1]]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let idx = indexes
            .iter()
            .map(|&i| rows::to_i64("tree index", i))
            .collect::<Result<Vec<_>>>()?;
        let rows = self
            .client()
            .await?
            .query(
                "SELECT t.idx, t.hash FROM UNNEST($1::bigint[]) WITH ORDINALITY AS q(idx, ord) \
                 LEFT JOIN ledger_tree t ON t.idx = q.idx ORDER BY q.ord",
                &[&idx],
            )
            .await?;
        rows.iter()
            .zip(indexes)
            .map(|(r, i)| {
                let hex: Option<String> = r.try_get(1)?;
                let hex = hex.ok_or_else(|| StoreError::NotFound(format!("tree hash {i}")))?;
                rows::parse_hex32("tree hash", &hex)
            })
            .collect()
    }

    async fn leaf_hashes(&self, positions: &[u64]) -> Result<Vec<[u8; 32]>> {
        let seqs = positions
            .iter()
            .map(|&p| rows::to_i64("seq", p))
            .collect::<Result<Vec<_>>>()?;
        let rows = self
            .client()
            .await?
            .query(
                "SELECT e.leaf_hash FROM UNNEST($1::bigint[]) WITH ORDINALITY AS q(seq, ord) \
                 LEFT JOIN ledger_entries e ON e.seq = q.seq ORDER BY q.ord",
                &[&seqs],
            )
            .await?;
        rows.iter()
            .zip(positions)
            .map(|(r, p)| {
                let hex: Option<String> = r.try_get(0)?;
                let hex = hex.ok_or_else(|| StoreError::NotFound(format!("ledger entry {p}")))?;
                rows::parse_hex32("leaf hash", &hex)
            })
            .collect()
    }

    async fn entries(&self, from: u64, limit: u32) -> Result<Vec<LedgerEntry>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq >= $1 ORDER BY seq LIMIT $2"),
                &[&rows::to_i64("seq", from)?, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                LedgerEntry::try_from(EntryRow {
                    seq: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    time: r.try_get(3)?,
                    account: r.try_get(4)?,
                    category: r.try_get(5)?,
                    target: r.try_get(6)?,
                    body: r.try_get(7)?,
                    leaf_hash: r.try_get(8)?,
                    pruned_at: r.try_get(9)?,
                })
            })
            .collect()
    }

    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO ledger_checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
                &[&rows::to_i64("size", cp.size)?, &cp.note, &cp.created_at.as_micros()],
            )
            .await?;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self
            .checkpoints_where("ORDER BY size DESC LIMIT 1", &[])
            .await?
            .pop())
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let size = rows::to_i64("size", size)?;
        Ok(self
            .checkpoints_where("WHERE size = $1", &[&size])
            .await?
            .pop())
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.checkpoints_where("ORDER BY size", &[]).await
    }

    async fn prune_entries(&self, before: Timestamp, below: u64, at: Timestamp) -> Result<u64> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE ledger_entries SET body = '', pruned_at = $3 \
                 WHERE time < $1 AND seq < $2 AND pruned_at IS NULL",
                &[
                    &before.as_micros(),
                    &rows::to_i64("seq", below)?,
                    &at.as_micros(),
                ],
            )
            .await?;
        Ok(n)
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await?;
        Ok(
            c.query_one("SELECT value FROM settings WHERE name = $1", &[&name])
                .await?
                .get(0),
        )
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .map(|r| r.get(0)))
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &value],
            )
            .await?;
        Ok(())
    }

    async fn first_seq_since(&self, time: Timestamp) -> Result<Option<u64>> {
        let v: Option<i64> = self
            .client()
            .await?
            .query_one(
                "SELECT MIN(seq) FROM ledger_entries WHERE kind = 'event' AND time >= $1",
                &[&time.as_micros()],
            )
            .await?
            .get(0);
        Ok(v.and_then(|v| u64::try_from(v).ok()))
    }

    async fn last_seq(&self) -> Result<Option<u64>> {
        let v: Option<i64> = self
            .client()
            .await?
            .query_one("SELECT MAX(seq) FROM ledger_entries", &[])
            .await?
            .get(0);
        Ok(v.and_then(|v| u64::try_from(v).ok()))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let (sql, values) = rows::event_query(query, '$');
        let params: Vec<Box<dyn ToSql + Sync + Send>> = values
            .into_iter()
            .map(|v| -> Box<dyn ToSql + Sync + Send> {
                match v {
                    FilterValue::Text(s) => Box::new(s),
                    FilterValue::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.client().await?.query(&sql, &refs).await?;
        rows.iter()
            .map(|r| {
                let e: String = r.try_get(0)?;
                let o: Option<String> = r.try_get(1)?;
                rows::event_from_bodies(&e, o.as_deref())
            })
            .collect()
    }

    async fn insert_alert(&self, alert: &Alert, sinks: &[String]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id = alert.id.to_string();
        tx.execute(
            &format!("INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &id,
                &alert.status.as_str(),
                &alert.detector,
                &alert.account,
                &alert.severity.as_str(),
                &alert.last_seen.as_micros(),
                &rows::alert_body(alert),
            ],
        )
        .await?;
        for sink in sinks {
            tx.execute(
                "INSERT INTO alert_outbox (sink, alert_id, attempts) VALUES ($1, $2, 0)",
                &[sink, &id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_alert(&self, alert: &Alert) -> Result<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE alerts SET status = $2, severity = $3, last_seen = $4, body = $5 \
                 WHERE id = $1",
                &[
                    &alert.id.to_string(),
                    &alert.status.as_str(),
                    &alert.severity.as_str(),
                    &alert.last_seen.as_micros(),
                    &rows::alert_body(alert),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("alert {}", alert.id)));
        }
        Ok(())
    }

    async fn alert(&self, id: uuid::Uuid) -> Result<Option<Alert>> {
        self.client()
            .await?
            .query_opt("SELECT body FROM alerts WHERE id = $1", &[&id.to_string()])
            .await?
            .map(|r| rows::alert_from_body(&r.get::<_, String>(0)))
            .transpose()
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>> {
        let (sql, values) = rows::alert_query(query, '$');
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
        self.client()
            .await?
            .query(&sql, &refs)
            .await?
            .iter()
            .map(|r| rows::alert_from_body(&r.get::<_, String>(0)))
            .collect()
    }

    async fn outbox_due(&self, sink: &str, limit: u32) -> Result<Vec<OutboxItem>> {
        self.client()
            .await?
            .query(
                "SELECT a.body, o.attempts FROM alert_outbox o JOIN alerts a ON a.id = o.alert_id \
                 WHERE o.sink = $1 ORDER BY o.alert_id LIMIT $2",
                &[&sink, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(OutboxItem {
                    alert: rows::alert_from_body(&r.get::<_, String>(0))?,
                    attempts: r.get::<_, i64>(1).max(0) as u64,
                })
            })
            .collect()
    }

    async fn outbox_delivered(&self, sink: &str, alert_id: uuid::Uuid) -> Result<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM alert_outbox WHERE sink = $1 AND alert_id = $2",
                &[&sink, &alert_id.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn outbox_failed(&self, sink: &str, alert_id: uuid::Uuid, error: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = $3 \
                 WHERE sink = $1 AND alert_id = $2",
                &[&sink, &alert_id.to_string(), &error],
            )
            .await?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>> {
        Ok(self
            .client()
            .await?
            .query(rows::OUTBOX_BACKLOG_SQL, &[])
            .await?
            .iter()
            .map(|r| OutboxBacklog {
                sink: r.get(0),
                pending: r.get::<_, i64>(1).max(0) as u64,
                last_error: r.get(2),
            })
            .collect())
    }

    async fn add_usage(&self, rows: &[UsageRow], position: (&str, &str)) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let st = tx
            .prepare_cached(
                "INSERT INTO usage_daily (day, account, target, grant_id, action, count, first_at, last_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (day, account, target, grant_id, action) DO UPDATE SET \
                 count = usage_daily.count + excluded.count, \
                 first_at = LEAST(usage_daily.first_at, excluded.first_at), \
                 last_at = GREATEST(usage_daily.last_at, excluded.last_at)",
            )
            .await?;
        for r in rows {
            tx.execute(
                &st,
                &[
                    &r.day.as_micros(),
                    &r.account,
                    &r.target,
                    &r.grant_id,
                    &r.action,
                    &rows::to_i64("usage count", r.count)?,
                    &r.first_at.as_micros(),
                    &r.last_at.as_micros(),
                ],
            )
            .await?;
        }
        tx.execute(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&position.0, &position.1],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn usage(&self, since: Timestamp, account: Option<&str>) -> Result<Vec<UsageRow>> {
        let day = rows::day_of(since);
        self.client()
            .await?
            .query(&rows::usage_sql('$', "::text"), &[&day, &account])
            .await?
            .iter()
            .map(|r| {
                Ok(UsageRow {
                    day: Timestamp::from_micros(day),
                    account: r.try_get(0)?,
                    target: r.try_get(1)?,
                    grant_id: r.try_get(2)?,
                    action: r.try_get(3)?,
                    count: r.try_get::<_, i64>(4)?.max(0) as u64,
                    first_at: Timestamp::from_micros(r.try_get(5)?),
                    last_at: Timestamp::from_micros(r.try_get(6)?),
                })
            })
            .collect()
    }

    async fn daily_usage(
        &self,
        since: Timestamp,
        account: Option<&str>,
    ) -> Result<Vec<(Timestamp, u64)>> {
        let day = rows::day_of(since);
        self.client()
            .await?
            .query(&rows::daily_usage_sql('$', "::text"), &[&day, &account])
            .await?
            .iter()
            .map(|r| {
                Ok((
                    Timestamp::from_micros(r.try_get(0)?),
                    r.try_get::<_, i64>(1)?.max(0) as u64,
                ))
            })
            .collect()
    }

    async fn replace_grants(
        &self,
        version: &GrantSetVersion,
        remove: &[String],
        add: &[Grant],
        at: Timestamp,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO grant_versions (account, version, body) VALUES ($1, $2, $3)",
            &[
                &version.account,
                &rows::to_i64("version", version.version)?,
                &rows::version_body(version),
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict(format!(
                    "version {} of {}'s grants",
                    version.version, version.account
                ))
            } else {
                e.into()
            }
        })?;
        for id in remove {
            let n = tx
                .execute(
                    "UPDATE grants SET removed_at = $2 WHERE id = $1 AND account = $3 AND removed_at IS NULL",
                    &[id, &at.as_micros(), &version.account],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("grant {id}")));
            }
        }
        for g in add {
            tx.execute(
                &format!(
                    "INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &g.id,
                    &g.account,
                    &g.target,
                    &g.rule.to_string(),
                    &g.created_by,
                    &g.created_at.as_micros(),
                    &g.expires_at.map(Timestamp::as_micros),
                    &g.last_used_at.map(Timestamp::as_micros),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn grant_versions(&self, account: &str) -> Result<Vec<GrantSetVersion>> {
        self.client()
            .await?
            .query(
                "SELECT body FROM grant_versions WHERE account = $1 ORDER BY version",
                &[&account],
            )
            .await?
            .iter()
            .map(|r| rows::version_from_body(&r.get::<_, String>(0)))
            .collect()
    }

    async fn insert_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if let Some(open) = tx
            .query_opt("SELECT name FROM reviews WHERE status = 'open'", &[])
            .await?
        {
            return Err(StoreError::Conflict(format!(
                "open review {}",
                open.get::<_, String>(0)
            )));
        }
        tx.execute(
            &format!("INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &review.name,
                &review.status.as_str(),
                &review.started_by,
                &review.started_at.as_micros(),
                &review.closed_by,
                &review.closed_at.map(Timestamp::as_micros),
                &review.body.to_string(),
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict(format!("review {}", review.name))
            } else {
                e.into()
            }
        })?;
        let st = tx
            .prepare_cached(&format!(
                "INSERT INTO review_items ({ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .await?;
        for item in items {
            let (decision, decided_at, remove, body) = reviews::item_columns(item);
            tx.execute(
                &st,
                &[
                    &item.review,
                    &item.account,
                    &decision,
                    &item.justification,
                    &item.decided_by,
                    &decided_at,
                    &remove,
                    &item.outcome,
                    &body,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn review(&self, name: &str) -> Result<Option<Review>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE name = $1"),
                &[&name],
            )
            .await?
            .map(|r| review_row(&r))
            .transpose()
    }

    async fn reviews(&self) -> Result<Vec<Review>> {
        self.client()
            .await?
            .query(
                &format!("SELECT {REVIEW_COLUMNS} FROM reviews ORDER BY started_at, name"),
                &[],
            )
            .await?
            .iter()
            .map(review_row)
            .collect()
    }

    async fn review_items(&self, review: &str) -> Result<Vec<ReviewItem>> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items WHERE review = $1 ORDER BY account"
                ),
                &[&review],
            )
            .await?
            .iter()
            .map(|r| {
                reviews::ItemRow {
                    review: r.try_get(0)?,
                    account: r.try_get(1)?,
                    decision: r.try_get(2)?,
                    justification: r.try_get(3)?,
                    decided_by: r.try_get(4)?,
                    decided_at: r.try_get(5)?,
                    remove_grants: r.try_get(6)?,
                    outcome: r.try_get(7)?,
                    body: r.try_get(8)?,
                }
                .into_item()
            })
            .collect()
    }

    async fn decide_review_item(&self, item: &ReviewItem) -> Result<()> {
        let (decision, decided_at, remove, _) = reviews::item_columns(item);
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE review_items SET decision = $3, justification = $4, decided_by = $5, \
                 decided_at = $6, remove_grants = $7 WHERE review = $1 AND account = $2 \
                 AND review IN (SELECT name FROM reviews WHERE status = 'open')",
                &[
                    &item.review,
                    &item.account,
                    &decision,
                    &item.justification,
                    &item.decided_by,
                    &decided_at,
                    &remove,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "account {} in open review {}",
                item.account, item.review
            )));
        }
        Ok(())
    }

    async fn close_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE reviews SET status = 'closed', closed_by = $2, closed_at = $3 \
                 WHERE name = $1 AND status = 'open'",
                &[
                    &review.name,
                    &review.closed_by,
                    &review.closed_at.map(Timestamp::as_micros),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("open review {}", review.name)));
        }
        for item in items {
            tx.execute(
                "UPDATE review_items SET outcome = $3 WHERE review = $1 AND account = $2",
                &[&item.review, &item.account, &item.outcome],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn review_row(r: &Row) -> Result<Review> {
    reviews::review_from(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
    )
}
