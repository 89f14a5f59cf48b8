//! API Activity (6003): HTTP requests through the gateway, ingested Kubernetes audit records, and
//! control-plane changes that are not about accounts (targets, sessions, the ledger).

use serde_json::json;
use warden_core::event::Category;
use warden_core::Event;

use crate::base::{detail_str, Mapped};
use crate::class::{verb_word, Activity, Class};

const CREATE: Activity<'static> = Activity::new(1, "Create");
const READ: Activity<'static> = Activity::new(2, "Read");
const UPDATE: Activity<'static> = Activity::new(3, "Update");
const DELETE: Activity<'static> = Activity::new(4, "Delete");

/// Maps an HTTP, Kubernetes or (non-account) admin event.
pub(crate) fn map(e: &Event) -> Mapped<'_> {
    let target = e.target.as_ref();
    let mut attrs = json!({
        "api": {
            "operation": e.action.verb,
            "service": { "name": target.map(|t| &t.name) },
        },
    });
    if e.action.category == Category::Http {
        attrs["http_request"] = json!({
            "http_method": e.action.verb,
            "url": {
                "path": e.action.resource,
                "query_string": detail_str(e, "query"),
            },
        });
        let code = e
            .outcome
            .as_ref()
            .and_then(|o| o.status.parse::<u16>().ok());
        attrs["http_response"] = json!({ "code": code });
    } else {
        attrs["resources"] = json!([{ "name": e.action.resource }]);
    }
    Mapped {
        class: Class::ApiActivity,
        activity: activity(&e.action.verb),
        attrs,
        mapped_detail: &["query"],
    }
}

/// The activity of an HTTP method, a Kubernetes verb or a control-plane verb.
fn activity(verb: &str) -> Activity<'_> {
    match verb_word(verb).as_str() {
        "post" | "create" | "add" => CREATE,
        "get" | "head" | "list" | "watch" | "read" => READ,
        "put" | "patch" | "update" | "rotate" | "enable" | "disable" | "set" => UPDATE,
        "delete" | "deletecollection" | "remove" | "revoke" | "prune" | "kill" => DELETE,
        _ => Activity::other(verb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::tests::{admin_event, http_event, sample_event};

    #[test]
    fn http_request_maps_method_url_and_response() {
        let o = crate::event(&http_event("GET", "/v1/orders/1", Some("200")));
        assert_eq!(o["class_uid"], 6003);
        assert_eq!(o["category_uid"], 6);
        assert_eq!(o["activity_id"], 2);
        assert_eq!(o["type_uid"], 600302);
        assert_eq!(o["api"]["operation"], "GET");
        assert_eq!(o["api"]["service"]["name"], "shop");
        assert_eq!(o["http_request"]["http_method"], "GET");
        assert_eq!(o["http_request"]["url"]["path"], "/v1/orders/1");
        assert_eq!(o["http_request"]["url"]["query_string"], "a=1");
        assert_eq!(o["http_request"]["user_agent"], "etl/1.0");
        assert_eq!(o["http_response"]["code"], 200);
        // The query string is mapped, so it is not repeated under `unmapped`.
        assert!(o["unmapped"].get("detail").is_none(), "{o}");
    }

    #[test]
    fn methods_map_to_activities() {
        for (method, id) in [
            ("POST", 1),
            ("GET", 2),
            ("HEAD", 2),
            ("PUT", 3),
            ("PATCH", 3),
            ("DELETE", 4),
            ("OPTIONS", 99),
        ] {
            let o = crate::event(&http_event(method, "/", None));
            assert_eq!(o["activity_id"], id, "{method}");
        }
        let o = crate::event(&http_event("OPTIONS", "/", None));
        assert_eq!(o["activity_name"], "OPTIONS");
    }

    #[test]
    fn pending_request_has_no_response_and_unknown_status() {
        let o = crate::event(&http_event("GET", "/", None));
        assert!(o.get("http_response").is_none());
        assert_eq!(o["status_id"], 0);
    }

    #[test]
    fn error_status_is_a_failure() {
        let o = crate::event(&http_event("GET", "/", Some("502")));
        assert_eq!(o["status_id"], 2);
    }

    #[test]
    fn kubernetes_and_other_admin_verbs_are_api_activity() {
        let mut k = sample_event(Category::K8s, "list", None);
        k.action.resource = Some("secrets".into());
        let o = crate::event(&k);
        assert_eq!(o["class_uid"], 6003);
        assert_eq!(o["activity_id"], 2);
        assert_eq!(o["resources"][0]["name"], "secrets");
        assert!(o.get("http_request").unwrap().get("http_method").is_none());

        let o = crate::event(&admin_event("target.rotate", "target/shop"));
        assert_eq!(o["class_uid"], 6003);
        assert_eq!(o["activity_id"], 3);
        assert_eq!(o["api"]["operation"], "target.rotate");
        assert_eq!(o["actor"]["user"]["type_id"], 2);
    }
}
