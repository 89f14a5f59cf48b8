//! `warden analyze`, `warden recommend`, `warden grant versions|rollback` and
//! `warden lifecycle plan` through the real binary against a real server. (The analysis over
//! months of gateway traffic is tested in warden-server's `accountability.rs` and
//! `lifecycle.rs`, where the clock can be moved.)

mod common;

use common::*;

#[test]
fn accountability_commands_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let server = Server::start(
        cwd,
        &[
            "--api-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--postgres-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    cli(
        cwd,
        &[
            "account",
            "create",
            "billing-etl",
            "--owner",
            "ada@acme.io",
            "--purpose",
            "nightly export of invoices",
        ],
        &[],
    )
    .ok();
    cli(cwd, &["key", "create", "billing-etl"], &[]).ok();
    cli(
        cwd,
        &[
            "target",
            "add",
            "orders",
            "--upstream",
            "https://orders.internal",
        ],
        &[],
    )
    .ok();
    cli(
        cwd,
        &[
            "grant",
            "add",
            "billing-etl",
            "orders",
            "--allow",
            "GET /v1/**",
        ],
        &[],
    )
    .ok();

    // The analysis: a table of accounts, then the findings with their controls.
    let table = cli(cwd, &["analyze"], &[]).ok().to_owned();
    assert!(
        table.contains("ACCOUNT") && table.contains("billing-etl"),
        "{table}"
    );
    assert!(table.contains("wildcard_grant"), "{table}");
    assert!(table.contains("SOC 2 CC6.3"), "{table}");
    let json = cli(cwd, &["analyze", "--output", "json"], &[]).json();
    assert_eq!(json["accounts"][0]["account"], "billing-etl");
    assert!(json["summary"].is_object());
    // A bad duration names the flag's field.
    let bad = cli(cwd, &["analyze", "--window", "soon"], &[]);
    bad.fails_with(1);
    assert!(bad.stderr.contains("window"), "{}", bad.describe());

    // A grant made today is protected: nothing to recommend, nothing to apply.
    let out = cli(cwd, &["recommend", "billing-etl"], &[]).ok().to_owned();
    assert!(out.contains("already match"), "{out}");
    let refused = cli(cwd, &["recommend", "billing-etl", "--apply"], &[]);
    refused.fails_with(1);
    assert!(
        refused.stderr.contains("nothing to apply"),
        "{}",
        refused.describe()
    );
    let unknown = cli(cwd, &["recommend", "nobody"], &[]);
    unknown.fails_with(1);
    assert!(unknown.stderr.contains("nobody"), "{}", unknown.describe());

    // No versions yet; rolling back to one that does not exist says so.
    let versions = cli(
        cwd,
        &["grant", "versions", "billing-etl", "--output", "json"],
        &[],
    )
    .json();
    assert_eq!(versions, serde_json::json!([]));
    let missing = cli(cwd, &["grant", "rollback", "billing-etl", "--to", "1"], &[]);
    missing.fails_with(1);
    assert!(
        missing.stderr.contains("not found"),
        "{}",
        missing.describe()
    );

    // Lifecycle: every policy is off by default and a new account gives them nothing to do.
    let plan = cli(cwd, &["lifecycle", "plan", "--output", "json"], &[]).json();
    let policies: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["enabled"], false);
            p["policy"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        policies,
        vec![
            "disable_inactive",
            "expire_old_keys",
            "require_owner",
            "rotate_keys"
        ]
    );
    let out = cli(cwd, &["lifecycle", "plan"], &[]).ok().to_owned();
    assert!(out.contains("nothing to do"), "{out}");
    server.stop();
}
