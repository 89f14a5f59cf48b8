//! The ledger end to end, through the real binary: tampering with the stored ledger (SQLite file
//! and PostgreSQL tables edited directly) is caught by `warden audit verify` and named by
//! position; a server killed with SIGKILL under load loses no acknowledged event; two servers on
//! one PostgreSQL database keep one linear ledger.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use warden_testkit::ScratchDb;

/// Checkpoints every 4 entries, copied to `<cwd>/published`.
fn ledger_env(cwd: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("WARDEN_LEDGER__CHECKPOINT_EVERY", "4".to_owned()),
        (
            "WARDEN_LEDGER__CHECKPOINT_DIR",
            cwd.join("published").display().to_string(),
        ),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn verifier_key(data_dir: &Path) -> String {
    let signer = std::fs::read_to_string(data_dir.join("ledger-signing-key")).unwrap();
    warden_ledger::Signer::parse(signer.trim())
        .unwrap()
        .verifier()
        .to_key_string()
}

/// Records some history: accounts, keys, uses, and waits for a checkpoint covering all of it.
fn make_history(server: &Server, cwd: &Path, env: &[(&str, &str)]) -> u64 {
    for name in ["billing-etl", "reports", "ci-deploy"] {
        cli(
            cwd,
            &[
                "account",
                "create",
                name,
                "--owner",
                "ada@example.com",
                "--purpose",
                "test",
            ],
            env,
        )
        .ok();
        let key = cli(cwd, &["key", "create", name], env)
            .ok()
            .trim()
            .to_owned();
        let mut with_key = env.to_vec();
        with_key.push(("WARDEN_TOKEN", &key));
        cli(cwd, &["whoami"], &with_key).ok();
    }
    let size = entries(server, cwd).len() as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let published =
            std::fs::read_to_string(cwd.join("published/latest.checkpoint")).unwrap_or_default();
        if published.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(size) {
            return size;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint at size {size}; latest: {published}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn entries(server: &Server, cwd: &Path) -> Vec<Value> {
    let token = admin_token(&cwd.join("warden-data"));
    let body = get_json(
        &format!("{}/v1/ledger/entries?limit=10000", server.url()),
        &token,
    );
    body["entries"].as_array().unwrap().clone()
}

/// A blocking GET of JSON (the tests run outside any async runtime).
fn get_json(url: &str, token: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The tamper cases, as SQL, with what verification must say. `{seq}` positions are chosen
/// inside the history.
fn tamper_cases(size: u64) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "edited event",
            "UPDATE ledger_entries SET body = replace(body, 'ada@example.com', 'eve@example.com') WHERE seq = 0".into(),
            "position 0",
        ),
        ("deleted event", "DELETE FROM ledger_entries WHERE seq = 5".into(), "position 5"),
        (
            "reordered pair",
            "UPDATE ledger_entries SET seq = CASE seq WHEN 6 THEN -7 WHEN 7 THEN -6 END WHERE seq IN (6, 7); \
             UPDATE ledger_entries SET seq = -seq WHERE seq < 0"
                .into(),
            "position 6",
        ),
        (
            "truncated tail",
            format!("DELETE FROM ledger_entries WHERE seq >= {}; DELETE FROM ledger_checkpoints", size - 3),
            "truncat",
        ),
        (
            "forged checkpoint",
            "UPDATE ledger_checkpoints SET note = replace(note, substr(note, length(note) - 10, 4), 'AAAA') \
             WHERE size = (SELECT MIN(size) FROM ledger_checkpoints)"
                .into(),
            "checkpoint",
        ),
    ]
}

fn verify(cwd: &Path, args: &[&str], external: &Path) -> Outcome {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let external = external.display().to_string();
    all.extend_from_slice(&["--checkpoint", &external]);
    cli(cwd, &all, &[])
}

#[test]
fn tampering_with_the_sqlite_file_is_detected() {
    let dir = tempdir();
    let cwd = dir.path();
    let env = ledger_env(cwd);
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &env_refs(&env));
    let size = make_history(&server, cwd, &env_refs(&env));
    server.stop();
    let external = cwd.join("published/latest.checkpoint");
    let pristine = cwd.join("warden-data");
    let out = verify(cwd, &["--data-dir", pristine.to_str().unwrap()], &external);
    let text = out.ok();
    assert!(text.contains("verified"), "{}", out.describe());

    for (case, sql, expect) in tamper_cases(size) {
        let copy = cwd.join(format!("case-{}", case.replace(' ', "-")));
        copy_dir(&pristine, &copy);
        let db = rusqlite::Connection::open(copy.join("warden.db")).unwrap();
        db.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        drop(db);
        let out = verify(cwd, &["--data-dir", copy.to_str().unwrap()], &external);
        out.fails_with(1);
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            said.to_lowercase().contains(expect),
            "{case}: expected {expect:?} in:\n{}",
            out.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_postgres_tables_is_detected() {
    let db = ScratchDb::create().await;
    let url = db.url();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| {
            let dir = tempdir();
            let cwd = dir.path().to_owned();
            let env = ledger_env(&cwd);
            let server = Server::start(
                &cwd,
                &["--api-addr", "127.0.0.1:0", "--database-url", &url],
                &env_refs(&env),
            );
            let size = make_history(&server, &cwd, &env_refs(&env));
            server.stop();
            (dir, cwd, size)
        })
    })
    .await
    .unwrap();
    let (dir, cwd, size) = match result {
        Ok(v) => v,
        Err(panic) => {
            db.drop_db().await;
            std::panic::resume_unwind(panic);
        }
    };
    let external = cwd.join("published/latest.checkpoint");
    let key = verifier_key(&cwd.join("warden-data"));
    let mut failures = Vec::new();
    for (case, sql, expect) in tamper_cases(size) {
        let copy = ScratchDb::create_from(&db).await;
        copy.client()
            .await
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let (curl, key, cwd, external) = (copy.url(), key.clone(), cwd.clone(), external.clone());
        let out = tokio::task::spawn_blocking(move || {
            verify(&cwd, &["--database-url", &curl, "--key", &key], &external)
        })
        .await
        .unwrap();
        copy.drop_db().await;
        let said = format!("{}{}", out.stdout, out.stderr).to_lowercase();
        if out.code() != Some(1) || !said.contains(expect) {
            failures.push(format!(
                "{case}: expected exit 1 and {expect:?}:\n{}",
                out.describe()
            ));
        }
    }
    let (curl, k, c, e) = (db.url(), key.clone(), cwd.clone(), external.clone());
    let clean = tokio::task::spawn_blocking(move || {
        verify(&c, &["--database-url", &curl, "--key", &k], &e)
    })
    .await
    .unwrap();
    db.drop_db().await;
    drop(dir);
    assert!(
        clean.status.success(),
        "the untouched ledger must verify:\n{}",
        clean.describe()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Hammers the API with account creations from several threads; returns the names the server
/// acknowledged (201), stopping when `stop` is set.
fn create_accounts(
    base: String,
    token: String,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<Vec<String>>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let (base, token, stop, acked) =
                (base.clone(), token.clone(), stop.clone(), acked.clone());
            rt.spawn(async move {
                let http = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("{prefix}-{w}-{i}");
                    i += 1;
                    let resp = http
                        .post(format!("{base}/v1/accounts"))
                        .bearer_auth(&token)
                        .json(&json!({"name": name, "owner": "a@b.co", "purpose": "load"}))
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status() == 201 => acked.lock().unwrap().push(name),
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect();
    std::thread::spawn(move || {
        rt.block_on(async {
            for h in handles {
                let _ = h.await;
            }
        })
    });
    acked
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_linear(entries: &[Value]) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64),
            "gap or fork at position {i}"
        );
    }
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_event() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    let token = admin_token(&cwd.join("warden-data"));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = create_accounts(server.url(), token.clone(), "load", stop.clone());
    wait_for("200 acknowledged creations", || {
        acked.lock().unwrap().len() >= 200
    });
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = acked.lock().unwrap().clone();

    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    let all = entries(&server, cwd);
    assert_linear(&all);
    for name in &acked {
        let resource = format!("account/{name}");
        assert!(
            all.iter()
                .any(|e| e["body"].as_str().unwrap().contains(&resource)),
            "acknowledged creation of {name} is missing from the ledger"
        );
    }
    // Sequencing continues right after the last entry.
    cli(
        cwd,
        &[
            "account",
            "create",
            "after-crash",
            "--owner",
            "a@b.co",
            "--purpose",
            "x",
        ],
        &[],
    )
    .ok();
    let after = entries(&server, cwd);
    assert_linear(&after);
    assert!(after.len() > all.len());
    server.stop();
    let out = cli(cwd, &["audit", "verify"], &[]);
    assert!(out.ok().contains("verified"), "{}", out.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_linear_ledger() {
    let db = ScratchDb::create().await;
    let url = db.url();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| {
            let dir = tempdir();
            let a_dir = dir.path().join("a");
            let b_dir = dir.path().join("b");
            std::fs::create_dir_all(&a_dir).unwrap();
            std::fs::create_dir_all(&b_dir).unwrap();
            let a = Server::start(
                &a_dir,
                &["--api-addr", "127.0.0.1:0", "--database-url", &url],
                &[],
            );
            // B shares A's keys (as every instance of one deployment must).
            let keys_env = a_dir.join("warden-data").display().to_string();
            // A second instance with a key of its own is refused, naming the problem.
            let refused = cli(
                &b_dir,
                &[
                    "serve",
                    "--api-addr",
                    "127.0.0.1:0",
                    "--database-url",
                    &url,
                    "--data-dir",
                    "other",
                ],
                &[],
            );
            refused.fails_with(1);
            assert!(
                refused.stderr.contains("signing_key_file"),
                "{}",
                refused.describe()
            );
            let b = Server::start(
                &b_dir,
                &["--api-addr", "127.0.0.1:0", "--database-url", &url],
                &[("WARDEN_KEYS_DIR", &keys_env)],
            );
            let token = admin_token(&a_dir.join("warden-data"));
            let stop = Arc::new(AtomicBool::new(false));
            let on_a = create_accounts(a.url(), token.clone(), "via-a", stop.clone());
            let on_b = create_accounts(b.url(), token.clone(), "via-b", stop.clone());
            wait_for("both instances to take writes", || {
                on_a.lock().unwrap().len() >= 100 && on_b.lock().unwrap().len() >= 100
            });
            // A dies; B carries on alone.
            a.kill9();
            let before = on_b.lock().unwrap().len();
            wait_for("B to keep taking writes", || {
                on_b.lock().unwrap().len() >= before + 50
            });
            stop.store(true, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
            let all = entries(&b, &a_dir);
            assert_linear(&all);
            for name in on_a
                .lock()
                .unwrap()
                .iter()
                .chain(on_b.lock().unwrap().iter())
            {
                let resource = format!("account/{name}");
                assert!(
                    all.iter()
                        .any(|e| e["body"].as_str().unwrap().contains(&resource)),
                    "{name} missing"
                );
            }
            b.stop();
            let key = verifier_key(&a_dir.join("warden-data"));
            let out = cli(
                &a_dir,
                &["audit", "verify", "--database-url", &url, "--key", &key],
                &[],
            );
            assert!(out.ok().contains("verified"), "{}", out.describe());
            dir
        })
    })
    .await
    .unwrap();
    db.drop_db().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
