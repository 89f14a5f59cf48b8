//! The PostgreSQL gateway through the real binary, as an operator sets it up with the CLI: a
//! database target whose login is read from a file, a grant, psql connecting with a key, live
//! sessions listed and killed, and the upstream password never appearing in any log line or file.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use warden_testkit::ScratchDb;

fn psql(port: &str, key: &str, sql: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={port} user=reporting dbname=shop sslmode=require"
    ))
    .args(["-X", "-A", "-t", "-c", sql])
    .env("PGPASSWORD", key);
    cmd
}

#[test]
fn operator_sets_up_a_database_and_ends_a_session() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(ScratchDb::create());
    rt.block_on(async {
        db.client()
            .await
            .batch_execute("CREATE TABLE sales (id int); INSERT INTO sales VALUES (1), (2), (3)")
            .await
            .unwrap()
    });
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(
        cwd,
        &["--api-addr", "127.0.0.1:0"],
        &[("WARDEN_LOG", "debug")],
    );
    let pg = addresses(cwd)["postgres"].as_str().unwrap().to_owned();
    let port = pg.rsplit(':').next().unwrap().to_owned();

    // The local server trusts loopback, so the password is never checked; it must still never
    // be shown or logged.
    let upstream_password = "upstream-pw-5f1c9e";
    std::fs::write(cwd.join("login"), format!("postgres:{upstream_password}\n")).unwrap();
    let dbname = db.url().rsplit('/').next().unwrap().to_owned();
    let target = cli(
        cwd,
        &[
            "target",
            "add",
            "shop",
            "--kind",
            "postgres",
            "--upstream",
            &format!("postgres://127.0.0.1:5432/{dbname}?sslmode=disable"),
            "--basic-auth-file",
            "login",
            "--rotation-period",
            "30d",
            "-o",
            "json",
        ],
        &[],
    )
    .json();
    assert_eq!(target["rotation_period"], "30days");
    cli(
        cwd,
        &[
            "account",
            "create",
            "reporting",
            "--owner",
            "ada@example.com",
            "--purpose",
            "reports",
        ],
        &[],
    )
    .ok();
    let issued = cli(cwd, &["key", "create", "reporting", "-o", "json"], &[]).json();
    let key = str_field(&issued, "/secret").to_owned();
    cli(
        cwd,
        &[
            "grant",
            "add",
            "reporting",
            "shop",
            "--allow",
            "read:public.*",
        ],
        &[],
    )
    .ok();
    // A mistyped database rule is refused with an example.
    let bad = cli(
        cwd,
        &["grant", "add", "reporting", "shop", "--allow", "GET /x"],
        &[],
    );
    bad.fails_with(1);
    assert!(bad.stderr.contains("allow"), "{}", bad.describe());

    // psql through the gateway, over TLS.
    let out = run(psql(&port, &key, "SELECT count(*) FROM sales"));
    assert_eq!(out.ok().trim(), "3");
    let denied = run(psql(&port, &key, "DELETE FROM sales"));
    assert!(
        denied.stderr.contains("permission denied by Warden"),
        "{}",
        denied.describe()
    );

    // A long statement shows up as a live session; killing it ends psql's connection.
    let long = Proc::spawn(psql(&port, &key, "SELECT pg_sleep(30)"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let id = loop {
        let sessions = cli(cwd, &["sessions", "list", "-o", "json"], &[]).json();
        if let Some(s) = sessions.as_array().unwrap().first() {
            assert_eq!(s["account"], "reporting");
            break s["id"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no live session");
        std::thread::sleep(Duration::from_millis(100));
    };
    let table = cli(cwd, &["sessions", "list"], &[]);
    assert!(table.ok().contains("reporting"));
    cli(cwd, &["sessions", "kill", &id], &[]).ok();
    let mut long = long;
    let status = long.wait(Duration::from_secs(10));
    assert!(
        !status.success(),
        "psql should lose its session: {}",
        long.report()
    );
    assert!(
        long.stderr().contains("administrator command"),
        "{}",
        long.report()
    );

    let server = server.stop();
    let mut leaks = Vec::new();
    for f in files_under(&cwd.join("warden-data")) {
        if contains(&std::fs::read(&f).unwrap_or_default(), upstream_password) {
            leaks.push(f);
        }
    }
    assert!(leaks.is_empty(), "upstream password in {leaks:?}");
    assert!(
        !server.stdout().contains(upstream_password)
            && !server.stderr().contains(upstream_password)
    );
    assert!(!server
        .stderr()
        .contains(secret_part(&key, str_field(&issued, "/key_id"))));
    rt.block_on(db.drop_db());
}
