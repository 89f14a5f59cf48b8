//! The web console over real HTTP: signing in and out, sessions and CSRF, the overview, accounts
//! and alerts pages, the CSV export, escaping of hostile text, and the sign-in page rendered in
//! headless Chromium without console errors.

#[macro_use]
mod common;

use std::process::Command;
use std::time::Duration;

use common::{Backend, TestServer};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    an_admin_signs_in_sees_real_numbers_and_signs_out,
    an_alert_is_acknowledged_and_resolved_on_the_ledger,
    accounts_are_searchable_sortable_exportable_and_escaped,
    activity_lists_filters_pages_and_exports_events,
);

/// A browser of sorts: no redirects followed, the session cookie kept by hand.
struct Browser<'a> {
    t: &'a TestServer,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl<'a> Browser<'a> {
    fn new(t: &'a TestServer) -> Self {
        Self {
            t,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("console-test/1")
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let header = |name| {
            resp.headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let (location, set_cookie) = (header(LOCATION), header(SET_COOKIE));
        if let Some(c) = &set_cookie {
            let pair = c.split(';').next().unwrap().to_owned();
            self.cookie = pair
                .split_once('=')
                .filter(|(_, v)| !v.is_empty())
                .map(|_| pair.clone());
        }
        Page {
            status: resp.status(),
            location,
            set_cookie,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.t.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .http
            .post(format!("{}{path}", self.t.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        self.post("/console/sign-in", &[("token", token)]).await
    }

    /// The CSRF token in a page's forms.
    async fn csrf(&mut self) -> String {
        let page = self.get("/console/").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let (_, rest) = page.body.split_once("name=\"csrf\" value=\"").unwrap();
        rest.split('"').next().unwrap().to_owned()
    }
}

async fn create_account(t: &TestServer, name: &str, purpose: &str) {
    let (s, body) = t
        .post(
            "/v1/accounts",
            &t.admin,
            json!({"name": name, "owner": "ada@example.com", "purpose": purpose}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_visitors_see_only_the_sign_in_form() {
    let t = TestServer::start(Backend::Sqlite).await;
    let mut b = Browser::new(&t);

    let root = b.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location.as_deref(), Some("/console/"));
    for path in [
        "/console/",
        "/console/accounts",
        "/console/activity",
        "/console/alerts",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location.as_deref(), Some("/console/sign-in"), "{path}");
    }
    let form = b.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form
        .body
        .contains("<label for=\"token\">Admin token</label>"));
    assert!(form.body.contains("<main"));

    // A wrong token: the form again, 401, no session, and the attempt on the ledger.
    let wrong = b.sign_in(&common::flip_last(&t.admin)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\""), "{}", wrong.body);
    assert!(wrong.set_cookie.is_none());
    assert_eq!(b.get("/console/").await.status, StatusCode::SEE_OTHER);
    let failures: Vec<Value> = t
        .events("category=auth&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"]["verb"] == "admin.authenticate")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["decision"]["allowed"], false);
    assert_eq!(failures[0]["source"]["user_agent"], "console-test/1");

    // Nor does a service account's key open the console.
    create_account(&t, "etl", "nightly loads").await;
    let key = t.key("etl").await;
    assert_eq!(b.sign_in(&key).await.status, StatusCode::FORBIDDEN);

    // A sign-in posted from another site is refused.
    let req = b
        .http
        .post(format!("{}/console/sign-in", t.base))
        .header("origin", "https://evil.example")
        .form(&[("token", t.admin.as_str())]);
    let cross = b.send(req).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.set_cookie.is_none());
    t.stop().await;
}

async fn an_admin_signs_in_sees_real_numbers_and_signs_out(backend: Backend) {
    let t = TestServer::start(backend).await;
    for name in ["billing", "etl", "reports"] {
        create_account(&t, name, "test").await;
    }
    let (s, body) = t
        .post(
            "/v1/accounts/reports/disable",
            &t.admin,
            json!({"reason": "retired"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let mut b = Browser::new(&t);
    let signed = b.sign_in(&t.admin).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location.as_deref(), Some("/console/"));
    let cookie = signed.set_cookie.unwrap();
    assert!(cookie.starts_with("warden_session="), "{cookie}");
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(id.len(), 64, "32 random bytes as hex");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Plain HTTP from loopback: a Secure cookie would never come back.
    assert!(!cookie.contains("Secure"), "{cookie}");

    let overview = b.get("/console/").await;
    assert_eq!(overview.status, StatusCode::OK);
    let body = &overview.body;
    assert!(body.contains("data-status=\"active\">2<"), "{body}");
    assert!(body.contains("data-status=\"disabled\">1<"), "{body}");
    assert!(
        body.contains("<a href=\"/console/accounts\">3</a>"),
        "{body}"
    );
    assert!(body.contains("id=\"open-alerts\">0<"), "{body}");
    assert!(body.contains("<svg class=\"chart\""), "{body}");
    assert!(body.contains(">admin<"), "the admin's name is shown");
    // The ledger holds at least the three creations, the disabling and the sign-in.
    let size: u64 = body
        .split_once("id=\"ledger-size\">")
        .unwrap()
        .1
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(size >= 5, "{size}");
    let (_, last) = t.get("/v1/events?category=auth&limit=1000", &t.admin).await;
    let sign_in = last["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"]["verb"] == "console.sign_in")
        .expect("the sign-in is recorded");
    assert_eq!(sign_in["actor"]["account"], "admin");

    // Signing out needs the CSRF token, and ends the session.
    let csrf = b.csrf().await;
    assert_eq!(
        b.post("/console/sign-out", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let kept = b.cookie.clone();
    let out = b.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    // The old cookie no longer opens anything.
    b.cookie = kept;
    assert_eq!(b.get("/console/").await.status, StatusCode::SEE_OTHER);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_a_session_or_the_right_csrf_token_are_forbidden() {
    let t = TestServer::start(Backend::Sqlite).await;
    let mut b = Browser::new(&t);
    let path = "/console/alerts/0190a1b2-0000-7000-8000-000000000000/resolve";
    assert_eq!(
        b.post(path, &[("csrf", "x")]).await.status,
        StatusCode::FORBIDDEN
    );
    b.sign_in(&t.admin).await;
    let csrf = b.csrf().await;
    assert_eq!(b.post(path, &[]).await.status, StatusCode::FORBIDDEN);
    let wrong = format!("{}0", &csrf[..csrf.len() - 1]);
    let wrong = if wrong == csrf {
        format!("{}1", &csrf[..csrf.len() - 1])
    } else {
        wrong
    };
    assert_eq!(
        b.post(path, &[("csrf", &wrong)]).await.status,
        StatusCode::FORBIDDEN
    );
    // Another session's token is no good either.
    let mut other = Browser::new(&t);
    other.sign_in(&t.admin).await;
    let theirs = other.csrf().await;
    assert_ne!(theirs, csrf);
    assert_eq!(
        b.post(path, &[("csrf", &theirs)]).await.status,
        StatusCode::FORBIDDEN
    );
    // With the right token the request goes through (to an alert that does not exist).
    let ok = b.post(path, &[("csrf", &csrf)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location.as_deref(), Some("/console/alerts?done=missing"));
    t.stop().await;
}

async fn an_alert_is_acknowledged_and_resolved_on_the_ledger(backend: Backend) {
    let t = TestServer::start(backend).await;
    create_account(&t, "ci", "builds").await;
    let key = t.key("ci").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let (s, body) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alert = loop {
        let (_, alerts) = t.get("/v1/alerts?status=open", &t.admin).await;
        if let Some(a) = alerts.as_array().unwrap().first() {
            break a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert was raised"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = alert["id"].as_str().unwrap().to_owned();

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let overview = b.get("/console/").await.body;
    assert!(overview.contains("id=\"open-alerts\">1<"), "{overview}");
    let list = b.get("/console/alerts").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains(&format!("id=\"alert-{id}\"")),
        "{}",
        list.body
    );
    assert!(list
        .body
        .contains(&format!("action=\"/console/alerts/{id}/ack\"")));
    let csrf = b.csrf().await;

    let ack = b
        .post(&format!("/console/alerts/{id}/ack"), &[("csrf", &csrf)])
        .await;
    assert_eq!(ack.status, StatusCode::SEE_OTHER);
    assert_eq!(ack.location.as_deref(), Some("/console/alerts?done=ack"));
    let (_, now) = t.get(&format!("/v1/alerts/{id}"), &t.admin).await;
    assert_eq!(now["alert"]["status"], "acknowledged");
    assert_eq!(now["alert"]["acknowledged_by"], "admin");
    let list = b.get("/console/alerts?done=ack").await.body;
    assert!(list.contains("Alert acknowledged."));
    assert!(!list.contains(&format!("action=\"/console/alerts/{id}/ack\"")));
    // Acknowledging twice is a conflict, shown as a notice.
    let again = b
        .post(&format!("/console/alerts/{id}/ack"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        again.location.as_deref(),
        Some("/console/alerts?done=conflict")
    );

    let resolve = b
        .post(&format!("/console/alerts/{id}/resolve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        resolve.location.as_deref(),
        Some("/console/alerts?done=resolve")
    );
    let (_, now) = t.get(&format!("/v1/alerts/{id}"), &t.admin).await;
    assert_eq!(now["alert"]["status"], "resolved");
    assert!(!b.get("/console/alerts").await.body.contains(&id));

    let steps: Vec<(String, String)> = t
        .events("category=alert&limit=1000")
        .await
        .iter()
        .filter(|e| e["action"]["resource"] == format!("alert/{id}"))
        .filter(|e| e["action"]["verb"] != "alert.open")
        .map(|e| {
            (
                e["action"]["verb"].as_str().unwrap().to_owned(),
                e["actor"]["account"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("alert.ack".to_owned(), "admin".to_owned()),
            ("alert.resolve".to_owned(), "admin".to_owned())
        ],
    );
    t.stop().await;
}

async fn accounts_are_searchable_sortable_exportable_and_escaped(backend: Backend) {
    let t = TestServer::start(backend).await;
    create_account(&t, "billing", "charges customers").await;
    create_account(&t, "etl", "<script>alert(1)</script>").await;
    create_account(&t, "reports", "=HYPERLINK(\"http://x\"),weekly").await;
    t.key("billing").await;
    t.key("billing").await;

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let page = b.get("/console/accounts").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("3 of 3 accounts"));
    let order = |body: &str| -> Vec<usize> {
        ["billing", "etl", "reports"]
            .iter()
            .map(|n| body.find(&format!("<th scope=\"row\">{n}<")).unwrap())
            .collect()
    };
    let by_name = order(&page.body);
    assert!(by_name[0] < by_name[1] && by_name[1] < by_name[2]);
    let by_keys = b.get("/console/accounts?sort=keys").await.body;
    assert!(by_keys.contains("aria-sort=\"descending\""));
    let by_keys = order(&by_keys);
    assert!(by_keys[0] < by_keys[1], "billing (2 keys) comes first");

    let found = b.get("/console/accounts?q=CHARGES").await.body;
    assert!(found.contains("1 of 3 accounts"), "{found}");
    assert!(found.contains("<th scope=\"row\">billing<"));
    assert!(!found.contains("<th scope=\"row\">etl<"));

    let csv = b.get("/console/accounts?format=csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "name,owner,purpose,status,last_used,keys,findings,risk"
    );
    assert_eq!(lines.len(), 4, "{}", csv.body);
    assert!(lines[1].starts_with("billing,ada@example.com,charges customers,active,,2,"));
    // A formula is defused and quoted.
    assert!(
        lines[3].starts_with("reports,ada@example.com,\"'=HYPERLINK(\"\"http://x\"\"),weekly\","),
        "{}",
        lines[3]
    );
    // The export needs a session like everything else.
    let mut stranger = Browser::new(&t);
    assert_eq!(
        stranger.get("/console/accounts?format=csv").await.status,
        StatusCode::SEE_OTHER
    );
    t.stop().await;
}

async fn activity_lists_filters_pages_and_exports_events(backend: Backend) {
    let t = TestServer::start(backend).await;
    create_account(&t, "billing", "charges customers").await;
    create_account(&t, "etl", "nightly loads").await;
    assert_eq!(t.whoami("bogus-token").await.0, StatusCode::UNAUTHORIZED);

    // Without a session: the sign-in form.
    let mut stranger = Browser::new(&t);
    let away = stranger.get("/console/activity").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.location.as_deref(), Some("/console/sign-in"));

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let page = b.get("/console/activity").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("aria-current=\"page\">Activity<"));
    assert!(page.body.contains("<label for=\"category\">"));
    assert!(
        page.body.contains("<td>account.create</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<td>account/billing</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>whoami</td>"), "{}", page.body);
    // Newest first: etl was created after billing.
    let (etl, billing) = (
        page.body.find("<td>account/etl</td>").unwrap(),
        page.body.find("<td>account/billing</td>").unwrap(),
    );
    assert!(etl < billing);
    // A short ledger fits on one page.
    assert!(!page.body.contains(">Older<"));

    let admin = b.get("/console/activity?category=admin").await.body;
    assert!(admin.contains("<td>account.create</td>"));
    assert!(!admin.contains("<td>whoami</td>"), "{admin}");
    assert!(admin.contains("value=\"admin\""));

    let denied = b.get("/console/activity?decision=deny").await.body;
    assert!(denied.contains("<td>whoami</td>"), "{denied}");
    assert!(denied.contains("<td>auth</td>"));
    assert!(denied.contains("decision-deny"));
    assert!(!denied.contains("decision-allow"), "{denied}");
    assert!(!denied.contains("<td>account.create</td>"));

    // Paging by sequence number: below the first create only what came before it.
    let first = t
        .events("category=admin&limit=1000")
        .await
        .into_iter()
        .find(|e| e["action"]["verb"] == "account.create")
        .unwrap();
    let seq = first["seq"].as_u64().unwrap();
    let older = b.get(&format!("/console/activity?before={seq}")).await.body;
    assert!(!older.contains("<td>account.create</td>"), "{older}");
    assert!(older.contains(">Newest<"));

    let csv = b
        .get("/console/activity?category=admin&decision=allow&format=csv")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "seq,time,category,actor,verb,resource,target,decision,status"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains(",admin,") && l.contains(",account.create,account/etl,,allow,")));
    assert!(!csv.body.contains("whoami"));
    t.stop().await;
}

/// Loads `url` in headless Chromium: the serialized DOM, and the console messages and uncaught
/// exceptions it logged (as in tests/reports.rs).
fn browse(url: &str) -> (String, Vec<String>) {
    let out = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs (.ci/run installs it: apt-get install chromium)");
    assert!(out.status.success(), "chromium failed: {out:?}");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE("))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_renders_in_chromium_without_console_errors() {
    let t = TestServer::start(Backend::Sqlite).await;
    let url = format!("{}/console/sign-in", t.base);
    let (dom, console) = tokio::task::spawn_blocking(move || browse(&url))
        .await
        .unwrap();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("Admin token"), "{dom}");
    // Following `/` lands on the same form.
    let root = format!("{}/", t.base);
    let (dom, console) = tokio::task::spawn_blocking(move || browse(&root))
        .await
        .unwrap();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("id=\"token\""), "{dom}");
    t.stop().await;
}
