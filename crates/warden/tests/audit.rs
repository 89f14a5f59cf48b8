//! `warden audit verify --bundle`, through the real binary, on bundles built here with a known
//! key and then tampered with the way an attacker holding the file would: an edited body, a
//! deleted line, two lines swapped, the tail dropped, a checkpoint re-signed with another key,
//! and everything re-signed with the attacker's own key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use warden_ledger::bundle::{BundleHeader, BundleWriter};
use warden_ledger::{leaf_hash, Checkpoint, RootBuilder, Signer};

/// What a finished `warden` did.
struct Outcome {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0 and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {}", self.describe());
        &self.stdout
    }

    fn fails_with(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}: {}",
            self.describe()
        );
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }
}

/// Runs `warden ARGS` in `cwd` without any inherited `WARDEN_*` variable. (Self-contained: it
/// needs no server, so not the shared harness.)
fn cli(cwd: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(cwd).args(args).env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WARDEN_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run warden");
    Outcome {
        what: format!("warden {}", args.join(" ")),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warden-audit-test")
        .tempdir()
        .expect("create a temporary directory")
}

const ENTRIES: u64 = 20;
const CHECKPOINTS: [u64; 3] = [4, 10, 20];

fn signer() -> Signer {
    Signer::from_seed("warden.test/ledger", [42u8; 32]).unwrap()
}

/// An entry body shaped like the writer's canonical JSON.
fn body(i: u64) -> String {
    if i & 1 == 0 {
        format!(
            r#"{{"id":"01930a4c-7e2b-7c1d-9a4e-{i:012x}","seq":{i},"time":"2026-11-27T08:00:{i:02}.000000Z","actor":{{"kind":"human","account":"ada","key_id":null,"auth":"admin_token"}},"action":{{"category":"admin","verb":"account.create","resource":"account/etl-{i}","detail":{{"owner":"ada@example.com"}}}},"decision":{{"allowed":true,"rule":"admin"}}}}"#
        )
    } else {
        format!(
            r#"{{"event_id":"01930a4c-7e2b-7c1d-9a4e-{:012x}","seq":{i},"time":"2026-11-27T08:00:{i:02}.500000Z","status":"ok","error":null,"duration_ms":3}}"#,
            i - 1
        )
    }
}

/// The bundle's lines (header, checkpoints, entries), checkpoints signed by `by`.
fn bundle_lines(by: &Signer, bodies: &[String]) -> Vec<String> {
    let mut tree = RootBuilder::new();
    let mut notes = Vec::new();
    for b in bodies {
        tree.push(leaf_hash(b.as_bytes()));
        if CHECKPOINTS.contains(&tree.size()) {
            let cp = Checkpoint::new(by.name(), tree.size(), tree.root());
            notes.push(cp.sign(by).unwrap());
        }
    }
    let header = BundleHeader::new(&by.verifier(), bodies.len() as u64, "2026-11-27T09:00:00Z");
    let mut w = BundleWriter::new(Vec::new(), &header).unwrap();
    for n in &notes {
        w.write_checkpoint(n).unwrap();
    }
    for (i, b) in bodies.iter().enumerate() {
        w.write_entry(i as u64, b.as_bytes(), &leaf_hash(b.as_bytes()))
            .unwrap();
    }
    let text = String::from_utf8(w.finish().unwrap()).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn bodies() -> Vec<String> {
    (0..ENTRIES).map(body).collect()
}

fn pristine() -> Vec<String> {
    bundle_lines(&signer(), &bodies())
}

/// Index of entry `seq`'s line: after the header and the checkpoints.
fn line_of(seq: u64) -> usize {
    1 + CHECKPOINTS.len() + seq as usize
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn key() -> String {
    signer().verifier().to_key_string()
}

fn verify(dir: &Path, bundle: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["audit", "verify", "--bundle", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(dir, &args)
}

/// Runs verification with the trusted key and expects exit 1 naming `position` and `words`.
fn expect_failure(dir: &Path, name: &str, lines: &[String], position: u64, words: &str) {
    let path = write(dir, name, lines);
    let k = key();
    let out = verify(dir, &path, &["--key", &k]);
    out.fails_with(1);
    let expected = format!("ledger verification FAILED at position {position}: {words}");
    assert!(
        out.stdout.starts_with(&expected),
        "{name}: expected {expected:?}\n{}",
        out.describe()
    );
}

#[test]
fn a_pristine_bundle_verifies() {
    let dir = tempdir();
    let path = write(dir.path(), "ledger.jsonl", &pristine());
    let mut tree = RootBuilder::new();
    for b in bodies() {
        tree.push(leaf_hash(b.as_bytes()));
    }
    let k = key();
    let out = verify(dir.path(), &path, &["--key", &k]);
    assert_eq!(
        out.ok(),
        format!(
            "ledger verified: {ENTRIES} entries, 3 checkpoints, root {} at size {ENTRIES}\n",
            tree.root()
        )
    );
    assert!(!out.stderr.contains("warning"), "{}", out.describe());

    // JSON.
    let out = verify(dir.path(), &path, &["--key", &k, "--output", "json"]);
    let v = out.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], ENTRIES);
    assert_eq!(v["checkpoints"], 3);
    assert_eq!(v["size"], ENTRIES);
    assert_eq!(v["root"], tree.root().to_hex());

    // The key from a file.
    let key_file = dir.path().join("ledger.pub");
    std::fs::write(&key_file, format!("{k}\n")).unwrap();
    verify(dir.path(), &path, &["--key", key_file.to_str().unwrap()]).ok();

    // Without --key the bundle's own key is used, with a warning saying why that is weak.
    let out = verify(dir.path(), &path, &[]);
    assert!(out.ok().starts_with("ledger verified: 20 entries"));
    assert!(
        out.stderr
            .contains("warning: trusting the key in the bundle itself")
            && out.stderr.contains("pass --key"),
        "{}",
        out.describe()
    );

    // An external checkpoint agreeing with the bundle.
    let cp = pristine()[1 + 2].clone();
    let note: Value = serde_json::from_str(&cp).unwrap();
    let cp_file = dir.path().join("published.checkpoint");
    std::fs::write(&cp_file, note["checkpoint"].as_str().unwrap()).unwrap();
    let out = verify(
        dir.path(),
        &path,
        &["--key", &k, "--checkpoint", cp_file.to_str().unwrap()],
    );
    assert!(out
        .ok()
        .starts_with("ledger verified: 20 entries, 4 checkpoints"));
}

#[test]
fn an_edited_body_is_named() {
    let dir = tempdir();
    let mut lines = pristine();
    lines[line_of(7)] = lines[line_of(7)].replace("\\\"duration_ms\\\":3", "\\\"duration_ms\\\":4");
    assert_ne!(lines, pristine());
    expect_failure(dir.path(), "edited.jsonl", &lines, 7, "entry 7 was edited");

    // The same edit with the leaf hash recomputed: the next checkpoint's root no longer matches.
    let mut b = bodies();
    b[7] = b[7].replace("\"duration_ms\":3", "\"duration_ms\":4");
    let mut forged = pristine();
    forged[line_of(7)] = bundle_lines(&signer(), &b)[line_of(7)].clone();
    expect_failure(
        dir.path(),
        "rehashed.jsonl",
        &forged,
        4,
        "the root hash recomputed from entries 4 to 9",
    );

    // JSON output names the kind and position.
    let path = write(dir.path(), "edited.jsonl", &lines);
    let k = key();
    let out = verify(dir.path(), &path, &["--key", &k, "-o", "json"]);
    out.fails_with(1);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problem"]["kind"], "edited_entry");
    assert_eq!(v["problem"]["position"], 7);
    assert!(v["problem"]["message"]
        .as_str()
        .unwrap()
        .starts_with("entry 7 was edited"));
}

#[test]
fn a_deleted_line_is_named() {
    let dir = tempdir();
    let mut lines = pristine();
    lines.remove(line_of(5));
    expect_failure(dir.path(), "deleted.jsonl", &lines, 5, "entry 5 is missing");
}

#[test]
fn swapped_lines_are_named() {
    let dir = tempdir();
    let mut lines = pristine();
    lines.swap(line_of(6), line_of(7));
    expect_failure(
        dir.path(),
        "swapped.jsonl",
        &lines,
        6,
        "entries are out of order: position 6 holds the entry sequenced as 7",
    );
}

#[test]
fn a_dropped_tail_is_named() {
    let dir = tempdir();
    // Below the last checkpoint: the ledger's own checkpoint tells.
    let lines = pristine()[..line_of(17)].to_vec();
    expect_failure(
        dir.path(),
        "tail.jsonl",
        &lines,
        17,
        "the ledger was truncated: it has 17 entries but a validly signed checkpoint commits to 20",
    );

    // The tail and its checkpoint dropped, and the header's count fixed: only a checkpoint kept
    // outside Warden tells.
    let full = pristine();
    let published = dir.path().join("published.checkpoint");
    let last: Value = serde_json::from_str(&full[3]).unwrap();
    std::fs::write(&published, last["checkpoint"].as_str().unwrap()).unwrap();
    let mut cut: Vec<String> = full[..line_of(14)].to_vec();
    cut.remove(3);
    cut[0] = cut[0].replace("\"size\":20", "\"size\":14");
    let path = write(dir.path(), "cut.jsonl", &cut);
    let k = key();
    let out = verify(dir.path(), &path, &["--key", &k]);
    assert!(out
        .ok()
        .starts_with("ledger verified: 14 entries, 2 checkpoints"));
    let out = verify(
        dir.path(),
        &path,
        &["--key", &k, "--checkpoint", published.to_str().unwrap()],
    );
    out.fails_with(1);
    assert!(
        out.stdout
            .starts_with("ledger verification FAILED at position 14: the ledger was truncated"),
        "{}",
        out.describe()
    );

    // Dropped past the last checkpoint with the header left alone: the count disagrees.
    let mut b = bodies();
    b.push(body(ENTRIES));
    b.push(body(ENTRIES + 1));
    let longer = bundle_lines(&signer(), &b);
    let lines = longer[..longer.len() - 1].to_vec();
    expect_failure(
        dir.path(),
        "short.jsonl",
        &lines,
        21,
        "the bundle holds 21 entries but its header says 22",
    );
}

#[test]
fn forged_checkpoints_are_named() {
    let dir = tempdir();
    // One checkpoint re-signed by another key with the same name.
    let mallory = Signer::from_seed("warden.test/ledger", [66u8; 32]).unwrap();
    let theirs = bundle_lines(&mallory, &bodies());
    let mut lines = pristine();
    lines[2] = theirs[2].clone();
    expect_failure(
        dir.path(),
        "forged.jsonl",
        &lines,
        10,
        "the checkpoint for size 10 is forged",
    );

    // Everything rewritten and re-signed with the forger's key, their key in the header: it
    // agrees with itself (and says so, with the warning), but not with the real key.
    let mut b = bodies();
    b[3] = b[3].replace("\"duration_ms\":3", "\"duration_ms\":0");
    let rewritten = bundle_lines(&mallory, &b);
    let path = write(dir.path(), "rewritten.jsonl", &rewritten);
    let out = verify(dir.path(), &path, &[]);
    assert!(out.ok().starts_with("ledger verified"));
    assert!(out.stderr.contains("warning"), "{}", out.describe());
    expect_failure(
        dir.path(),
        "rewritten.jsonl",
        &rewritten,
        4,
        "the checkpoint for size 4 is forged",
    );
}

#[test]
fn broken_bundles_and_bad_keys_are_errors() {
    let dir = tempdir();
    let k = key();
    let mut lines = pristine();
    lines[line_of(2)] = "{\"seq\":2,\"body\":".into();
    let path = write(dir.path(), "broken.jsonl", &lines);
    let out = verify(dir.path(), &path, &["--key", &k]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("line 7: not a checkpoint or entry line"),
        "{}",
        out.describe()
    );

    let path = write(dir.path(), "ok.jsonl", &pristine());
    let out = verify(dir.path(), &path, &["--key", "not-a-key"]);
    out.fails_with(1);
    assert!(out.stderr.contains("--key"), "{}", out.describe());
    let out = verify(dir.path(), &path, &["--key", &signer().to_key_string()]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("private signing key") && !out.stderr.contains("PRIVATE+KEY"),
        "{}",
        out.describe()
    );

    let out = verify(dir.path(), &dir.path().join("missing.jsonl"), &[]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("cannot open bundle"),
        "{}",
        out.describe()
    );
}

#[test]
fn pruned_entries_verify_through_their_checkpoints() {
    let dir = tempdir();
    // Retention pruned entries 0..10 (covered by the checkpoint at 10).
    let mut lines = pristine();
    for seq in 0..10 {
        let hash = leaf_hash(body(seq).as_bytes());
        lines[line_of(seq)] =
            format!(r#"{{"seq":{seq},"body":"","leaf_hash":"{hash}","pruned":true}}"#);
    }
    let path = write(dir.path(), "pruned.jsonl", &lines);
    let k = key();
    let out = verify(dir.path(), &path, &["--key", &k]);
    assert!(out
        .ok()
        .starts_with("ledger verified: 20 entries, 3 checkpoints"));
    assert!(
        out.stderr.contains("10 entries had their bodies pruned"),
        "{}",
        out.describe()
    );

    // A body "pruned" past the last checkpoint is a removed body.
    let mut b = bodies();
    b.push(body(ENTRIES));
    let mut lines = bundle_lines(&signer(), &b);
    let hash = leaf_hash(body(ENTRIES).as_bytes());
    lines[line_of(ENTRIES)] =
        format!(r#"{{"seq":{ENTRIES},"body":"","leaf_hash":"{hash}","pruned":true}}"#);
    expect_failure(
        dir.path(),
        "uncovered.jsonl",
        &lines,
        ENTRIES,
        "entry 20 has no body (it is marked as pruned by retention) but no signed checkpoint covers it",
    );
}
