//! The PostgreSQL gateway, driven by real clients (tokio-postgres, psql, pgbench, raw sockets)
//! against the local PostgreSQL through a real Warden. Tests whose subject does not touch the
//! store run on SQLite only.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{flip_last, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use warden_testkit::ScratchDb;

const WAIT: Duration = Duration::from_secs(10);

/// A Warden whose target `shop` is a scratch database on the local PostgreSQL, with tables
/// `public.orders`, `public.users` and `analytics.daily`, and account `svc` holding a key.
struct Shop {
    t: TestServer,
    db: ScratchDb,
    key: String,
    pg: SocketAddr,
}

impl Shop {
    async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    async fn start_with(backend: Backend, tune: impl FnOnce(&mut warden_server::Config)) -> Self {
        let t = TestServer::start_with(backend, tune).await;
        let db = ScratchDb::create().await;
        db.client()
            .await
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY, total int);
                 INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
                 CREATE TABLE users (id int, password text);
                 CREATE SCHEMA analytics;
                 CREATE TABLE analytics.daily (day int, n int);
                 INSERT INTO analytics.daily VALUES (1, 5);",
            )
            .await
            .unwrap();
        let url = db.url();
        let dbname = url.rsplit('/').next().unwrap();
        let (s, body) = t
            .post(
                "/v1/targets",
                &t.admin,
                json!({
                    "name": "shop", "kind": "postgres",
                    "upstream": format!("postgres://127.0.0.1:5432/{dbname}?sslmode=disable"),
                    "basic_auth": "postgres:unused-with-trust-auth",
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        t.account("svc").await;
        let key = t.key("svc").await;
        let pg = t.running.as_ref().unwrap().postgres_addr;
        Self { t, db, key, pg }
    }

    async fn grant(&self, allow: &str) -> String {
        grant(&self.t, "shop", allow).await
    }

    fn conninfo(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=shop password={password} sslmode=disable application_name=pg-test",
            self.pg.port()
        )
    }

    async fn connect(&self) -> Client {
        self.try_connect("svc", &self.key).await.expect("connects")
    }

    async fn try_connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        pg_connect(self.pg, user, "shop", password, "pg-test").await
    }

    /// `sql` events, waiting until `pred` holds for one of them.
    async fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let events = self.t.events("limit=500").await;
            if let Some(e) = events.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no event {what} among {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.t.stop().await;
        self.db.drop_db().await;
    }
}

/// Grants `svc` the rule `allow` on `target`, returning the grant's id.
async fn grant(t: &TestServer, target: &str, allow: &str) -> String {
    let (s, body) = t
        .post(
            "/v1/grants",
            &t.admin,
            json!({"account": "svc", "target": target, "allow": allow}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Connects to Warden's PostgreSQL gateway at `pg` (plaintext: the client is on loopback).
async fn pg_connect(
    pg: SocketAddr,
    user: &str,
    dbname: &str,
    password: &str,
    application: &str,
) -> Result<Client, tokio_postgres::Error> {
    let info = format!(
        "host=127.0.0.1 port={} user={user} dbname={dbname} password={password} sslmode=disable application_name={application}",
        pg.port()
    );
    let (client, connection) = tokio_postgres::connect(&info, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A throwaway cluster (SCRAM only, TLS with its own CA) with role `app` (password `password`)
/// owning database `appdb`.
async fn app_cluster(password: &str) -> warden_testkit::PgCluster {
    let cluster = warden_testkit::PgCluster::start().await;
    cluster.create_role("app", password).await;
    cluster.create_database("appdb", "app").await;
    cluster
}

/// Registers `appdb` of `cluster` as target `name`, logging in as `login` (`role:password`) and
/// trusting `ca`; `extra` fields are added to the request. Returns the target as shown.
async fn cluster_target(
    t: &TestServer,
    cluster: &warden_testkit::PgCluster,
    name: &str,
    login: &str,
    ca: Option<&str>,
    extra: Value,
) -> Value {
    let mut body = json!({
        "name": name, "kind": "postgres",
        "upstream": format!("postgres://localhost:{}/appdb", cluster.port()),
        "basic_auth": login, "ca_bundle": ca,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, shown) = t.post("/v1/targets", &t.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{shown}");
    shown
}

fn sql_of(e: &Value) -> &str {
    e["action"]["detail"]["sql"].as_str().unwrap_or_default()
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.as_db_error().map(|d| d.code())
}

async fn reads_writes_and_denials(backend: Backend) {
    let shop = Shop::start(backend).await;
    let read = shop.grant("read:public.*").await;
    let c = shop.connect().await;

    // Simple protocol.
    let rows = c
        .simple_query("SELECT id, total FROM orders ORDER BY id")
        .await
        .unwrap();
    let n = rows
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(n, 3);
    // Extended protocol with a prepared statement and parameters.
    let stmt = c
        .prepare("SELECT total FROM orders WHERE id = $1")
        .await
        .unwrap();
    for id in 1..=3 {
        let row = c.query_one(&stmt, &[&id]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), id * 10);
    }

    // A write without a write grant: 42501, naming what is missing; the session goes on.
    let err = c
        .execute("UPDATE orders SET total = 0 WHERE id = $1", &[&1])
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{err:?}"
    );
    let msg = err.as_db_error().unwrap().message().to_owned();
    assert!(msg.contains("write:public.orders"), "{msg}");
    let err = c.simple_query("DELETE FROM orders").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // Another schema is not covered by `read:public.*`.
    let err = c
        .simple_query("SELECT * FROM analytics.daily")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // A data-modifying CTE is a write, not a read.
    let err = c
        .simple_query("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // What the parser cannot read is treated as the most privileged class.
    let err = c.simple_query("FROB THE orders PLEASE").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let row = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3, "nothing was deleted");

    // With a write grant on the one table, the update goes through; the decision names it.
    let write = shop.grant("write:public.orders").await;
    let n = c
        .execute("UPDATE orders SET total = total + 1 WHERE id = $1", &[&1])
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Everything is on the ledger, with outcomes.
    let e = shop
        .wait_event("for the update", |e| {
            sql_of(e).starts_with("UPDATE")
                && e["decision"]["allowed"] == true
                && e["outcome"].is_object()
        })
        .await;
    assert_eq!(e["action"]["category"], "sql");
    assert_eq!(e["decision"]["grant_id"], write.as_str());
    assert_eq!(e["outcome"]["status"], "ok");
    assert_eq!(e["outcome"]["rows"], 1);
    assert_eq!(e["actor"]["account"], "svc");
    assert_eq!(e["target"]["name"], "shop");
    assert!(e["session_id"].is_string());
    let params = e["action"]["detail"]["params"].as_array().unwrap();
    assert!(
        params[0].as_str().unwrap().starts_with("hmac-sha256:"),
        "{params:?}"
    );
    let e = shop
        .wait_event("for the select", |e| {
            sql_of(e).contains("FROM orders WHERE id") && e["outcome"]["rows"] == 1
        })
        .await;
    assert_eq!(e["decision"]["grant_id"], read.as_str());
    assert_eq!(e["action"]["detail"]["class"], "read");
    let e = shop
        .wait_event("for the denied delete", |e| {
            sql_of(e).starts_with("DELETE") && e["decision"]["allowed"] == false
        })
        .await;
    assert!(e["decision"]["reason"].as_str().unwrap().contains("write"));
    shop.wait_event("for the session open", |e| {
        e["action"]["verb"] == "session.open"
    })
    .await;
    // Per-account, per-target counters on /metrics.
    let (_, metrics) = common::text(&shop.t, "/metrics").await;
    let line = |decision: &str| {
        metrics.lines().any(|l| {
            l.starts_with("warden_events_total{")
                && l.contains("account=\"svc\"")
                && l.contains("target=\"shop\"")
                && l.contains("category=\"sql\"")
                && l.contains(&format!("decision=\"{decision}\""))
        })
    };
    assert!(line("allow") && line("deny"), "{metrics}");
    drop(c);
    shop.wait_event("for the session close", |e| {
        e["action"]["verb"] == "session.close"
    })
    .await;
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_abort_on_denial() {
    let backend = Backend::Sqlite;
    let shop = Shop::start(backend).await;
    shop.grant("read").await;
    let mut c = shop.connect().await;
    let tx = c.transaction().await.unwrap();
    tx.query("SELECT * FROM orders", &[]).await.unwrap();
    let err = tx
        .execute("INSERT INTO orders VALUES ($1, $2)", &[&9, &90])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // As in PostgreSQL, the transaction is now aborted.
    let err = tx.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(
        code(&err),
        Some(&SqlState::IN_FAILED_SQL_TRANSACTION),
        "{err:?}"
    );
    tx.rollback().await.unwrap();
    // Simple protocol too.
    c.batch_execute("BEGIN").await.unwrap();
    let err = c
        .batch_execute("INSERT INTO orders VALUES (9, 90)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let err = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    c.batch_execute("ROLLBACK").await.unwrap();
    let row = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_checked() {
    let backend = Backend::Sqlite;
    let shop = Shop::start(backend).await;
    shop.grant("read").await;
    let err = shop
        .try_connect("svc", &flip_last(&shop.key))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
    let err = shop.try_connect("other", &shop.key).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_PASSWORD));
    // A target that does not exist.
    let info = shop
        .conninfo("svc", &shop.key)
        .replace("dbname=shop", "dbname=nope");
    let err = tokio_postgres::connect(&info, NoTls).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_CATALOG_NAME), "{err:?}");
    // An account with no grant on the target cannot open a session.
    shop.t.account("nogrant").await;
    let other_key = shop.t.key("nogrant").await;
    let err = shop.try_connect("nogrant", &other_key).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // An access token works as the password too.
    let key_id = shop.key.split('_').nth(1).unwrap().to_owned();
    let resp = shop
        .t
        .http
        .post(format!("{}/oauth/token", shop.t.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &key_id),
            ("client_secret", &shop.key),
        ])
        .send()
        .await
        .unwrap();
    let token: Value = resp.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    let c = shop.try_connect("svc", access).await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    // Disabling the account refuses new sessions.
    let (s, body) = shop
        .t
        .post(
            "/v1/accounts/svc/disable",
            &shop.t.admin,
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let err = shop.try_connect("svc", &shop.key).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_PASSWORD));
    let e = shop
        .wait_event("for the refused login", |e| {
            e["action"]["verb"] == "postgres.authenticate"
                && e["decision"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("disabled")
        })
        .await;
    assert_eq!(e["action"]["category"], "auth");
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_listen_and_cancel() {
    let backend = Backend::Sqlite;
    use futures_util::{SinkExt, StreamExt};
    let shop = Shop::start(backend).await;
    shop.grant("read").await;
    shop.grant("write:public.orders").await;
    let c = shop.connect().await;

    // COPY in and out.
    let sink = c.copy_in("COPY orders FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"10\t100\n11\t110\n"))
        .await
        .unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 2);
    let stream = c.copy_out("COPY orders TO STDOUT").await.unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 5);

    // LISTEN/NOTIFY through the gateway (NOTIFY is a write without a table).
    shop.grant("write").await;
    let (listener, mut connection) =
        tokio_postgres::connect(&shop.conninfo("svc", &shop.key), NoTls)
            .await
            .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    listener
        .batch_execute("LISTEN orders_changed")
        .await
        .unwrap();
    c.batch_execute("NOTIFY orders_changed, 'hello'")
        .await
        .unwrap();
    let payload = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payload, "hello");

    // Cancel: Warden's cancel key reaches the right backend.
    let cancel = c.cancel_token();
    let sleeper = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel_query(NoTls).await.unwrap();
    let err = tokio::time::timeout(WAIT, sleeper)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    shop.stop().await;
}

/// Opens a raw connection and logs in, returning the socket after ReadyForQuery.
async fn raw_login(shop: &Shop) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(shop.pg).await.unwrap();
    let mut startup = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "svc"), ("database", "shop")],
        &mut startup,
    )
    .unwrap();
    s.write_all(&startup).await.unwrap();
    let mut buf = vec![0u8; 9];
    s.read_exact(&mut buf).await.unwrap(); // AuthenticationCleartextPassword
    assert_eq!(buf[0], b'R');
    let mut pw = bytes::BytesMut::new();
    postgres_protocol::message::frontend::password_message(shop.key.as_bytes(), &mut pw).unwrap();
    s.write_all(&pw).await.unwrap();
    // Read until ReadyForQuery ('Z', length 5, status).
    let mut seen = Vec::new();
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        seen.push(b[0]);
        if seen.ends_with(&[b'Z', 0, 0, 0, 5]) {
            s.read_exact(&mut b).await.unwrap();
            return s;
        }
    }
}

/// Reads what the server sends until it closes, returning it as lossy text.
async fn until_closed(s: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages() {
    let backend = Backend::Sqlite;
    let shop = Shop::start(backend).await;
    shop.grant("read").await;
    let healthy = shop.connect().await;

    // A message with an impossible length.
    let mut s = raw_login(&shop).await;
    s.write_all(&[b'Q', 0, 0, 0, 2]).await.unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.contains("08P01"), "{said}");
    // A message larger than the limit: refused from its header alone.
    let mut s = raw_login(&shop).await;
    s.write_all(&[b'Q', 0x7f, 0, 0, 0]).await.unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.contains("08P01") && said.contains("exceeds"), "{said}");
    // A Bind whose parameter count lies.
    let mut s = raw_login(&shop).await;
    s.write_all(&[b'B', 0, 0, 0, 10, 0, 0, 0, 0, 0x7f, 0xff])
        .await
        .unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.contains("08P01"), "{said}");
    // An unknown message type.
    let mut s = raw_login(&shop).await;
    s.write_all(&[b'@', 0, 0, 0, 4]).await.unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.contains("08P01"), "{said}");
    // Garbage instead of a startup packet.
    let mut s = tokio::net::TcpStream::connect(shop.pg).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef])
        .await
        .unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.contains("08P01") || said.is_empty(), "{said}");

    // The server kept serving everyone else.
    let rows = healthy.simple_query("SELECT 1").await.unwrap();
    assert!(!rows.is_empty());
    shop.connect().await.simple_query("SELECT 1").await.unwrap();
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients() {
    let backend = Backend::Sqlite;
    let shop = Shop::start(backend).await;
    shop.grant("read").await;
    // psql, over TLS (Warden's self-signed certificate), with a multi-statement query.
    let out = tokio::process::Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=svc dbname=shop sslmode=require",
            shop.pg.port()
        ))
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT count(*) FROM orders; SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .env("PGPASSWORD", &shop.key)
        .output()
        .await
        .expect("psql runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("3\n"), "{stdout}");
    // psql's error for a denied statement.
    let out = tokio::process::Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=svc dbname=shop sslmode=require",
            shop.pg.port()
        ))
        .args(["-X", "-c", "DROP TABLE orders"])
        .env("PGPASSWORD", &shop.key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("permission denied by Warden"), "{stderr}");

    // pgbench, select-only, simple and prepared protocols, several clients.
    shop.db
        .client()
        .await
        .batch_execute(
            "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
             INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 100000) g;
             CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
             INSERT INTO pgbench_branches VALUES (1, 0, '');",
        )
        .await
        .unwrap();
    for mode in ["simple", "prepared", "extended"] {
        let out = tokio::process::Command::new("pgbench")
            .args(["-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "50"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &shop.pg.port().to_string(),
                "-U",
                "svc",
                "shop",
            ])
            .env("PGPASSWORD", &shop.key)
            .env("PGSSLMODE", "disable")
            .output()
            .await
            .expect("pgbench runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("number of transactions actually processed: 200/200"),
            "{stdout}"
        );
    }
    shop.stop().await;
}

/// With `auth_method = "scram-sha-256"` the key never crosses the wire: clients prove they
/// hold it. Revoking the key ends the session at its next statement.
async fn scram_logins(backend: Backend) {
    let shop = Shop::start_with(backend, |c| {
        c.postgres.auth_method = warden_server::config::PgAuthMethod::ScramSha256;
    })
    .await;
    shop.grant("read").await;
    // A second key of the same account works too (every key shares the account's salt).
    let second = shop.t.key("svc").await;
    let c = shop.connect().await;
    c.simple_query("SELECT 1").await.unwrap();
    let c2 = shop.try_connect("svc", &second).await.unwrap();
    c2.simple_query("SELECT 1").await.unwrap();
    let err = shop
        .try_connect("svc", &flip_last(&shop.key))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
    let err = shop.try_connect("nobody", &shop.key).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
    // psql negotiates SCRAM by itself.
    let out = tokio::process::Command::new("psql")
        .arg(shop.conninfo("svc", &shop.key))
        .args(["-X", "-A", "-t", "-c", "SELECT 42"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Revoke the second key: its session ends at the next statement.
    let key_id = second.split('_').nth(1).unwrap();
    let (s, body) = shop
        .t
        .post(
            &format!("/v1/keys/{key_id}/revoke"),
            &shop.t.admin,
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    let err = c2.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        err.is_closed() || code(&err) == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err:?}"
    );
    c.simple_query("SELECT 1").await.unwrap();
    shop.stop().await;
}

on_both_backends!(reads_writes_and_denials, scram_logins);

/// An upstream that insists on SCRAM-SHA-256 and offers TLS (a throwaway cluster of its own):
/// Warden logs in with SCRAM over verified TLS, survives the upstream going away mid-session, and
/// live sessions can be listed and killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_and_tls_upstream() {
    let cluster = app_cluster("app-secret-pw").await;
    cluster
        .client("appdb")
        .await
        .batch_execute("CREATE TABLE public.items (id int); INSERT INTO public.items VALUES (1), (2); ALTER TABLE public.items OWNER TO app;")
        .await
        .unwrap();
    let t = TestServer::start(Backend::Sqlite).await;
    for (name, login, ca) in [
        ("secure", "app:app-secret-pw", Some(cluster.ca_pem())),
        ("wrongpw", "app:not-the-password", Some(cluster.ca_pem())),
        ("untrusted", "app:app-secret-pw", None),
    ] {
        cluster_target(&t, &cluster, name, login, ca, json!({})).await;
    }
    t.account("svc").await;
    let key = t.key("svc").await;
    for target in ["secure", "wrongpw", "untrusted"] {
        grant(&t, target, "read").await;
    }
    let pg = t.running.as_ref().unwrap().postgres_addr;
    let connect_as = |db: &'static str, app: &'static str| pg_connect(pg, "svc", db, &key, app);
    let connect = |db: &'static str| pg_connect(pg, "svc", db, &key, "pg-test");

    let c = connect("secure").await.unwrap();
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "Warden's upstream connection uses TLS"
    );
    let row = c
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);

    // The upstream refusing Warden's login, or a certificate Warden cannot verify: the client
    // is told, and no secret is in the message.
    let err = connect("wrongpw").await.err().unwrap();
    let msg = err.as_db_error().unwrap().message().to_owned();
    assert!(msg.contains("refused Warden's login"), "{msg}");
    assert!(!msg.contains("not-the-password"));
    let err = connect("untrusted").await.err().unwrap();
    let msg = err.as_db_error().unwrap().message().to_owned();
    assert!(msg.contains("TLS"), "{msg}");

    // Live sessions are listed, and killing one closes it on both sides.
    let other = connect_as("secure", "victim").await.unwrap();
    let (s, sessions) = t.get("/v1/sessions", &t.admin).await;
    assert_eq!(s, StatusCode::OK);
    let sessions = sessions.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions
        .iter()
        .all(|s| s["account"] == "svc" && s["target"] == "secure"));
    let victim = sessions
        .iter()
        .find(|s| s["application"] == "victim")
        .unwrap();
    let id = victim["id"].as_str().unwrap();
    let (s, body) = t
        .post(&format!("/v1/sessions/{id}/kill"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let err = other.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        err.is_closed() || code(&err) == Some(&SqlState::ADMIN_SHUTDOWN),
        "{err:?}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n: i64 = cluster
            .client("appdb")
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream session not closed: {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = t.events("limit=500").await;
    assert!(events.iter().any(|e| e["action"]["verb"] == "session.kill"));

    // The upstream goes down mid-session: the client gets an error, Warden keeps serving, and
    // once the upstream is back new sessions work without restarting Warden.
    cluster.stop_now().await;
    let err = c.simple_query("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || err.as_db_error().is_some(), "{err:?}");
    let err = connect("secure").await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::CONNECTION_FAILURE), "{err:?}");
    cluster.start_again().await;
    let c = connect("secure").await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    t.stop().await;
}

/// Rotating the upstream password while clients are connected: open sessions keep working, new
/// sessions use the new password, the old password no longer logs in, and it is an admin event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_connected() {
    let cluster = app_cluster("first-password").await;
    let t = TestServer::start(Backend::Sqlite).await;
    let ca = Some(cluster.ca_pem());
    cluster_target(&t, &cluster, "app", "app:first-password", ca, json!({})).await;
    t.account("svc").await;
    let key = t.key("svc").await;
    grant(&t, "app", "read").await;
    let pg = t.running.as_ref().unwrap().postgres_addr;
    let before = pg_connect(pg, "svc", "app", &key, "pg-test").await.unwrap();
    before.simple_query("SELECT 1").await.unwrap();

    let (s, body) = t.post("/v1/targets/app/rotate", &t.admin, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let shown = body.to_string();
    assert!(!shown.contains("first-password"));

    // The open session is still there; a new one logs in with the new password.
    before.simple_query("SELECT 1").await.unwrap();
    let after = pg_connect(pg, "svc", "app", &key, "pg-test").await.unwrap();
    after.simple_query("SELECT 1").await.unwrap();
    // The old password is dead upstream.
    let old = cluster.role_url("app", "first-password", "appdb");
    assert!(tokio_postgres::connect(&old, NoTls).await.is_err());
    let events = t.events("limit=500").await;
    let e = events
        .iter()
        .find(|e| e["action"]["verb"] == "target.rotate")
        .expect("rotation is an admin event");
    assert_eq!(e["outcome"]["status"], "ok");
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("first-password"));

    // A rotation that cannot log in fails, and nothing changes.
    cluster_target(&t, &cluster, "broken", "app:wrong", ca, json!({})).await;
    let (s, body) = t
        .post("/v1/targets/broken/rotate", &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{body}");
    after.simple_query("SELECT 1").await.unwrap();
    t.stop().await;
}

/// Operations: a statement running past `statement_timeout` is cancelled upstream, a session idle
/// past `idle_timeout` is closed, and the per-account session limit holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_limits() {
    let shop = Shop::start_with(Backend::Sqlite, |c| {
        c.postgres.statement_timeout = Duration::from_millis(300);
        c.postgres.idle_timeout = Duration::from_secs(2);
        c.postgres.max_sessions_per_account = 2;
    })
    .await;
    shop.grant("read").await;
    let c = shop.connect().await;
    let err = c.simple_query("SELECT pg_sleep(10)").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    c.simple_query("SELECT 1").await.unwrap();

    let _second = shop.connect().await;
    let err = shop.try_connect("svc", &shop.key).await.err().unwrap();
    assert_eq!(code(&err), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err:?}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let err = c.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        err.is_closed() || code(&err) == Some(&SqlState::IDLE_SESSION_TIMEOUT),
        "{err:?}"
    );
    shop.stop().await;
}

/// A target with a `rotation_period` is rotated by Warden itself when the period has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation() {
    let cluster = app_cluster("first-password").await;
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.postgres.rotation_check = Duration::from_millis(200);
    })
    .await;
    let body = cluster_target(
        &t,
        &cluster,
        "app",
        "app:first-password",
        Some(cluster.ca_pem()),
        json!({"rotation_period": "1h"}),
    )
    .await;
    assert_eq!(body["rotation_period"], "1h");
    assert!(body["next_rotation"].is_string());
    // A target whose stored login is wrong cannot be rotated: that raises an alert.
    cluster_target(
        &t,
        &cluster,
        "broken",
        "app:not-the-password",
        Some(cluster.ca_pem()),
        json!({"rotation_period": "1h"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let old = cluster.role_url("app", "first-password", "appdb");
    let (_, _connection) = tokio_postgres::connect(&old, NoTls)
        .await
        .expect("not due yet");

    t.clock.advance(Duration::from_secs(3601));
    let deadline = tokio::time::Instant::now() + WAIT;
    let event = loop {
        let events = t.events("limit=500").await;
        if let Some(e) = events
            .iter()
            .find(|e| e["action"]["verb"] == "target.rotate" && e["outcome"]["status"] == "ok")
        {
            break e.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled rotation in {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["actor"]["kind"], "system");
    assert_eq!(event["action"]["detail"]["scheduled"], true);
    assert!(tokio_postgres::connect(&old, NoTls).await.is_err());
    let (_, shown) = t.get("/v1/targets/app", &t.admin).await;
    assert!(shown["rotated_at"].is_string(), "{shown}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let alert = loop {
        let (_, alerts) = t.get("/v1/alerts", &t.admin).await;
        if let Some(a) = alerts
            .as_array()
            .and_then(|a| a.iter().find(|a| a["detector"] == "rotation_failed"))
        {
            break a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert in {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert["target"], "broken");
    assert_eq!(alert["severity"], "high");
    let (_, shown) = t.get("/v1/targets/broken", &t.admin).await;
    assert!(shown["rotated_at"].is_null(), "{shown}");
    t.stop().await;
}

/// Stopping Warden lets a running statement finish, then closes the session with 57P01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown() {
    let mut shop = Shop::start(Backend::Sqlite).await;
    shop.grant("read").await;
    let c = shop.connect().await;
    let idle = shop.connect().await;
    let running = tokio::spawn(async move {
        let r = c.simple_query("SELECT pg_sleep(1.5), 7").await;
        (c, r)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stopping = tokio::spawn(shop.t.running.take().unwrap().stop());
    let (c, result) = running.await.unwrap();
    let rows = result.expect("the running statement finishes");
    assert!(rows
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(1) == Some("7"))));
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    for client in [c, idle] {
        let err = client.simple_query("SELECT 1").await.unwrap_err();
        assert!(
            err.is_closed() || code(&err) == Some(&SqlState::ADMIN_SHUTDOWN),
            "{err:?}"
        );
    }
    shop.db.drop_db().await;
}
