//! Authentication (3002): every attempt to authenticate at a front door (HTTP gateway,
//! PostgreSQL gateway, OAuth token endpoint, control-plane API), successful or not.

use serde_json::json;
use warden_core::event::AuthMethod;
use warden_core::Event;

use crate::base::{detail_str, user, Mapped};
use crate::class::{Activity, Class};

const LOGON: Activity<'static> = Activity::new(1, "Logon");

/// Maps an authentication attempt.
pub(crate) fn map(e: &Event) -> Mapped<'_> {
    let (protocol_id, protocol) = protocol(e);
    let mut attrs = json!({
        "user": user(e.actor.account.as_deref(), e.actor.key_id.as_deref(), e.actor.kind),
        "auth_protocol_id": protocol_id,
        "auth_protocol": protocol,
        "service": { "name": e.target.as_ref().map(|t| &t.name) },
    });
    // A failure's stable code (`wrong_secret`, `expired`…) is the most useful status code.
    if let Some(code) = detail_str(e, "failure") {
        attrs["status_code"] = json!(code);
    }
    Mapped {
        class: Class::Authentication,
        activity: LOGON,
        attrs,
        mapped_detail: &["failure"],
    }
}

/// `auth_protocol_id` and `auth_protocol`: OAuth 2.0 for the token endpoint and the tokens it
/// issues; "Other" with Warden's label for API keys and client certificates.
fn protocol(e: &Event) -> (Option<u8>, Option<&'static str>) {
    const OAUTH2: (Option<u8>, Option<&str>) = (Some(6), Some("OAUTH 2.0"));
    if e.action.verb == "oauth.token" {
        return OAUTH2;
    }
    match e.actor.auth {
        AuthMethod::Token => OAUTH2,
        AuthMethod::ApiKey => (Some(99), Some("API key")),
        AuthMethod::Tls => (Some(99), Some("TLS client certificate")),
        AuthMethod::None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warden_core::event::{Category, Decision};

    use super::*;
    use crate::base::tests::sample_event;

    #[test]
    fn successful_logon() {
        let o = crate::event(&sample_event(Category::Auth, "http.authenticate", None));
        assert_eq!(o["class_uid"], 3002);
        assert_eq!(o["category_uid"], 3);
        assert_eq!(o["activity_id"], 1);
        assert_eq!(o["type_uid"], 300201);
        assert_eq!(o["status_id"], 1);
        assert_eq!(o["user"]["name"], "billing-etl");
        assert_eq!(o["user"]["credential_uid"], "wk_01");
        assert_eq!(o["auth_protocol"], "API key");
        assert_eq!(o["auth_protocol_id"], 99);
    }

    #[test]
    fn failed_logon_carries_reason_and_code() {
        let mut e = sample_event(
            Category::Auth,
            "postgres.authenticate",
            Some(json!({"failure": "wrong_secret"})),
        );
        e.decision = Decision::deny("the secret does not match");
        let o = crate::event(&e);
        assert_eq!(o["status_id"], 2);
        assert_eq!(o["status_detail"], "the secret does not match");
        assert_eq!(o["status_code"], "wrong_secret");
        assert_eq!(o["severity_id"], 3);
        assert!(o["unmapped"].get("detail").is_none(), "{o}");
    }

    #[test]
    fn token_endpoint_is_oauth2() {
        let o = crate::event(&sample_event(Category::Auth, "oauth.token", None));
        assert_eq!(o["auth_protocol_id"], 6);
        assert_eq!(o["auth_protocol"], "OAUTH 2.0");
    }

    #[test]
    fn anonymous_attempt_has_no_protocol() {
        let mut e = sample_event(Category::Auth, "http.authenticate", None);
        e.actor.auth = AuthMethod::None;
        e.actor.account = None;
        e.actor.key_id = None;
        let o = crate::event(&e);
        assert!(o.get("auth_protocol").is_none());
        assert_eq!(o["user"]["type"], "Service");
        assert!(o["user"].get("name").is_none());
    }
}
