//! Slack-compatible incoming webhooks: a `text` fallback for notifications and Block Kit
//! `blocks` laying out severity, detector, account, summary, count and when it was seen.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use warden_core::Alert;

use crate::error::Failure;
use crate::http::Endpoint;

/// Slack's limit on a header block's text.
const HEADER_MAX: usize = 150;
/// Slack's limit on a section's text.
const SECTION_MAX: usize = 3000;

/// The message for `alert`.
pub fn message(alert: &Alert) -> Value {
    let severity = alert.severity.as_str().to_ascii_uppercase();
    let account = alert.account.as_deref().unwrap_or("-");
    let text = format!(
        "[{severity}] {}: {}",
        escape(&alert.detector),
        escape(&alert.summary)
    );
    let mut fields = vec![
        field("Severity", &severity),
        field("Detector", &alert.detector),
        field("Account", account),
        field("Status", alert.status.as_str()),
        field("Count", &alert.count.to_string()),
        field("First seen", &alert.first_seen.to_string()),
        field("Last seen", &alert.last_seen.to_string()),
    ];
    if let Some(target) = &alert.target {
        fields.push(field("Target", target));
    }
    json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": truncate(&format!("{severity} alert: {}", alert.detector), HEADER_MAX),
                },
            },
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": truncate(&escape(&alert.summary), SECTION_MAX) },
            },
            { "type": "section", "fields": fields },
            {
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": format!("Warden alert `{}`", alert.id) }],
            },
        ],
    })
}

/// A `*Name*` / value field of a section.
fn field(name: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value)) })
}

/// Escapes the three characters Slack's mrkdwn gives meaning to (`&`, `<`, `>`), so that text
/// from requests cannot ping channels or forge links.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if s.chars().count() > max => format!("{}…", &s[..cut]),
        _ => s.to_owned(),
    }
}

/// A built Slack sink.
#[derive(Debug)]
pub(crate) struct Slack {
    pub(crate) endpoint: Endpoint,
}

impl Slack {
    /// One delivery of `alert`.
    pub(crate) async fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let body = serde_json::to_vec(&message(alert)).map_err(std::io::Error::from)?;
        self.endpoint.post_json(body, HeaderMap::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(
            escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }
}
