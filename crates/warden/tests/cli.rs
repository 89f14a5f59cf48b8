//! End-to-end tests of the `warden` binary: `warden serve` started as a real process in a
//! temporary directory, and the admin commands run against it the way the README shows them.
//!
//! Every test has its own working directory and API port (port 0), so they run in parallel. A
//! server is killed when its guard drops, also when a test panics. Waits poll with generous
//! timeouts; nothing asserts on timing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// `warden serve` with nothing else creates ./warden-data/ with private files, prints the token
/// path once, and a restart reuses everything.
#[cfg(unix)]
#[test]
fn zero_config_start_creates_a_private_data_dir() {
    let dir = tempdir();
    let cwd = dir.path();
    let mut server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    let stdout = server.wait_stdout("admin-token");
    assert!(stdout.contains("Warden is running."), "{stdout}");
    assert!(
        stdout.contains("warden-data/admin-token"),
        "stdout does not name the token path: {stdout}"
    );

    let data = cwd.join("warden-data");
    assert!(data.is_dir(), "./warden-data was not created");
    assert_eq!(mode(&data), 0o700, "data directory mode");
    let token_path = data.join("admin-token");
    assert_eq!(mode(&token_path), 0o600, "admin-token mode");
    let token = std::fs::read_to_string(&token_path).unwrap();
    assert!(token.starts_with("wda_"), "admin token {token:?}");
    assert!(data.join("warden.db").is_file(), "warden.db missing");
    let addresses: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("addresses.json")).unwrap())
            .expect("addresses.json is JSON");
    assert_eq!(
        addresses["api"].as_str(),
        Some(server.addr.as_str()),
        "addresses.json {addresses} vs printed address"
    );
    let first = server.stop();
    assert!(first.stdout().contains("Bootstrap admin token"));

    // Second start on the same data directory: no new token, the old one still works.
    let mut server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    server.wait_stdout("Database:");
    assert_eq!(
        std::fs::read_to_string(&token_path).unwrap(),
        token,
        "the token file changed on restart"
    );
    let me = cli(
        cwd,
        &["whoami", "-o", "json"],
        &[
            ("WARDEN_TOKEN", token.trim()),
            ("WARDEN_URL", &server.url()),
        ],
    )
    .json();
    assert_eq!(me["kind"], "admin", "{me}");
    assert_eq!(me["account"], "admin", "{me}");
    // Next to the server, without WARDEN_URL/WARDEN_TOKEN, the data directory is used.
    let me = cli(cwd, &["whoami", "-o", "json"], &[]).json();
    assert_eq!(me["account"], "admin", "{me}");
    let second = server.stop();
    let out = second.stdout();
    assert!(
        !out.contains("admin-token") && !out.contains("Bootstrap admin token"),
        "a restart printed a token path again:\n{out}"
    );
}

/// The README's tour: accounts, keys, rotation, revocation, disabling, a second admin working
/// from elsewhere, and the events all of it recorded.
#[test]
fn cli_tour() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);

    let created = cli(
        cwd,
        &[
            "account",
            "create",
            "billing-etl",
            "--owner",
            "ada@example.com",
            "--purpose",
            "nightly invoices",
            "--label",
            "team=finance",
        ],
        &[],
    );
    assert!(
        created.ok().contains("billing-etl"),
        "{}",
        created.describe()
    );

    let list = cli(cwd, &["account", "list", "--output", "json"], &[]).json();
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"));
    assert_eq!(items.len(), 1, "{list}");
    let item = &items[0];
    for field in [
        "name",
        "owner",
        "purpose",
        "labels",
        "created_by",
        "created_at",
        "expires_at",
        "status",
        "last_used_at",
    ] {
        assert!(item.get(field).is_some(), "account lacks `{field}`: {item}");
    }
    assert_eq!(item["name"], "billing-etl");
    assert_eq!(item["owner"], "ada@example.com");
    assert_eq!(item["purpose"], "nightly invoices");
    assert_eq!(item["labels"]["team"], "finance");
    assert_eq!(item["created_by"], "admin");
    assert_eq!(item["status"], "active");

    let table = cli(cwd, &["account", "list"], &[]);
    assert!(table.ok().contains("billing-etl"), "{}", table.describe());

    let shown = cli(cwd, &["account", "show", "billing-etl", "-o", "json"], &[]).json();
    assert_eq!(shown["name"], "billing-etl", "{shown}");

    // Issue a key and use it.
    let issued = cli(
        cwd,
        &["key", "create", "billing-etl", "--output", "json"],
        &[],
    )
    .json();
    let key1_id = str_field(&issued, "/key_id").to_owned();
    let key1 = str_field(&issued, "/secret").to_owned();
    secret_part(&key1, &key1_id);
    let whoami = |key: &str| cli(cwd, &["whoami", "-o", "json"], &[("WARDEN_TOKEN", key)]);
    let me = whoami(&key1).json();
    assert_eq!(me["account"], "billing-etl", "{me}");
    assert_eq!(me["kind"], "service", "{me}");
    assert_eq!(me["key_id"], key1_id.as_str(), "{me}");

    // Table mode: the secret alone on stdout, notes on stderr.
    let table_key = cli(cwd, &["key", "create", "billing-etl"], &[]);
    let printed = table_key.ok().trim().to_owned();
    assert!(
        printed.starts_with("wdn_") && !printed.contains('\n'),
        "table mode should print only the secret: {}",
        table_key.describe()
    );
    assert!(
        table_key.stderr.contains("shown once"),
        "{}",
        table_key.describe()
    );
    let table_key_id = str_field(&whoami(&printed).json(), "/key_id").to_owned();

    // Rotate with a grace period: the old keys keep working, now `rotating`.
    let rotated = cli(
        cwd,
        &[
            "key",
            "rotate",
            "billing-etl",
            "--grace",
            "1h",
            "-o",
            "json",
        ],
        &[],
    )
    .json();
    let key2_id = str_field(&rotated, "/key_id").to_owned();
    let key2 = str_field(&rotated, "/secret").to_owned();
    secret_part(&key2, &key2_id);
    assert_ne!(key1_id, key2_id);
    let keys = cli(cwd, &["key", "list", "billing-etl", "-o", "json"], &[]).json();
    let state = |keys: &Value, id: &str| -> String {
        keys.as_array()
            .unwrap_or_else(|| panic!("not an array: {keys}"))
            .iter()
            .find(|k| k["key_id"] == id)
            .unwrap_or_else(|| panic!("key {id} not listed: {keys}"))["state"]
            .as_str()
            .unwrap_or_else(|| panic!("no state: {keys}"))
            .to_owned()
    };
    assert_eq!(state(&keys, &key1_id), "rotating", "{keys}");
    assert_eq!(state(&keys, &table_key_id), "rotating", "{keys}");
    assert_eq!(state(&keys, &key2_id), "active", "{keys}");
    assert!(!keys.to_string().contains(&key2), "key list shows a secret");
    assert_eq!(whoami(&key1).json()["account"], "billing-etl");
    assert_eq!(whoami(&key2).json()["account"], "billing-etl");

    // Revoke the old key: it stops at once.
    cli(cwd, &["key", "revoke", &key1_id], &[]).ok();
    let keys = cli(cwd, &["key", "list", "billing-etl", "-o", "json"], &[]).json();
    assert_eq!(state(&keys, &key1_id), "revoked", "{keys}");
    whoami(&key1).fails_with(1);

    // Disable the account: even the new key stops.
    cli(
        cwd,
        &["account", "disable", "billing-etl", "--reason", "leaked"],
        &[],
    )
    .ok();
    let denied = whoami(&key2);
    denied.fails_with(1);
    assert!(denied.stderr.contains("error"), "{}", denied.describe());
    let shown = cli(cwd, &["account", "show", "billing-etl", "-o", "json"], &[]).json();
    assert_eq!(shown["status"], "disabled", "{shown}");
    assert_eq!(shown["disabled_reason"], "leaked", "{shown}");

    // A second admin, working from another directory with WARDEN_URL and WARDEN_TOKEN.
    let grace = cli(cwd, &["admin", "create", "grace", "-o", "json"], &[]).json();
    let grace_token = str_field(&grace, "/token").to_owned();
    assert!(grace_token.starts_with("wda_"), "{grace}");
    let elsewhere = tempdir();
    let url = server.url();
    let as_grace = [
        ("WARDEN_URL", url.as_str()),
        ("WARDEN_TOKEN", grace_token.as_str()),
    ];
    let list = cli(
        elsewhere.path(),
        &["account", "list", "-o", "json"],
        &as_grace,
    )
    .json();
    assert_eq!(list[0]["name"], "billing-etl", "{list}");
    cli(
        elsewhere.path(),
        &["account", "enable", "billing-etl"],
        &as_grace,
    )
    .ok();
    assert_eq!(whoami(&key2).json()["account"], "billing-etl");
    let admins = cli(
        elsewhere.path(),
        &["admin", "list", "-o", "json"],
        &as_grace,
    )
    .json();
    let names: Vec<&str> = admins
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {admins}"))
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"grace"),
        "{admins}"
    );

    // Events: one JSON object per line, with the common fields.
    let events = cli(cwd, &["events", "--output", "json"], &[]).json_lines();
    assert!(!events.is_empty(), "no events");
    for e in &events {
        for field in [
            "id", "seq", "time", "actor", "source", "action", "decision", "outcome",
        ] {
            assert!(e.get(field).is_some(), "event lacks `{field}`: {e}");
        }
    }
    let has = |category: &str, actor: &str| {
        events.iter().any(|e| {
            e.pointer("/action/category").and_then(Value::as_str) == Some(category)
                && e.pointer("/actor/account").and_then(Value::as_str) == Some(actor)
        })
    };
    assert!(has("admin", "admin"), "no admin event by `admin`");
    assert!(has("admin", "grace"), "no admin event by `grace`");
    assert!(has("auth", "billing-etl"), "no auth event for billing-etl");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), events.len(), "every event has a seq");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events are not oldest first: {seqs:?}"
    );
    for e in &events {
        let text = e.to_string();
        for secret in [&key1, &key2, &grace_token] {
            assert!(
                !text.contains(secret.as_str()),
                "an event holds a secret: {e}"
            );
        }
    }

    let mine = cli(
        cwd,
        &["events", "--account", "billing-etl", "-o", "json"],
        &[],
    )
    .json_lines();
    assert!(!mine.is_empty(), "no events for billing-etl");
    for e in &mine {
        assert_eq!(
            e.pointer("/actor/account").and_then(Value::as_str),
            Some("billing-etl"),
            "--account billing-etl returned another account's event: {e}"
        );
    }

    let recent = cli(cwd, &["events", "--since", "1h"], &[]);
    let text = recent.ok();
    assert!(text.starts_with("SEQ"), "{}", recent.describe());
    assert!(text.lines().count() > events.len(), "{}", recent.describe());
    assert!(text.contains("billing-etl"), "{}", recent.describe());

    server.stop();
}

/// With debug logging on, no service-account key (nor a wrong key presented for it) appears in
/// the logs or anywhere in the data directory; the admin token appears only in its own file.
#[test]
fn secrets_never_leak() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(
        cwd,
        &["--api-addr", "127.0.0.1:0"],
        &[("WARDEN_LOG", "debug")],
    );
    cli(
        cwd,
        &[
            "account",
            "create",
            "payments",
            "--owner",
            "ada@example.com",
            "--purpose",
            "settle payments",
        ],
        &[],
    )
    .ok();
    let issued = cli(cwd, &["key", "create", "payments", "-o", "json"], &[]).json();
    let key1_id = str_field(&issued, "/key_id").to_owned();
    let key1 = str_field(&issued, "/secret").to_owned();
    let whoami = |key: &str| cli(cwd, &["whoami", "-o", "json"], &[("WARDEN_TOKEN", key)]);
    for _ in 0..3 {
        assert_eq!(whoami(&key1).json()["account"], "payments");
    }
    // A wrong secret for a real key id, and a malformed credential.
    let wrong_secret = "0123456789abcdef".repeat(4);
    let wrong = format!("wdn_{key1_id}_{wrong_secret}");
    assert_ne!(wrong, key1);
    whoami(&wrong).fails_with(1);
    whoami("wdn_notakey_s3cr3tvalue").fails_with(1);
    let rotated = cli(
        cwd,
        &["key", "rotate", "payments", "--grace", "1h", "-o", "json"],
        &[],
    )
    .json();
    let key2_id = str_field(&rotated, "/key_id").to_owned();
    let key2 = str_field(&rotated, "/secret").to_owned();
    assert_eq!(whoami(&key2).json()["account"], "payments");
    assert_eq!(whoami(&key1).json()["account"], "payments");
    let events = cli(cwd, &["events", "-o", "json"], &[]).ok().to_owned();

    let proc = server.stop();
    let logs = [
        ("stdout", proc.stdout_bytes()),
        ("stderr", proc.stderr_bytes()),
    ];
    // The logs were captured (today nothing logs at debug level; the scan below guards the
    // day something does).
    assert!(
        contains(&logs[1].1, "shutting down"),
        "no log lines captured:\n{}",
        proc.stderr()
    );

    let data = cwd.join("warden-data");
    let admin_token_path = data.join("admin-token");
    let admin_token = std::fs::read_to_string(&admin_token_path)
        .unwrap()
        .trim()
        .to_owned();
    let mut sources: Vec<(String, Vec<u8>)> = logs
        .iter()
        .map(|(name, bytes)| (format!("server {name}"), bytes.clone()))
        .collect();
    sources.push(("events output".into(), events.into_bytes()));
    let files = files_under(&data);
    assert!(files.iter().any(|f| f.ends_with("warden.db")), "{files:?}");
    for file in &files {
        sources.push((
            file.display().to_string(),
            std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
        ));
    }

    let secrets = [
        ("key 1", key1.clone()),
        ("key 1 secret", secret_part(&key1, &key1_id).to_owned()),
        ("key 2", key2.clone()),
        ("key 2 secret", secret_part(&key2, &key2_id).to_owned()),
        ("wrong key", wrong.clone()),
        ("wrong secret", wrong_secret),
        ("malformed key", "s3cr3tvalue".to_owned()),
    ];
    let admin_secret = admin_token.rsplit('_').next().unwrap().to_owned();
    assert!(admin_secret.len() >= 32, "admin token {admin_token:?}");
    for (name, bytes) in &sources {
        for (what, secret) in &secrets {
            assert!(!contains(bytes, secret), "{what} found in {name}");
        }
        if Path::new(name) != admin_token_path {
            assert!(
                !contains(bytes, &admin_token) && !contains(bytes, &admin_secret),
                "the admin token found in {name}"
            );
        }
    }
}

/// Configuration mistakes stop `warden serve` with a message naming the file, variable or key.
#[test]
fn config_errors_are_named() {
    let dir = tempdir();
    let cwd = dir.path();
    let one_line_error = |out: &Outcome| -> String {
        assert!(
            !out.status.success() && out.code().is_some(),
            "expected failure: {}",
            out.describe()
        );
        let err = out.stderr.trim().to_owned();
        assert_eq!(
            err.lines().count(),
            1,
            "expected one line: {}",
            out.describe()
        );
        err
    };

    let out = cli(
        cwd,
        &[
            "serve",
            "--config",
            "missing.toml",
            "--api-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let err = one_line_error(&out);
    assert!(err.contains("missing.toml"), "{}", out.describe());

    // ./warden.toml is read when present.
    std::fs::write(cwd.join("warden.toml"), "api_addr = \"nowhere\"\n").unwrap();
    let out = cli(cwd, &["serve"], &[]);
    let err = one_line_error(&out);
    assert!(
        err.contains("api_addr") && err.contains("warden.toml"),
        "{}",
        out.describe()
    );

    std::fs::write(cwd.join("warden.toml"), "[auth]\ncache_tt = \"1s\"\n").unwrap();
    let out = cli(cwd, &["serve", "--api-addr", "127.0.0.1:0"], &[]);
    let err = one_line_error(&out);
    assert!(err.contains("cache_tt"), "{}", out.describe());
    std::fs::remove_file(cwd.join("warden.toml")).unwrap();

    let out = cli(cwd, &["serve"], &[("WARDEN_API_ADDR", "bogus")]);
    let err = one_line_error(&out);
    assert!(err.contains("api_addr"), "{}", out.describe());

    let out = cli(
        cwd,
        &[
            "serve",
            "--api-addr",
            "127.0.0.1:0",
            "--database-url",
            "mysql://x",
        ],
        &[],
    );
    let err = one_line_error(&out);
    assert!(err.contains("database_url"), "{}", out.describe());

    // An unreachable PostgreSQL fails fast: the test fails rather than hang.
    let out = run_within(
        warden(
            cwd,
            &[
                "serve",
                "--api-addr",
                "127.0.0.1:0",
                "--database-url",
                "postgres://postgres@127.0.0.1:1/nope",
            ],
            &[],
        ),
        Duration::from_secs(15),
    );
    let err = one_line_error(&out);
    assert!(
        err.contains("PostgreSQL") && err.contains("127.0.0.1:1"),
        "{}",
        out.describe()
    );
}

/// WARDEN_API_ADDR from the environment is used when no flag is given.
#[test]
fn env_api_addr_is_honoured() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[], &[("WARDEN_API_ADDR", "127.0.0.1:0")]);
    let port: u16 = server
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad address {}", server.addr));
    assert!(port != 0 && port != 8470, "port {port}");
    let me = cli(dir.path(), &["whoami", "-o", "json"], &[]).json();
    assert_eq!(me["kind"], "admin", "{me}");
    server.stop();
}

/// The variables the CLI and the logger read (WARDEN_URL, WARDEN_TOKEN, WARDEN_LOG) are not
/// server configuration: having them set, as in a shell that also runs admin commands, must not
/// stop `warden serve`.
#[test]
fn serve_ignores_client_environment_variables() {
    for (var, value) in [
        ("WARDEN_URL", "http://127.0.0.1:8470"),
        ("WARDEN_TOKEN", "wda_aaaaaaaaaaaa_0000"),
        ("WARDEN_LOG", "warn"),
    ] {
        let dir = tempdir();
        let server = Server::start(dir.path(), &["--api-addr", "127.0.0.1:0"], &[(var, value)]);
        let proc = server.stop();
        // The info-level shutdown line shows unless WARDEN_LOG raised the level.
        assert_eq!(
            proc.stderr().contains("shutting down"),
            var != "WARDEN_LOG",
            "{var}={value}: {}",
            proc.report()
        );
    }
}

/// Usage errors exit 2; API and connection failures exit 1 with a message.
#[test]
fn exit_codes() {
    let dir = tempdir();
    let cwd = dir.path();
    let out = cli(cwd, &["account", "create"], &[]);
    out.fails_with(2);
    assert!(out.stderr.contains("Usage"), "{}", out.describe());
    cli(cwd, &["bogus"], &[]).fails_with(2);
    cli(cwd, &["key", "rotate", "x", "--grace"], &[]).fails_with(2);

    // No server, no token.
    let out = cli(cwd, &["account", "list"], &[]);
    out.fails_with(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("WARDEN_TOKEN"),
        "{}",
        out.describe()
    );
    // A token but nothing listening.
    let out = cli(
        cwd,
        &["account", "list"],
        &[
            ("WARDEN_TOKEN", "wda_aaaaaaaaaaaa_0000"),
            ("WARDEN_URL", "http://127.0.0.1:1"),
        ],
    );
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("cannot reach Warden at http://127.0.0.1:1"),
        "{}",
        out.describe()
    );

    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    let out = cli(cwd, &["account", "show", "nope"], &[]);
    out.fails_with(1);
    assert!(out.stderr.contains("not found"), "{}", out.describe());
    assert!(out.stderr.contains("HTTP 404"), "{}", out.describe());
    // A wrong admin token is refused.
    let out = cli(
        cwd,
        &["account", "list"],
        &[("WARDEN_TOKEN", "wda_aaaaaaaaaaaa_0000")],
    );
    out.fails_with(1);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.describe());
    // A bad value the server rejects.
    let out = cli(
        cwd,
        &[
            "account",
            "create",
            "Bad Name",
            "--owner",
            "ada@example.com",
            "--purpose",
            "x",
        ],
        &[],
    );
    out.fails_with(1);
    assert!(out.stderr.contains("HTTP 4"), "{}", out.describe());
    server.stop();
}

/// `warden serve --database-url` runs on PostgreSQL end to end.
#[tokio::test]
async fn postgres_backend() {
    let db = warden_testkit::ScratchDb::create().await;
    let url = db.url();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| {
            let dir = tempdir();
            let cwd = dir.path();
            let data = cwd.join("d");
            let data_arg = data.to_str().unwrap();
            let mut server = Server::start(
                cwd,
                &[
                    "--database-url",
                    &url,
                    "--data-dir",
                    data_arg,
                    "--api-addr",
                    "127.0.0.1:0",
                ],
                &[],
            );
            let banner = server.wait_stdout("Database:");
            assert!(banner.contains("postgres"), "{banner}");
            assert!(
                !data.join("warden.db").exists(),
                "a SQLite database was created"
            );
            let with_dir = [("WARDEN_DATA_DIR", data_arg)];
            cli(
                cwd,
                &[
                    "account",
                    "create",
                    "pg-job",
                    "--owner",
                    "ada@example.com",
                    "--purpose",
                    "postgres test",
                ],
                &with_dir,
            )
            .ok();
            let issued = cli(
                cwd,
                &[
                    "key",
                    "create",
                    "pg-job",
                    "-o",
                    "json",
                    "--data-dir",
                    data_arg,
                ],
                &[],
            )
            .json();
            let key = str_field(&issued, "/secret").to_owned();
            let me = cli(
                cwd,
                &["whoami", "-o", "json"],
                &[("WARDEN_TOKEN", &key), ("WARDEN_URL", &server.url())],
            )
            .json();
            assert_eq!(me["account"], "pg-job", "{me}");
            server.stop();

            // A restart against the same database keeps the accounts and issues no new token.
            let server = Server::start(
                cwd,
                &[
                    "--database-url",
                    &url,
                    "--data-dir",
                    data_arg,
                    "--api-addr",
                    "127.0.0.1:0",
                ],
                &[],
            );
            let me = cli(
                cwd,
                &["whoami", "-o", "json"],
                &[("WARDEN_TOKEN", &key), ("WARDEN_URL", &server.url())],
            )
            .json();
            assert_eq!(me["account"], "pg-job", "{me}");
            let proc = server.stop();
            assert!(
                !proc.stdout().contains("Bootstrap admin token"),
                "{}",
                proc.report()
            );
        })
    })
    .await
    .expect("join the blocking test body");
    db.drop_db().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Help exits 0 and documents the options.
/// `warden admin password` sets the caller's console password from standard input in scripts,
/// refuses a weak one with the reason, and without a terminal asks for `--password-stdin`.
#[test]
fn an_admin_sets_a_console_password() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempdir();
    let cwd = dir.path();
    let _server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    let set = |input: &str| {
        let mut cmd = warden(cwd, &["admin", "password", "--password-stdin"], &[]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = set("short\n");
    assert!(!weak.status.success());
    let said = String::from_utf8_lossy(&weak.stderr);
    assert!(said.contains("at least 12 characters"), "{said}");

    let good = set("a long console passphrase\n");
    assert!(good.status.success(), "{good:?}");
    assert!(String::from_utf8_lossy(&good.stdout).contains("Password set"));
    let events = cli(cwd, &["events", "--category", "admin", "-o", "json"], &[]).json_lines();
    assert!(
        events
            .iter()
            .any(|e| e["action"]["verb"] == "admin.set_password"),
        "{events:?}"
    );
    assert!(!format!("{events:?}").contains("passphrase"));

    // No terminal and no flag: it says what to do instead of hanging.
    let asked = cli(cwd, &["admin", "password"], &[]);
    asked.fails_with(1);
    assert!(
        asked.stderr.contains("--password-stdin"),
        "{}",
        asked.describe()
    );
}

#[test]
fn help() {
    let dir = tempdir();
    let out = cli(dir.path(), &["--help"], &[]);
    let text = out.ok();
    for command in ["serve", "account", "key", "admin", "events", "whoami"] {
        assert!(text.contains(command), "--help lacks {command}: {text}");
    }
    let out = cli(dir.path(), &["key", "rotate", "--help"], &[]);
    assert!(out.ok().contains("--grace"), "{}", out.describe());
    let out = cli(dir.path(), &["--version"], &[]);
    assert!(out.ok().starts_with("warden "), "{}", out.describe());
}

/// `warden demo` on free ports: the printed URL and sign-in token work against the REST API, the
/// sample accounts exist, the gateways recorded allowed and denied calls, detection raised an
/// alert from that traffic, and on exit the scratch database is dropped and the data directory
/// removed.
#[test]
fn demo_runs_real_traffic_and_cleans_up() {
    let dir = tempdir();
    let cwd = dir.path();
    let postgres = format!("{}/postgres", warden_testkit::pg_base_url());
    let args = [
        "demo",
        "--api-addr",
        "127.0.0.1:0",
        "--gateway-addr",
        "127.0.0.1:0",
        "--pg-addr",
        "127.0.0.1:0",
        "--postgres",
        &postgres,
        "--duration",
        "40s",
    ];
    let mut demo = Proc::spawn(warden(cwd, &args, &[]));
    let generous = Duration::from_secs(90);
    let deadline = std::time::Instant::now() + generous;
    let banner = loop {
        let out = demo.stdout();
        if out.contains("Ctrl-C") {
            break out;
        }
        assert!(
            demo.try_status().is_none() && std::time::Instant::now() < deadline,
            "the demo never printed its banner:\n{}",
            demo.report()
        );
        std::thread::sleep(POLL);
    };
    let after = |label: &str| -> String {
        let line = banner
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` line:\n{banner}"));
        let rest = line.trim_start()[label.len()..].trim_start();
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let console = after("Console:");
    let url = console
        .strip_suffix("/console/")
        .unwrap_or_else(|| panic!("console URL {console}"))
        .to_owned();
    let token = after("Sign-in token:");
    assert!(token.starts_with("wda_"), "{banner}");
    let data_dir = after("Data directory:");
    assert!(Path::new(&data_dir).is_dir(), "{banner}");
    let db_line = banner
        .lines()
        .find(|l| l.contains("scratch database"))
        .unwrap_or_else(|| panic!("PostgreSQL was not used:\n{}", demo.report()));
    let db_name = db_line
        .split_whitespace()
        .find(|w| w.starts_with("warden_demo_"))
        .unwrap_or_else(|| panic!("no database name in {db_line:?}"))
        .to_owned();
    let env = [
        ("WARDEN_URL", url.as_str()),
        ("WARDEN_TOKEN", token.as_str()),
    ];

    // Everything below comes from the running demo through its REST API.
    let accounts = cli(cwd, &["account", "list", "-o", "json"], &env).json();
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap_or_else(|| panic!("{accounts}"))
        .iter()
        .map(|a| str_field(a, "/name"))
        .collect();
    for name in ["orders-sync", "billing-etl", "reporting", "ci-deployer"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let (mut allowed, mut denied, mut sql, mut alerts) = (false, false, false, Vec::new());
    while !(allowed && denied && sql && !alerts.is_empty()) {
        assert!(
            demo.try_status().is_none() && std::time::Instant::now() < deadline,
            "allowed {allowed}, denied {denied}, sql {sql}, alerts {alerts:?} before the demo ended:\n{}",
            demo.report()
        );
        for event in cli(cwd, &["events", "-o", "json"], &env).json_lines() {
            match event.pointer("/action/category").and_then(Value::as_str) {
                Some("http") => match event.pointer("/decision/allowed") {
                    Some(Value::Bool(true)) => allowed = true,
                    Some(Value::Bool(false)) => denied = true,
                    _ => {}
                },
                Some("sql") => sql = true,
                _ => {}
            }
        }
        let raised = cli(cwd, &["alerts", "list", "-o", "json"], &env).json();
        alerts = raised
            .as_array()
            .unwrap_or_else(|| panic!("{raised}"))
            .iter()
            .map(|a| str_field(a, "/detector").to_owned())
            .collect();
        std::thread::sleep(Duration::from_millis(500));
    }

    let status = demo.wait(generous);
    assert!(status.success(), "{}", demo.report());
    let out = demo.stdout();
    assert!(
        out.contains(&format!("Dropped the scratch database {db_name}")),
        "{out}"
    );
    assert!(!Path::new(&data_dir).exists(), "{data_dir} is still there");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let left = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&postgres, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&db_name],
            )
            .await
            .expect("look for the scratch database")
            .get::<_, i64>(0)
    });
    assert_eq!(left, 0, "the scratch database {db_name} was not dropped");
}
