//! Access reviews (one open at a time, decisions only while open, closing records outcomes)
//! behave the same on both backends.

use std::sync::Arc;

use serde_json::json;
use warden_core::Timestamp;
use warden_store::{
    PostgresStore, Review, ReviewDecision, ReviewItem, ReviewStatus, SqliteStore, Store, StoreError,
};
use warden_testkit::ScratchDb;

fn review(name: &str, at: i64) -> Review {
    Review {
        name: name.into(),
        status: ReviewStatus::Open,
        started_by: "admin".into(),
        started_at: Timestamp::from_micros(at),
        closed_by: None,
        closed_at: None,
        body: json!({"population": {"accounts": 2}}),
    }
}

fn item(review: &str, account: &str) -> ReviewItem {
    ReviewItem {
        review: review.into(),
        account: account.into(),
        decision: None,
        justification: None,
        decided_by: None,
        decided_at: None,
        remove_grants: Vec::new(),
        outcome: None,
        body: json!({"account": account, "owner": "ada@acme.io"}),
    }
}

async fn exercise(store: Arc<dyn Store>) {
    assert!(store.reviews().await.unwrap().is_empty());
    let q3 = review("2026-Q3", 1_000);
    let items = vec![item("2026-Q3", "billing"), item("2026-Q3", "etl")];
    store.insert_review(&q3, &items).await.unwrap();
    assert_eq!(store.review("2026-Q3").await.unwrap().as_ref(), Some(&q3));
    assert_eq!(store.review_items("2026-Q3").await.unwrap(), items);

    // One open review at a time, and names are unique.
    let err = store
        .insert_review(&review("2026-Q4", 2_000), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(w) if w == "open review 2026-Q3"),
        "{err}"
    );

    // A decision, changed before closing.
    let mut decided = items[0].clone();
    decided.decision = Some(ReviewDecision::Keep);
    decided.justification = Some("still bills".into());
    decided.decided_by = Some("grace".into());
    decided.decided_at = Some(Timestamp::from_micros(1_500));
    store.decide_review_item(&decided).await.unwrap();
    decided.decision = Some(ReviewDecision::Modify);
    decided.remove_grants = vec!["g_1".into(), "g_2".into()];
    store.decide_review_item(&decided).await.unwrap();
    let stored = store.review_items("2026-Q3").await.unwrap();
    assert_eq!(stored[0], decided);
    assert_eq!(stored[1].decision, None);
    let err = store
        .decide_review_item(&item("2026-Q3", "nobody"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    // Closing records who and when, and each item's outcome; then decisions are final.
    let mut closed = q3.clone();
    closed.status = ReviewStatus::Closed;
    closed.closed_by = Some("admin".into());
    closed.closed_at = Some(Timestamp::from_micros(3_000));
    let mut outcomes = stored.clone();
    outcomes[0].outcome = Some("removed 2 grants".into());
    outcomes[1].outcome = Some("undecided".into());
    store.close_review(&closed, &outcomes).await.unwrap();
    assert_eq!(store.review("2026-Q3").await.unwrap(), Some(closed.clone()));
    assert_eq!(store.review_items("2026-Q3").await.unwrap(), outcomes);
    let err = store.decide_review_item(&decided).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store.close_review(&closed, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    // The next one may start; names stay unique; listing is oldest first.
    let err = store
        .insert_review(&review("2026-Q3", 4_000), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(w) if w == "review 2026-Q3"),
        "{err}"
    );
    store
        .insert_review(&review("2026-Q4", 5_000), &[item("2026-Q4", "billing")])
        .await
        .unwrap();
    let names: Vec<String> = store
        .reviews()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["2026-Q3", "2026-Q4"]);
    assert_eq!(store.review("2026-Q5").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("warden.db"))
        .await
        .unwrap();
    exercise(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_reviews() {
    let db = ScratchDb::create().await;
    let store = PostgresStore::connect(&db.url(), 4).await.unwrap();
    exercise(Arc::new(store)).await;
    db.drop_db().await;
}
