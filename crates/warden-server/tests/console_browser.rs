//! The web console end to end in headless Chromium, driven over WebDriver (Debian's
//! `chromium` and `chromedriver`, through `thirtyfour`) the way a person uses it: signing in,
//! creating an account and its key, watching a gateway request arrive live in the activity feed,
//! acknowledging an alert, deciding a review item, downloading a report, verifying the ledger,
//! and being refused without a session or without the form's CSRF token.
//!
//! Every page visited is saved as a screenshot under `target/console-screenshots/` (or
//! `$WARDEN_SCREENSHOTS`), at laptop and phone widths, so the run leaves pictures to look at.

// SQLite, the embedded default: the console reads the store through the same trait either way,
// and tests/console.rs covers every page on both backends.
#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{call_orders, grant_on_orders, orders_target, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use thirtyfour::prelude::*;

/// How long any one thing may take to appear before the test gives up (generous: CI machines
/// are slow and shared; nothing here measures speed).
const PATIENCE: Duration = Duration::from_secs(20);

/// chromedriver and the browser session it drives; both end when this is dropped or closed.
struct Browser {
    chromedriver: Child,
    driver: Option<WebDriver>,
    shots: PathBuf,
    downloads: tempfile::TempDir,
    base: String,
}

impl Browser {
    async fn start(base: &str) -> Self {
        let port = free_port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (.ci/run installs it: apt-get install chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let downloads = tempfile::tempdir().unwrap();
        let mut caps = DesiredCapabilities::chrome();
        if Path::new("/usr/bin/chromium").exists() {
            caps.set_binary("/usr/bin/chromium").unwrap();
        }
        // The flags a closed network and a root user need; see the machine notes.
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ] {
            caps.add_arg(arg).unwrap();
        }
        let prefs = json!({
            "download.default_directory": downloads.path(),
            "download.prompt_for_download": false,
        });
        caps.add_experimental_option("prefs", prefs).unwrap();
        let driver = WebDriver::new(&url, caps)
            .await
            .expect("a Chromium session");
        let shots = std::env::var_os("WARDEN_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
            });
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            chromedriver,
            driver: Some(driver),
            shots,
            downloads,
            base: base.to_owned(),
        }
    }

    fn d(&self) -> &WebDriver {
        self.driver.as_ref().unwrap()
    }

    async fn go(&self, path: &str) {
        self.d().goto(format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        let url = self.d().current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn id(&self, id: &str) -> WebElement {
        self.d()
            .query(By::Id(id))
            .wait(PATIENCE, Duration::from_millis(100))
            .first()
            .await
            .unwrap_or_else(|e| panic!("no #{id} on {}: {e}", self.base))
    }

    async fn css(&self, selector: &str) -> WebElement {
        self.d()
            .query(By::Css(selector))
            .wait(PATIENCE, Duration::from_millis(100))
            .first()
            .await
            .unwrap_or_else(|e| panic!("nothing matches {selector}: {e}"))
    }

    async fn fill(&self, id: &str, text: &str) {
        let field = self.id(id).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("#{id} cannot be cleared: {e}"));
        field.send_keys(text).await.unwrap();
    }

    /// The text of the element with `id`, looked for again if a navigation made it stale.
    async fn text(&self, id: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match self.id(id).await.text().await {
                Ok(text) => return text,
                Err(e) => assert!(tokio::time::Instant::now() < deadline, "#{id}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's visible text contains `needle`.
    async fn wait_for_text(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            // Mid-navigation there may be no body yet, or it may go stale: look again.
            if let Ok(body) = self.d().find(By::Tag("body")).await {
                if body.text().await.is_ok_and(|t| t.contains(needle)) {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{needle}` never appeared on {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the page as `NAME.png` at laptop width and `NAME-phone.png` at phone width, after
    /// checking the basics of accessibility on it.
    async fn shoot(&self, name: &str) {
        self.assert_accessible(name).await;
        let d = self.d();
        d.screenshot(&self.shots.join(format!("{name}.png")))
            .await
            .unwrap();
        d.set_window_rect(0, 0, 390, 844).await.unwrap();
        d.screenshot(&self.shots.join(format!("{name}-phone.png")))
            .await
            .unwrap();
        d.set_window_rect(0, 0, 1280, 900).await.unwrap();
    }

    /// The page has a language and a main heading, every form control has an accessible name
    /// (a label, `aria-label` or `aria-labelledby`; a button its text), and every chart a name.
    async fn assert_accessible(&self, page: &str) {
        const CHECK: &str = r#"
            const bad = [];
            if (!document.documentElement.lang) bad.push('html without lang');
            if (!document.querySelector('h1')) bad.push('no h1');
            for (const el of document.querySelectorAll(
                    'input:not([type=hidden]), select, textarea, button')) {
                const named = (el.labels && el.labels.length > 0)
                    || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
                    || (el.tagName === 'BUTTON' && el.textContent.trim());
                if (!named) bad.push(el.outerHTML.slice(0, 160));
            }
            for (const svg of document.querySelectorAll('svg')) {
                if (svg.getAttribute('role') !== 'img'
                    || !(svg.getAttribute('aria-label') || svg.getAttribute('aria-labelledby'))) {
                    bad.push('chart without a name: ' + svg.outerHTML.slice(0, 80));
                }
            }
            return bad;
        "#;
        let found = self.d().execute(CHECK, Vec::new()).await.unwrap();
        let problems = found.json().as_array().expect("the check returns a list");
        assert!(problems.is_empty(), "{page}: {problems:?}");
    }

    /// The first file that lands in the download directory, once complete.
    async fn downloaded(&self) -> PathBuf {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let done = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    p.extension()
                        .is_some_and(|x| x != "crdownload" && x != "tmp")
                });
            if let Some(p) = done {
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no download arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(mut self) {
        if let Some(d) = self.driver.take() {
            d.quit().await.unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_warden_from_the_console_in_chromium() {
    let t = TestServer::start(Backend::Sqlite).await;
    orders_target(&t).await;
    let b = Browser::start(&t.base).await;

    // Signed out, every page leads to the sign-in form; a wrong token is refused there.
    b.go("/console/accounts").await;
    assert_eq!(b.path().await, "/console/sign-in");
    b.shoot("01-sign-in").await;
    b.fill("token", "wda_nothing_real").await;
    b.id("sign-in-token").await.click().await.unwrap();
    assert!(b.text("signin-error").await.contains("not accepted"));

    // Signed in with the admin token, from the keyboard alone: the overview.
    b.fill("token", &t.admin).await;
    b.id("token").await.send_keys(Key::Enter).await.unwrap();
    b.wait_for_text("Gateways").await;
    assert_eq!(b.path().await, "/console/");
    b.shoot("02-overview").await;

    // Create a service account from the Accounts page, then issue its key, shown once.
    b.go("/console/accounts").await;
    b.css("details.create summary").await.click().await.unwrap();
    b.fill("new-name", "billing").await;
    b.fill("new-owner", "ada@example.com").await;
    b.fill("new-purpose", "Sends the monthly invoices").await;
    b.id("create-account").await.click().await.unwrap();
    b.wait_for_text("Sends the monthly invoices").await;
    assert_eq!(
        b.path().await.split('?').next().unwrap(),
        "/console/accounts/billing"
    );
    b.id("action-issue-key").await.click().await.unwrap();
    let key = b.text("new-key-secret").await;
    assert!(key.starts_with("wdn_"), "{key}");
    b.shoot("03-new-key").await;
    assert_eq!(t.whoami(&key).await.0, StatusCode::OK, "the key works");
    grant_on_orders(&t, "billing", "GET /v1/orders/*").await;

    // The activity feed is live: a gateway request appears without a reload.
    b.go("/console/activity").await;
    b.wait_for_text("Live: new events appear at the top").await;
    let status = call_orders(&t, &key, reqwest::Method::GET, "/v1/orders/42").await;
    assert_eq!(status, StatusCode::OK);
    b.wait_for_text("/v1/orders/42").await;
    let fresh = b.css("#events tbody tr.fresh").await.text().await.unwrap();
    assert!(fresh.contains("billing"), "{fresh}");
    b.shoot("04-activity-live").await;

    // The account's page shows the key, the grant in use and the request.
    b.go("/console/accounts/billing").await;
    b.wait_for_text("/v1/orders/42").await;
    b.shoot("05-account").await;

    // Revoke the key behind its confirmation; using it again raises an alert.
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    b.id(&format!("revoke-key-{key_id}"))
        .await
        .click()
        .await
        .unwrap();
    b.shoot("06-confirm-revoke").await;
    b.id("confirm").await.click().await.unwrap();
    b.wait_for_text("revoked").await;
    let status = call_orders(&t, &key, reqwest::Method::GET, "/v1/orders/42").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Acknowledge that alert from the alerts list, then look at its detail.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        b.go("/console/alerts").await;
        if b.d().find(By::Css("#alerts button")).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert was raised"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.shoot("07-alerts").await;
    b.css("#alerts button").await.click().await.unwrap();
    b.wait_for_text("Alert acknowledged.").await;
    assert!(b
        .css("#alerts tbody")
        .await
        .text()
        .await
        .unwrap()
        .contains("acknowledged by admin"));
    b.css("#alerts tbody a[href^='/console/alerts/']")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(b.text("alert-status").await, "acknowledged");
    b.shoot("08-alert-detail").await;

    // Start an access review and decide billing's item.
    b.go("/console/reviews").await;
    b.fill("review-name", "2026-Q4").await;
    b.id("start-review-submit").await.click().await.unwrap();
    b.wait_for_text("2026-Q4").await;
    let decision = b.id("decision-billing").await;
    decision.send_keys("Keep").await.unwrap();
    b.fill("justification-billing", "Invoices still go out monthly")
        .await;
    b.id("decide-submit-billing").await.click().await.unwrap();
    b.wait_for_text("Invoices still go out monthly").await;
    b.shoot("09-review").await;
    let (_, review) = t.get("/v1/reviews/2026-Q4", &t.admin).await;
    let item = review["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["account"] == "billing")
        .unwrap()
        .clone();
    assert_eq!(item["decision"], "keep", "{review}");
    assert_eq!(item["decided_by"], "admin", "{review}");

    // Download a report.
    b.go("/console/reports").await;
    b.shoot("10-reports").await;
    b.id("format").await.send_keys("JSON").await.unwrap();
    b.id("report-download").await.click().await.unwrap();
    let report = b.downloaded().await;
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("the report is JSON");
    assert!(parsed.is_object(), "{parsed}");

    // Verify the ledger from its page.
    b.go("/console/ledger").await;
    b.shoot("11-ledger").await;
    b.id("verify-ledger").await.click().await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let verdict = loop {
        // The page refreshes itself while running: an element found may go stale at once.
        if let Ok(result) = b.d().find(By::Id("verify-result")).await {
            if let Ok(text) = result.text().await {
                if !text.starts_with("Running") {
                    break text;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "verification never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(verdict.to_lowercase().contains("ok"), "{verdict}");
    b.shoot("12-verification").await;

    // The overview now has something on every card, the verification included.
    b.go("/console/").await;
    assert!(b.text("ledger-verified").await.starts_with("Verified"));
    assert!(b.text("riskiest").await.contains("billing"));
    b.shoot("13-overview-after").await;
    b.go("/console/accounts").await;
    b.shoot("14-accounts").await;

    // A form whose CSRF token was tampered with is refused, and nothing changes.
    b.go("/console/alerts?status=all").await;
    b.d()
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged');",
            Vec::new(),
        )
        .await
        .unwrap();
    b.css("#alerts button").await.click().await.unwrap();
    b.wait_for_text("Forbidden").await;
    let (_, alerts) = t.get("/v1/alerts", &t.admin).await;
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] != "resolved"),
        "{alerts}"
    );

    // Without the session cookie, pages send the browser back to sign in.
    b.d().delete_all_cookies().await.unwrap();
    b.go("/console/accounts/billing").await;
    assert_eq!(b.path().await, "/console/sign-in");

    b.close().await;
    t.stop().await;
}
