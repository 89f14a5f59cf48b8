//! Datastore Activity (6005): SQL statements through the PostgreSQL gateway. The activity comes
//! from the statement's class (as `warden-sql` sorted it) and verb.

use serde_json::{json, Value};
use warden_core::Event;

use crate::base::{detail_str, Mapped};
use crate::class::{Activity, Class};

const READ: Activity<'static> = Activity::new(1, "Read");
const UPDATE: Activity<'static> = Activity::new(2, "Update");
const QUERY: Activity<'static> = Activity::new(4, "Query");
const WRITE: Activity<'static> = Activity::new(5, "Write");
const CREATE: Activity<'static> = Activity::new(6, "Create");
const DELETE: Activity<'static> = Activity::new(7, "Delete");

/// Maps a SQL statement.
pub(crate) fn map(e: &Event) -> Mapped<'_> {
    let tables = e
        .action
        .detail
        .as_ref()
        .and_then(|d| d.get("tables"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    // One table: it is what the statement acted on. Several: the list stays in `unmapped`.
    let table = match tables {
        1 => json!({ "name": e.action.resource }),
        _ => Value::Null,
    };
    let (type_id, type_name) = if table.is_null() {
        (1, "Database")
    } else {
        (3, "Table")
    };
    let attrs = json!({
        "database": {
            "name": e.target.as_ref().map(|t| &t.name),
            "type_id": 1,
            "type": "Relational",
        },
        "table": table,
        "type_id": type_id,
        "type": type_name,
        "query_info": { "query_string": detail_str(e, "sql") },
    });
    Mapped {
        class: Class::DatastoreActivity,
        activity: activity(detail_str(e, "class"), &e.action.verb),
        attrs,
        mapped_detail: &["sql"],
    }
}

/// The activity of a statement of SQL class `class` and verb `verb`.
fn activity(class: Option<&str>, verb: &str) -> Activity<'static> {
    let verb = verb.to_ascii_uppercase();
    match (class, verb.as_str()) {
        (Some("read"), _) => READ,
        (Some("write"), "INSERT" | "COPY") => WRITE,
        (Some("write"), "UPDATE" | "MERGE") => UPDATE,
        (Some("write"), "DELETE" | "TRUNCATE") => DELETE,
        (Some("write"), _) => WRITE,
        (Some("ddl"), "CREATE") => CREATE,
        (Some("ddl"), "DROP") => DELETE,
        (Some("ddl"), _) => UPDATE,
        // Transaction control, admin statements and anything unclassified are queries.
        _ => QUERY,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warden_core::event::{Category, Outcome, TargetRef};

    use super::*;
    use crate::base::tests::sample_event;

    fn sql(verb: &str, class: &str, text: &str, tables: &[&str]) -> Event {
        let mut e = sample_event(
            Category::Sql,
            verb,
            Some(json!({"sql": text, "class": class, "tables": tables})),
        );
        e.action.resource = tables.first().map(|t| (*t).to_owned());
        e.target = Some(TargetRef {
            kind: "postgres".into(),
            name: "shopdb".into(),
        });
        e
    }

    #[test]
    fn select_of_one_table() {
        let mut e = sql(
            "SELECT",
            "read",
            "SELECT * FROM public.orders",
            &["public.orders"],
        );
        e.outcome = Some(Outcome {
            status: "SELECT 3".into(),
            rows: Some(3),
            ..Outcome::default()
        });
        let o = crate::event(&e);
        assert_eq!(o["class_uid"], 6005);
        assert_eq!(o["category_uid"], 6);
        assert_eq!(o["activity_id"], 1);
        assert_eq!(o["type_uid"], 600501);
        assert_eq!(o["database"]["name"], "shopdb");
        assert_eq!(o["table"]["name"], "public.orders");
        assert_eq!(o["type_id"], 3);
        assert_eq!(
            o["query_info"]["query_string"],
            "SELECT * FROM public.orders"
        );
        assert_eq!(o["status_id"], 1);
        assert_eq!(o["unmapped"]["outcome"]["rows"], 3);
        assert_eq!(
            o["unmapped"]["detail"],
            json!({"class": "read", "tables": ["public.orders"]})
        );
    }

    #[test]
    fn join_has_no_single_table() {
        let o = crate::event(&sql("SELECT", "read", "SELECT …", &["a", "b"]));
        assert!(o.get("table").is_none());
        assert_eq!(o["type_id"], 1);
    }

    #[test]
    fn classes_and_verbs_map_to_activities() {
        for (verb, class, id) in [
            ("INSERT", "write", 5),
            ("UPDATE", "write", 2),
            ("DELETE", "write", 7),
            ("TRUNCATE", "write", 7),
            ("CREATE", "ddl", 6),
            ("DROP", "ddl", 7),
            ("ALTER", "ddl", 2),
            ("BEGIN", "tx", 4),
            ("GRANT", "admin", 4),
        ] {
            let o = crate::event(&sql(verb, class, "…", &[]));
            assert_eq!(o["activity_id"], id, "{verb}");
        }
    }

    #[test]
    fn failed_statement_is_a_failure() {
        let mut e = sql("SELECT", "read", "SELECT x", &[]);
        e.outcome = Some(Outcome {
            status: "42703".into(),
            error: Some("column x does not exist".into()),
            ..Outcome::default()
        });
        let o = crate::event(&e);
        assert_eq!(o["status_id"], 2);
        assert_eq!(o["status_code"], "42703");
        assert_eq!(o["status_detail"], "column x does not exist");
    }
}
