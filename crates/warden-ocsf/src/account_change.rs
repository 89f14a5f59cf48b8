//! Account Change (3001): control-plane changes to service accounts, their API keys and grants,
//! and to admins. `user` is the account acted on; `actor` is the admin who acted.

use serde_json::{json, Value};
use warden_core::event::ActorKind;
use warden_core::Event;

use crate::base::{detail_str, user, Mapped};
use crate::class::{verb_word, Activity, Class};

const CREATE: Activity<'static> = Activity::new(1, "Create");
const ENABLE: Activity<'static> = Activity::new(2, "Enable");
const PASSWORD_CHANGE: Activity<'static> = Activity::new(3, "Password Change");
const PASSWORD_RESET: Activity<'static> = Activity::new(4, "Password Reset");
const DISABLE: Activity<'static> = Activity::new(5, "Disable");
const DELETE: Activity<'static> = Activity::new(6, "Delete");
const ATTACH_POLICY: Activity<'static> = Activity::new(7, "Attach Policy");
const DETACH_POLICY: Activity<'static> = Activity::new(8, "Detach Policy");

/// Whether an admin verb changes an account (as opposed to a target, a session…).
pub(crate) fn applies(verb: &str) -> bool {
    ["account.", "key.", "grant.", "admin."]
        .iter()
        .any(|prefix| verb.starts_with(prefix))
}

/// Maps an account, key, grant or admin change.
pub(crate) fn map(e: &Event) -> Mapped<'_> {
    let resource = e.action.resource.as_deref().unwrap_or_default();
    let (kind, id) = resource.split_once('/').unwrap_or((resource, ""));
    let account = detail_str(e, "account");
    let changed = match kind {
        "account" => user(Some(id), None, ActorKind::Service),
        "admin" => user(Some(id), None, ActorKind::Human),
        "key" => user(account, Some(id), ActorKind::Service),
        _ => user(account, None, ActorKind::Service),
    };
    let grant_id = match kind {
        "grant" => Some(id),
        _ => detail_str(e, "grant_id"),
    };
    let policy = match grant_id {
        Some(uid) => json!({ "uid": uid, "desc": detail_str(e, "allow") }),
        None => Value::Null,
    };
    Mapped {
        class: Class::AccountChange,
        activity: activity(&e.action.verb),
        attrs: json!({ "user": changed, "policy": policy }),
        mapped_detail: &["grant_id", "allow"],
    }
}

/// The activity of an admin verb. Issuing or rotating an API key changes the account's
/// credential, which OCSF calls a password change; grants are policies attached to the account.
fn activity(verb: &str) -> Activity<'_> {
    match verb {
        "key.create" | "key.rotate" => PASSWORD_CHANGE,
        "grant.create" | "grant.add" => ATTACH_POLICY,
        "grant.remove" | "grant.delete" | "grant.revoke" => DETACH_POLICY,
        _ => match verb_word(verb).as_str() {
            "create" => CREATE,
            "enable" => ENABLE,
            "rotate" => PASSWORD_CHANGE,
            "reset" => PASSWORD_RESET,
            "disable" => DISABLE,
            "delete" | "remove" => DELETE,
            _ => Activity::other(verb),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::base::tests::admin_event;

    #[test]
    fn account_create_names_the_account_and_the_admin() {
        let o = crate::event(&admin_event("account.create", "account/billing-etl"));
        assert_eq!(o["class_uid"], 3001);
        assert_eq!(o["category_uid"], 3);
        assert_eq!(o["activity_id"], 1);
        assert_eq!(o["type_uid"], 300101);
        assert_eq!(o["user"]["name"], "billing-etl");
        assert_eq!(o["user"]["type"], "Service");
        assert_eq!(o["actor"]["user"]["name"], "alice");
        assert_eq!(o["actor"]["user"]["type"], "Admin");
        // No outcome recorded yet.
        assert_eq!(o["status_id"], 0);
    }

    #[test]
    fn verbs_map_to_activities() {
        for (verb, id) in [
            ("account.create", 1),
            ("account.enable", 2),
            ("key.rotate", 3),
            ("key.create", 3),
            ("account.disable", 5),
            ("account.delete", 6),
            ("grant.create", 7),
            ("grant.remove", 8),
            ("key.revoke", 99),
            ("admin.create", 1),
        ] {
            let o = crate::event(&admin_event(verb, "account/etl"));
            assert_eq!(o["activity_id"], id, "{verb}");
        }
    }

    #[test]
    fn key_revoke_names_the_key_and_keeps_the_verb() {
        let o = crate::event(&admin_event("key.revoke", "key/wk_9"));
        assert_eq!(o["user"]["credential_uid"], "wk_9");
        assert_eq!(o["activity_name"], "key.revoke");
        assert_eq!(o["type_name"], "Account Change: key.revoke");
    }

    #[test]
    fn grants_are_policies() {
        let mut e = admin_event("grant.create", "account/etl");
        e.action.detail = Some(json!({
            "grant_id": "g7", "account": "etl", "target": "shop", "allow": "GET /v1/*",
        }));
        let o = crate::event(&e);
        assert_eq!(o["policy"], json!({"uid": "g7", "desc": "GET /v1/*"}));
        assert_eq!(
            o["unmapped"]["detail"],
            json!({"account": "etl", "target": "shop"})
        );

        let o = crate::event(&admin_event("grant.remove", "grant/g7"));
        assert_eq!(o["policy"]["uid"], "g7");
    }

    #[test]
    fn admin_create_is_an_admin_user() {
        let o = crate::event(&admin_event("admin.create", "admin/bob"));
        assert_eq!(o["user"]["name"], "bob");
        assert_eq!(o["user"]["type_id"], 2);
    }
}
