//! Alerts, sink outboxes and settings behave the same on both backends.

use std::sync::Arc;

use warden_core::{Alert, AlertStatus, Severity, Timestamp};
use warden_store::{AlertQuery, PostgresStore, SqliteStore, Store, StoreError};
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
