//! `GET /v1/events/stream`: events arrive as Server-Sent Events within a second of being
//! recorded, filtered, and a reconnect with `Last-Event-ID` resumes without a gap.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;

/// One SSE message: its `event`, `id` and parsed `data`.
struct Message {
    event: String,
    id: String,
    data: Value,
}

/// Reads a live SSE response message by message.
struct Reader {
    resp: reqwest::Response,
    buf: String,
}

impl Reader {
    async fn open(t: &TestServer, query: &str, last_event_id: Option<&str>) -> Self {
        let mut req = t
            .http
            .get(format!("{}/v1/events/stream?{query}", t.base))
            .bearer_auth(&t.admin);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next message within `wait`, skipping keep-alive comments.
    async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(Message { event, id, data });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

async fn create(t: &TestServer, name: &str) {
    t.account(name).await;
}

async fn live_filtered_and_resumable(backend: Backend) {
    let t = TestServer::start(backend).await;
    create(&t, "before-the-stream").await;
    let mut admin = Reader::open(&t, "category=admin", None).await;
    let mut sql = Reader::open(&t, "category=sql", None).await;

    // Only what is recorded after the stream opened, within a second.
    create(&t, "first").await;
    let m = admin
        .next(Duration::from_secs(1))
        .await
        .expect("the event, live");
    assert_eq!(m.event, "event");
    assert_eq!(m.data["action"]["verb"], "account.create");
    assert_eq!(m.data["action"]["resource"], "account/first");
    assert_eq!(m.id, m.data["seq"].to_string());
    // Other categories are filtered out.
    assert!(sql.next(Duration::from_millis(700)).await.is_none());

    // Reconnect after `first` while more happens: nothing is missed, nothing repeated.
    drop(admin);
    create(&t, "second").await;
    create(&t, "third").await;
    let mut resumed = Reader::open(&t, "category=admin", Some(&m.id)).await;
    let a = resumed.next(Duration::from_secs(1)).await.unwrap();
    let b = resumed.next(Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.data["action"]["resource"], "account/second");
    assert_eq!(b.data["action"]["resource"], "account/third");
    assert!(a.id.parse::<u64>().unwrap() < b.id.parse::<u64>().unwrap());

    // Decisions: a refused admin call is a `deny` (an auth event), an allowed one is not.
    let mut denied = Reader::open(&t, "decision=deny", None).await;
    let (s, _) = t.get("/v1/accounts", "wda_nottoken_0000").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    create(&t, "fourth").await;
    let d = denied.next(Duration::from_secs(1)).await.unwrap();
    assert_eq!(d.data["decision"]["allowed"], false);
    assert!(denied.next(Duration::from_millis(500)).await.is_none());

    // Bad input is a clear 400.
    let (s, body) = t.get("/v1/events/stream?decision=maybe", &t.admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let resp = t
        .http
        .get(format!("{}/v1/events/stream", t.base))
        .bearer_auth(&t.admin)
        .header("Last-Event-ID", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    t.stop().await;
}

on_both_backends!(live_filtered_and_resumable);
