//! Whole-crate tests: a population spanning months, analysed and narrowed, and a property that
//! recommendations never deny what was seen.

use proptest::prelude::*;
use std::collections::BTreeMap;
use warden_core::{
    decide_http, decide_sql, Account, AccountName, AccountStatus, Email, Grant, KeyRecord,
    KeyState, Rule, SecretDigest, Severity, SqlClass, Timestamp,
};

use crate::{
    analyze, recommend, AccessError, Analysis, FindingKind, Options, Population, UsageRecord,
};

const DAY: i64 = 86_400_000_000;

fn now() -> Timestamp {
    Timestamp::parse("2027-06-01T12:00:00Z").unwrap()
}

fn ago(days: i64) -> Timestamp {
    Timestamp::from_micros(now().as_micros() - days * DAY)
}

fn account(name: &str, owner: &str, purpose: &str, created: i64, used: Option<i64>) -> Account {
    Account {
        name: AccountName::parse(name).unwrap(),
        owner: Email::parse("owner", owner).unwrap(),
        purpose: purpose.into(),
        labels: BTreeMap::new(),
        created_by: "admin".into(),
        created_at: ago(created),
        expires_at: None,
        disabled_reason: None,
        last_used_at: used.map(ago),
    }
}

fn grant(id: &str, account: &str, target: &str, rule: &str, created: i64) -> Grant {
    Grant {
        id: id.into(),
        account: account.into(),
        target: target.into(),
        rule: Rule::parse_stored(rule).unwrap(),
        created_by: "admin".into(),
        created_at: ago(created),
        expires_at: None,
        last_used_at: None,
    }
}

fn key(id: &str, account: &str, created: i64, used: Option<i64>) -> KeyRecord {
    KeyRecord {
        key_id: id.into(),
        account: AccountName::parse(account).unwrap(),
        digest: SecretDigest::from_hex(&"ab".repeat(32)).unwrap(),
        created_by: "admin".into(),
        created_at: ago(created),
        expires_at: None,
        last_used_at: used.map(ago),
        revoked_at: None,
        superseded_by: None,
        scram: None,
    }
}

fn usage(
    account: &str,
    target: &str,
    grant: &str,
    action: &str,
    count: u64,
    day: i64,
) -> UsageRecord {
    UsageRecord {
        account: account.into(),
        target: target.into(),
        grant_id: grant.into(),
        action: action.into(),
        count,
        first_at: ago(day),
        last_at: Timestamp::from_micros(ago(day).as_micros() + 3_600_000_000),
    }
}

struct Fixture {
    accounts: Vec<Account>,
    keys: Vec<KeyRecord>,
    grants: Vec<Grant>,
    usage: Vec<UsageRecord>,
}

impl Fixture {
    fn population(&self) -> Population<'_> {
        Population {
            accounts: &self.accounts,
            keys: &self.keys,
            grants: &self.grants,
            usage: &self.usage,
        }
    }
}

fn options() -> Options {
    Options {
        people: vec!["ada@acme.io".into(), "BOB@acme.io".into()],
        ..Options::default()
    }
}

/// Four accounts over a year and a half:
/// - `billing-etl`, busy: an unused grant, a broad SQL grant, a broad HTTP grant, an exact
///   grant, a grant made three days ago, and a key that replaced an older one half a year ago;
/// - `ghost`, made two months ago and never used;
/// - `legacy-sync`, idle for four months, owned by someone who left, with a one-word purpose
///   and a key that was never rotated;
/// - `retired`, disabled, owned by `nobody@`.
fn fixture() -> Fixture {
    let mut retired = account(
        "retired",
        "nobody@acme.io",
        "Old reporting feed, replaced",
        500,
        Some(300),
    );
    retired.disabled_reason = Some("replaced by billing-etl".into());
    let mut rotated_away = key("k_first", "billing-etl", 300, Some(182));
    rotated_away.superseded_by = Some("k_second".into());
    rotated_away.expires_at = Some(ago(174));
    let mut usage_rows = Vec::new();
    for day in [80, 40, 2, 1] {
        usage_rows.push(usage(
            "billing-etl",
            "warehouse",
            "g_analytics",
            "read:analytics.daily",
            10,
            day,
        ));
        usage_rows.push(usage(
            "billing-etl",
            "api",
            "g_v1",
            "GET /v1/orders/*",
            7,
            day,
        ));
    }
    usage_rows.extend([
        usage("billing-etl", "warehouse", "g_analytics", "tx", 20, 1),
        // Long before the window: not a reason to keep the grant.
        usage("billing-etl", "api", "g_unused", "POST /v1/refunds", 1, 200),
        usage(
            "billing-etl",
            "warehouse",
            "g_orders",
            "write:public.orders",
            3,
            5,
        ),
        usage("legacy-sync", "crm", "g_legacy", "GET /contacts/*", 50, 120),
    ]);
    Fixture {
        accounts: vec![
            account(
                "billing-etl",
                "ada@acme.io",
                "Nightly billing export to the warehouse",
                300,
                Some(1),
            ),
            account(
                "ghost",
                "bob@acme.io",
                "Reconciliation of payouts",
                60,
                None,
            ),
            account("legacy-sync", "carol@acme.io", "sync", 400, Some(120)),
            retired,
        ],
        keys: vec![
            rotated_away,
            key("k_second", "billing-etl", 181, Some(1)),
            key("k_ghost", "ghost", 60, None),
            key("k_legacy", "legacy-sync", 400, Some(120)),
        ],
        grants: vec![
            grant("g_unused", "billing-etl", "api", "POST /v1/refunds", 200),
            grant(
                "g_analytics",
                "billing-etl",
                "warehouse",
                "read:analytics.*",
                200,
            ),
            grant("g_v1", "billing-etl", "api", "GET /v1/**", 200),
            grant(
                "g_orders",
                "billing-etl",
                "warehouse",
                "write:public.orders",
                200,
            ),
            grant("g_young", "billing-etl", "api", "POST /v1/exports", 3),
            grant("g_ghost", "ghost", "warehouse", "read:public.payouts", 60),
            grant("g_legacy", "legacy-sync", "crm", "* /**", 400),
        ],
        usage: usage_rows,
    }
}

fn findings(analysis: &Analysis) -> Vec<(String, FindingKind, String)> {
    let mut all: Vec<_> = analysis
        .accounts
        .iter()
        .flat_map(|a| &a.findings)
        .map(|f| (f.account.clone(), f.kind, f.subject.clone()))
        .collect();
    all.sort();
    all
}

#[test]
fn every_finding_is_found_with_its_controls() {
    let f = fixture();
    let analysis = analyze(&f.population(), now(), &options());
    let expected = [
        ("billing-etl", FindingKind::UnusedGrant, "g_unused"),
        ("billing-etl", FindingKind::BroadGrant, "g_analytics"),
        ("billing-etl", FindingKind::BroadGrant, "g_v1"),
        ("billing-etl", FindingKind::WildcardGrant, "g_analytics"),
        ("billing-etl", FindingKind::WildcardGrant, "g_v1"),
        ("billing-etl", FindingKind::OldKey, "k_second"),
        ("ghost", FindingKind::UnusedGrant, "g_ghost"),
        ("ghost", FindingKind::NeverUsedAccount, "ghost"),
        ("ghost", FindingKind::UnusedKey, "k_ghost"),
        ("legacy-sync", FindingKind::UnusedGrant, "g_legacy"),
        ("legacy-sync", FindingKind::WildcardGrant, "g_legacy"),
        ("legacy-sync", FindingKind::InactiveAccount, "legacy-sync"),
        ("legacy-sync", FindingKind::UnusedKey, "k_legacy"),
        ("legacy-sync", FindingKind::OldKey, "k_legacy"),
        ("legacy-sync", FindingKind::NeverRotatedKey, "k_legacy"),
        ("legacy-sync", FindingKind::OwnerNotOnRecord, "legacy-sync"),
        ("legacy-sync", FindingKind::NoPurpose, "legacy-sync"),
        ("retired", FindingKind::NoOwner, "retired"),
    ];
    let mut expected: Vec<_> = expected
        .iter()
        .map(|(a, k, s)| ((*a).to_owned(), *k, (*s).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(findings(&analysis), expected);

    for f in analysis.accounts.iter().flat_map(|a| &a.findings) {
        assert!(!f.controls.is_empty(), "{f:?}");
        assert!(
            f.controls
                .iter()
                .all(|c| crate::controls::find(c).is_some()),
            "{f:?}"
        );
        assert_eq!(f.severity, f.kind.severity());
        assert!(
            f.message.ends_with('.') && !f.message.contains('\n'),
            "{}",
            f.message
        );
    }
    let broad = analysis.accounts[0]
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::BroadGrant && f.subject == "g_analytics")
        .unwrap();
    assert_eq!(
        broad.message,
        "Grant g_analytics (`read:analytics.*` on warehouse) was used only for \
         `read:analytics.daily` in the last 90 days."
    );
    assert!(broad.controls.contains(&"SOC 2 CC6.3"));
    assert!(broad.controls.contains(&"PCI DSS 7.2.5"));
    let inactive = &analysis.accounts[2].findings;
    assert!(inactive
        .iter()
        .any(|f| f.kind == FindingKind::InactiveAccount && f.controls.contains(&"PCI DSS 8.2.6")));
    // Most severe first.
    assert_eq!(inactive[0].severity, Severity::High);
}

#[test]
fn reports_describe_grants_keys_and_risk() {
    let f = fixture();
    let analysis = analyze(&f.population(), now(), &options());
    assert_eq!(analysis.generated_at, now());
    assert_eq!(analysis.window.days, 90);
    let names: Vec<_> = analysis
        .accounts
        .iter()
        .map(|a| a.account.as_str())
        .collect();
    assert_eq!(names, ["billing-etl", "ghost", "legacy-sync", "retired"]);

    let etl = &analysis.accounts[0];
    assert_eq!(etl.status, AccountStatus::Active);
    assert_eq!(etl.last_used_at.map(|t| t > ago(1)), Some(true));
    let rules: Vec<_> = etl
        .grants
        .iter()
        .map(|g| (g.target.as_str(), g.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("api", "GET /v1/**"),
            ("api", "POST /v1/exports"),
            ("api", "POST /v1/refunds"),
            ("warehouse", "read:analytics.*"),
            ("warehouse", "write:public.orders"),
        ]
    );
    let analytics = &etl.grants[3];
    assert!(analytics.wildcard && analytics.used);
    assert_eq!(analytics.uses, 60);
    assert_eq!(analytics.actions.len(), 2);
    assert_eq!(analytics.actions[0].action, "read:analytics.daily");
    assert_eq!(analytics.actions[0].count, 40);
    let refunds = &etl.grants[2];
    assert!(!refunds.used && refunds.uses == 0 && refunds.actions.is_empty());
    assert_eq!(
        refunds.last_use,
        Some(
            f.usage
                .iter()
                .find(|u| u.grant_id == "g_unused")
                .unwrap()
                .last_at
        )
    );

    let keys: Vec<_> = etl
        .keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.state, k.age_days, k.rotated))
        .collect();
    assert_eq!(
        keys,
        [
            ("k_first", KeyState::Expired, 300, true),
            ("k_second", KeyState::Active, 181, true)
        ]
    );
    assert!(!analysis.accounts[2].keys[0].rotated);

    // unused + 2 broad (medium), 2 wildcard (low), old key (medium).
    assert_eq!(etl.risk, 4 * 4 + 2);
    assert!(analysis.accounts[2].risk > etl.risk);

    let s = &analysis.summary;
    assert_eq!(s.accounts, 4);
    assert_eq!(
        (
            s.by_status.active,
            s.by_status.disabled,
            s.by_status.expired
        ),
        (3, 1, 0)
    );
    assert_eq!(s.findings, 18);
    assert_eq!(s.by_kind[&FindingKind::UnusedGrant], 3);
    assert_eq!(s.by_kind[&FindingKind::WildcardGrant], 3);
    assert_eq!(s.by_severity[&Severity::High], 3);
    assert_eq!(s.accounts_with_findings, 4);
    assert_eq!(s.accounts_with_unused_grants, 3);
    assert_eq!(s.accounts_with_broad_grants, 1);
    assert_eq!(s.accounts_with_key_findings, 3);
    assert_eq!(s.active_grants, 7);
    assert_eq!(s.usable_keys, 3);

    let json = serde_json::to_string(&analysis).unwrap();
    assert!(json.contains(r#""unused_grant":3"#), "{json}");
    assert_eq!(serde_json::from_str::<Analysis>(&json).unwrap(), analysis);
}

#[test]
fn people_on_record_are_optional_and_case_insensitive() {
    let f = fixture();
    let analysis = analyze(&f.population(), now(), &Options::default());
    assert!(findings(&analysis)
        .iter()
        .all(|(_, k, _)| *k != FindingKind::OwnerNotOnRecord));
    // `bob@acme.io` is on record as `BOB@acme.io`.
    let analysis = analyze(&f.population(), now(), &options());
    assert!(analysis.accounts[1]
        .findings
        .iter()
        .all(|f| f.kind != FindingKind::OwnerNotOnRecord));
}

#[test]
fn the_recommendation_narrows_removes_and_protects() {
    let f = fixture();
    let r = recommend(&f.population(), "billing-etl", now(), &options()).unwrap();
    assert!(!r.is_empty());
    assert_eq!(r.keep.len(), 1);
    assert_eq!(r.protected[0].grant_id, "g_young");
    assert_eq!(r.remove[0].grant.grant_id, "g_unused");
    assert_eq!(r.narrow.len(), 2);
    assert_eq!(r.narrow[1].into, ["read:analytics.daily"]);
    assert_eq!(r.narrow[1].actions.len(), 2);
    assert_eq!(
        r.diff(),
        "\
--- billing-etl (current grants)
+++ billing-etl (recommended, from 90 days of use)
- remove api GET /v1/**  # g_v1: used only for `GET /v1/orders/*`
+ add api GET /v1/orders/*  # narrows g_v1
  keep api POST /v1/exports  # g_young: protected: too new to judge
- remove api POST /v1/refunds  # g_unused: allowed nothing in the last 90 days (last used 2026-11-13T13:00:00.000000Z)
- remove warehouse read:analytics.*  # g_analytics: used only for `read:analytics.daily`
+ add warehouse read:analytics.daily  # narrows g_analytics
  keep warehouse write:public.orders  # g_orders: used in the window
"
    );
    let resulting = r.resulting();
    assert_eq!(
        resulting,
        [
            ("api".to_owned(), "GET /v1/orders/*".to_owned()),
            ("api".to_owned(), "POST /v1/exports".to_owned()),
            ("warehouse".to_owned(), "read:analytics.daily".to_owned()),
            ("warehouse".to_owned(), "write:public.orders".to_owned()),
        ]
    );
    let window_start = ago(90);
    for u in f
        .usage
        .iter()
        .filter(|u| u.account == "billing-etl" && u.last_at >= window_start)
    {
        assert!(covers(&resulting, &u.target, &u.action), "{u:?}");
    }
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        serde_json::from_str::<crate::Recommendation>(&json).unwrap(),
        r
    );
}

#[test]
fn recommendations_name_unknown_accounts_and_may_be_empty() {
    let f = fixture();
    let e = recommend(&f.population(), "nobody", now(), &options()).unwrap_err();
    assert_eq!(e, AccessError::UnknownAccount("nobody".into()));
    assert_eq!(e.to_string(), "no account named `nobody`");
    // A month later, the young grant is still unused: it is removed, nothing is protected.
    let later = Timestamp::from_micros(now().as_micros() + 30 * DAY);
    let r = recommend(&f.population(), "billing-etl", later, &options()).unwrap();
    assert!(r.protected.is_empty());
    assert!(r.remove.iter().any(|x| x.grant.grant_id == "g_young"));
    // The retired account's only record is itself: nothing to change.
    let r = recommend(&f.population(), "retired", now(), &options()).unwrap();
    assert!(r.is_empty() && r.resulting().is_empty());
    assert_eq!(r.diff().lines().count(), 2);
}

/// Whether the `resulting` grants on `target` allow `action`, decided by `warden-core` itself on
/// a concrete request the action stands for (`*` segments as `42`).
fn covers(resulting: &[(String, String)], target: &str, action: &str) -> bool {
    let grants: Vec<Grant> = resulting
        .iter()
        .filter(|(t, _)| t == target)
        .map(|(t, r)| grant("g_new", "svc", t, r, 0))
        .collect();
    decides(&grants, action)
}

fn decides(grants: &[Grant], action: &str) -> bool {
    if let Some((method, path)) = action.split_once(' ') {
        return decide_http(grants, method, &path.replace('*', "42"), now()).allowed;
    }
    let (class, table) = match action.split_once(':') {
        Some((class, table)) => (class, table.split_once('.')),
        None => (action, None),
    };
    let class = SqlClass::parse(class).unwrap();
    decide_sql(grants, &[(class, table)], now())
        .decision
        .allowed
}

const TARGETS: [&str; 3] = ["api", "crm", "db"];
const HTTP_RULES: [&str; 8] = [
    "* /**",
    "GET /v1/**",
    "GET /v1/orders/*",
    "* /v1/orders/*",
    "POST /v1/orders",
    "GET /v1/users/*",
    "GET /v1/users/me",
    "GET /health",
];
const HTTP_ACTIONS: [&str; 7] = [
    "GET /v1/orders/*",
    "POST /v1/orders",
    "GET /v1/users/*",
    "GET /v1/users/me",
    "DELETE /v1/orders/*",
    "GET /health",
    "GET /v1/orders/*/items",
];
const SQL_RULES: [&str; 9] = [
    "*",
    "read",
    "write",
    "read:analytics.*",
    "read:analytics.daily",
    "write:public.orders",
    "*:public.*",
    "ddl",
    "read:*.audit_*",
];
const SQL_ACTIONS: [&str; 10] = [
    "read:analytics.daily",
    "read:analytics.hourly",
    "write:public.orders",
    "read:public.users",
    "read:billing.audit_log",
    "read",
    "write",
    "ddl",
    "tx",
    "admin",
];

fn pools(target: usize) -> (&'static [&'static str], &'static [&'static str]) {
    if TARGETS[target] == "db" {
        (&SQL_RULES, &SQL_ACTIONS)
    } else {
        (&HTTP_RULES, &HTTP_ACTIONS)
    }
}

proptest! {
    #[test]
    fn recommendations_never_deny_what_was_seen(
        grant_specs in prop::collection::vec((0..3usize, 0..9usize, 0..200i64), 1..8),
        usage_specs in prop::collection::vec((0..3usize, 0..10usize, 0..200i64, 1..5u64, 0..8usize), 0..24),
    ) {
        let grants: Vec<Grant> = grant_specs
            .iter()
            .enumerate()
            .map(|(i, &(t, r, age))| {
                let rules = pools(t).0;
                grant(&format!("g_{i}"), "svc", TARGETS[t], rules[r % rules.len()], age)
            })
            .collect();
        // Each action goes through one of the grants that allow it, as the gateway would.
        let usage: Vec<UsageRecord> = usage_specs
            .iter()
            .filter_map(|&(t, a, day, count, pick)| {
                let actions = pools(t).1;
                let action = actions[a % actions.len()];
                let allowing: Vec<&Grant> = grants
                    .iter()
                    .filter(|g| g.target == TARGETS[t] && decides(std::slice::from_ref(*g), action))
                    .collect();
                let g = allowing.get(pick % allowing.len().max(1))?;
                Some(usage("svc", TARGETS[t], &g.id, action, count, day))
            })
            .collect();
        let accounts = [account("svc", "ada@acme.io", "Property-tested service", 400, Some(1))];
        let population = Population { accounts: &accounts, keys: &[], grants: &grants, usage: &usage };
        let r = recommend(&population, "svc", now(), &Options::default()).unwrap();
        let resulting = r.resulting();
        for u in usage.iter().filter(|u| u.last_at >= ago(90)) {
            prop_assert!(covers(&resulting, &u.target, &u.action), "{u:?}\n{}", r.diff());
        }
        for (target, rule) in &resulting {
            prop_assert!(grants.iter().any(|g| &g.target == target), "{target}");
            prop_assert!(Rule::parse_stored(rule).is_ok(), "{rule}");
        }
        for n in &r.narrow {
            prop_assert!(!n.into.is_empty() && n.into.iter().all(|i| *i != n.grant.rule));
        }
        // The analysis agrees with the recommendation on what is unused and what is broad.
        let analysis = analyze(&population, now(), &Options::default());
        let count = |kind| analysis.accounts[0].findings.iter().filter(|f| f.kind == kind).count();
        prop_assert_eq!(count(FindingKind::UnusedGrant), r.remove.len());
        prop_assert_eq!(count(FindingKind::BroadGrant), r.narrow.len());
    }
}
