//! The embedded SQLite backend: one database file in WAL mode, no external service.
//!
//! rusqlite is synchronous, so every call runs on Tokio's blocking pool. Writes go through one
//! connection (SQLite allows one writer at a time anyway, and a single connection avoids busy
//! retries); reads use a small pool of their own connections, which WAL lets run beside the
//! writer. `synchronous = FULL` makes every commit durable before it returns: the ledger
//! acknowledges an event only after that, and group commit amortises the fsync.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
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

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

/// A Warden store in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Room for the multi-row inserts of every chunk size besides the usual statements.
    conn.set_prepared_statement_cache_capacity(INSERT_CHUNK * 2 + 32);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path)).await?
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        let mut conn = Connection::open(&path).map_err(|e| {
            StoreError::Open(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        })?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open(format!(
                "{}: SQLite refused WAL mode (got {mode})",
                path.display()
            )));
        }
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let result = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await?
    }
}

/// Rows per multi-row `INSERT`: one statement per chunk instead of one per row is most of the
/// cost of appending to the ledger (binding, stepping and resetting a statement per row).
const INSERT_CHUNK: usize = 64;

/// `INSERT INTO table (columns) VALUES (?, …), …` for `rows` rows of `width` columns.
fn insert_sql(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

fn map_conflict(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |err| {
        if is_unique_violation(&err) {
            StoreError::Conflict(what)
        } else {
            err.into()
        }
    }
}

fn insert_entries(tx: &rusqlite::Transaction<'_>, entries: &[LedgerEntry]) -> Result<()> {
    const WIDTH: usize = 10;
    for chunk in entries.chunks(INSERT_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|e| e.event_id.to_string()).collect();
        let leaves: Vec<String> = chunk.iter().map(|e| rows::hex32(&e.leaf_hash)).collect();
        let mut values: Vec<rusqlite::types::ToSqlOutput<'_>> =
            Vec::with_capacity(chunk.len() * WIDTH);
        for (i, e) in chunk.iter().enumerate() {
            use rusqlite::types::{ToSqlOutput, Value, ValueRef};
            fn text(s: &str) -> ToSqlOutput<'_> {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            fn opt_text(s: Option<&str>) -> ToSqlOutput<'_> {
                s.map_or(ToSqlOutput::Owned(Value::Null), text)
            }
            let int = |v: i64| ToSqlOutput::Owned(Value::Integer(v));
            let body = std::str::from_utf8(&e.body).map_err(|err| {
                StoreError::Corrupt(format!("entry {} is not UTF-8: {err}", e.seq))
            })?;
            values.extend([
                int(rows::to_i64("seq", e.seq)?),
                text(&ids[i]),
                text(e.kind.as_str()),
                int(e.time.as_micros()),
                opt_text(e.account.as_deref()),
                text(&e.category),
                opt_text(e.target.as_deref()),
                text(body),
                text(&leaves[i]),
                e.pruned_at
                    .map_or(ToSqlOutput::Owned(Value::Null), |t| int(t.as_micros())),
            ]);
        }
        let mut st = tx.prepare_cached(&insert_sql(
            "ledger_entries",
            ENTRY_COLUMNS,
            WIDTH,
            chunk.len(),
        ))?;
        st.execute(rusqlite::params_from_iter(values.iter()))
            .map_err(map_conflict(format!("ledger position {}", chunk[0].seq)))?;
    }
    Ok(())
}

fn insert_tree(tx: &rusqlite::Transaction<'_>, tree: &[TreeHash]) -> Result<()> {
    for chunk in tree.chunks(INSERT_CHUNK) {
        let hashes: Vec<String> = chunk.iter().map(|h| rows::hex32(&h.hash)).collect();
        let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(chunk.len() * 2);
        for (h, hex) in chunk.iter().zip(hashes) {
            values.push(rusqlite::types::Value::Integer(rows::to_i64(
                "tree index",
                h.index,
            )?));
            values.push(rusqlite::types::Value::Text(hex));
        }
        let mut st = tx.prepare_cached(&insert_sql("ledger_tree", "idx, hash", 2, chunk.len()))?;
        st.execute(rusqlite::params_from_iter(values.iter()))
            .map_err(map_conflict(format!("tree hash {}", chunk[0].index)))?;
    }
    Ok(())
}

impl SqliteStore {
    async fn checkpoints_where(
        &self,
        clause: &'static str,
        arg: Option<i64>,
    ) -> Result<Vec<StoredCheckpoint>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT size, note, created_at FROM ledger_checkpoints {clause}"
            ))?;
            let params: Vec<i64> = arg.into_iter().collect();
            let rows = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<Vec<(i64, String, i64)>>>()?;
            rows.into_iter()
                .map(|(s, n, t)| rows::checkpoint_from(s, n, t))
                .collect()
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        for stmt in statements(m, &migrations::SQLITE) {
            tx.execute_batch(&stmt)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![
                m.version,
                m.name,
                warden_core::Clock::now(&warden_core::SystemClock).as_micros()
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        name: r.get(0)?,
        owner: r.get(1)?,
        purpose: r.get(2)?,
        labels: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        disabled_reason: r.get(7)?,
        last_used_at: r.get(8)?,
    })
}

fn key_row(r: &Row<'_>, at: usize) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        key_id: r.get(at)?,
        account: r.get(at + 1)?,
        digest: r.get(at + 2)?,
        created_by: r.get(at + 3)?,
        created_at: r.get(at + 4)?,
        expires_at: r.get(at + 5)?,
        last_used_at: r.get(at + 6)?,
        revoked_at: r.get(at + 7)?,
        superseded_by: r.get(at + 8)?,
        scram: r.get(at + 9)?,
    })
}

fn admin_row(r: &Row<'_>) -> rusqlite::Result<AdminRow> {
    Ok(AdminRow {
        name: r.get(0)?,
        token_id: r.get(1)?,
        digest: r.get(2)?,
        created_by: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn target_row(r: &Row<'_>) -> rusqlite::Result<TargetRow> {
    Ok(TargetRow {
        name: r.get(0)?,
        kind: r.get(1)?,
        upstream: r.get(2)?,
        ca_bundle: r.get(3)?,
        credentials: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        rotation_period_secs: r.get(7)?,
        rotated_at: r.get(8)?,
    })
}

fn grant_row(r: &Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        account: r.get(1)?,
        target: r.get(2)?,
        rule: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        last_used_at: r.get(7)?,
    })
}

fn get_key(conn: &Connection, key_id: &str) -> Result<Option<KeyRecord>> {
    conn.query_row(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?1"),
        [key_id],
        |r| key_row(r, 0),
    )
    .optional()?
    .map(KeyRecord::try_from)
    .transpose()
}

fn insert_key_row(conn: &Connection, k: &KeyRecord) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            k.key_id,
            k.account.as_str(),
            k.digest.to_hex(),
            k.created_by,
            k.created_at.as_micros(),
            k.expires_at.map(Timestamp::as_micros),
            k.last_used_at.map(Timestamp::as_micros),
            k.revoked_at.map(Timestamp::as_micros),
            k.superseded_by,
            k.scram,
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("key {}", k.key_id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn set_durability(&self, durability: Durability) -> Result<()> {
        let level = match durability {
            Durability::Fsync => "FULL",
            Durability::Os => "NORMAL",
        };
        self.write(move |c| Ok(c.pragma_update(None, "synchronous", level)?))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }

    async fn insert_admin(&self, admin: &Admin) -> Result<()> {
        let a = admin.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO admins ({ADMIN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    a.name,
                    a.token_id,
                    a.digest.to_hex(),
                    a.created_by,
                    a.created_at.as_micros()
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("admin {}", a.name))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn admin_by_token_id(&self, token_id: &str) -> Result<Option<Admin>> {
        let id = token_id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE token_id = ?1"),
                [id],
                admin_row,
            )
            .optional()?
            .map(Admin::try_from)
            .transpose()
        })
        .await
    }

    async fn set_admin_password(&self, name: &str, password: &AdminPassword) -> Result<()> {
        let (name, p) = (name.to_owned(), password.clone());
        self.write(move |c| {
            let exists = c
                .query_row("SELECT 1 FROM admins WHERE name = ?1", [&name], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("admin {name}")));
            }
            c.execute(
                "INSERT INTO admin_passwords (name, hash, set_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![name, p.hash, p.set_at.as_micros()],
            )?;
            Ok(())
        })
        .await
    }

    async fn admin_password(&self, name: &str) -> Result<Option<(Admin, AdminPassword)>> {
        let name = name.to_owned();
        self.read(move |c| {
            let row = c
                .query_row(ADMIN_PASSWORD_SELECT, [name], |r| {
                    Ok((admin_row(r)?, r.get::<_, String>(5)?, r.get::<_, i64>(6)?))
                })
                .optional()?;
            row.map(|(admin, hash, set_at)| {
                let password = AdminPassword {
                    hash,
                    set_at: Timestamp::from_micros(set_at),
                };
                Ok((Admin::try_from(admin)?, password))
            })
            .transpose()
        })
        .await
    }

    async fn list_admins(&self) -> Result<Vec<Admin>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {ADMIN_COLUMNS} FROM admins ORDER BY name"))?;
            let rows = st
                .query_map([], admin_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(Admin::try_from).collect()
        })
        .await
    }

    async fn insert_account(&self, account: &Account) -> Result<()> {
        let a = account.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    a.name.as_str(),
                    a.owner.as_str(),
                    a.purpose,
                    rows::labels_json(&a),
                    a.created_by,
                    a.created_at.as_micros(),
                    a.expires_at.map(Timestamp::as_micros),
                    a.disabled_reason,
                    a.last_used_at.map(Timestamp::as_micros),
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("account {}", a.name))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn account(&self, name: &str) -> Result<Option<Account>> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"),
                [name],
                account_row,
            )
            .optional()?
            .map(Account::try_from)
            .transpose()
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"
            ))?;
            let rows = st
                .query_map([], account_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(Account::try_from).collect()
        })
        .await
    }

    async fn set_account_disabled(&self, name: &str, reason: Option<&str>) -> Result<Account> {
        let name = name.to_owned();
        let reason = reason.map(str::to_owned);
        self.write(move |c| {
            let row = c
                .query_row(
                    &format!(
                        "UPDATE accounts SET disabled_reason = ?2 WHERE name = ?1 RETURNING {ACCOUNT_COLUMNS}"
                    ),
                    params![name, reason],
                    account_row,
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("account {name}")))?;
            Account::try_from(row)
        })
        .await
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        let k = key.clone();
        self.write(move |c| insert_key_row(c, &k)).await
    }

    async fn key_with_account(&self, key_id: &str) -> Result<Option<(KeyRecord, Account)>> {
        let id = key_id.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT a.name, a.owner, a.purpose, a.labels, a.created_by, a.created_at, a.expires_at, \
                 a.disabled_reason, a.last_used_at, k.key_id, k.account, k.digest, k.created_by, \
                 k.created_at, k.expires_at, k.last_used_at, k.revoked_at, k.superseded_by, k.scram \
                 FROM api_keys k JOIN accounts a ON a.name = k.account WHERE k.key_id = ?1",
            )?;
            let found = st
                .query_row([id], |r| Ok((account_row(r)?, key_row(r, 9)?)))
                .optional()?;
            found
                .map(|(a, k)| Ok((KeyRecord::try_from(k)?, Account::try_from(a)?)))
                .transpose()
        })
        .await
    }

    async fn list_keys(&self, account: Option<&str>) -> Result<Vec<KeyRecord>> {
        let account = account.map(str::to_owned);
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR account = ?1) ORDER BY created_at DESC, key_id"
            ))?;
            let rows = st
                .query_map([account], |r| key_row(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(KeyRecord::try_from).collect()
        })
        .await
    }

    async fn rotate_keys(&self, new: &KeyRecord, grace_until: Timestamp) -> Result<Vec<String>> {
        let k = new.clone();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let superseded = {
                let mut st = tx.prepare(
                    "UPDATE api_keys SET superseded_by = ?2, \
                     expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < ?3 THEN expires_at ELSE ?3 END \
                     WHERE account = ?1 AND superseded_by IS NULL AND revoked_at IS NULL RETURNING key_id",
                )?;
                let ids = st
                    .query_map(params![k.account.as_str(), k.key_id, grace_until.as_micros()], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                ids
            };
            insert_key_row(&tx, &k)?;
            tx.commit()?;
            Ok(superseded)
        })
        .await
    }

    async fn revoke_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord> {
        let id = key_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE key_id = ?1",
                params![id, at.as_micros()],
            )?;
            get_key(c, &id)?.ok_or_else(|| StoreError::NotFound(format!("key {id}")))
        })
        .await
    }

    async fn expire_key(&self, key_id: &str, at: Timestamp) -> Result<KeyRecord> {
        let id = key_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE api_keys SET expires_at = MIN(COALESCE(expires_at, ?2), ?2) WHERE key_id = ?1",
                params![id, at.as_micros()],
            )?;
            get_key(c, &id)?.ok_or_else(|| StoreError::NotFound(format!("key {id}")))
        })
        .await
    }

    async fn record_usage(&self, uses: &[Usage]) -> Result<()> {
        let uses = uses.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            {
                let mut key = tx.prepare_cached(
                    "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE key_id = ?1",
                )?;
                let mut account = tx.prepare_cached(
                    "UPDATE accounts SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE name = ?1",
                )?;
                for u in &uses {
                    key.execute(params![u.key_id, u.at.as_micros()])?;
                    account.execute(params![u.account, u.at.as_micros()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_target_credentials(&self, name: &str, sealed: &str, at: Timestamp) -> Result<()> {
        let (name, sealed) = (name.to_owned(), sealed.to_owned());
        self.write(move |c| {
            let n = c.execute(
                "UPDATE targets SET credentials = ?1, rotated_at = ?3 WHERE name = ?2",
                params![sealed, name, at.as_micros()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("target {name}")));
            }
            Ok(())
        })
        .await
    }

    async fn insert_target(&self, target: &Target) -> Result<()> {
        let t = target.clone();
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO targets ({TARGET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    t.name,
                    t.kind.as_str(),
                    t.upstream,
                    t.ca_bundle,
                    t.credentials,
                    t.created_by,
                    t.created_at.as_micros(),
                    t.rotation_period_secs.map(|s| s as i64),
                    t.rotated_at.map(Timestamp::as_micros),
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("target {}", t.name))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn target(&self, name: &str) -> Result<Option<Target>> {
        let name = name.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TARGET_COLUMNS} FROM targets WHERE name = ?1"
            ))?
            .query_row([name], target_row)
            .optional()?
            .map(Target::try_from)
            .transpose()
        })
        .await
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TARGET_COLUMNS} FROM targets ORDER BY name"
            ))?;
            let rows = st
                .query_map([], target_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(Target::try_from).collect()
        })
        .await
    }

    async fn insert_grant(&self, grant: &Grant) -> Result<()> {
        let g = grant.clone();
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    g.id,
                    g.account,
                    g.target,
                    g.rule.to_string(),
                    g.created_by,
                    g.created_at.as_micros(),
                    g.expires_at.map(Timestamp::as_micros),
                    g.last_used_at.map(Timestamp::as_micros),
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("grant {}", g.id))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn grants(&self, account: Option<&str>, target: Option<&str>) -> Result<Vec<Grant>> {
        let (account, target) = (account.map(str::to_owned), target.map(str::to_owned));
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE removed_at IS NULL \
                 AND (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR target = ?2) ORDER BY created_at, id"
            ))?;
            let rows = st
                .query_map(params![account, target], grant_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(Grant::try_from).collect()
        })
        .await
    }

    async fn remove_grant(&self, id: &str, at: Timestamp) -> Result<Grant> {
        let id = id.to_owned();
        self.write(move |c| {
            let row = c
                .query_row(
                    &format!(
                        "UPDATE grants SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL RETURNING {GRANT_COLUMNS}"
                    ),
                    params![id, at.as_micros()],
                    grant_row,
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("grant {id}")))?;
            Grant::try_from(row)
        })
        .await
    }

    async fn record_grant_use(&self, uses: &[(String, Timestamp)]) -> Result<()> {
        let uses = uses.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "UPDATE grants SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1",
                )?;
                for (id, at) in &uses {
                    st.execute(params![id, at.as_micros()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn append_entries(&self, entries: Vec<LedgerEntry>, tree: Vec<TreeHash>) -> Result<()> {
        self.write(move |c| {
            let tx = c.transaction()?;
            if let Some(first) = entries.first() {
                let next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entries",
                    [],
                    |r| r.get(0),
                )?;
                if next != rows::to_i64("seq", first.seq)? {
                    return Err(StoreError::Conflict(format!(
                        "ledger position {} (next free is {next})",
                        first.seq
                    )));
                }
            }
            insert_entries(&tx, &entries)?;
            insert_tree(&tx, &tree)?;
            if let Some(last) = entries.last() {
                let end = rows::to_i64("seq", last.seq)? + 1;
                let mark: i64 = tx.query_row(rows::ACCOUNT_INDEX_MARK_SQL, [], |r| r.get(0))?;
                if let Some((statements, bounds)) = rows::index_accounts(mark, end, '?') {
                    for sql in statements {
                        tx.prepare_cached(&sql)?.execute(bounds)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let indexes = indexes.to_vec();
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT hash FROM ledger_tree WHERE idx = ?1")?;
            indexes
                .iter()
                .map(|&i| {
                    let hex: Option<String> = st
                        .query_row([rows::to_i64("tree index", i)?], |r| r.get(0))
                        .optional()?;
                    let hex = hex.ok_or_else(|| StoreError::NotFound(format!("tree hash {i}")))?;
                    rows::parse_hex32("tree hash", &hex)
                })
                .collect()
        })
        .await
    }

    async fn leaf_hashes(&self, positions: &[u64]) -> Result<Vec<[u8; 32]>> {
        let positions = positions.to_vec();
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT leaf_hash FROM ledger_entries WHERE seq = ?1")?;
            positions
                .iter()
                .map(|&p| {
                    let hex: Option<String> = st
                        .query_row([rows::to_i64("seq", p)?], |r| r.get(0))
                        .optional()?;
                    let hex =
                        hex.ok_or_else(|| StoreError::NotFound(format!("ledger entry {p}")))?;
                    rows::parse_hex32("leaf hash", &hex)
                })
                .collect()
        })
        .await
    }

    async fn entries(&self, from: u64, limit: u32) -> Result<Vec<LedgerEntry>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = st
                .query_map(params![rows::to_i64("seq", from)?, limit], |r| {
                    Ok(EntryRow {
                        seq: r.get(0)?,
                        event_id: r.get(1)?,
                        kind: r.get(2)?,
                        time: r.get(3)?,
                        account: r.get(4)?,
                        category: r.get(5)?,
                        target: r.get(6)?,
                        body: r.get(7)?,
                        leaf_hash: r.get(8)?,
                        pruned_at: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(LedgerEntry::try_from).collect()
        })
        .await
    }

    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()> {
        let cp = cp.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO ledger_checkpoints (size, note, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (size) DO NOTHING",
                params![rows::to_i64("size", cp.size)?, cp.note, cp.created_at.as_micros()],
            )?;
            Ok(())
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        self.checkpoints_where("ORDER BY size DESC LIMIT 1", None)
            .await
            .map(|mut v| v.pop())
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let size = rows::to_i64("size", size)?;
        self.checkpoints_where("WHERE size = ?1", Some(size))
            .await
            .map(|mut v| v.pop())
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.checkpoints_where("ORDER BY size", None).await
    }

    async fn prune_entries(&self, before: Timestamp, below: u64, at: Timestamp) -> Result<u64> {
        let below = rows::to_i64("seq", below)?;
        self.write(move |c| {
            let n = c.execute(
                "UPDATE ledger_entries SET body = '', pruned_at = ?3 \
                 WHERE time < ?1 AND seq < ?2 AND pruned_at IS NULL",
                params![before.as_micros(), below, at.as_micros()],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, value],
            )?;
            Ok(
                c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn first_seq_since(&self, time: Timestamp) -> Result<Option<u64>> {
        self.read(move |c| {
            let v: Option<i64> = c.query_row(
                "SELECT MIN(seq + 0) FROM ledger_entries WHERE kind = 'event' AND time >= ?1",
                [time.as_micros()],
                |r| r.get(0),
            )?;
            Ok(v.and_then(|v| u64::try_from(v).ok()))
        })
        .await
    }

    async fn last_seq(&self) -> Result<Option<u64>> {
        self.read(|c| {
            let v: Option<i64> =
                c.query_row("SELECT MAX(seq) FROM ledger_entries", [], |r| r.get(0))?;
            Ok(v.and_then(|v| u64::try_from(v).ok()))
        })
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let (sql, values) = rows::event_query(query, '?');
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let params = values.iter().map(|v| match v {
                FilterValue::Text(s) => rusqlite::types::Value::Text(s.clone()),
                FilterValue::Int(i) => rusqlite::types::Value::Integer(*i),
            });
            let bodies = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            bodies
                .iter()
                .map(|(e, o)| rows::event_from_bodies(e, o.as_deref()))
                .collect()
        })
        .await
    }

    async fn insert_alert(&self, alert: &Alert, sinks: &[String]) -> Result<()> {
        let (alert, sinks) = (alert.clone(), sinks.to_vec());
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                &format!(
                    "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    alert.id.to_string(),
                    alert.status.as_str(),
                    alert.detector,
                    alert.account,
                    alert.severity.as_str(),
                    alert.last_seen.as_micros(),
                    rows::alert_body(&alert),
                ],
            )?;
            for sink in &sinks {
                tx.execute(
                    "INSERT INTO alert_outbox (sink, alert_id, attempts) VALUES (?1, ?2, 0)",
                    params![sink, alert.id.to_string()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn update_alert(&self, alert: &Alert) -> Result<()> {
        let alert = alert.clone();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE alerts SET status = ?2, severity = ?3, last_seen = ?4, body = ?5 \
                 WHERE id = ?1",
                params![
                    alert.id.to_string(),
                    alert.status.as_str(),
                    alert.severity.as_str(),
                    alert.last_seen.as_micros(),
                    rows::alert_body(&alert),
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alert {}", alert.id)));
            }
            Ok(())
        })
        .await
    }

    async fn alert(&self, id: uuid::Uuid) -> Result<Option<Alert>> {
        self.read(move |c| {
            c.query_row(
                "SELECT body FROM alerts WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|b| rows::alert_from_body(&b))
            .transpose()
        })
        .await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>> {
        let (sql, values) = rows::alert_query(query, '?');
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let bodies = st
                .query_map(rusqlite::params_from_iter(values), |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            bodies.iter().map(|b| rows::alert_from_body(b)).collect()
        })
        .await
    }

    async fn outbox_due(&self, sink: &str, limit: u32) -> Result<Vec<OutboxItem>> {
        let sink = sink.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT a.body, o.attempts FROM alert_outbox o JOIN alerts a ON a.id = o.alert_id \
                 WHERE o.sink = ?1 ORDER BY o.alert_id LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![sink, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(body, attempts)| {
                    Ok(OutboxItem {
                        alert: rows::alert_from_body(&body)?,
                        attempts: attempts.max(0) as u64,
                    })
                })
                .collect()
        })
        .await
    }

    async fn outbox_delivered(&self, sink: &str, alert_id: uuid::Uuid) -> Result<()> {
        let sink = sink.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM alert_outbox WHERE sink = ?1 AND alert_id = ?2",
                params![sink, alert_id.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn outbox_failed(&self, sink: &str, alert_id: uuid::Uuid, error: &str) -> Result<()> {
        let (sink, error) = (sink.to_owned(), error.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?3 \
                 WHERE sink = ?1 AND alert_id = ?2",
                params![sink, alert_id.to_string(), error],
            )?;
            Ok(())
        })
        .await
    }

    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>> {
        self.read(|c| {
            let mut st = c.prepare_cached(rows::OUTBOX_BACKLOG_SQL)?;
            let rows = st
                .query_map([], |r| {
                    Ok(OutboxBacklog {
                        sink: r.get(0)?,
                        pending: r.get::<_, i64>(1)?.max(0) as u64,
                        last_error: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn add_usage(&self, rows: &[UsageRow], position: (&str, &str)) -> Result<()> {
        let rows = rows.to_vec();
        let (name, value) = (position.0.to_owned(), position.1.to_owned());
        self.write(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO usage_daily (day, account, target, grant_id, action, count, first_at, last_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (day, account, target, grant_id, action) DO UPDATE SET \
                     count = usage_daily.count + excluded.count, \
                     first_at = MIN(usage_daily.first_at, excluded.first_at), \
                     last_at = MAX(usage_daily.last_at, excluded.last_at)",
                )?;
                for r in &rows {
                    st.execute(params![
                        r.day.as_micros(),
                        r.account,
                        r.target,
                        r.grant_id,
                        r.action,
                        rows::to_i64("usage count", r.count)?,
                        r.first_at.as_micros(),
                        r.last_at.as_micros(),
                    ])?;
                }
            }
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn usage(&self, since: Timestamp, account: Option<&str>) -> Result<Vec<UsageRow>> {
        let account = account.map(str::to_owned);
        let day = rows::day_of(since);
        self.read(move |c| {
            let mut st = c.prepare_cached(&rows::usage_sql('?', ""))?;
            let rows = st
                .query_map(params![day, account], |r| {
                    Ok(UsageRow {
                        day: Timestamp::from_micros(day),
                        account: r.get(0)?,
                        target: r.get(1)?,
                        grant_id: r.get(2)?,
                        action: r.get(3)?,
                        count: r.get::<_, i64>(4)?.max(0) as u64,
                        first_at: Timestamp::from_micros(r.get(5)?),
                        last_at: Timestamp::from_micros(r.get(6)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn daily_usage(
        &self,
        since: Timestamp,
        account: Option<&str>,
    ) -> Result<Vec<(Timestamp, u64)>> {
        let account = account.map(str::to_owned);
        let day = rows::day_of(since);
        self.read(move |c| {
            let mut st = c.prepare_cached(&rows::daily_usage_sql('?', ""))?;
            let rows = st
                .query_map(params![day, account], |r| {
                    Ok((
                        Timestamp::from_micros(r.get(0)?),
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn replace_grants(
        &self,
        version: &GrantSetVersion,
        remove: &[String],
        add: &[Grant],
        at: Timestamp,
    ) -> Result<()> {
        let (version, remove, add) = (version.clone(), remove.to_vec(), add.to_vec());
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO grant_versions (account, version, body) VALUES (?1, ?2, ?3)",
                params![
                    version.account,
                    rows::to_i64("version", version.version)?,
                    rows::version_body(&version)
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "version {} of {}'s grants",
                        version.version, version.account
                    ))
                } else {
                    e.into()
                }
            })?;
            for id in &remove {
                let n = tx.execute(
                    "UPDATE grants SET removed_at = ?2 WHERE id = ?1 AND account = ?3 AND removed_at IS NULL",
                    params![id, at.as_micros(), version.account],
                )?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!("grant {id}")));
                }
            }
            for g in &add {
                tx.execute(
                    &format!(
                        "INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        g.id,
                        g.account,
                        g.target,
                        g.rule.to_string(),
                        g.created_by,
                        g.created_at.as_micros(),
                        g.expires_at.map(Timestamp::as_micros),
                        g.last_used_at.map(Timestamp::as_micros),
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn grant_versions(&self, account: &str) -> Result<Vec<GrantSetVersion>> {
        let account = account.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT body FROM grant_versions WHERE account = ?1 ORDER BY version",
            )?;
            let bodies = st
                .query_map([account], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            bodies.iter().map(|b| rows::version_from_body(b)).collect()
        })
        .await
    }

    async fn insert_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()> {
        let (review, items) = (review.clone(), items.to_vec());
        self.write(move |c| {
            let tx = c.transaction()?;
            let open: Option<String> = tx
                .query_row("SELECT name FROM reviews WHERE status = 'open'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(open) = open {
                return Err(StoreError::Conflict(format!("open review {open}")));
            }
            tx.execute(
                &format!("INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    review.name,
                    review.status.as_str(),
                    review.started_by,
                    review.started_at.as_micros(),
                    review.closed_by,
                    review.closed_at.map(Timestamp::as_micros),
                    review.body.to_string(),
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("review {}", review.name))
                } else {
                    e.into()
                }
            })?;
            {
                let mut st = tx.prepare_cached(&format!(
                    "INSERT INTO review_items ({ITEM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))?;
                for item in &items {
                    let (decision, decided_at, remove, body) = reviews::item_columns(item);
                    st.execute(params![
                        item.review,
                        item.account,
                        decision,
                        item.justification,
                        item.decided_by,
                        decided_at,
                        remove,
                        item.outcome,
                        body,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn review(&self, name: &str) -> Result<Option<Review>> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE name = ?1"),
                [name],
                review_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn reviews(&self) -> Result<Vec<Review>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews ORDER BY started_at, name"
            ))?;
            let rows = st
                .query_map([], review_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn review_items(&self, review: &str) -> Result<Vec<ReviewItem>> {
        let review = review.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM review_items WHERE review = ?1 ORDER BY account"
            ))?;
            let rows = st
                .query_map([review], review_item_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(reviews::ItemRow::into_item).collect()
        })
        .await
    }

    async fn decide_review_item(&self, item: &ReviewItem) -> Result<()> {
        let item = item.clone();
        self.write(move |c| {
            let (decision, decided_at, remove, _) = reviews::item_columns(&item);
            let n = c.execute(
                "UPDATE review_items SET decision = ?3, justification = ?4, decided_by = ?5, \
                 decided_at = ?6, remove_grants = ?7 WHERE review = ?1 AND account = ?2 \
                 AND review IN (SELECT name FROM reviews WHERE status = 'open')",
                params![
                    item.review,
                    item.account,
                    decision,
                    item.justification,
                    item.decided_by,
                    decided_at,
                    remove,
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "account {} in open review {}",
                    item.account, item.review
                )));
            }
            Ok(())
        })
        .await
    }

    async fn close_review(&self, review: &Review, items: &[ReviewItem]) -> Result<()> {
        let (review, items) = (review.clone(), items.to_vec());
        self.write(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE reviews SET status = 'closed', closed_by = ?2, closed_at = ?3 \
                 WHERE name = ?1 AND status = 'open'",
                params![
                    review.name,
                    review.closed_by,
                    review.closed_at.map(Timestamp::as_micros)
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("open review {}", review.name)));
            }
            for item in &items {
                tx.execute(
                    "UPDATE review_items SET outcome = ?3 WHERE review = ?1 AND account = ?2",
                    params![item.review, item.account, item.outcome],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn review_row(r: &Row<'_>) -> rusqlite::Result<Result<Review>> {
    Ok(reviews::review_from(
        r.get(0)?,
        &r.get::<_, String>(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        &r.get::<_, String>(6)?,
    ))
}

fn review_item_row(r: &Row<'_>) -> rusqlite::Result<reviews::ItemRow> {
    Ok(reviews::ItemRow {
        review: r.get(0)?,
        account: r.get(1)?,
        decision: r.get(2)?,
        justification: r.get(3)?,
        decided_by: r.get(4)?,
        decided_at: r.get(5)?,
        remove_grants: r.get(6)?,
        outcome: r.get(7)?,
        body: r.get(8)?,
    })
}
