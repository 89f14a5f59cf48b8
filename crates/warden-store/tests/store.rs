//! Alerts, sink outboxes, settings, admins' passwords, usage rollups, grant set versions and
//! event queries (across the bulk-filled account index) behave the same on both backends.

use std::sync::Arc;

use warden_core::{
    Admin, Alert, AlertStatus, Credential, CredentialKind, Grant, GrantSetVersion, GrantSpec, Rule,
    Severity, TargetKind, Timestamp,
};
use warden_store::{
    AdminPassword, AlertQuery, PostgresStore, SqliteStore, Store, StoreError, UsageRow,
};
use warden_testkit::ScratchDb;

fn alert(account: &str, at: i64) -> Alert {
    Alert {
        id: uuid::Uuid::now_v7(),
        detector: "new_source_network".into(),
        severity: Severity::Medium,
        status: AlertStatus::Open,
        account: Some(account.into()),
        target: Some("orders".into()),
        subject: "10.1.2.0/24".into(),
        summary: format!("{account} called from a new network 10.1.2.0/24"),
        count: 1,
        first_seen: Timestamp::from_micros(at),
        last_seen: Timestamp::from_micros(at),
        seqs: vec![7],
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        note: None,
    }
}

async fn exercise(store: Arc<dyn Store>) {
    // Settings: absent, set, replaced.
    assert_eq!(store.setting("detect.position").await.unwrap(), None);
    store.set_setting("detect.position", "10").await.unwrap();
    store.set_setting("detect.position", "11").await.unwrap();
    assert_eq!(
        store.setting("detect.position").await.unwrap().as_deref(),
        Some("11")
    );

    // A new alert is queued for the sinks named, in creation order.
    let first = alert("billing", 1_000);
    let second = alert("etl", 2_000);
    let sinks = vec!["ops-webhook".to_owned(), "siem".to_owned()];
    store.insert_alert(&first, &sinks).await.unwrap();
    store.insert_alert(&second, &sinks[..1]).await.unwrap();
    let due = store.outbox_due("ops-webhook", 10).await.unwrap();
    assert_eq!(
        due.iter().map(|i| i.alert.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    assert_eq!(store.outbox_due("siem", 10).await.unwrap().len(), 1);

    // A failed attempt stays queued with its error; a delivery leaves the outbox.
    store
        .outbox_failed("ops-webhook", first.id, "connection refused")
        .await
        .unwrap();
    let backlog = store.outbox_backlog().await.unwrap();
    let ops = backlog.iter().find(|b| b.sink == "ops-webhook").unwrap();
    assert_eq!(ops.pending, 2);
    assert_eq!(ops.last_error.as_deref(), Some("connection refused"));
    assert_eq!(
        store.outbox_due("ops-webhook", 1).await.unwrap()[0].attempts,
        1
    );
    store
        .outbox_delivered("ops-webhook", first.id)
        .await
        .unwrap();
    store
        .outbox_delivered("ops-webhook", second.id)
        .await
        .unwrap();
    assert!(store
        .outbox_due("ops-webhook", 10)
        .await
        .unwrap()
        .is_empty());

    // Updates are visible to the outbox (it delivers the alert as it is now) and to listings.
    let mut grown = first.clone();
    grown.count = 5;
    grown.last_seen = Timestamp::from_micros(3_000);
    grown.status = AlertStatus::Acknowledged;
    grown.acknowledged_by = Some("alice".into());
    store.update_alert(&grown).await.unwrap();
    assert_eq!(store.outbox_due("siem", 10).await.unwrap()[0].alert, grown);
    assert_eq!(store.alert(first.id).await.unwrap(), Some(grown.clone()));
    let all = store
        .alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    let open = store
        .alerts(&AlertQuery {
            status: Some(AlertStatus::Open),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(open, vec![second.clone()]);
    let billing = store
        .alerts(&AlertQuery {
            account: Some("billing".into()),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(billing.len(), 1);

    // Updating an alert that does not exist says so.
    let ghost = alert("nobody", 1);
    assert!(matches!(
        store.update_alert(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.alert(ghost.id).await.unwrap(), None);

    // Admins' passwords: none until set, replaced in place, only for admins that exist.
    let token = Credential::generate(CredentialKind::AdminToken);
    let ada = Admin {
        name: "ada".into(),
        token_id: token.id().to_owned(),
        digest: token.digest(),
        created_by: "warden".into(),
        created_at: Timestamp::from_micros(1),
    };
    store.insert_admin(&ada).await.unwrap();
    assert_eq!(store.admin_password("ada").await.unwrap(), None);
    for (hash, at) in [("$argon2id$first", 10), ("$argon2id$second", 20)] {
        let password = AdminPassword {
            hash: hash.into(),
            set_at: Timestamp::from_micros(at),
        };
        store.set_admin_password("ada", &password).await.unwrap();
    }
    let (admin, password) = store.admin_password("ada").await.unwrap().unwrap();
    assert_eq!((admin.name.as_str(), admin.token_id), ("ada", ada.token_id));
    assert_eq!(password.hash, "$argon2id$second");
    assert_eq!(password.set_at, Timestamp::from_micros(20));
    let nobody = AdminPassword {
        hash: "x".into(),
        set_at: Timestamp::from_micros(1),
    };
    assert!(matches!(
        store.set_admin_password("nobody", &nobody).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.admin_password("nobody").await.unwrap(), None);
}

const DAY: i64 = 86_400_000_000;

fn usage(day: i64, action: &str, count: u64) -> UsageRow {
    UsageRow {
        day: Timestamp::from_micros(day * DAY),
        account: "billing".into(),
        target: "orders".into(),
        grant_id: "g_aaaaaaaaaaaa".into(),
        action: action.into(),
        count,
        first_at: Timestamp::from_micros(day * DAY + 10),
        last_at: Timestamp::from_micros(day * DAY + 20),
    }
}

async fn usage_and_versions(store: Arc<dyn Store>) {
    // Counts add up per day; the follower's position is stored with them.
    store
        .add_usage(
            &[usage(100, "GET /v1/orders/*", 3)],
            ("usage.position", "5"),
        )
        .await
        .unwrap();
    let mut later = usage(100, "GET /v1/orders/*", 2);
    later.first_at = Timestamp::from_micros(100 * DAY + 5);
    later.last_at = Timestamp::from_micros(100 * DAY + 50);
    store
        .add_usage(
            &[
                later,
                usage(101, "GET /v1/orders/*", 1),
                usage(90, "POST /v1/orders/*", 7),
            ],
            ("usage.position", "9"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.setting("usage.position").await.unwrap().as_deref(),
        Some("9")
    );

    // Read back over a window: summed per action across days, older days left out.
    let since = Timestamp::from_micros(95 * DAY + 1);
    let rows = store.usage(since, None).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].count, 6);
    assert_eq!(rows[0].first_at, Timestamp::from_micros(100 * DAY + 5));
    assert_eq!(rows[0].last_at, Timestamp::from_micros(101 * DAY + 20));
    let all = store
        .usage(Timestamp::from_micros(0), Some("billing"))
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(store
        .usage(Timestamp::from_micros(0), Some("etl"))
        .await
        .unwrap()
        .is_empty());

    // Per day, for everyone or one account: days without use are left out.
    let day = |d: i64| Timestamp::from_micros(d * DAY);
    let expected = vec![(day(90), 7), (day(100), 5), (day(101), 1)];
    let everyone = store.daily_usage(day(0), None).await.unwrap();
    assert_eq!(everyone, expected);
    assert_eq!(
        store.daily_usage(day(0), Some("billing")).await.unwrap(),
        expected
    );
    assert_eq!(
        store.daily_usage(since, Some("billing")).await.unwrap(),
        expected[1..]
    );
    assert!(store
        .daily_usage(day(0), Some("etl"))
        .await
        .unwrap()
        .is_empty());

    // Replacing grants keeps the set before the change as a version, all in one transaction.
    store
        .insert_account(&warden_core::Account {
            name: warden_core::AccountName::parse("billing").unwrap(),
            owner: warden_core::Email::parse("owner", "ada@example.com").unwrap(),
            purpose: "test".into(),
            labels: Default::default(),
            created_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            expires_at: None,
            disabled_reason: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    store
        .insert_target(&warden_core::Target {
            name: "orders".into(),
            kind: TargetKind::Http,
            upstream: "https://orders.internal".into(),
            ca_bundle: None,
            credentials: None,
            created_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            rotation_period_secs: None,
            rotated_at: None,
        })
        .await
        .unwrap();
    let grant = |id: &str, rule: &str| Grant {
        id: id.into(),
        account: "billing".into(),
        target: "orders".into(),
        rule: Rule::parse(TargetKind::Http, rule).unwrap(),
        created_by: "admin".into(),
        created_at: Timestamp::from_micros(1),
        expires_at: None,
        last_used_at: None,
    };
    let broad = grant("g_broadbroadb", "GET /v1/**");
    store.insert_grant(&broad).await.unwrap();
    let version = GrantSetVersion {
        account: "billing".into(),
        version: 1,
        grants: vec![GrantSpec {
            target: "orders".into(),
            rule: "GET /v1/**".into(),
            expires_at: None,
        }],
        reason: "recommendation".into(),
        created_by: "admin".into(),
        created_at: Timestamp::from_micros(2),
    };
    let narrow = grant("g_narrownarro", "GET /v1/orders/*");
    store
        .replace_grants(
            &version,
            std::slice::from_ref(&broad.id),
            std::slice::from_ref(&narrow),
            Timestamp::from_micros(2),
        )
        .await
        .unwrap();
    let now: Vec<String> = store
        .grants(Some("billing"), None)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(now, vec![narrow.id.clone()]);
    assert_eq!(
        store.grant_versions("billing").await.unwrap(),
        vec![version.clone()]
    );

    // A failed replacement changes nothing: the same version again, or a grant already gone.
    assert!(matches!(
        store
            .replace_grants(&version, &[], &[], Timestamp::from_micros(3))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let mut second = version.clone();
    second.version = 2;
    let extra = grant("g_extraextrae", "GET /v1/items/*");
    assert!(matches!(
        store
            .replace_grants(
                &second,
                std::slice::from_ref(&broad.id),
                &[extra],
                Timestamp::from_micros(3)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.grant_versions("billing").await.unwrap().len(), 1);
    assert_eq!(store.grants(Some("billing"), None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_usage_and_grant_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("warden.db"))
        .await
        .unwrap();
    usage_and_versions(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_usage_and_grant_versions() {
    let db = ScratchDb::create().await;
    let store = PostgresStore::connect(&db.url(), 4).await.unwrap();
    usage_and_versions(Arc::new(store)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_alerts_outboxes_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("warden.db"))
        .await
        .unwrap();
    exercise(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_alerts_outboxes_and_settings() {
    let db = ScratchDb::create().await;
    let store = PostgresStore::connect(&db.url(), 4).await.unwrap();
    exercise(Arc::new(store)).await;
    db.drop_db().await;
}

/// An event of `account` at position `seq`, with its outcome at `seq + 1` when `with_outcome`.
fn ledger_event(seq: u64, account: &str, with_outcome: bool) -> Vec<warden_store::LedgerEntry> {
    use warden_core::event::{
        Action, Actor, ActorKind, AuthMethod, Category, Decision, Event, Outcome, OutcomeRecord,
        Source, TargetRef,
    };
    let mut e = Event::new(
        Timestamp::from_micros(1_000_000 + seq as i64),
        Actor {
            kind: ActorKind::Service,
            account: Some(account.to_owned()),
            key_id: None,
            auth: AuthMethod::ApiKey,
        },
        Source::default(),
        Action {
            category: Category::Http,
            verb: "GET".into(),
            resource: Some(format!("/orders/{seq}")),
            detail: None,
        },
        Decision::allow("test"),
    );
    e.target = Some(TargetRef {
        name: if seq.is_multiple_of(3) {
            "orders"
        } else {
            "billing"
        }
        .into(),
        kind: "http".into(),
    });
    e.seq = Some(seq);
    let entry = |seq, kind, body: Vec<u8>| warden_store::LedgerEntry {
        seq,
        event_id: e.id,
        kind,
        time: e.time,
        account: (kind == warden_store::EntryKind::Event).then(|| account.to_owned()),
        category: "http".into(),
        target: e.target.as_ref().map(|t| t.name.clone()),
        body,
        leaf_hash: [0; 32],
        pruned_at: None,
    };
    let mut out = vec![entry(
        seq,
        warden_store::EntryKind::Event,
        e.canonical_bytes(),
    )];
    if with_outcome {
        let o = OutcomeRecord {
            event_id: e.id,
            seq: Some(seq + 1),
            time: e.time,
            outcome: Outcome {
                status: "200".into(),
                ..Outcome::default()
            },
        };
        out.push(entry(
            seq + 1,
            warden_store::EntryKind::Outcome,
            o.canonical_bytes(),
        ));
    }
    out
}

/// Appends ~12,000 entries (more than the account index's bulk fill threshold, so queries span
/// the indexed positions and the unindexed tail) and checks every account query against a
/// filter computed here.
async fn events_by_account(store: Arc<dyn Store>) {
    let accounts = ["billing", "ci", "reports"];
    let mut expected: Vec<(u64, &str, String, bool)> = Vec::new();
    let mut batch = Vec::new();
    let mut seq: u64 = 0;
    while seq < 12_000 {
        let account = accounts[(seq / 2 % 3) as usize];
        let with_outcome = seq.is_multiple_of(4);
        let entries = ledger_event(seq, account, with_outcome);
        let target = entries[0].target.clone().unwrap();
        expected.push((seq, account, target, with_outcome));
        seq += entries.len() as u64;
        batch.extend(entries);
        if batch.len() >= 700 {
            store
                .append_entries(std::mem::take(&mut batch), Vec::new())
                .await
                .unwrap();
        }
    }
    store.append_entries(batch, Vec::new()).await.unwrap();

    let check = |query: warden_store::EventQuery| {
        let store = store.clone();
        let expected = &expected;
        async move {
            let got = store.events(&query).await.unwrap();
            let want: Vec<u64> = expected
                .iter()
                .filter(|(s, a, t, _)| {
                    query.account.as_deref().is_none_or(|q| q == *a)
                        && query.target.as_deref().is_none_or(|q| q == t)
                        && query.after_seq.is_none_or(|q| *s > q)
                        && query.before_seq.is_none_or(|q| *s < q)
                        && query
                            .since
                            .is_none_or(|q| 1_000_000 + *s as i64 >= q.as_micros())
                })
                .map(|(s, ..)| *s)
                .take(query.limit as usize)
                .collect();
            let seqs: Vec<u64> = got.iter().map(|e| e.seq.unwrap()).collect();
            assert_eq!(seqs, want, "{query:?}");
            for e in &got {
                let with_outcome = expected.iter().any(|x| x.0 == e.seq.unwrap() && x.3);
                assert_eq!(e.outcome.is_some(), with_outcome, "outcome of {:?}", e.seq);
            }
        }
    };
    let q = |account: &str, after: Option<u64>, before: Option<u64>, limit: u32| {
        warden_store::EventQuery {
            account: Some(account.to_owned()),
            after_seq: after,
            before_seq: before,
            limit,
            ..warden_store::EventQuery::default()
        }
    };
    // From the start, within the indexed part, straddling the tail, and within the tail.
    check(q("billing", None, None, 25)).await;
    check(q("ci", Some(4000), Some(6000), 1000)).await;
    check(q("reports", Some(8000), None, 5000)).await;
    check(q("billing", Some(11_000), None, 50)).await;
    check(q("ci", None, Some(3), 10)).await;
    check(q("nobody", None, None, 10)).await;
    check(warden_store::EventQuery {
        target: Some("orders".into()),
        ..q("billing", Some(7000), Some(10_000), 200)
    })
    .await;
    check(warden_store::EventQuery {
        since: Some(Timestamp::from_micros(1_000_000 + 9_000)),
        ..q("reports", None, None, 100)
    })
    .await;
    check(warden_store::EventQuery {
        limit: 100,
        after_seq: Some(8100),
        ..warden_store::EventQuery::default()
    })
    .await;
}

/// The account index's mark and size after [`events_by_account`]: the bulk fill ran once, so
/// the queries above covered both the index and the tail.
const MARK_AND_INDEXED: &str =
    "SELECT indexed_below, (SELECT COUNT(*) FROM ledger_account_seqs) FROM ledger_account_index";

fn assert_filled_once(mark: i64, indexed: i64) {
    assert!((8192..12_000).contains(&mark), "index mark {mark}");
    // Three of every four positions are events, the fourth an outcome.
    assert_eq!(indexed, mark - mark / 4, "indexed events below {mark}");
}

#[tokio::test]
async fn sqlite_events_by_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let store = SqliteStore::open(&path).await.unwrap();
    events_by_account(Arc::new(store)).await;
    let (mark, indexed) = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(MARK_AND_INDEXED, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_filled_once(mark, indexed);
}

#[tokio::test]
async fn postgres_events_by_account() {
    let db = ScratchDb::create().await;
    let store = PostgresStore::connect(&db.url(), 4).await.unwrap();
    events_by_account(Arc::new(store)).await;
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client.query_one(MARK_AND_INDEXED, &[]).await.unwrap();
    assert_filled_once(row.get(0), row.get(1));
    drop(client);
    db.drop_db().await;
}
