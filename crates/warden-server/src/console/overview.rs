//! The overview: accounts by status and the riskiest of them (by `warden-access`'s analysis, as
//! the accounts table ranks them), open alerts by severity, the ledger's size, latest
//! checkpoint and latest verification, whether each gateway accepts connections, and bar charts
//! of ledger events per minute over the last hour and per hour over the last 24 hours.
//!
//! A chart of N bars costs N + 1 indexed lookups (the first ledger position at or after each
//! boundary), not a scan of the events, so it stays cheap on a large ledger. A gateway is "up"
//! when a TCP connection to its listener succeeds within half a second: the same thing a client
//! would find.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use warden_core::{AccountStatus, AlertStatus, Severity, Timestamp};
use warden_store::AlertQuery;

use super::ledger::RunView;
use super::{html, when, Console, Failure, Layout, SignedIn};
use crate::api::access::{self, Loaded};

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
/// How long a gateway may take to accept a connection before the overview calls it down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How many of the riskiest accounts the overview names.
const RISKIEST: usize = 5;
/// The most open alerts counted (the overview says "at least" beyond it).
const ALERT_LIMIT: u32 = 1000;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    layout: Layout,
    accounts: Vec<(&'static str, usize)>,
    accounts_total: usize,
    /// The riskiest accounts (risk above zero), highest first, with their risk.
    riskiest: Vec<(String, u32)>,
    alerts: Vec<(&'static str, usize)>,
    alerts_open: usize,
    alerts_acknowledged: usize,
    alerts_capped: bool,
    ledger_size: u64,
    checkpoint: Option<(u64, String)>,
    /// The latest verification of the ledger since the server started.
    verification: Option<RunView>,
    gateways: Vec<Gateway>,
    /// (element id, heading, chart).
    charts: Vec<(&'static str, &'static str, Chart)>,
}

/// One gateway's line.
struct Gateway {
    name: &'static str,
    addr: String,
    up: bool,
}

/// An inline SVG bar chart of ledger events per period.
struct Chart {
    bars: Vec<Bar>,
    total: u64,
    peak: u64,
    description: String,
}

struct Bar {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    label: String,
    count: u64,
    tick: bool,
}

/// Chart geometry, in SVG units: 480 wide, bars 100 high at most.
const CHART_WIDTH: u32 = 480;
const CHART_HEIGHT: u32 = 100;

/// `GET /console/`.
pub async fn page(State(console): State<Console>, who: SignedIn) -> Result<Response, Failure> {
    let app = &console.app;
    let now = app.clock.now();

    let options = access::default_options(app);
    let loaded = Loaded::load(app, None, &options).await?;
    let all = &loaded.accounts;
    let mut riskiest: Vec<(String, u32)> =
        warden_access::analyze(&loaded.population(), now, &options)
            .accounts
            .into_iter()
            .filter(|a| a.risk > 0)
            .map(|a| (a.account, a.risk))
            .collect();
    riskiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    riskiest.truncate(RISKIEST);
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
    let per_minute = chart(&console, now, last_seq, MINUTE, 60).await?;
    let per_hour = chart(&console, now, last_seq, HOUR, 24).await?;
    let gateways = vec![
        Gateway {
            name: "HTTP",
            addr: app.gateways.http.to_string(),
            up: accepts(app.gateways.http).await,
        },
        Gateway {
            name: "PostgreSQL",
            addr: app.gateways.postgres.to_string(),
            up: accepts(app.gateways.postgres).await,
        },
    ];

    let page = OverviewPage {
        layout: who.layout("overview"),
        accounts,
        accounts_total: all.len(),
        riskiest,
        alerts,
        alerts_open: open.len(),
        alerts_acknowledged: acknowledged.len(),
        alerts_capped: open.len() >= ALERT_LIMIT as usize
            || acknowledged.len() >= ALERT_LIMIT as usize,
        ledger_size: last_seq.map_or(0, |s| s + 1),
        checkpoint,
        verification: console.verifications.latest().map(RunView::from),
        gateways,
        charts: vec![
            ("per-minute", "Events per minute, last hour", per_minute),
            ("per-hour", "Events per hour, last 24 hours", per_hour),
        ],
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// Whether something accepts TCP connections at `addr` (a wildcard address is probed on
/// loopback).
async fn accepts(addr: std::net::SocketAddr) -> bool {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Ledger events per `step` for the `bars` steps before `now` (the last bar is the current one).
async fn chart(
    console: &Console,
    now: Timestamp,
    last_seq: Option<u64>,
    step: Duration,
    bars: u32,
) -> Result<Chart, Failure> {
    let end = last_seq.map_or(0, |s| s + 1);
    let step_micros = i64::try_from(step.as_micros()).unwrap_or(i64::MAX);
    let this_step =
        Timestamp::from_micros(now.as_micros() - now.as_micros().rem_euclid(step_micros));
    let starts: Vec<Timestamp> = (0..bars)
        .map(|i| this_step.saturating_sub(step * (bars - 1 - i)))
        .collect();
    let mut bounds = Vec::with_capacity(starts.len() + 1);
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
    let slot = CHART_WIDTH / bars.max(1);
    let bars_drawn = starts
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (start, &count))| {
            // Scaled to the busiest period; at least one unit for a non-empty one, so it shows.
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
                x: i * slot + 2,
                y: CHART_HEIGHT - height,
                width: slot.saturating_sub(4).max(1),
                height,
                label: label.get(11..16).unwrap_or(&label).to_owned(),
                count,
                // Four labels along the axis.
                tick: i % (bars / 4).max(1) == 0,
            }
        })
        .collect();
    let period = if step == MINUTE { "minute" } else { "hour" };
    let span = if step == MINUTE {
        "the last hour"
    } else {
        "the last 24 hours"
    };
    let description = format!(
        "Ledger events per {period} over {span}: {total} in all, at most {peak} in one {period}."
    );
    Ok(Chart {
        bars: bars_drawn,
        total,
        peak,
        description,
    })
}
