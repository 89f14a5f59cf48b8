//! `warden demo`: Warden with something to look at, in one command. It starts a server on a fresh
//! temporary data directory, a built-in sample HTTP API behind it ([`upstream`]), a scratch
//! database on the local PostgreSQL when one answers ([`scratch`]), sets up an admin, service
//! accounts, targets, grants and keys through the REST API ([`setup`]), and keeps service
//! accounts calling through both gateways ([`traffic`]) until Ctrl-C.
//!
//! Nothing is faked: the server is started exactly as `warden serve` starts it, the setup is an
//! admin client of its REST API like the CLI, and the traffic goes through the real gateways with
//! real keys and tokens, so every event, alert and finding in the console came from the same code
//! paths production uses. Only the detection settings are tuned for a demo: baselines learn for
//! [`LEARNING`] instead of a week, and the large-result floors are low enough for the sample data.
//!
//! Why each suspicious behaviour is in the script (see [`traffic`]), and what it shows:
//!
//! - **A leaked key used after revocation** (`dead_credential`, critical): `partner-feed`'s key
//!   is replaced and revoked, then the old one is presented again. Revocation is immediate, and a
//!   credential that should be gone turning up is the loudest signal Warden has.
//! - **A burst of denials** (`denied_burst`): `ci-deployer` tries to delete orders it was never
//!   granted. Deny by default, every denial recorded, and many of them at once is probing or a
//!   broken deployment.
//! - **Guessed secrets** (`auth_failure_burst`): wrong secrets presented with `orders-sync`'s key
//!   id. Failed logins are events too, counted per key id.
//! - **New behaviour after learning** (`new_action`, `new_target`): `reporting`'s wildcard grant
//!   lets it read customers, which it never did; it also reaches targets it never used. The
//!   grant allowed it, so only the baseline notices (and the analysis flags the wildcard).
//! - **A sensitive table read** (`sensitive_action`, with PostgreSQL): `billing-etl`'s broad
//!   `read:public.*` grant lets it read `public.customers`, listed in `sensitive_tables`.
//! - **A large result** (`large_result`): `billing-etl`, which always fetches five orders, pulls
//!   thousands at once, over HTTP (bytes) and SQL (rows): what bulk exfiltration looks like.
//!
//! The setup also leaves findings for the accountability analysis: an account whose owner is a
//! placeholder, one whose owner is not among the people on record, wildcard grants; an account
//! that never calls (flagged once it is older than the analysis' `protect_new`, 14 days); and an
//! access review with two decisions, started once a checkpoint is signed.

mod scratch;
mod setup;
mod traffic;
mod upstream;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::sync::watch;
use warden_server::{Config, Running};

/// How long detection baselines learn before novelty is reported (production default: 7 days).
pub const LEARNING: Duration = Duration::from_secs(20);
/// How often a ledger checkpoint is signed (production default: 10 seconds or 1000 entries).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Options of `warden demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Listen on 127.0.0.1: the API and console on N, the HTTP gateway on N+1, the PostgreSQL
    /// gateway on N+2.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=65533),
        conflicts_with_all = ["api_addr", "gateway_addr", "pg_addr"]
    )]
    pub port_base: Option<u16>,
    /// API and console address (port 0: any free port) [default: 127.0.0.1:8470 if free, else
    /// a free port]
    #[arg(long, value_name = "HOST:PORT")]
    pub api_addr: Option<SocketAddr>,
    /// HTTP gateway address [default: 127.0.0.1:8471 if free, else a free port]
    #[arg(long, value_name = "HOST:PORT")]
    pub gateway_addr: Option<SocketAddr>,
    /// PostgreSQL gateway address [default: 127.0.0.1:15432 if free, else a free port]
    #[arg(long, value_name = "HOST:PORT")]
    pub pg_addr: Option<SocketAddr>,
    /// The PostgreSQL server to create the scratch database on, as a URL or `key=value` pairs;
    /// the demo fails if it cannot be used [default: host=127.0.0.1 port=5432 user=postgres
    /// dbname=postgres, skipped with a note if it does not answer]
    #[arg(long, value_name = "URL", conflicts_with = "no_postgres")]
    pub postgres: Option<String>,
    /// HTTP only: do not look for PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
    /// Keep the data directory on exit and print its path (to browse it again with
    /// `warden serve --data-dir PATH`, or check it with `warden audit verify`).
    #[arg(long)]
    pub keep: bool,
    /// Stop by itself after this long (e.g. 30s, 5m) instead of waiting for Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// Runs the demo until Ctrl-C (or `--duration`), then cleans up: the server stops, the scratch
/// database is dropped and the data directory removed, whatever failed on the way.
pub async fn run(args: DemoArgs) -> Result<()> {
    // Listening before anything is created, so an early Ctrl-C still cleans up.
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::commands::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let addrs = Addresses::choose(&args);
    let dir = tempfile::Builder::new()
        .prefix("warden-demo-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let upstream = upstream::start().await?;
    let db = match (&args.postgres, args.no_postgres) {
        (_, true) => None,
        (Some(conninfo), false) => Some(scratch::ScratchDb::create(conninfo).await?),
        (None, false) => match scratch::ScratchDb::create(scratch::DEFAULT_SERVER).await {
            Ok(db) => Some(db),
            Err(e) => {
                println!("PostgreSQL: not used ({e:#}); carrying on with HTTP only.");
                None
            }
        },
    };

    let result = match warden_server::server::start(
        &config(dir.path(), &addrs),
        Arc::new(warden_core::SystemClock),
    )
    .await
    {
        Ok(running) => {
            let shown = show(
                &running,
                &addrs,
                &upstream,
                db.as_ref(),
                &args,
                dir.path(),
                stop,
            )
            .await;
            running.stop().await;
            shown
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot start Warden")),
    };

    println!();
    if let Some(db) = db {
        match db.drop_database().await {
            Ok(()) => println!("Dropped the scratch database {}.", db.name),
            Err(e) => eprintln!(
                "warden demo: could not drop the scratch database {} ({e:#}); drop it by hand",
                db.name
            ),
        }
    }
    if args.keep {
        let path = dir.keep();
        println!("Kept the data directory {}.", path.display());
        println!(
            "Browse it again: warden serve --data-dir {}",
            path.display()
        );
    } else {
        dir.close()
            .context("cannot remove the temporary data directory")?;
        println!("Removed the data directory.");
    }
    result
}

/// Sets up, prints what to open, and keeps the traffic going until told to stop.
async fn show(
    running: &Running,
    addrs: &Addresses,
    upstream: &upstream::Upstream,
    db: Option<&scratch::ScratchDb>,
    args: &DemoArgs,
    dir: &Path,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let api = format!("http://{}", running.api_addr);
    let bootstrap = running
        .new_admin_token
        .as_deref()
        .context("the fresh data directory has no bootstrap admin token")?;
    let bootstrap = std::fs::read_to_string(bootstrap)
        .with_context(|| format!("cannot read {}", bootstrap.display()))?;
    let cast = tokio::select! {
        cast = setup::run(&api, bootstrap.trim(), upstream, db) => cast?,
        _ = stop.wait_for(|s| *s) => bail!("interrupted during setup"),
    };

    let gateway = format!("http://{}", running.http_addr);
    let example = cast.key("orders-sync")?;
    println!();
    println!("Warden demo is running.");
    println!();
    println!("  Console:        {api}/console/");
    println!(
        "  Sign-in token:  {}  (admin `{}`)",
        cast.admin_token,
        setup::ADMIN
    );
    println!("  HTTP gateway:   {gateway}/<target>/<path>");
    match db {
        Some(db) => {
            println!(
                "  PG gateway:     {}  (user=<account> dbname={} password=<API key>)",
                running.postgres_addr,
                setup::DB_TARGET
            );
            println!(
                "  PostgreSQL:     scratch database {} on {} (dropped on exit)",
                db.name,
                db.server()
            );
        }
        None => println!(
            "  PG gateway:     {}  (no database target)",
            running.postgres_addr
        ),
    }
    let fate = if args.keep {
        "kept on exit"
    } else {
        "removed on exit; --keep keeps it"
    };
    println!("  Data directory: {}  ({fate})", dir.display());
    for note in addrs.notes(running) {
        println!("  Note: {note}");
    }
    println!();
    println!("Call the sample API through the gateway as orders-sync:");
    println!(
        "  curl -H 'Authorization: Bearer {}' {gateway}/shop/v1/orders/42",
        example.secret
    );
    println!("Use the CLI against this server:");
    println!(
        "  export WARDEN_URL={api} WARDEN_TOKEN={}",
        cast.admin_token
    );
    println!("  warden alerts list");
    println!();
    match args.duration {
        Some(d) => println!(
            "Stopping in {} (Ctrl-C stops sooner).",
            humantime::format_duration(d)
        ),
        None => println!("Ctrl-C to stop."),
    }
    println!();
    println!(
        "Service accounts are calling through the gateways. Suspicious behaviour, as it happens:"
    );
    let (halt, halted) = watch::channel(false);
    let traffic = traffic::Traffic::new(&api, &gateway, running.postgres_addr, db.is_some(), cast)?;
    let traffic = tokio::spawn(traffic.run(halted));
    let until = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = until => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    let _ = halt.send(true);
    traffic.await.context("the traffic task failed")?;
    Ok(())
}

/// The server's configuration: defaults, on the temporary data directory, with detection tuned
/// so that a newcomer sees alerts within a minute.
fn config(dir: &Path, addrs: &Addresses) -> Config {
    let mut config = Config {
        data_dir: dir.to_owned(),
        api_addr: addrs.api.0,
        http_addr: addrs.http.0,
        postgres_addr: addrs.pg.0,
        ..Config::default()
    };
    // So that the access review finds a signed checkpoint within seconds.
    config.ledger.checkpoint_interval = CHECKPOINT_INTERVAL;
    config.detection.learning_period = LEARNING;
    config.detection.sensitive_tables = vec!["public.customers".to_owned()];
    // The sample data is small: thousands of rows or 100 kB is "large" here.
    config.detection.large_result.min_rows = 1000;
    config.detection.large_result.min_bytes = 100_000;
    config.accountability.people = setup::PEOPLE.iter().map(|p| (*p).to_owned()).collect();
    config
}

/// The three listening addresses, each with the preferred address it fell back from, if any.
struct Addresses {
    api: (SocketAddr, Option<SocketAddr>),
    http: (SocketAddr, Option<SocketAddr>),
    pg: (SocketAddr, Option<SocketAddr>),
}

impl Addresses {
    fn choose(args: &DemoArgs) -> Self {
        let exact = |a: SocketAddr| (a, None);
        if let Some(base) = args.port_base {
            let at = |offset: u16| exact(SocketAddr::from(([127, 0, 0, 1], base + offset)));
            return Self {
                api: at(0),
                http: at(1),
                pg: at(2),
            };
        }
        let pick = |given: Option<SocketAddr>, port: u16| match given {
            Some(a) => exact(a),
            None => free_or_ephemeral(SocketAddr::from(([127, 0, 0, 1], port))),
        };
        Self {
            api: pick(args.api_addr, 8470),
            http: pick(args.gateway_addr, 8471),
            pg: pick(args.pg_addr, 15432),
        }
    }

    /// One line per default port that was taken, naming where that part listens instead.
    fn notes(&self, running: &Running) -> Vec<String> {
        [
            ("the console", self.api.1, running.api_addr),
            ("the HTTP gateway", self.http.1, running.http_addr),
            ("the PostgreSQL gateway", self.pg.1, running.postgres_addr),
        ]
        .into_iter()
        .filter_map(|(what, wanted, got)| {
            wanted.map(|w| format!("{w} is in use, so {what} is on a free port, {got}"))
        })
        .collect()
    }
}

/// `preferred` if it is free now, else port 0 (any free port) noting `preferred`. Another
/// program may take it in between; then starting fails and says which address.
fn free_or_ephemeral(preferred: SocketAddr) -> (SocketAddr, Option<SocketAddr>) {
    match TcpListener::bind(preferred) {
        Ok(_) => (preferred, None),
        Err(_) => (SocketAddr::new(preferred.ip(), 0), Some(preferred)),
    }
}

/// 64 random bits from the standard library's randomly keyed hasher: enough to name a scratch
/// database and to make the sample upstream's secret unguessable from outside this process.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
