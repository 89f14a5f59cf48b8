//! The overview: accounts by status, open alerts by severity, the ledger's size and latest
//! checkpoint, and a bar chart of ledger events per hour over the last 24 hours.
//!
//! The chart costs 25 indexed lookups (the first ledger position at or after each hour
//! boundary), not a scan of the day's events, so it stays cheap on a large ledger.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use warden_core::{AccountStatus, AlertStatus, Severity, Timestamp};
use warden_store::AlertQuery;

use super::{html, when, Console, Failure, Layout, SignedIn};

const HOUR: Duration = Duration::from_secs(3600);
/// The most open alerts counted (the overview says "at least" beyond it).
const ALERT_LIMIT: u32 = 1000;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    layout: Layout,
    accounts: Vec<(&'static str, usize)>,
    accounts_total: usize,
    alerts: Vec<(&'static str, usize)>,
    alerts_open: usize,
    alerts_acknowledged: usize,
    alerts_capped: bool,
    ledger_size: u64,
    checkpoint: Option<(u64, String)>,
    chart: Chart,
}

/// An inline SVG bar chart: one bar per hour.
struct Chart {
    bars: Vec<Bar>,
    total: u64,
    peak: u64,
    description: String,
}

struct Bar {
    x: u32,
    y: u32,
    height: u32,
    label: String,
    count: u64,
    tick: bool,
}

/// Chart geometry, in SVG units.
const BAR_WIDTH: u32 = 20;
const CHART_HEIGHT: u32 = 100;

/// `GET /console/`.
pub async fn page(State(console): State<Console>, who: SignedIn) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();

    let all = app.store.list_accounts().await?;
    let statuses = [
        AccountStatus::Active,
        AccountStatus::Disabled,
        AccountStatus::Expired,
    ];
    let accounts = statuses
        .iter()
        .map(|s| {
            (
                s.as_str(),
                all.iter().filter(|a| a.status(now) == *s).count(),
            )
        })
        .collect();

    let open = app
        .store
        .alerts(&AlertQuery {
            status: Some(AlertStatus::Open),
            account: None,
            limit: ALERT_LIMIT,
        })
        .await?;
    let acknowledged = app
        .store
        .alerts(&AlertQuery {
            status: Some(AlertStatus::Acknowledged),
            account: None,
            limit: ALERT_LIMIT,
        })
        .await?;
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
    let alerts = severities
        .iter()
        .map(|s| (s.as_str(), open.iter().filter(|a| a.severity == *s).count()))
        .collect();

    let last_seq = app.store.last_seq().await?;
    let checkpoint = app
        .store
        .latest_checkpoint()
        .await?
        .map(|c| (c.size, when(c.created_at)));
    let chart = chart(&console, now, last_seq).await?;

    let page = OverviewPage {
        layout: who.layout("overview"),
        accounts,
        accounts_total: all.len(),
        alerts,
        alerts_open: open.len(),
        alerts_acknowledged: acknowledged.len(),
        alerts_capped: open.len() >= ALERT_LIMIT as usize
            || acknowledged.len() >= ALERT_LIMIT as usize,
        ledger_size: last_seq.map_or(0, |s| s + 1),
        checkpoint,
        chart,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// Ledger events per hour for the 24 hours before `now` (the last bar is the current hour).
async fn chart(console: &Console, now: Timestamp, last_seq: Option<u64>) -> Result<Chart, Failure> {
    let end = last_seq.map_or(0, |s| s + 1);
    let hour_micros = 3_600_000_000;
    let this_hour =
        Timestamp::from_micros(now.as_micros() - now.as_micros().rem_euclid(hour_micros));
    let starts: Vec<Timestamp> = (0..24u32)
        .map(|i| this_hour.saturating_sub(HOUR * (23 - i)))
        .collect();
    let mut bounds = Vec::with_capacity(25);
    for start in &starts {
        bounds.push(
            console
                .app
                .store
                .first_seq_since(*start)
                .await?
                .unwrap_or(end),
        );
    }
    bounds.push(end);
    let counts: Vec<u64> = bounds
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    let peak = counts.iter().copied().max().unwrap_or(0);
    let total = counts.iter().sum();
    let bars = starts
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (start, &count))| {
            // Scaled to the busiest hour; at least one unit for a non-empty hour, so it shows.
            let height = (count * u64::from(CHART_HEIGHT))
                .checked_div(peak)
                .map_or(0, |h| {
                    u32::try_from(h)
                        .unwrap_or(CHART_HEIGHT)
                        .max(u32::from(count > 0))
                });
            let label = when(*start);
            let i = u32::try_from(i).unwrap_or(0);
            Bar {
                x: i * BAR_WIDTH + 2,
                y: CHART_HEIGHT - height,
                height,
                label: label.get(11..16).unwrap_or(&label).to_owned(),
                count,
                tick: i % 6 == 0,
            }
        })
        .collect();
    let description = format!(
        "Ledger events per hour over the last 24 hours: {total} in all, at most {peak} in one hour."
    );
    Ok(Chart {
        bars,
        total,
        peak,
        description,
    })
}
