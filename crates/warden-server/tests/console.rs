//! The web console over real HTTP: signing in and out, sessions and CSRF, the overview, accounts
//! and alerts pages, the CSV export, escaping of hostile text, access reviews, report downloads,
//! the ledger's live verification and audit bundle, and the sign-in page rendered in headless
//! Chromium without console errors.

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
    a_review_is_started_decided_and_closed_in_the_console,
    reports_download_in_every_format,
    the_ledger_page_verifies_and_exports_the_live_store,
    a_service_account_is_created_from_the_accounts_page,
    an_account_page_shows_its_keys_grants_use_and_events,
    account_actions_are_confirmed_and_recorded_with_the_admin_as_actor,
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
    assert!(
        body.contains("aria-labelledby=\"desc-per-minute\""),
        "{body}"
    );
    assert!(body.contains("aria-labelledby=\"desc-per-hour\""), "{body}");
    // Both gateways listen: the overview connects to each and says so.
    for gateway in ["HTTP", "PostgreSQL"] {
        let line = body
            .split_once(&format!("data-gateway=\"{gateway}\">"))
            .unwrap()
            .1;
        assert!(
            line.starts_with("<span class=\"status status-active\">up<"),
            "{line}"
        );
    }
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
            .map(|n| {
                body.find(&format!(
                    "<th scope=\"row\"><a href=\"/console/accounts/{n}\">{n}<"
                ))
                .unwrap()
            })
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
    assert!(found.contains("<a href=\"/console/accounts/billing\">billing<"));
    assert!(!found.contains("<a href=\"/console/accounts/etl\">etl<"));

    let csv = b.get("/console/accounts?format=csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "name,owner,purpose,status,last_used,keys,oldest_key_days,unused_grants,findings,risk"
    );
    assert_eq!(lines.len(), 4, "{}", csv.body);
    // Two keys issued today (the oldest is 0 days old) and no grants to leave unused.
    assert!(
        lines[1].starts_with("billing,ada@example.com,charges customers,active,,2,0,0,"),
        "{}",
        lines[1]
    );
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

/// The text of the element with id `id`, up to the next tag.
fn text_of<'a>(body: &'a str, id: &str) -> &'a str {
    let (_, rest) = body
        .split_once(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &rest[rest.find('>').unwrap() + 1..];
    &rest[..rest.find('<').unwrap()]
}

/// A signed-in GET whose headers matter (a download).
async fn fetch(b: &Browser<'_>, path: &str) -> reqwest::Response {
    b.http
        .get(format!("{}{path}", b.t.base))
        .header(COOKIE, b.cookie.clone().expect("signed in"))
        .send()
        .await
        .unwrap()
}

/// The admin events with `verb`, as (actor, detail).
async fn admin_events(t: &TestServer, verb: &str) -> Vec<(String, Value)> {
    t.events("category=admin&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"]["verb"] == verb)
        .map(|e| {
            (
                e["actor"]["account"].as_str().unwrap_or("-").to_owned(),
                e["action"]["detail"].clone(),
            )
        })
        .collect()
}

async fn a_review_is_started_decided_and_closed_in_the_console(backend: Backend) {
    let t = TestServer::start(backend).await;
    common::orders_target(&t).await;
    create_account(&t, "billing", "charges customers").await;
    create_account(&t, "etl", "nightly loads").await;
    let grant = common::grant_on_orders(&t, "billing", "GET /v1/**").await;
    let etl_key = t.key("etl").await;

    let mut b = Browser::new(&t);
    assert_eq!(
        b.get("/console/reviews").await.location.as_deref(),
        Some("/console/sign-in")
    );
    b.sign_in(&t.admin).await;
    let page = b.get("/console/reviews").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("aria-current=\"page\">Reviews<"));
    assert!(page.body.contains("id=\"start-review\""), "{}", page.body);
    let csrf = b.csrf().await;

    // Starting: the token is required, the name is checked as the API checks it.
    let no_token = b.post("/console/reviews", &[("name", "2026-Q3")]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let bad = b
        .post(
            "/console/reviews",
            &[("csrf", &csrf), ("name", "not a name")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"not a name\""), "{}", bad.body);
    let started = b
        .post("/console/reviews", &[("csrf", &csrf), ("name", "2026-Q3")])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(
        started.location.as_deref(),
        Some("/console/reviews?done=started")
    );
    let (actor, _) = admin_events(&t, "review.start").await.remove(0);
    assert_eq!(actor, "admin");

    let page = b.get("/console/reviews?done=started").await.body;
    assert!(page.contains("role=\"status\""), "{page}");
    for id in [
        "decide-billing",
        "decision-billing",
        "justification-billing",
        "decide-submit-billing",
        "decide-etl",
        "close-review",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "#{id} in {page}");
    }
    assert!(
        page.contains(&format!("id=\"remove-billing-{grant}\"")),
        "{page}"
    );
    assert!(
        !page.contains("id=\"start-review\""),
        "one review at a time"
    );
    assert!(page.contains("<progress id=\"review-progress\" max=\"2\" value=\"0\">"));
    // The reminder: one owner, both accounts undecided.
    assert!(
        page.contains("<td>ada@example.com</td><td class=\"num\">2</td><td>billing, etl</td>"),
        "{page}"
    );

    // Deciding.
    let path = "/console/reviews/2026-Q3/items/billing";
    let no_token = b
        .post(path, &[("decision", "keep"), ("justification", "needed")])
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let blank = b
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("decision", "keep"),
                ("justification", " "),
            ],
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert!(blank.body.contains("justification"), "{}", blank.body);
    let kept = b
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("decision", "keep"),
                ("justification", "Bills customers;\r\nstill needed"),
                // A box ticked by mistake means nothing with "keep".
                ("remove_grants", &grant),
            ],
        )
        .await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.body);
    assert_eq!(
        kept.location.as_deref(),
        Some("/console/reviews?done=decided#item-billing")
    );
    let revoked = b
        .post(
            "/console/reviews/2026-Q3/items/etl",
            &[
                ("csrf", &csrf),
                ("decision", "revoke"),
                ("justification", "Retired in May"),
            ],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let page = b.get("/console/reviews").await.body;
    assert!(page.contains("<span class=\"verdict verdict-keep\">keep</span>"));
    assert!(page.contains("<span class=\"verdict verdict-revoke\">revoke</span>"));
    assert!(
        page.contains("<td>Bills customers; still needed</td>"),
        "{page}"
    );
    assert!(page.contains("<progress id=\"review-progress\" max=\"2\" value=\"2\">"));
    assert!(page.contains("Every account is decided."));
    let decisions = admin_events(&t, "review.decide").await;
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert!(decisions.iter().all(|(actor, _)| actor == "admin"));
    let billing = &decisions
        .iter()
        .find(|(_, d)| d["account"] == "billing")
        .unwrap()
        .1;
    assert_eq!(billing["decision"], "keep");
    assert_eq!(billing["justification"], "Bills customers; still needed");
    assert_eq!(billing["remove_grants"], json!([]));
    let (_, q3) = t.get("/v1/reviews/2026-Q3", &t.admin).await;
    assert_eq!(q3["progress"]["decided"], 2, "{q3}");

    // The tables as CSV.
    let items = b.get("/console/reviews?format=csv&table=items").await;
    assert_eq!(items.status, StatusCode::OK);
    let lines: Vec<&str> = items.body.lines().collect();
    assert_eq!(
        lines[0],
        "account,owner,findings,decision,decided_by,justification"
    );
    assert_eq!(lines.len(), 3, "{}", items.body);
    assert!(lines[1].starts_with("billing,ada@example.com,"));
    assert!(lines[1].ends_with(",keep,admin,Bills customers; still needed"));
    let reminders = b.get("/console/reviews?format=csv&table=reminders").await;
    assert_eq!(reminders.body.trim_end(), "owner,undecided,accounts");

    // Closing: a confirmation page first, then the decisions are applied.
    let confirm = b.get("/console/reviews/2026-Q3/close").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("id=\"confirm\""), "{}", confirm.body);
    assert!(confirm
        .body
        .contains("<a href=\"/console/reviews\" id=\"cancel\">Cancel</a>"));
    assert!(
        confirm.body.contains("with every key revoked: etl."),
        "{}",
        confirm.body
    );
    assert!(!confirm.body.contains("id=\"force\""));
    let close = "/console/reviews/2026-Q3/close";
    assert_eq!(b.post(close, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(t.whoami(&etl_key).await.0, StatusCode::OK);
    let closed = b.post(close, &[("csrf", &csrf)]).await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    assert_eq!(
        closed.location.as_deref(),
        Some("/console/reviews/2026-Q3?done=closed")
    );
    assert_eq!(t.whoami(&etl_key).await.0, StatusCode::UNAUTHORIZED);
    let (_, etl) = t.get("/v1/accounts/etl", &t.admin).await;
    assert_eq!(etl["status"], "disabled", "{etl}");
    assert_eq!(
        etl["disabled_reason"],
        "access review 2026-Q3: Retired in May"
    );
    let (actor, detail) = admin_events(&t, "review.close").await.remove(0);
    assert_eq!(actor, "admin");
    assert_eq!(
        (detail["keep"].as_u64(), detail["revoke"].as_u64()),
        (Some(1), Some(1))
    );
    // Closed: its confirmation page now leads to the record.
    assert_eq!(
        b.get(close).await.location.as_deref(),
        Some("/console/reviews/2026-Q3")
    );

    // The past review, read-only.
    let list = b.get("/console/reviews").await.body;
    assert!(
        list.contains("<a href=\"/console/reviews/2026-Q3\">2026-Q3</a>"),
        "{list}"
    );
    assert!(list.contains("id=\"start-review\""));
    let past = b.get("/console/reviews/2026-Q3?done=closed").await;
    assert_eq!(past.status, StatusCode::OK);
    assert!(past.body.contains("Review closed"), "{}", past.body);
    assert_eq!(text_of(&past.body, "review-status"), "closed");
    assert!(
        past.body.contains("<td>disabled; 1 key(s) revoked</td>"),
        "{}",
        past.body
    );
    assert!(past.body.contains("This is the first review"));
    assert!(!past.body.contains("<form class=\"decide\""));
    let csv = b.get("/console/reviews/2026-Q3?format=csv").await.body;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "account,owner,status,findings,risk,decision,justification,decided_by,decided_at,remove_grants,outcome"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("etl,") && l.ends_with(",disabled; 1 key(s) revoked")));
    let all = b
        .get("/console/reviews?format=csv&table=reviews")
        .await
        .body;
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines[0],
        "name,status,started_by,started_at,closed_by,closed_at,decided,total"
    );
    assert!(lines[1].starts_with("2026-Q3,closed,admin,"), "{all}");
    assert!(lines[1].ends_with(",2,2"), "{all}");
    assert_eq!(
        b.get("/console/reviews/no-such").await.status,
        StatusCode::NOT_FOUND
    );

    // A second review: "modify" removes the ticked grant; one account is left undecided, which
    // closing refuses until the reviewer says so; the record compares it with the first.
    let started = b
        .post("/console/reviews", &[("csrf", &csrf), ("name", "2026-Q4")])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let modified = b
        .post(
            "/console/reviews/2026-Q4/items/billing",
            &[
                ("csrf", &csrf),
                ("decision", "modify"),
                ("justification", "Reads only what it bills"),
                ("remove_grants", &grant),
            ],
        )
        .await;
    assert_eq!(modified.status, StatusCode::SEE_OTHER, "{}", modified.body);
    let page = b.get("/console/reviews").await.body;
    assert!(
        page.contains(&format!("value=\"{grant}\" checked>")),
        "the ticked grant stays ticked: {page}"
    );
    let confirm = b.get("/console/reviews/2026-Q4/close").await.body;
    assert!(
        confirm.contains(&format!("billing: remove {grant}")),
        "{confirm}"
    );
    assert!(confirm.contains("id=\"force\""), "{confirm}");
    let refused = b
        .post("/console/reviews/2026-Q4/close", &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("undecided"), "{}", refused.body);
    let closed = b
        .post(
            "/console/reviews/2026-Q4/close",
            &[("csrf", &csrf), ("force", "on")],
        )
        .await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    let (_, grants) = t.get("/v1/grants?account=billing", &t.admin).await;
    assert_eq!(grants, json!([]));
    let q4 = b.get("/console/reviews/2026-Q4").await.body;
    assert!(
        q4.contains("Compared with <a href=\"/console/reviews/2026-Q3\">2026-Q3</a>"),
        "{q4}"
    );
    assert!(q4.contains("<td>Retired in May</td>"), "{q4}");
    let previous = b
        .get("/console/reviews/2026-Q4?format=csv&table=previous")
        .await
        .body;
    let lines: Vec<&str> = previous.lines().collect();
    assert_eq!(
        lines[0],
        "account,decision,justification,decided_by,outcome"
    );
    assert!(lines.contains(&"etl,revoke,Retired in May,admin,disabled; 1 key(s) revoked"));
    let changes = b
        .get("/console/reviews/2026-Q4?format=csv&table=grants")
        .await
        .body;
    assert_eq!(changes.lines().next(), Some("account,added,removed"));
    t.stop().await;
}

async fn reports_download_in_every_format(backend: Backend) {
    let t = TestServer::start(backend).await;
    create_account(&t, "billing", "charges customers").await;
    let mut b = Browser::new(&t);
    let away = b.get("/console/reports/download?kind=compliance").await;
    assert_eq!(away.location.as_deref(), Some("/console/sign-in"));
    b.sign_in(&t.admin).await;
    let form = b.get("/console/reports").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("id=\"report-form\""), "{}", form.body);
    assert!(form.body.contains("action=\"/console/reports/download\""));
    for field in [
        "kind",
        "format",
        "window",
        "unused_after",
        "max_key_age",
        "protect_new",
    ] {
        assert!(
            form.body.contains(&format!("<label for=\"{field}\">")),
            "{field}"
        );
    }

    for kind in ["access-review", "least-privilege", "compliance"] {
        for (format, content_type) in [
            ("html", "text/html"),
            ("json", "application/json"),
            ("csv", "text/csv"),
        ] {
            let resp = fetch(
                &b,
                &format!("/console/reports/download?kind={kind}&format={format}&window=30d&unused_after=&max_key_age=&protect_new="),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::OK, "{kind} {format}");
            let header = |name| resp.headers()[name].to_str().unwrap().to_owned();
            assert!(
                header("content-type").starts_with(content_type),
                "{kind} {format}"
            );
            let disposition = header("content-disposition");
            assert!(
                disposition.starts_with(&format!("attachment; filename=\"warden-{kind}-")),
                "{disposition}"
            );
            assert!(
                disposition.ends_with(&format!(".{format}\"")),
                "{disposition}"
            );
            let body = resp.text().await.unwrap();
            match format {
                "json" => {
                    let doc: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(doc["kind"], kind, "{doc}");
                }
                "csv" => assert!(body.lines().next().unwrap().contains(','), "{body}"),
                _ => assert!(body.contains("<html"), "{body}"),
            }
        }
    }
    // The same document as the API's (the checkpoint it names may have moved on meanwhile).
    let api = t
        .http
        .get(format!("{}/v1/reports/access-review?format=csv", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let console = fetch(
        &b,
        "/console/reports/download?kind=access-review&format=csv",
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(console.lines().next(), api.lines().next());
    assert_eq!(console.lines().count(), api.lines().count());

    // A bad option: the form again, saying what is wrong, with what was typed.
    let bad = b
        .get("/console/reports/download?kind=compliance&format=json&window=soon")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"soon\""), "{}", bad.body);
    let unknown = b.get("/console/reports/download?kind=everything").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    t.stop().await;
}

async fn the_ledger_page_verifies_and_exports_the_live_store(backend: Backend) {
    let t = TestServer::start(backend).await;
    for name in ["billing", "etl", "reports"] {
        create_account(&t, name, "test").await;
    }
    // Checkpoints are signed every 5 entries here; wait for one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let note = loop {
        let (s, note) = common::text(&t, "/v1/ledger/checkpoint").await;
        if s == StatusCode::OK {
            break note;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let page = b.get("/console/ledger").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("aria-current=\"page\">Ledger<"));
    let size: u64 = text_of(body, "ledger-size").parse().unwrap();
    let checkpoint: u64 = text_of(body, "checkpoint-size").parse().unwrap();
    assert!(
        checkpoint >= 5 && checkpoint <= size,
        "{checkpoint} of {size}"
    );
    let shown_note = body
        .split_once("id=\"checkpoint-note\" aria-labelledby=\"note-label\" tabindex=\"0\">")
        .unwrap()
        .1
        .split("</pre>")
        .next()
        .unwrap();
    // The latest note as the API has it (it may have moved on meanwhile: compare its first line).
    assert!(
        shown_note.starts_with(note.lines().next().unwrap()),
        "{shown_note}"
    );
    assert!(body.contains("Not verified since the server started."));
    assert!(body.contains("id=\"verify-ledger\""));
    assert!(body.contains("id=\"download-bundle\" href=\"/console/ledger/bundle\""));
    let csv = b.get("/console/ledger?format=csv").await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "size,root_hash,signed_at");
    assert!(
        lines[1].starts_with(&format!("{checkpoint},")),
        "{}",
        csv.body
    );

    // Verifying: needs the token; runs in the background; the page shows it to the verdict.
    assert_eq!(
        b.post("/console/ledger/verify", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = b.csrf().await;
    let started = b.post("/console/ledger/verify", &[("csrf", &csrf)]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(
        started.location.as_deref(),
        Some("/console/ledger/verification")
    );
    let verdict = loop {
        let page = b.get("/console/ledger/verification").await.body;
        assert!(page.contains("<progress id=\"verify-progress\""), "{page}");
        if !page.contains("http-equiv=\"refresh\"") {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(verdict.contains("data-ok=\"true\""), "{verdict}");
    assert!(
        text_of(&verdict, "verify-result").starts_with("ok: "),
        "{verdict}"
    );
    let ledger = b.get("/console/ledger").await.body;
    assert!(
        text_of(&ledger, "last-verification").starts_with("ok: "),
        "{ledger}"
    );

    // The bundle verifies offline, with the key the API publishes.
    let resp = fetch(&b, "/console/ledger/bundle").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"warden-ledger-")
            && disposition.ends_with(".jsonl\""),
        "{disposition}"
    );
    let bundle = resp.bytes().await.unwrap();
    let (_, key) = common::text(&t, "/v1/ledger/key").await;
    let key = warden_ledger::Verifier::parse(key.trim()).unwrap();
    let mut reader = warden_ledger::BundleReader::open(&bundle[..]).unwrap();
    assert_eq!(reader.header().key, key.to_key_string());
    assert!(!reader.checkpoints().is_empty());
    let mut audit = warden_ledger::Audit::new(&key, reader.checkpoints(), Vec::<String>::new());
    while let Some(e) = reader.next_entry().unwrap() {
        audit.push(e.seq, e.body.as_bytes(), Some(e.leaf_hash));
    }
    let verified = audit.finish().unwrap();
    assert_eq!(verified.entries, reader.header().size);
    assert!(verified.entries >= size && verified.checkpoints >= 1);

    // An entry edited behind Warden's back: the next verification names it.
    let (_, created) = t
        .get("/v1/events?category=admin&limit=1000", &t.admin)
        .await;
    let seq = created["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"]["resource"] == "account/etl")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let tamper =
        format!("UPDATE ledger_entries SET body = replace(body, 'account/etl', 'account/eve') WHERE seq = {seq}");
    match &t.db {
        None => {
            let c = rusqlite::Connection::open(t.dir.path().join("data/warden.db")).unwrap();
            assert_eq!(c.execute(&tamper, []).unwrap(), 1);
        }
        Some(db) => {
            assert_eq!(db.client().await.execute(&tamper, &[]).await.unwrap(), 1);
        }
    }
    b.post("/console/ledger/verify", &[("csrf", &csrf)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let verdict = loop {
        let page = b.get("/console/ledger/verification").await.body;
        if !page.contains("http-equiv=\"refresh\"") {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(verdict.contains("data-ok=\"false\""), "{verdict}");
    let result = text_of(&verdict, "verify-result");
    assert!(
        result.starts_with(&format!("FAILED at position {seq}: entry {seq} was edited")),
        "{result}"
    );
    t.stop().await;
}

/// The bootstrap admin's name, as the server knows it.
async fn admin_name(t: &TestServer) -> String {
    let (s, me) = t.get("/v1/whoami", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["account"].as_str().unwrap().to_owned()
}

async fn set_password(t: &TestServer, password: &str) -> (StatusCode, Value) {
    let body = json!({ "password": password });
    t.call(
        reqwest::Method::PUT,
        "/v1/admins/me/password",
        Some(&t.admin),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_with_a_password_and_guessing_is_throttled() {
    let t = TestServer::start(Backend::Sqlite).await;
    let name = admin_name(&t).await;

    // A weak password is refused with the reason; a good one is stored, audited, never shown.
    let (s, body) = set_password(&t, "short").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("at least 12"),
        "{body}"
    );
    let (s, body) = set_password(&t, "a long console passphrase").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let events = t.events("category=admin").await;
    let set = events
        .iter()
        .find(|e| e["action"]["verb"] == "admin.set_password")
        .expect("admin.set_password on the ledger");
    assert_eq!(set["actor"]["account"], name.as_str());
    let all = serde_json::to_string(&t.events("").await).unwrap();
    assert!(
        !all.contains("console passphrase"),
        "the password is never recorded"
    );

    // Name and password open a session, recorded as a password sign-in.
    let mut b = Browser::new(&t);
    let form = [
        ("username", name.as_str()),
        ("password", "a long console passphrase"),
    ];
    let signed = b.post("/console/sign-in", &form).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(b.get("/console/").await.status, StatusCode::OK);
    let auth = t.events("category=auth").await;
    let ok = auth
        .iter()
        .rev()
        .find(|e| e["action"]["verb"] == "console.sign_in")
        .unwrap();
    assert_eq!(ok["decision"]["allowed"], true);
    assert_eq!(ok["decision"]["reason"], "password");

    // A wrong password and an unknown name get the same answer, the name kept in the form.
    let mut stranger = Browser::new(&t);
    for (who, password) in [
        (name.as_str(), "not the passphrase"),
        ("mallory", "whatever it is"),
    ] {
        let page = stranger
            .post(
                "/console/sign-in",
                &[("username", who), ("password", password)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
        assert!(page
            .body
            .contains("That name and password were not accepted"));
        assert!(
            page.body.contains(&format!("value=\"{who}\"")),
            "{}",
            page.body
        );
        assert!(stranger.cookie.is_none());
    }
    let denied: Vec<Value> = t
        .events("category=auth")
        .await
        .into_iter()
        .filter(|e| e["action"]["verb"] == "console.sign_in" && e["decision"]["allowed"] == false)
        .collect();
    assert_eq!(denied.len(), 2);
    assert!(denied
        .iter()
        .all(|e| e["action"]["detail"]["failure"] == "wrong_password"));

    // Four more failures lock the name out, even for the right password; the token still works.
    for _ in 0..4 {
        let page = stranger
            .post(
                "/console/sign-in",
                &[("username", &name), ("password", "guess guess guess")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let locked = stranger.post("/console/sign-in", &form).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(stranger.cookie.is_none());
    let last = t.events("category=auth").await.pop().unwrap();
    assert_eq!(last["action"]["detail"]["failure"], "locked_out");
    assert_eq!(
        stranger.sign_in(&t.admin).await.status,
        StatusCode::SEE_OTHER
    );

    // A new password ends the session opened with the old one.
    let (s, _) = set_password(&t, "another console passphrase").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let after = b.get("/console/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location.as_deref(), Some(SIGN_IN_PATH));
    t.stop().await;
}

const SIGN_IN_PATH: &str = "/console/sign-in";

/// The text inside the element with `id` (tags stripped, whitespace collapsed).
fn inner_text(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let open = start + html[start..].find('>').unwrap() + 1;
    let mut depth = 1;
    let mut i = open;
    let bytes = html.as_bytes();
    while depth > 0 && i < html.len() {
        if bytes[i] == b'<' {
            if html[i..].starts_with("</") {
                depth -= 1;
            } else if !html[i..].starts_with("<input") && !html[i..].starts_with("<br") {
                depth += 1;
            }
        }
        i += 1;
    }
    let inner = &html[open..i.saturating_sub(1)];
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_detail_shows_its_events_and_takes_a_note() {
    let t = TestServer::start(Backend::Sqlite).await;
    // A revoked key used again: the dead_credential detector raises an alert at once.
    create_account(&t, "billing", "invoices").await;
    let key = t.key("billing").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let (s, body) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert!(s.is_success(), "{body}");
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alert = loop {
        let (_, alerts) = t.get("/v1/alerts", &t.admin).await;
        if let Some(a) = alerts.as_array().and_then(|a| a.first()).cloned() {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = alert["id"].as_str().unwrap();

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let list = b.get("/console/alerts").await;
    assert!(
        list.body
            .contains(&format!("href=\"/console/alerts/{id}\"")),
        "{}",
        list.body
    );
    let page = b.get(&format!("/console/alerts/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(inner_text(&page.body, "alert-status"), "open");
    assert!(
        page.body.contains("presented a revoked"),
        "the detector's rationale"
    );
    let events = inner_text(&page.body, "alert-events");
    assert!(events.contains("deny"), "{events}");
    let csv = b.get(&format!("/console/alerts/{id}?format=csv")).await;
    assert!(csv.body.starts_with("seq,time,category"), "{}", csv.body);
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);

    // Acknowledged from the detail page with a note: back on the page, on the ledger.
    let csrf = b.csrf().await;
    let done = b
        .post(
            &format!("/console/alerts/{id}/ack"),
            &[
                ("csrf", &csrf),
                ("back", "detail"),
                ("note", "rotating the consumer"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.location.unwrap(),
        format!("/console/alerts/{id}?done=ack")
    );
    let page = b.get(&format!("/console/alerts/{id}?done=ack")).await;
    assert_eq!(inner_text(&page.body, "alert-status"), "acknowledged");
    assert!(page.body.contains("Note: rotating the consumer"));
    let ack = t.events("category=alert").await;
    assert!(
        ack.iter().any(|e| e["action"]["verb"] == "alert.ack"),
        "{ack:?}"
    );

    // Views: acknowledged shows it, resolved does not; CSV has every column.
    let acked = b.get("/console/alerts?status=acknowledged").await;
    assert!(acked.body.contains(id));
    let resolved = b.get("/console/alerts?status=resolved").await;
    assert!(!resolved.body.contains(id));
    let csv = b.get("/console/alerts?status=all&format=csv").await;
    assert!(
        csv.body.starts_with("id,severity,status,detector"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains("rotating the consumer"));

    // Unknown ids are 404; a POST without the token is refused.
    assert_eq!(
        b.get("/console/alerts/not-an-id").await.status,
        StatusCode::NOT_FOUND
    );
    let refused = b
        .post(
            &format!("/console/alerts/{id}/resolve"),
            &[("back", "detail")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_feed_streams_new_rows_to_a_signed_in_session_only() {
    use futures_util::StreamExt;
    let t = TestServer::start(Backend::Sqlite).await;
    let mut b = Browser::new(&t);

    // Without a session the stream is not served.
    assert_eq!(
        b.get("/console/activity/stream").await.status,
        StatusCode::SEE_OTHER
    );
    b.sign_in(&t.admin).await;
    let page = b.get("/console/activity?category=admin").await;
    let (_, rest) = page
        .body
        .split_once("data-live=\"")
        .expect("the newest page is live");
    let live = rest.split('"').next().unwrap().replace("&#38;", "&");
    assert!(
        live.starts_with("/console/activity/stream?category=admin&after="),
        "{live}"
    );
    assert!(!b
        .get("/console/activity?before=5")
        .await
        .body
        .contains("data-live"));

    let response = b
        .http
        .get(format!("{}{live}", t.base))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    create_account(&t, "late-arrival", "streamed").await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("account/late-arrival") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("a row within the deadline")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains("late-arrival"))
        .unwrap();
    let row: Value = serde_json::from_str(data.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(row["verb"], "account.create");
    assert_eq!(row["category"], "admin");
    assert_eq!(row["allowed"], true);
    t.stop().await;
}

/// The table row holding `marker` (an id), up to its end.
fn row_of<'a>(body: &'a str, marker: &str) -> &'a str {
    let (_, rest) = body
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"));
    rest.split("</tr>").next().unwrap()
}

async fn a_service_account_is_created_from_the_accounts_page(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let page = b.get("/console/accounts").await.body;
    assert!(page.contains("id=\"new-account\""), "{page}");
    for id in [
        "new-name",
        "new-owner",
        "new-purpose",
        "new-labels",
        "new-expires-at",
    ] {
        assert!(page.contains(&format!("<label for=\"{id}\">")), "{id}");
    }
    let csrf = b.csrf().await;
    let fields = [
        ("name", "billing"),
        ("owner", "ada@example.com"),
        ("purpose", "Charges customers every night"),
        ("labels", "team: payments\r\nenv: prod"),
        ("expires_at", "2999-01-01"),
    ];

    // Without the token: refused, nothing created.
    let refused = b.post("/console/accounts", &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // What the API refuses: the form again, open, saying what is wrong, with what was typed.
    let mut bad = vec![("csrf", csrf.as_str())];
    bad.extend([
        ("name", "Billing Team"),
        ("owner", "ada@example.com"),
        ("purpose", "<b>charges</b> customers"),
        ("labels", "team: payments"),
        ("expires_at", ""),
    ]);
    let again = b.post("/console/accounts", &bad).await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        again.body
    );
    assert!(text_of(&again.body, "new-account-error").starts_with("name: "));
    assert!(again.body.contains("<details class=\"card create\" open>"));
    assert!(
        again.body.contains("value=\"Billing Team\""),
        "{}",
        again.body
    );
    assert!(again.body.contains("aria-invalid=\"true\""));
    assert!(!again.body.contains("<b>charges"), "{}", again.body);
    assert!(again.body.contains(">team: payments</textarea>"));
    bad[1] = ("name", "billing");
    bad[4] = ("labels", "no colon here");
    let again = b.post("/console/accounts", &bad).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&again.body, "new-account-error").starts_with("labels: "));
    assert!(again.body.contains("value=\"billing\""));
    let (_, accounts) = t.get("/v1/accounts", &t.admin).await;
    assert_eq!(accounts, json!([]));
    assert!(admin_events(&t, "account.create").await.is_empty());

    // Created: to its page, with the admin as creator and actor.
    let mut good = vec![("csrf", csrf.as_str())];
    good.extend(fields);
    let made = b.post("/console/accounts", &good).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(
        made.location.as_deref(),
        Some("/console/accounts/billing?done=created")
    );
    let (s, account) = t.get("/v1/accounts/billing", &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{account}");
    assert_eq!(
        account["labels"],
        json!({"team": "payments", "env": "prod"})
    );
    assert_eq!(account["created_by"], "admin");
    assert!(account["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("2999-01-01"));
    let created = admin_events(&t, "account.create").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].0, "admin");
    assert_eq!(created[0].1["owner"], "ada@example.com");
    let page = b.get("/console/accounts/billing?done=created").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(text_of(&page.body, "notice").starts_with("Account created."));

    // The name is taken now.
    let taken = b.post("/console/accounts", &good).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(text_of(&taken.body, "new-account-error").contains("already exists"));
    let list = b.get("/console/accounts").await.body;
    assert!(
        list.contains("<a href=\"/console/accounts/billing\">billing</a>"),
        "{list}"
    );
    t.stop().await;
}

async fn an_account_page_shows_its_keys_grants_use_and_events(backend: Backend) {
    let t = TestServer::start(backend).await;
    common::orders_target(&t).await;
    create_account(&t, "billing", "<i>charges</i> customers").await;
    let key = t.key("billing").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let used = common::grant_on_orders(&t, "billing", "GET /v1/orders/*").await;
    let unused = common::grant_on_orders(&t, "billing", "POST /v1/refunds").await;
    // Three weeks on, the grants are old enough for the recommendation to judge them.
    t.clock.advance(Duration::from_secs(21 * 86_400));
    for i in 0..3 {
        let path = format!("/v1/orders/{i}");
        assert_eq!(
            common::call_orders(&t, &key, reqwest::Method::GET, &path).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        common::call_orders(&t, &key, reqwest::Method::GET, "/v1/invoices/1").await,
        StatusCode::FORBIDDEN
    );

    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    // Use is counted in the background: wait until the page shows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = b.get("/console/accounts/billing").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if page.body.contains(": 3 in all") {
            break page.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("aria-current=\"page\">Accounts<"));
    assert_eq!(text_of(&page, "owner"), "ada@example.com");
    assert!(!page.contains("<i>charges"), "{page}");
    assert_eq!(text_of(&page, "account-status"), "active");
    text_of(&page, "risk").parse::<u32>().unwrap();

    // Keys, with a revoke button each.
    let row = row_of(&page, &format!("id=\"key-{key_id}\""));
    assert!(row.contains("state-active"), "{row}");
    assert!(row.contains(&format!(
        "id=\"revoke-key-{key_id}\" href=\"/console/accounts/billing/confirm?action=revoke-key&amp;key={key_id}\""
    )));
    assert!(page.contains("id=\"issue-key\""));
    assert!(page.contains("<label for=\"expires_in\">"));

    // Grants, used and unused in the window.
    let row = row_of(&page, &format!("id=\"grant-{used}\""));
    assert!(
        row.contains("use-used") && row.contains("<td class=\"num\">3</td>"),
        "{row}"
    );
    let row = row_of(&page, &format!("id=\"grant-{unused}\""));
    assert!(
        row.contains("use-unused") && row.contains("<td class=\"num\">0</td>"),
        "{row}"
    );

    // The chart: an image described in words, a bar per day.
    let chart = page.split_once("id=\"activity-chart\"").unwrap().1;
    let chart = chart.split("</svg>").next().unwrap();
    assert!(chart.contains("role=\"img\" aria-label=\"Allowed requests per day over the last 30 days: 3 in all, at most 3 in one day"), "{chart}");
    assert_eq!(chart.matches("<rect class=\"bar\"").count(), 30);

    // Recent events, newest first, and the way to all of them.
    let events = page.split_once("id=\"events\"").unwrap().1;
    let events = events.split("</table>").next().unwrap();
    assert_eq!(events.matches("<td>GET</td>").count(), 4, "{events}");
    assert_eq!(events.matches("decision-deny").count(), 1, "{events}");
    assert!(events.find("decision-deny").unwrap() < events.find("decision-allow").unwrap());
    assert!(page.contains("href=\"/console/activity?account=billing\""));

    // Findings and the recommendation, as a diff.
    assert!(page.contains("<code>unused_grant</code>"), "{page}");
    let diff = page.split_once("id=\"recommendation-diff\"").unwrap().1;
    assert!(diff.contains("- remove orders POST /v1/refunds"), "{diff}");
    assert!(diff.contains("  keep orders GET /v1/orders/*"), "{diff}");
    assert!(page.contains("id=\"action-apply-recommendation\" href=\"/console/accounts/billing/confirm?action=apply-recommendation\""));

    // Each table as CSV.
    let resp = fetch(&b, "/console/accounts/billing?format=csv&table=keys").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"warden-billing-keys.csv\""
    );
    let keys = resp.text().await.unwrap();
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(
        lines[0],
        "key_id,state,created_by,created_at,expires_at,last_used_at,revoked_at,superseded_by"
    );
    assert_eq!(lines.len(), 2, "{keys}");
    assert!(
        lines[1].starts_with(&format!("{key_id},active,admin,")),
        "{keys}"
    );
    let grants = b
        .get("/console/accounts/billing?format=csv&table=grants")
        .await
        .body;
    let lines: Vec<&str> = grants.lines().collect();
    assert_eq!(
        lines[0],
        "grant_id,target,rule,created_at,expires_at,used,uses,last_use"
    );
    assert!(lines.iter().any(
        |l| l.starts_with(&format!("{used},orders,GET /v1/orders/*,")) && l.contains(",used,3,")
    ));
    assert!(lines.iter().any(
        |l| l.starts_with(&format!("{unused},orders,POST /v1/refunds,"))
            && l.contains(",unused,0,")
    ));
    let events = b
        .get("/console/accounts/billing?format=csv&table=events")
        .await
        .body;
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines[0],
        "seq,time,category,actor,verb,resource,target,decision,status"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",orders,allow,"))
            .count(),
        3
    );
    assert_eq!(
        b.get("/console/accounts/billing?format=csv&table=secrets")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Applying the recommendation: a confirmation page, then the change, kept as a version.
    let confirm = b
        .get("/console/accounts/billing/confirm?action=apply-recommendation")
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("- remove orders POST /v1/refunds"));
    assert!(confirm
        .body
        .contains("action=\"/console/accounts/billing/recommendation/apply\""));
    assert!(confirm.body.contains("id=\"confirm\""));
    assert!(confirm
        .body
        .contains("href=\"/console/accounts/billing\" id=\"cancel\""));
    let apply = "/console/accounts/billing/recommendation/apply";
    assert_eq!(b.post(apply, &[]).await.status, StatusCode::FORBIDDEN);
    let (_, versions) = t.get("/v1/accounts/billing/grant-versions", &t.admin).await;
    assert_eq!(versions, json!([]));
    let csrf = b.csrf().await;
    let applied = b.post(apply, &[("csrf", &csrf)]).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    assert_eq!(
        applied.location.as_deref(),
        Some("/console/accounts/billing?done=applied&version=1")
    );
    let (_, grants) = t.get("/v1/grants?account=billing", &t.admin).await;
    let rules: Vec<&str> = grants
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["allow"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["GET /v1/orders/*"]);
    assert_eq!(
        common::call_orders(&t, &key, reqwest::Method::POST, "/v1/refunds").await,
        StatusCode::FORBIDDEN
    );
    let (_, versions) = t.get("/v1/accounts/billing/grant-versions", &t.admin).await;
    assert_eq!(versions[0]["version"], 1, "{versions}");
    assert_eq!(versions[0]["reason"], "recommendation");
    assert_eq!(versions[0]["created_by"], "admin");
    assert_eq!(versions[0]["grants"].as_array().unwrap().len(), 2);
    let applied = admin_events(&t, "grant.recommendation.apply").await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].0, "admin");
    let page = b
        .get("/console/accounts/billing?done=applied&version=1")
        .await
        .body;
    assert!(text_of(&page, "notice").contains("version 1"), "{page}");
    assert!(page.contains("id=\"nothing-to-apply\""));
    // Applying again changes nothing.
    let again = b.post(apply, &[("csrf", &csrf)]).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/console/accounts/billing?done=nothing-to-apply")
    );

    // An unknown account: a plain 404.
    let missing = fetch(&b, "/console/accounts/nobody").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        b.get("/console/accounts/nobody/confirm?action=disable")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    t.stop().await;
}

async fn account_actions_are_confirmed_and_recorded_with_the_admin_as_actor(backend: Backend) {
    let t = TestServer::start(backend).await;
    create_account(&t, "billing", "charges customers").await;
    let key = t.key("billing").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let mut b = Browser::new(&t);
    b.sign_in(&t.admin).await;
    let csrf = b.csrf().await;
    let base = "/console/accounts/billing";

    // Disabling: the button leads to a page that says what happens and holds the form.
    let page = b.get(base).await.body;
    assert!(page.contains(&format!(
        "id=\"action-disable\" href=\"{base}/confirm?action=disable\""
    )));
    assert!(page.contains(&format!(
        "id=\"action-rotate\" href=\"{base}/confirm?action=rotate\""
    )));
    let confirm = b.get(&format!("{base}/confirm?action=disable")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let body = &confirm.body;
    assert!(
        body.contains(&format!("action=\"{base}/disable\"")),
        "{body}"
    );
    assert!(body.contains("name=\"csrf\""));
    assert!(body.contains("<label for=\"reason\">Reason</label>"));
    assert!(body.contains("id=\"confirm\""));
    assert!(body.contains(&format!("href=\"{base}\" id=\"cancel\"")));
    assert!(body.contains("stops working at once"));
    assert_eq!(
        b.get(&format!("{base}/confirm?action=explode"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let disable = format!("{base}/disable");
    assert_eq!(
        b.post(&disable, &[("reason", "leaked")]).await.status,
        StatusCode::FORBIDDEN
    );
    let blank = b.post(&disable, &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&blank.body, "form-error").starts_with("reason: "));
    assert!(blank.body.contains("aria-invalid=\"true\""));
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK, "still enabled");
    let disabled = b
        .post(
            &disable,
            &[("csrf", &csrf), ("reason", "key leaked in CI logs")],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    assert_eq!(
        disabled.location.as_deref(),
        Some("/console/accounts/billing?done=disabled")
    );
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    let (_, account) = t.get("/v1/accounts/billing", &t.admin).await;
    assert_eq!(account["status"], "disabled");
    assert_eq!(account["disabled_reason"], "key leaked in CI logs");
    let events = admin_events(&t, "account.disable").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "admin");
    assert_eq!(events[0].1["reason"], "key leaked in CI logs");
    let page = b.get(&format!("{base}?done=disabled")).await.body;
    assert_eq!(text_of(&page, "account-status"), "disabled");
    assert_eq!(text_of(&page, "disabled-reason"), "(key leaked in CI logs)");
    assert!(!page.contains("id=\"action-disable\""));

    // Enabling is one step.
    let enable = format!("{base}/enable");
    assert!(page.contains(&format!("action=\"{enable}\"")));
    assert!(page.contains("id=\"action-enable\""));
    assert_eq!(b.post(&enable, &[]).await.status, StatusCode::FORBIDDEN);
    let enabled = b.post(&enable, &[("csrf", &csrf)]).await;
    assert_eq!(
        enabled.location.as_deref(),
        Some("/console/accounts/billing?done=enabled")
    );
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    assert_eq!(admin_events(&t, "account.enable").await[0].0, "admin");

    // A new key: the POST hands it to the page that shows its secret, once, and it works.
    let issue = format!("{base}/keys");
    assert_eq!(b.post(&issue, &[]).await.status, StatusCode::FORBIDDEN);
    let invalid = b
        .post(&issue, &[("csrf", &csrf), ("expires_in", "soon")])
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&invalid.body, "form-error").starts_with("expires_in: "));
    assert!(invalid.body.contains("value=\"soon\""));
    let posted = b
        .post(&issue, &[("csrf", &csrf), ("expires_in", "30d")])
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let shown_at = posted.location.unwrap();
    assert_eq!(shown_at, format!("{base}/new-key"));
    let issued = b.get(&shown_at).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let secret = text_of(&issued.body, "new-key-secret").to_owned();
    assert!(secret.starts_with("wdn_"), "{secret}");
    assert!(issued.body.contains("it will not be shown again"));
    assert_eq!(t.whoami(&secret).await.0, StatusCode::OK);
    let issued_id = secret.split('_').nth(1).unwrap().to_owned();
    assert_eq!(text_of(&issued.body, "new-key-id"), issued_id);
    // Reloading shows it no more (and issues nothing): back to the account, with a notice.
    let again = b.get(&shown_at).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location.unwrap(), format!("{base}?done=key-shown"));
    let page = b.get(base).await.body;
    assert!(page.contains(&format!("id=\"key-{issued_id}\"")));
    assert!(!page.contains(&secret), "the secret is never shown again");
    let (_, keys) = t.get("/v1/accounts/billing/keys", &t.admin).await;
    assert_eq!(
        keys.as_array().unwrap().len(),
        2,
        "the invalid form made none"
    );
    assert_eq!(
        admin_events(&t, "key.create").await.last().unwrap().0,
        "admin"
    );

    // Revoking a key: confirmed first; then it fails at the API.
    let confirm = b
        .get(&format!("{base}/confirm?action=revoke-key&key={key_id}"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    let revoke = format!("{base}/keys/{key_id}/revoke");
    assert!(confirm.body.contains(&format!("action=\"{revoke}\"")));
    assert!(confirm.body.contains("cannot be undone"));
    assert_eq!(
        b.get(&format!("{base}/confirm?action=revoke-key&key=nosuchkey"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.post(&revoke, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK);
    let revoked = b.post(&revoke, &[("csrf", &csrf)]).await;
    assert_eq!(
        revoked.location.as_deref(),
        Some("/console/accounts/billing?done=revoked")
    );
    assert_eq!(t.whoami(&key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.whoami(&secret).await.0, StatusCode::OK);
    let events = admin_events(&t, "key.revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "admin");
    let page = b.get(base).await.body;
    assert!(row_of(&page, &format!("id=\"key-{key_id}\"")).contains("state-revoked"));
    assert!(!page.contains(&format!("id=\"revoke-key-{key_id}\"")));

    // Rotating: confirmed with its grace period; the new secret once; with no grace the
    // previous key stops at once.
    let confirm = b.get(&format!("{base}/confirm?action=rotate")).await.body;
    assert!(
        confirm.contains("name=\"grace\" type=\"text\" value=\"24h\""),
        "{confirm}"
    );
    assert!(
        confirm.contains(&issued_id),
        "names the keys it retires: {confirm}"
    );
    let rotate = format!("{base}/keys/rotate");
    assert_eq!(
        b.post(&rotate, &[("grace", "0s")]).await.status,
        StatusCode::FORBIDDEN
    );
    let rotated = b
        .post(
            &rotate,
            &[("csrf", &csrf), ("grace", "0s"), ("expires_in", "")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let rotated = b.get(&rotated.location.unwrap()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let newest = text_of(&rotated.body, "new-key-secret").to_owned();
    assert!(text_of(&rotated.body, "superseded").starts_with(&issued_id));
    assert_eq!(t.whoami(&newest).await.0, StatusCode::OK);
    assert_eq!(t.whoami(&secret).await.0, StatusCode::UNAUTHORIZED);
    let events = admin_events(&t, "key.rotate").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "admin");

    let csv = b.get(&format!("{base}?format=csv&table=keys")).await.body;
    let states: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(states.len(), 3, "{csv}");
    for state in ["active", "expired", "revoked"] {
        assert!(states.contains(&state), "{state} in {csv}");
    }
    t.stop().await;
}
