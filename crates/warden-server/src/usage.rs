//! Usage rollups for least-privilege analysis: follows the ledger and counts, per UTC day, the
//! allowed actions of each account under each grant, reduced to the narrowest grant rule that
//! allows that kind of action (`GET /v1/orders/*`, `read:public.orders`). Analysis over 90 days
//! of ten million events then reads thousands of rows instead of parsing every event.
//!
//! Each batch's counts and the follower's position are written in one transaction, so every
//! entry is counted exactly once, across restarts and crashes. A new installation counts the
//! ledger from its beginning.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warden_core::event::{ActorKind, Category, Event};
use warden_core::Timestamp;
use warden_store::{Store, UsageRow};

use crate::follow::{Entry, Follower};

/// The settings row holding the position of the next entry to count.
const POSITION: &str = "usage.position";
const DAY_US: i64 = 86_400_000_000;
/// How often a caught-up rollup reads (and writes) again: each write is a transaction of its
/// own beside the ledger's, and the counts serve analyses over days.
const PACE: Duration = Duration::from_secs(1);

/// Counts grant usage from the ledger until `stop` turns true.
pub async fn run(
    store: Arc<dyn Store>,
    committed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let from = loop {
        match store.setting(POSITION).await {
            Ok(p) => break p.and_then(|p| p.parse().ok()).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "usage rollup cannot read its position; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let mut follower = Follower::new(store.clone(), from, committed, PACE);
    while let Some(batch) = follower.next_batch(&mut stop).await {
        let mut counts: HashMap<(i64, String, String, String, String), UsageRow> = HashMap::new();
        for (_, entry) in &batch {
            let Entry::Event(event) = entry else { continue };
            for (grant_id, action) in uses(event) {
                let (account, target) = match (&event.actor.account, &event.target) {
                    (Some(a), Some(t)) => (a.clone(), t.name.clone()),
                    _ => continue,
                };
                let day = event.time.as_micros().div_euclid(DAY_US) * DAY_US;
                let row = counts
                    .entry((
                        day,
                        account.clone(),
                        target.clone(),
                        grant_id.clone(),
                        action.clone(),
                    ))
                    .or_insert_with(|| UsageRow {
                        day: Timestamp::from_micros(day),
                        account,
                        target,
                        grant_id,
                        action,
                        count: 0,
                        first_at: event.time,
                        last_at: event.time,
                    });
                row.count += 1;
                row.first_at = row.first_at.min(event.time);
                row.last_at = row.last_at.max(event.time);
            }
        }
        let rows: Vec<UsageRow> = counts.into_values().collect();
        let position = follower.position().to_string();
        // Retried until stored: skipping a batch would under-count and mislead the analysis.
        while let Err(e) = store.add_usage(&rows, (POSITION, &position)).await {
            tracing::warn!(error = %e, "cannot store usage counts; retrying");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The grant uses an event stands for: `(grant id, action)` for each kind of action a service
/// account's allowed HTTP request or SQL statement performed under a grant.
fn uses(event: &Event) -> Vec<(String, String)> {
    let Some(grant_id) = &event.decision.grant_id else {
        return Vec::new();
    };
    if !event.decision.allowed || event.actor.kind != ActorKind::Service {
        return Vec::new();
    }
    let actions = match event.action.category {
        Category::Http => {
            let path = event.action.resource.as_deref().unwrap_or("/");
            vec![format!("{} {}", event.action.verb, http_rule_path(path))]
        }
        Category::Sql => sql_actions(event),
        _ => Vec::new(),
    };
    actions.into_iter().map(|a| (grant_id.clone(), a)).collect()
}

/// The path of the narrowest HTTP rule allowing `path`: its route shape with each identifier
/// segment a `*`.
fn http_rule_path(path: &str) -> String {
    warden_detect::route_shape(path)
        .split('/')
        .map(|segment| if segment == ":id" { "*" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// `class:schema.table` for each table a statement touched (unqualified tables are `public.`),
/// or the class alone for statements that touch none.
fn sql_actions(event: &Event) -> Vec<String> {
    let Some(detail) = &event.action.detail else {
        return Vec::new();
    };
    let Some(class) = detail.get("class").and_then(|c| c.as_str()) else {
        return Vec::new();
    };
    let tables: Vec<&str> = detail
        .get("tables")
        .and_then(|t| t.as_array())
        .map(|t| t.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    if tables.is_empty() {
        return vec![class.to_owned()];
    }
    let mut actions: Vec<String> = tables
        .iter()
        .map(|t| {
            let t = t.to_ascii_lowercase();
            if t.contains('.') {
                format!("{class}:{t}")
            } else {
                format!("{class}:public.{t}")
            }
        })
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::event::{Action, Actor, AuthMethod, Decision, Source, TargetRef};

    fn event(category: Category, verb: &str, resource: &str, detail: serde_json::Value) -> Event {
        let mut decision = Decision::allow("grant");
        decision.grant_id = Some("g_aaaaaaaaaaaa".into());
        let mut e = Event::new(
            Timestamp::from_micros(5 * DAY_US + 7),
            Actor {
                kind: ActorKind::Service,
                account: Some("billing".into()),
                key_id: Some("k".into()),
                auth: AuthMethod::ApiKey,
            },
            Source::default(),
            Action {
                category,
                verb: verb.into(),
                resource: Some(resource.into()),
                detail: Some(detail),
            },
            decision,
        );
        e.target = Some(TargetRef {
            kind: "http".into(),
            name: "orders".into(),
        });
        e
    }

    #[test]
    fn http_requests_become_their_narrowest_rule() {
        let e = event(
            Category::Http,
            "GET",
            "/v1/orders/12345",
            serde_json::json!({}),
        );
        assert_eq!(
            uses(&e),
            vec![("g_aaaaaaaaaaaa".into(), "GET /v1/orders/*".into())]
        );
        let e = event(Category::Http, "POST", "/v1/orders", serde_json::json!({}));
        assert_eq!(uses(&e)[0].1, "POST /v1/orders");
    }

    #[test]
    fn sql_statements_become_class_and_table() {
        let detail =
            serde_json::json!({"class": "read", "tables": ["Orders", "analytics.daily", "orders"]});
        let e = event(Category::Sql, "SELECT", "orders", detail);
        let actions: Vec<String> = uses(&e).into_iter().map(|(_, a)| a).collect();
        assert_eq!(actions, vec!["read:analytics.daily", "read:public.orders"]);
        let e = event(
            Category::Sql,
            "BEGIN",
            "",
            serde_json::json!({"class": "tx", "tables": []}),
        );
        assert_eq!(uses(&e)[0].1, "tx");
    }

    #[test]
    fn only_allowed_actions_under_a_grant_count() {
        let mut denied = event(Category::Http, "GET", "/v1/x", serde_json::json!({}));
        denied.decision.allowed = false;
        assert!(uses(&denied).is_empty());
        let mut ungranted = event(Category::Http, "GET", "/v1/x", serde_json::json!({}));
        ungranted.decision.grant_id = None;
        assert!(uses(&ungranted).is_empty());
        let session = event(
            Category::Sql,
            "session.open",
            "target/shop",
            serde_json::json!({}),
        );
        assert!(uses(&session).is_empty());
    }
}
