//! Detection and alerts end to end, through the real binary: a revoked key used again raises a
//! `dead_credential` alert that `warden alerts` lists (table, JSON, OCSF), shows with its
//! triggering event, acknowledges and resolves; `warden events -o ocsf` prints one OCSF object
//! per event; a `jsonl_file` sink receives every event once, also across a restart; a bad sink
//! configuration stops `warden serve` before it starts.
//!
//! Every test has its own working directory and ports. Waits poll with bounded deadlines;
//! nothing asserts on timing.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How long detection or the exporter may take to catch up before a test fails.
const CATCH_UP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn admin_token(cwd: &Path) -> String {
    std::fs::read_to_string(cwd.join("warden-data/admin-token"))
        .expect("read warden-data/admin-token")
        .trim()
        .to_owned()
}

/// A blocking GET of JSON with the admin token (the tests run outside any async runtime).
fn get_json(server: &Server, cwd: &Path, path: &str) -> Value {
    let url = format!("{}{path}", server.url());
    let token = admin_token(cwd);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {url}: HTTP {}",
            response.status()
        );
        response.json().await.unwrap()
    })
}

/// Polls `probe` until it returns `Some`, failing the test after [`CATCH_UP`].
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {CATCH_UP:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until detection runs and has examined the whole ledger.
fn wait_detection_caught_up(server: &Server, cwd: &Path) {
    wait_until("detection to catch up with the ledger", || {
        let status = get_json(server, cwd, "/v1/detection");
        assert_eq!(
            status["enabled"], true,
            "detection is not enabled: {status}"
        );
        let position = status["position"].as_u64()?;
        let size = status["ledger_size"].as_u64().unwrap();
        (position >= size).then_some(())
    });
}

/// Creates an account with a key, uses the key, revokes it and uses it again (refused).
/// Returns the key id and the key.
fn use_a_revoked_key(cwd: &Path, account: &str) -> (String, String) {
    cli(
        cwd,
        &[
            "account",
            "create",
            account,
            "--owner",
            "ada@example.com",
            "--purpose",
            "alert tests",
        ],
        &[],
    )
    .ok();
    let issued = cli(cwd, &["key", "create", account, "-o", "json"], &[]).json();
    let key_id = str_field(&issued, "/key_id").to_owned();
    let key = str_field(&issued, "/secret").to_owned();
    let me = cli(cwd, &["whoami", "-o", "json"], &[("WARDEN_TOKEN", &key)]).json();
    assert_eq!(me["account"], account, "{me}");
    cli(cwd, &["key", "revoke", &key_id], &[]).ok();
    whoami_refused(cwd, &key);
    (key_id, key)
}

/// `warden whoami` with `key` fails with HTTP 401.
fn whoami_refused(cwd: &Path, key: &str) {
    let refused = cli(cwd, &["whoami"], &[("WARDEN_TOKEN", key)]);
    refused.fails_with(1);
    assert!(
        refused.stderr.contains("HTTP 401"),
        "{}",
        refused.describe()
    );
}

/// `warden alerts list -o json ARGS` as a vector.
fn alerts_json(cwd: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["alerts", "list", "-o", "json"];
    args.extend_from_slice(extra);
    let list = cli(cwd, &args, &[]).json();
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .clone()
}

/// Waits for the `dead_credential` alert about `account` and returns it (from `-o json`).
fn wait_dead_credential_alert(cwd: &Path, account: &str) -> Value {
    wait_until("a dead_credential alert", || {
        alerts_json(cwd, &["--account", account])
            .into_iter()
            .find(|a| a["detector"] == "dead_credential")
    })
}

/// `warden events -o json` (one JSON object per line).
fn events_json(cwd: &Path) -> Vec<Value> {
    cli(cwd, &["events", "-o", "json"], &[]).json_lines()
}

/// `[[alerts.sinks]]` of one `jsonl_file` sink named `siem` writing to `path`.
fn jsonl_sink_toml(path: &Path) -> String {
    format!(
        "[[alerts.sinks]]\nkind = \"jsonl_file\"\nname = \"siem\"\npath = \"{}\"\n",
        path.display()
    )
}

/// Every line of the export file, parsed (the file must only hold whole JSON objects).
fn export_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A batch is one write; a line without its newline would be a torn write.
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the export file ends in a partial line:\n{text}"
    );
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("export line {line:?} is not JSON ({e})"));
            assert!(v.is_object(), "export line {line:?} is not an object");
            v
        })
        .collect()
}

fn uids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| str_field(l, "/metadata/uid").to_owned())
        .collect()
}

/// Waits until the export file holds a line for every id in `ids`; returns its lines.
fn wait_exported(path: &Path, ids: &[String]) -> Vec<Value> {
    wait_until("the export file to hold every event caused", || {
        let lines = export_lines(path);
        let have: HashSet<String> = uids(&lines).into_iter().collect();
        ids.iter().all(|id| have.contains(id)).then_some(lines)
    })
}

/// Asserts that no `metadata.uid` appears twice in the export.
fn assert_no_duplicates(lines: &[Value]) {
    let mut seen = HashSet::new();
    for uid in uids(lines) {
        assert!(seen.insert(uid.clone()), "{uid} exported twice");
    }
}

/// The checks every OCSF object of an event must pass, and its class.
fn check_ocsf_event(o: &Value) -> u64 {
    let class = o["class_uid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no class_uid: {o}"));
    let category = o["category_uid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no category_uid: {o}"));
    let activity = o["activity_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no activity_id: {o}"));
    assert_eq!(category, class / 1000, "category_uid of {o}");
    assert_eq!(
        o["type_uid"].as_u64(),
        Some(class * 100 + activity),
        "type_uid of {o}"
    );
    assert!(
        o["time"].as_i64().is_some_and(|t| t > 1_500_000_000_000),
        "time (ms) of {o}"
    );
    assert!(o["metadata"]["uid"].is_string(), "metadata.uid of {o}");
    assert!(
        o["metadata"]["sequence"].is_u64(),
        "metadata.sequence of {o}"
    );
    class
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A revoked key used again raises a critical `dead_credential` alert, which the CLI lists in
/// every format, shows with its event, acknowledges and resolves, once.
#[test]
fn a_revoked_key_used_again_raises_an_alert_with_a_lifecycle() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    wait_detection_caught_up(&server, cwd);
    assert!(
        alerts_json(cwd, &[]).is_empty(),
        "alerts before anything happened"
    );

    let (key_id, key) = use_a_revoked_key(cwd, "billing-etl");
    let alert = wait_dead_credential_alert(cwd, "billing-etl");
    let id = str_field(&alert, "/id").to_owned();

    // JSON.
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(alert["status"], "open", "{alert}");
    assert_eq!(alert["account"], "billing-etl", "{alert}");
    assert_eq!(alert["subject"], key_id.as_str(), "{alert}");
    assert!(alert["count"].as_u64().unwrap_or(0) >= 1, "{alert}");
    let seqs: Vec<u64> = alert["seqs"]
        .as_array()
        .unwrap_or_else(|| panic!("no seqs: {alert}"))
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(!seqs.is_empty(), "{alert}");
    let summary = str_field(&alert, "/summary");
    assert!(summary.contains("key_revoked"), "{alert}");

    // Table.
    let table = cli(cwd, &["alerts", "list"], &[]);
    let out = table.ok();
    for header in ["ID", "SEVERITY", "STATUS", "DETECTOR", "ACCOUNT"] {
        assert!(out.contains(header), "{}", table.describe());
    }
    let row = out
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no row for {id}: {}", table.describe()));
    for cell in ["critical", "open", "dead_credential", "billing-etl"] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }

    // OCSF: one Detection Finding per line.
    let ocsf = cli(cwd, &["alerts", "list", "-o", "ocsf"], &[]).json_lines();
    assert!(!ocsf.is_empty());
    for o in &ocsf {
        assert_eq!(o["class_uid"], 2004, "{o}");
        assert_eq!(o["category_uid"], 2, "{o}");
        assert_eq!(
            o["type_uid"].as_u64(),
            o["activity_id"].as_u64().map(|a| 200_400 + a),
            "{o}"
        );
    }
    let finding = ocsf
        .iter()
        .find(|o| o["finding_info"]["uid"] == id.as_str())
        .unwrap_or_else(|| panic!("no finding for {id} in {ocsf:?}"));
    assert_eq!(finding["severity_id"], 5, "{finding}");
    assert_eq!(finding["severity"], "Critical", "{finding}");
    assert_eq!(finding["status_id"], 1, "{finding}");
    assert_eq!(finding["activity_id"], 1, "{finding}");
    assert_eq!(
        finding["finding_info"]["types"],
        serde_json::json!(["dead_credential"]),
        "{finding}"
    );
    assert_eq!(finding["metadata"]["uid"], id.as_str(), "{finding}");

    // Show: the alert and the event that raised it.
    let shown = cli(cwd, &["alerts", "show", &id, "-o", "json"], &[]).json();
    assert_eq!(shown["alert"]["id"], id.as_str(), "{shown}");
    let events = shown["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {shown}"));
    assert!(!events.is_empty(), "{shown}");
    let trigger = &events[0];
    assert_eq!(trigger["seq"].as_u64(), Some(seqs[0]), "{shown}");
    assert_eq!(trigger["action"]["category"], "auth", "{trigger}");
    assert_eq!(trigger["action"]["verb"], "whoami", "{trigger}");
    assert_eq!(
        trigger["action"]["detail"]["failure"], "key_revoked",
        "{trigger}"
    );
    assert_eq!(trigger["decision"]["allowed"], false, "{trigger}");
    assert_eq!(trigger["actor"]["key_id"], key_id.as_str(), "{trigger}");

    let table = cli(cwd, &["alerts", "show", &id], &[]);
    let out = table.ok();
    for text in [
        id.as_str(),
        "dead_credential",
        "critical",
        "billing-etl",
        "SEQ",
        "whoami",
    ] {
        assert!(out.contains(text), "{text} missing: {}", table.describe());
    }
    let event_line = out
        .lines()
        .find(|l| l.starts_with(&seqs[0].to_string()) && l.contains("whoami"))
        .unwrap_or_else(|| panic!("no line for event {}: {}", seqs[0], table.describe()));
    assert!(event_line.contains("deny"), "{event_line:?}");

    // Acknowledge, then resolve, each with a note.
    let acked = cli(
        cwd,
        &[
            "alerts",
            "ack",
            &id,
            "--note",
            "looking into it",
            "-o",
            "json",
        ],
        &[],
    )
    .json();
    assert_eq!(acked["status"], "acknowledged", "{acked}");
    assert_eq!(acked["acknowledged_by"], "admin", "{acked}");
    assert_eq!(acked["note"], "looking into it", "{acked}");
    let listed = alerts_json(cwd, &["--status", "acknowledged"]);
    assert!(listed.iter().any(|a| a["id"] == id.as_str()), "{listed:?}");
    assert!(
        !alerts_json(cwd, &["--status", "open"])
            .iter()
            .any(|a| a["id"] == id.as_str()),
        "an acknowledged alert is listed as open"
    );
    // Acknowledging twice is refused.
    let again = cli(cwd, &["alerts", "ack", &id], &[]);
    again.fails_with(1);
    assert!(
        again.stderr.contains("HTTP 409") && again.stderr.contains("already acknowledged"),
        "{}",
        again.describe()
    );

    let resolved = cli(
        cwd,
        &[
            "alerts",
            "resolve",
            &id,
            "--note",
            "key was in an old CI job",
            "-o",
            "json",
        ],
        &[],
    )
    .json();
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["resolved_by"], "admin", "{resolved}");
    assert_eq!(resolved["acknowledged_by"], "admin", "{resolved}");
    assert_eq!(resolved["note"], "key was in an old CI job", "{resolved}");
    let shown = cli(cwd, &["alerts", "show", &id, "-o", "json"], &[]).json();
    assert_eq!(shown["alert"]["status"], "resolved", "{shown}");
    let listed = alerts_json(cwd, &["--status", "resolved"]);
    assert!(listed.iter().any(|a| a["id"] == id.as_str()), "{listed:?}");
    let ocsf = cli(cwd, &["alerts", "list", "-o", "ocsf"], &[]).json_lines();
    let finding = ocsf
        .iter()
        .find(|o| o["finding_info"]["uid"] == id.as_str())
        .unwrap_or_else(|| panic!("no finding for {id} in {ocsf:?}"));
    assert_eq!(
        (
            finding["activity_id"].as_u64(),
            finding["status_id"].as_u64()
        ),
        (Some(3), Some(4)),
        "a resolved alert is a closed finding: {finding}"
    );

    // Resolving twice fails with a clear error, and nothing changes.
    for args in [
        &["alerts", "resolve", id.as_str(), "--note", "again"][..],
        &["alerts", "ack", id.as_str()][..],
    ] {
        let out = cli(cwd, args, &[]);
        out.fails_with(1);
        assert!(
            out.stdout.is_empty() && out.stderr.starts_with("error: "),
            "{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("HTTP 409") && out.stderr.contains("resolved"),
            "{}",
            out.describe()
        );
    }
    let shown = cli(cwd, &["alerts", "show", &id, "-o", "json"], &[]).json();
    assert_eq!(
        shown["alert"]["note"], "key was in an old CI job",
        "{shown}"
    );

    // The lifecycle is on the ledger, by the admin.
    let lifecycle: Vec<Value> = events_json(cwd)
        .into_iter()
        .filter(|e| e["action"]["resource"] == format!("alert/{id}").as_str())
        .collect();
    let verbs: Vec<&str> = lifecycle
        .iter()
        .map(|e| str_field(e, "/action/verb"))
        .collect();
    assert_eq!(
        verbs,
        ["alert.open", "alert.ack", "alert.resolve"],
        "{lifecycle:?}"
    );
    assert_eq!(lifecycle[1]["actor"]["account"], "admin", "{lifecycle:?}");
    assert_eq!(lifecycle[2]["actor"]["account"], "admin", "{lifecycle:?}");

    // Unknown alerts are not found, whatever the command.
    let unknown = "0190a5b2-0000-7000-8000-000000000000";
    for args in [
        &["alerts", "show", unknown][..],
        &["alerts", "ack", unknown, "--note", "x"][..],
        &["alerts", "resolve", unknown][..],
    ] {
        let out = cli(cwd, args, &[]);
        out.fails_with(1);
        assert!(
            out.stderr.contains("not found") && out.stderr.contains("HTTP 404"),
            "{}",
            out.describe()
        );
    }
    // An id that is not an alert id at all is an error too.
    let out = cli(cwd, &["alerts", "show", "nope"], &[]);
    out.fails_with(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.describe());

    // A resolved alert stays resolved: the same key used again opens a new alert.
    whoami_refused(cwd, &key);
    let second = wait_until("a second dead_credential alert", || {
        alerts_json(cwd, &["--status", "open", "--account", "billing-etl"])
            .into_iter()
            .find(|a| a["detector"] == "dead_credential")
    });
    assert_ne!(second["id"], id.as_str(), "{second}");
    assert_eq!(second["subject"], key_id.as_str(), "{second}");
    assert_eq!(second["count"], 1, "{second}");
    let shown = cli(cwd, &["alerts", "show", &id, "-o", "json"], &[]).json();
    assert_eq!(shown["alert"]["status"], "resolved", "{shown}");
    assert_eq!(shown["alert"]["count"], 1, "{shown}");
    server.stop();
}

/// Five failed authentications from one address with malformed credentials raise an
/// `auth_failure_burst` alert about that address (no account).
#[test]
fn failed_authentications_in_a_burst_raise_an_alert() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    wait_detection_caught_up(&server, cwd);
    for _ in 0..5 {
        whoami_refused(cwd, "not-a-credential");
    }
    let alert = wait_until("an auth_failure_burst alert", || {
        alerts_json(cwd, &[])
            .into_iter()
            .find(|a| a["detector"] == "auth_failure_burst")
    });
    assert_eq!(alert["severity"], "high", "{alert}");
    assert_eq!(alert["subject"], "127.0.0.1", "{alert}");
    assert!(alert["account"].is_null(), "{alert}");
    let id = str_field(&alert, "/id");
    let shown = cli(cwd, &["alerts", "show", id, "-o", "json"], &[]).json();
    let events = shown["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{shown}");
    for e in events {
        assert_eq!(e["action"]["category"], "auth", "{e}");
        assert_eq!(e["action"]["detail"]["failure"], "malformed", "{e}");
    }
    let ocsf = cli(cwd, &["alerts", "list", "-o", "ocsf"], &[]).json_lines();
    assert_eq!(ocsf.len(), 1, "{ocsf:?}");
    assert_eq!(ocsf[0]["severity_id"], 4, "{}", ocsf[0]);
    assert!(ocsf[0].get("resources").is_none(), "{}", ocsf[0]);
    server.stop();
}

/// `warden events -o ocsf` prints one OCSF object per event, in the class of its category, with
/// consistent classification, in the same order as `-o json`.
#[test]
fn events_print_as_ocsf() {
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    wait_detection_caught_up(&server, cwd);
    let _ = use_a_revoked_key(cwd, "reports");
    let alert = wait_dead_credential_alert(cwd, "reports");
    let id = str_field(&alert, "/id").to_owned();
    cli(cwd, &["alerts", "ack", &id, "--note", "mine"], &[]).ok();

    let json = events_json(cwd);
    let ocsf = cli(cwd, &["events", "-o", "ocsf"], &[]).json_lines();
    assert_eq!(
        json.len(),
        ocsf.len(),
        "one OCSF object per event:\njson: {json:?}\nocsf: {ocsf:?}"
    );
    let mut classes = HashSet::new();
    for (e, o) in json.iter().zip(&ocsf) {
        let class = check_ocsf_event(o);
        classes.insert(class);
        assert_eq!(o["metadata"]["uid"], e["id"], "{e}\n{o}");
        assert_eq!(o["metadata"]["sequence"], e["seq"], "{e}\n{o}");
        let category = str_field(e, "/action/category");
        let verb = str_field(e, "/action/verb");
        let expected = match category {
            "auth" => 3002,
            "alert" => 2004,
            "admin"
                if ["account.", "key.", "grant.", "admin."]
                    .iter()
                    .any(|p| verb.starts_with(p)) =>
            {
                3001
            }
            _ => continue,
        };
        assert_eq!(class, expected, "class of {category} {verb}:\n{e}\n{o}");
        if category == "alert" {
            assert_eq!(o["finding_info"]["uid"], id.as_str(), "{o}");
            assert_eq!(o["severity_id"], 5, "{o}");
        }
        if category == "auth" && e["decision"]["allowed"] == false {
            assert_eq!(o["status_id"], 2, "a failed logon is a failure: {o}");
        }
    }
    // Every class the history should have produced is there.
    for class in [3001, 3002, 2004] {
        assert!(classes.contains(&class), "no class {class} in {ocsf:?}");
    }
    let verbs: Vec<&str> = json.iter().map(|e| str_field(e, "/action/verb")).collect();
    for verb in [
        "account.create",
        "key.create",
        "key.revoke",
        "alert.open",
        "alert.ack",
    ] {
        assert!(verbs.contains(&verb), "no {verb} event in {verbs:?}");
    }
    // Filters apply to OCSF output too.
    let auth = cli(cwd, &["events", "--category", "auth", "-o", "ocsf"], &[]).json_lines();
    assert!(!auth.is_empty());
    assert!(auth.iter().all(|o| o["class_uid"] == 3002), "{auth:?}");
    server.stop();
}

/// A `jsonl_file` sink receives every event as one OCSF line, in ledger order, in a private
/// file; a restart resumes where the export stopped, exporting nothing twice.
#[cfg(unix)]
#[test]
fn jsonl_file_sink_exports_every_event_once_across_restarts() {
    let dir = tempdir();
    let cwd = dir.path();
    let export = cwd.join("siem.jsonl");
    std::fs::write(cwd.join("warden.toml"), jsonl_sink_toml(&export)).unwrap();
    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    assert!(export.is_file(), "the export file is created on start");
    assert_eq!(mode(&export), 0o600, "export file mode");
    wait_detection_caught_up(&server, cwd);

    let _ = use_a_revoked_key(cwd, "ci-deploy");
    wait_dead_credential_alert(cwd, "ci-deploy");
    let events = events_json(cwd);
    assert!(
        events.iter().any(|e| e["action"]["verb"] == "alert.open"),
        "{events:?}"
    );
    let ids: Vec<String> = events
        .iter()
        .map(|e| str_field(e, "/id").to_owned())
        .collect();
    let lines = wait_exported(&export, &ids);
    assert_no_duplicates(&lines);
    // In ledger order, starting at the beginning, with no event skipped.
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    let api_seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        &seqs[..api_seqs.len()],
        &api_seqs[..],
        "the export is not the ledger's events in order"
    );
    for (line, event) in lines.iter().zip(&events) {
        let class = check_ocsf_event(line);
        assert_eq!(line["metadata"]["uid"], event["id"], "{line}");
        match str_field(event, "/action/category") {
            "auth" => assert_eq!(class, 3002, "{line}"),
            "alert" => {
                assert_eq!(class, 2004, "{line}");
                assert_eq!(line["severity_id"], 5, "{line}");
                assert_eq!(
                    line["finding_info"]["types"][0], "dead_credential",
                    "{line}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(mode(&export), 0o600, "export file mode after writing");

    // Stop; whatever was exported stays; a restart appends only what is new.
    server.stop();
    let before = export_lines(&export);
    assert_no_duplicates(&before);
    let before_text = std::fs::read_to_string(&export).unwrap();

    let server = Server::start(cwd, &["--api-addr", "127.0.0.1:0"], &[]);
    cli(
        cwd,
        &[
            "account",
            "create",
            "after-restart",
            "--owner",
            "ada@example.com",
            "--purpose",
            "restart",
        ],
        &[],
    )
    .ok();
    let events = events_json(cwd);
    let new_event = events
        .iter()
        .find(|e| {
            e["action"]["verb"] == "account.create"
                && e["action"]["resource"] == "account/after-restart"
        })
        .unwrap_or_else(|| panic!("no account.create of after-restart in {events:?}"));
    let ids: Vec<String> = events
        .iter()
        .map(|e| str_field(e, "/id").to_owned())
        .collect();
    let after = wait_exported(&export, &ids);
    assert_no_duplicates(&after);
    let after_text = std::fs::read_to_string(&export).unwrap();
    assert!(
        after_text.starts_with(&before_text),
        "lines exported before the restart changed"
    );
    assert!(
        after.len() > before.len()
            && uids(&after).contains(&str_field(new_event, "/id").to_owned()),
        "the new event was not appended"
    );
    let seqs: Vec<u64> = after
        .iter()
        .map(|l| l["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "export not in ledger order: {seqs:?}"
    );
    assert_eq!(mode(&export), 0o600, "export file mode after the restart");
    server.stop();
}

/// A sink configuration that cannot work stops `warden serve` before it starts, naming
/// `alerts.sinks` and the problem, whether it comes from `warden.toml` or the environment.
#[test]
fn bad_sink_configuration_stops_serve() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "webhook with an ftp url",
            "[[alerts.sinks]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"ftp://x\"\n\
             secret_env = \"HOOK_SECRET\"\n",
            &[],
            &["alerts.sinks", "sink `hook`", "http or https"],
        ),
        (
            "two sinks with one name",
            "[[alerts.sinks]]\nkind = \"jsonl_file\"\nname = \"siem\"\npath = \"a.jsonl\"\n\n\
             [[alerts.sinks]]\nkind = \"syslog\"\nname = \"siem\"\naddress = \"127.0.0.1:514\"\n",
            &[],
            &["alerts.sinks", "sink `siem`", "name used by another sink"],
        ),
        (
            "an unknown sink kind",
            "[[alerts.sinks]]\nkind = \"pager\"\nname = \"p\"\n",
            &[],
            &["alerts.sinks", "pager"],
        ),
        (
            "a webhook with an ftp url from the environment",
            "",
            &[(
                "WARDEN_ALERTS__SINKS",
                "[{kind=\"webhook\",name=\"envhook\",url=\"ftp://x\",secret_env=\"S\"}]",
            )],
            &["alerts.sinks", "sink `envhook`", "http or https"],
        ),
    ];
    for (what, toml, env, words) in cases {
        let dir = tempdir();
        let cwd = dir.path();
        if !toml.is_empty() {
            std::fs::write(cwd.join("warden.toml"), toml).unwrap();
        }
        let out = cli(cwd, &["serve", "--api-addr", "127.0.0.1:0"], env);
        assert!(
            !out.status.success() && out.code().is_some(),
            "{what}: expected failure: {}",
            out.describe()
        );
        let err = out.stderr.trim();
        assert_eq!(
            err.lines().count(),
            1,
            "{what}: one line: {}",
            out.describe()
        );
        for word in words {
            assert!(
                err.contains(word),
                "{what}: {word:?} missing: {}",
                out.describe()
            );
        }
        assert!(
            !out.stdout.contains("API:"),
            "{what}: the server started: {}",
            out.describe()
        );
        assert!(
            !cwd.join("warden-data").exists(),
            "{what}: the data directory was created"
        );
        assert!(
            !cwd.join("a.jsonl").exists(),
            "{what}: a sink file was created"
        );
    }
}

/// Acting on a stale alert must not disturb the de-duplication of the current one.
///
/// With a short de-duplication window, a revoked key used twice, the window apart, leaves two
/// open alerts: A (old) and B (current). Resolving A, then using the key again within the
/// window of B's last sighting, folds the finding into B rather than opening a third alert.
#[test]
fn acting_on_a_stale_alert_keeps_deduplicating_the_current_one() {
    const WINDOW: Duration = Duration::from_secs(3);
    let dir = tempdir();
    let cwd = dir.path();
    let server = Server::start(
        cwd,
        &["--api-addr", "127.0.0.1:0"],
        &[("WARDEN_ALERTS__DEDUP_WINDOW", "3s")],
    );
    wait_detection_caught_up(&server, cwd);
    let (_, key) = use_a_revoked_key(cwd, "etl");
    let a = wait_dead_credential_alert(cwd, "etl");
    let a_id = str_field(&a, "/id").to_owned();
    // A precondition, not an assertion: the next finding must fall outside A's window.
    std::thread::sleep(WINDOW + Duration::from_millis(500));
    whoami_refused(cwd, &key);
    let b = wait_until("a second alert", || {
        alerts_json(cwd, &["--account", "etl"])
            .into_iter()
            .find(|x| x["id"] != a_id.as_str())
    });
    let b_id = str_field(&b, "/id").to_owned();
    cli(cwd, &["alerts", "resolve", &a_id], &[]).ok();
    whoami_refused(cwd, &key);
    // Detection saves its position only once the batch's alerts are stored.
    wait_detection_caught_up(&server, cwd);
    let all = alerts_json(cwd, &["--account", "etl"]);
    let b_now = all
        .iter()
        .find(|x| x["id"] == b_id.as_str())
        .unwrap_or_else(|| panic!("B is gone: {all:?}"));
    let newest = all
        .iter()
        .find(|x| x["id"] != a_id.as_str() && x["id"] != b_id.as_str());
    match newest {
        // Judge only when the third use really fell within B's window (a slow machine may
        // have taken longer, and then a new alert is right).
        Some(c) => {
            let gap = time(str_field(c, "/first_seen"))
                .duration_since(time(str_field(b_now, "/last_seen")))
                .unwrap_or_default();
            assert!(
                gap >= WINDOW,
                "a finding {gap:?} after B's last sighting opened {c}\ninstead of joining {b_now}"
            );
        }
        None => assert_eq!(b_now["count"], 2, "{all:?}"),
    }
    server.stop();
}

/// An RFC 3339 time from the API.
fn time(t: &str) -> std::time::SystemTime {
    humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t:?} is not RFC 3339: {e}"))
}
