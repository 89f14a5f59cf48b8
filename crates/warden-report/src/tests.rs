//! Whole-crate tests: a small population analysed and reported in every kind and format;
//! hostile text escaped, CSV quoted, JSON valid against the checked-in schema, every control in
//! the evidence mapping.

use std::collections::BTreeMap;

use serde_json::Value;
use warden_access::{analyze, controls, Options, Population, UsageRecord};
use warden_core::{Account, AccountName, Email, Grant, KeyRecord, Rule, SecretDigest, Timestamp};

use crate::*;

const DAY: i64 = 86_400_000_000;
const SCHEMA: &str = include_str!("../../../docs/schemas/report.schema.json");

fn now() -> Timestamp {
    Timestamp::parse("2027-06-01T12:00:00Z").unwrap()
}

fn ago(days: i64) -> Timestamp {
    Timestamp::from_micros(now().as_micros() - days * DAY)
}

fn account(name: &str, owner: &str, purpose: &str) -> Account {
    Account {
        name: AccountName::parse(name).unwrap(),
        owner: Email::parse("owner", owner).unwrap(),
        purpose: purpose.into(),
        labels: BTreeMap::new(),
        created_by: "admin".into(),
        created_at: ago(200),
        expires_at: None,
        disabled_reason: None,
        last_used_at: Some(ago(1)),
    }
}

fn grant(id: &str, account: &str, rule: &str) -> Grant {
    Grant {
        id: id.into(),
        account: account.into(),
        target: "orders".into(),
        rule: Rule::parse_stored(rule).unwrap(),
        created_by: "admin".into(),
        created_at: ago(150),
        expires_at: None,
        last_used_at: None,
    }
}

fn key(id: &str, account: &str) -> KeyRecord {
    KeyRecord {
        key_id: id.into(),
        account: AccountName::parse(account).unwrap(),
        digest: SecretDigest::from_hex(&"ab".repeat(32)).unwrap(),
        created_by: "admin".into(),
        created_at: ago(120),
        expires_at: None,
        last_used_at: Some(ago(1)),
        revoked_at: None,
        superseded_by: None,
        scram: None,
    }
}

/// Two accounts: `billing` (a broad grant used narrowly, an unused grant, an old key) and
/// `idle` (a placeholder owner, no purpose); then hostile text put into the reports.
fn input(kind: ReportKind) -> ReportInput {
    let accounts = [
        account("billing", "ada@acme.io", "Bills customers every night"),
        account("idle", "nobody@example.com", "x"),
    ];
    let grants = [
        grant("g_1", "billing", "GET /v1/**"),
        grant("g_2", "billing", "POST /v1/refunds"),
        grant("g_3", "idle", "GET /v1/orders/*"),
    ];
    let keys = [key("k_1", "billing"), key("k_2", "idle")];
    let usage: Vec<UsageRecord> = (1..30)
        .map(|d| UsageRecord {
            account: "billing".into(),
            target: "orders".into(),
            grant_id: "g_1".into(),
            action: "GET /v1/orders/*".into(),
            count: 10,
            first_at: ago(d),
            last_at: ago(d),
        })
        .collect();
    let population = Population {
        accounts: &accounts,
        keys: &keys,
        grants: &grants,
        usage: &usage,
    };
    let mut analysis = analyze(&population, now(), &Options::default());
    // Text the store would refuse, to prove the renderings escape whatever they are given.
    let idle = &mut analysis.accounts[1];
    idle.owner = "\"><img src=x onerror=alert(1)>@evil.test".into();
    idle.purpose = "=HYPERLINK(\"http://evil.test\",\"click\"), then\r\nmore".into();
    for f in &mut idle.findings {
        f.account = "<script>alert('x')</script>".into();
    }
    idle.account = "<script>alert('x')</script>".into();
    ReportInput {
        kind,
        analysis,
        checkpoint: Some(CheckpointRef {
            size: 42,
            root_hash: "ab".repeat(32),
            note: "warden.test/ledger\n42\nq83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=\n\n— warden.test/ledger <b>sig</b>\n".into(),
            signed_at: Some(ago(0)),
        }),
        activity: (1..30)
            .map(|d| DailyActivity {
                day: Timestamp::from_micros(ago(d).as_micros().div_euclid(DAY) * DAY),
                account: None,
                count: 10,
            })
            .collect(),
        review: Some(ReviewSection {
            name: "Q2 <review>".into(),
            status: "open".into(),
            decisions: vec![ReviewDecision {
                account: "billing".into(),
                decision: "keep".into(),
                justification: "needed, \"still\"".into(),
                decided_by: "grace".into(),
                decided_at: ago(0),
            }],
        }),
        generated_at: now(),
        generated_by: "root & <admin>".into(),
    }
}

fn validate(doc: &Value) -> Result<(), String> {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let url = "https://warden.invalid/schemas/report.schema.json";
    compiler.add_resource(url, schema).unwrap();
    let index = compiler.compile(url, &mut schemas).unwrap();
    schemas.validate(doc, index).map_err(|e| format!("{e:#}"))
}

#[test]
fn html_escapes_hostile_text_and_loads_nothing() {
    for kind in ReportKind::ALL {
        let html = to_html(&input(kind));
        assert!(html.starts_with("<!DOCTYPE html>"), "{kind:?}");
        assert!(!html.contains("<script"), "{kind:?}: unescaped script");
        assert!(!html.contains("<img"), "{kind:?}: unescaped img");
        assert!(!html.contains("<review>"));
        assert!(!html.contains("<b>sig"));
        assert!(!html.contains("<admin>"));
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)"),
            "{kind:?}"
        );
        assert!(html.contains("root &#38; &#60;admin&#62;"));
        // Self-contained: no script, no stylesheet or image links, nothing fetched.
        for banned in [
            "<link", "<iframe", "<object", "<embed", "href=", "@import", "url(",
        ] {
            assert!(!html.contains(banned), "{kind:?}: {banned}");
        }
        assert!(html.contains("<style>") && html.contains("@media print"));
        assert!(html.contains("<svg") && html.contains("<rect class=\"bar-activity\""));
        assert!(html.contains("<meta name=\"warden-checkpoint-size\" content=\"42\">"));
        assert!(html.contains(&"ab".repeat(32)));
    }
}

#[test]
fn every_control_appears_in_the_evidence_section() {
    for kind in ReportKind::ALL {
        let html = to_html(&input(kind));
        let evidence = &html[html.find("id=\"evidence\"").unwrap()..];
        let json = to_json(&input(kind));
        let listed: Vec<&str> = json["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reference"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), controls().len());
        for c in controls() {
            assert!(
                evidence.contains(&format!("data-reference=\"{}\"", c.reference)),
                "{kind:?}: {}",
                c.reference
            );
            assert!(listed.contains(&c.reference));
        }
        // The logging controls cite the checkpoint.
        let cc72 = json["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["reference"] == "SOC 2 CC7.2")
            .unwrap();
        assert_eq!(cc72["ledger_evidence"], true);
        assert_eq!(cc72["status"], "no_exceptions");
    }
    // A least-privilege report does not speak to key rotation.
    let json = to_json(&input(ReportKind::LeastPrivilege));
    let by_ref = |r: &str| {
        json["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["reference"] == r)
            .unwrap()
            .clone()
    };
    assert_eq!(by_ref("PCI DSS 8.3.9")["status"], "out_of_scope");
    assert_eq!(by_ref("PCI DSS 7.2.5")["status"], "exceptions");
    let json = to_json(&input(ReportKind::Compliance));
    let e = json["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reference"] == "PCI DSS 8.6.1")
        .unwrap();
    assert_eq!(e["status"], "exceptions");
    assert_eq!(e["findings_by_kind"]["no_owner"], 1);
}

#[test]
fn json_validates_against_the_schema() {
    for kind in ReportKind::ALL {
        let mut i = input(kind);
        let doc = to_json(&i);
        validate(&doc).unwrap_or_else(|e| panic!("{kind:?}: {e}\n{doc:#}"));
        assert_eq!(doc["checkpoint"]["size"], 42);
        assert_eq!(doc["kind"], kind.as_str());
        // Without a checkpoint or a review.
        i.checkpoint = None;
        i.review = None;
        let doc = to_json(&i);
        validate(&doc).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(doc["checkpoint"].is_null() && doc["review"].is_null());
    }
    // The schema is not vacuous.
    let mut doc = to_json(&input(ReportKind::Compliance));
    doc["summary"]["findings_by_severity"]["high"] = Value::from(-1);
    assert!(validate(&doc).is_err());
    let mut doc = to_json(&input(ReportKind::Compliance));
    doc["accounts"][0]["findings"][0]["kind"] = Value::from("made_up");
    assert!(validate(&doc).is_err());
    let mut doc = to_json(&input(ReportKind::Compliance));
    doc["checkpoint"]["root_hash"] = Value::from("not hex");
    assert!(validate(&doc).is_err());
}

/// A minimal RFC 4180 reader, to check what a spreadsheet would see.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'));
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(row.is_empty() && field.is_empty(), "unterminated record");
    rows
}

#[test]
fn csv_is_quoted_and_carries_the_same_facts() {
    let i = input(ReportKind::AccessReview);
    let csv = to_csv(&i);
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], crate::csv::ACCESS_REVIEW_COLUMNS);
    assert_eq!(rows.len(), 1 + i.analysis.accounts.len());
    let idle = rows.iter().find(|r| r[2].contains("script")).unwrap();
    assert_eq!(idle[0], "42");
    assert_eq!(idle[3], "\"><img src=x onerror=alert(1)>@evil.test");
    // A formula is defused, and the comma, quotes and line break survive quoting.
    assert_eq!(
        idle[4],
        "'=HYPERLINK(\"http://evil.test\",\"click\"), then\r\nmore"
    );
    let billing = rows.iter().find(|r| r[2] == "billing").unwrap();
    assert_eq!(billing[17], "keep");
    assert_eq!(billing[18], "needed, \"still\"");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));

    for kind in [ReportKind::LeastPrivilege, ReportKind::Compliance] {
        let i = input(kind);
        let rows = parse_csv(&to_csv(&i));
        let json = to_json(&i);
        assert_eq!(rows[0], crate::csv::FINDING_COLUMNS);
        assert_eq!(
            rows.len() - 1,
            json["summary"]["findings"].as_u64().unwrap() as usize
        );
        assert!(rows.iter().all(|r| r.len() == rows[0].len()));
        // Most severe first.
        assert!(rows[1][2] == "high" || kind == ReportKind::LeastPrivilege);
        if kind == ReportKind::LeastPrivilege {
            assert!(rows[1..]
                .iter()
                .all(|r| r[3].ends_with("_grant") && !r[8].is_empty()));
        }
    }
}

#[test]
fn the_kinds_differ_in_scope_and_agree_on_facts() {
    let all = to_json(&input(ReportKind::Compliance));
    let grants = to_json(&input(ReportKind::LeastPrivilege));
    let total = all["summary"]["findings"].as_u64().unwrap();
    let grant_findings: u64 = ["unused_grant", "broad_grant", "wildcard_grant"]
        .iter()
        .map(|k| all["summary"]["findings_by_kind"][k].as_u64().unwrap_or(0))
        .sum();
    assert!(total > grant_findings && grant_findings > 0);
    assert_eq!(grants["summary"]["findings"], grant_findings);
    let html = to_html(&input(ReportKind::Compliance));
    assert!(html.contains(&format!(
        "<div class=\"value\">{total}</div><div class=\"label\">Findings</div>"
    )));
    // 29 days of 10 actions, every day of the 90-day window charted.
    assert_eq!(all["summary"]["activity_total"], 290);
    assert_eq!(all["activity"].as_array().unwrap().len(), 91);
    assert_eq!(
        file_name(ReportKind::AccessReview, Format::Html, now()),
        "warden-access-review-20270601.html"
    );
    assert_eq!(
        ReportKind::parse("least-privilege"),
        Some(ReportKind::LeastPrivilege)
    );
    assert_eq!(Format::parse("pdf"), None);
}
