//! `PgCluster` does what tests rely on it for: it asks for SCRAM-SHA-256 passwords (and refuses
//! wrong ones), serves TLS with a certificate its CA verifies, survives a restart on the same port
//! with its data, and leaves no server process or directory behind, also when a test panics.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;
use warden_testkit::PgCluster;

/// Whether process `pid` still runs (a zombie waiting for its reaper does not).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (boundedly) for `pid` to end.
fn ends(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `psql` from the cluster's installation, as `role` over TCP with `sslmode` and the cluster's CA;
/// stdout, or stderr on failure.
fn psql(
    cluster: &PgCluster,
    host: &str,
    role: &str,
    password: &str,
    sslmode: &str,
    sql: &str,
) -> Result<String, String> {
    let conninfo = format!(
        "host={host} port={} user={role} dbname=postgres sslmode={sslmode} sslrootcert={}",
        cluster.port(),
        cluster.ca_path().display()
    );
    let output = Command::new(cluster.bin_dir().join("psql"))
        .args([conninfo.as_str(), "-X", "-t", "-A", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test]
async fn passwords_are_scram_and_checked() {
    let cluster = PgCluster::start().await;
    assert!(cluster
        .url("postgres")
        .contains(cluster.superuser_password()));
    let admin = cluster.client("postgres").await;
    let encryption: String = admin
        .query_one("SHOW password_encryption", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(encryption, "scram-sha-256");

    cluster.create_role("app user", "it's-a-secret").await;
    cluster.create_database("app db", "app user").await;
    let verifier: String = admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'app user'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");

    let config = |password: &str| {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(cluster.port())
            .user("app user")
            .dbname("app db")
            .password(password);
        config
    };
    let (app, connection) = config("it's-a-secret").connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = app
        .query_one(
            "SELECT current_user::text, current_database()::text, \
             (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app user");
    assert_eq!(row.get::<_, String>(1), "app db");
    assert!(!row.get::<_, bool>(2), "NoTls connection reported as TLS");

    let wrong = config("not-the-secret")
        .connect(NoTls)
        .await
        .err()
        .expect("wrong password refused");
    assert_eq!(wrong.code(), Some(&SqlState::INVALID_PASSWORD), "{wrong}");
    let superuser_wrong = tokio_postgres::connect(
        &cluster.role_url("postgres", "not-the-secret", "postgres"),
        NoTls,
    )
    .await
    .err()
    .expect("wrong superuser password refused");
    assert_eq!(superuser_wrong.code(), Some(&SqlState::INVALID_PASSWORD));
    // The server asks for a password even with none configured: nothing is trusted.
    let mut no_password = tokio_postgres::Config::new();
    no_password
        .host("127.0.0.1")
        .port(cluster.port())
        .user("postgres");
    assert!(no_password.connect(NoTls).await.is_err());
}

#[tokio::test]
async fn tls_is_offered_and_verifies_against_the_ca() {
    let cluster = PgCluster::start().await;
    assert!(cluster.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(cluster.ca_path()).unwrap(),
        cluster.ca_pem()
    );
    cluster.create_role("tls_user", "tls-secret").await;
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    // verify-full checks the chain against the CA and the host name against the certificate, for
    // both names it was issued for.
    for host in ["127.0.0.1", "localhost"] {
        let ssl = psql(&cluster, host, "tls_user", "tls-secret", "verify-full", sql);
        assert_eq!(ssl.as_deref(), Ok("t"), "{host}: {}", cluster.log());
    }
    let plain = psql(
        &cluster,
        "127.0.0.1",
        "tls_user",
        "tls-secret",
        "disable",
        sql,
    );
    assert_eq!(plain.as_deref(), Ok("f"));
    let wrong = psql(&cluster, "127.0.0.1", "tls_user", "wrong", "require", sql).unwrap_err();
    assert!(wrong.contains("password authentication failed"), "{wrong}");
}

#[tokio::test]
async fn restart_cuts_sessions_and_keeps_port_and_data() {
    let cluster = PgCluster::start().await;
    let port = cluster.port();
    cluster.create_role("survivor", "still-here").await;
    let before = cluster.client("postgres").await;
    before.simple_query("SELECT 1").await.unwrap();
    let pid = cluster.postmaster_pid().expect("running server has a pid");

    cluster.restart().await;
    assert!(before.simple_query("SELECT 1").await.is_err());
    assert_eq!(cluster.port(), port);
    assert_ne!(cluster.postmaster_pid(), Some(pid));
    assert!(ends(pid), "old postmaster {pid} still runs");
    let (survivor, connection) = tokio_postgres::connect(
        &cluster.role_url("survivor", "still-here", "postgres"),
        NoTls,
    )
    .await
    .expect("role survives an immediate restart");
    tokio::spawn(connection);
    survivor.simple_query("SELECT 1").await.unwrap();

    cluster.stop().await;
    assert_eq!(cluster.postmaster_pid(), None);
    assert!(
        tokio_postgres::connect(&cluster.url("postgres"), NoTls)
            .await
            .is_err(),
        "stopped server accepts connections"
    );
    cluster.start_again().await;
    cluster.client("postgres").await;
    cluster.stop_now().await;
    assert_eq!(cluster.postmaster_pid(), None);
    // Dropping a stopped cluster is fine too.
}

#[tokio::test]
async fn drop_leaves_no_server_or_directory() {
    let cluster = PgCluster::start().await;
    let pid = cluster.postmaster_pid().expect("running server has a pid");
    let data = cluster.data_dir();
    assert!(running(pid));
    drop(cluster);
    assert!(ends(pid), "postmaster {pid} outlived its PgCluster");
    assert!(!Path::new(&data).exists(), "{} left behind", data.display());
}

#[tokio::test]
async fn a_panicking_test_leaves_no_server_behind() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let cluster = PgCluster::start().await;
        tx.send((cluster.postmaster_pid().unwrap(), cluster.data_dir()))
            .unwrap();
        panic!("a test fails while its cluster runs");
    });
    assert!(task.await.unwrap_err().is_panic());
    let (pid, data) = rx.await.unwrap();
    assert!(ends(pid), "postmaster {pid} outlived a panicking test");
    assert!(!data.exists(), "{} left behind", data.display());
}
