//! The command line, declared with clap. Doc comments here are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Warden: one gateway for every service account. Authenticates them, enforces least privilege,
/// and records every action in a tamper-evident ledger.
///
/// Start a server with `warden serve`; the other commands administer it through its REST API,
/// using WARDEN_URL and WARDEN_TOKEN, or, next to a local server, its data directory
/// (`./warden-data/addresses.json` and `./warden-data/admin-token`).
#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (REST API on 127.0.0.1:8470 by default).
    ///
    /// With no configuration it keeps everything in ./warden-data/: a SQLite database, and on
    /// first start a bootstrap admin token (mode 0600) whose path is printed once.
    Serve(ServeArgs),
    /// Try Warden: a server on a temporary data directory with sample accounts, targets and
    /// live traffic, then open the console.
    ///
    /// Starts Warden as `warden serve` does, on a fresh temporary data directory, with a built-in
    /// sample HTTP API (orders, customers, payments, admin) as the `shop` and `backoffice`
    /// targets and, if PostgreSQL answers on 127.0.0.1:5432 (or at --postgres), a scratch
    /// database `warden_demo_…` as the `shop-db` target. Through the REST API it creates an
    /// admin, six service accounts with owners, purposes, grants (one just-in-time) and keys.
    /// Then the accounts call through the real gateways, a few requests a second, and within a
    /// minute do suspicious things that the real detectors catch: a revoked key used again, a
    /// burst of denials, guessed secrets, new actions and targets after the (shortened) learning
    /// period, a sensitive table read, a large result. An access review is started too.
    ///
    /// It prints the console URL and the token to sign in with, the gateway addresses, and a
    /// curl command to try. Ctrl-C stops it, drops the scratch database and deletes the data
    /// directory (unless --keep).
    ///
    /// Example: warden demo --port-base 9470 --duration 10m
    Demo(crate::demo::DemoArgs),
    /// Create, inspect, disable and enable service accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Issue, list, rotate and revoke API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create and list human admins.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Show recorded events, oldest first.
    Events(EventsArgs),
    /// Show whose credential WARDEN_TOKEN is (works with API keys too).
    Whoami(ClientArgs),
    /// Verify the tamper-evident ledger, or export it as a bundle for an auditor.
    #[command(subcommand)]
    Audit(crate::audit::AuditCommand),
    /// Register the upstream APIs and databases service accounts reach through Warden.
    #[command(subcommand)]
    Target(TargetCommand),
    /// Grant, list and remove what accounts may do on targets (deny by default).
    #[command(subcommand)]
    Grant(GrantCommand),
    /// See and end live database sessions on the PostgreSQL gateway.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// See, acknowledge and resolve what detection raised about service accounts.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Periodic access reviews: snapshot every account, decide keep, revoke or modify per
    /// account with a justification, remind owners, close to apply the decisions.
    ///
    /// Example: warden review start --name 2026-Q4
    #[command(subcommand)]
    Review(crate::reviews::ReviewCommand),
    /// Find unused and broad grants, inactive accounts, old or unrotated keys and missing
    /// owners, with the compliance controls each bears on.
    ///
    /// Example: warden analyze --window 90d
    Analyze {
        #[command(flatten)]
        tuning: TuningArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// See what the lifecycle policies (disable inactive accounts, expire old keys, require
    /// owners, rotate keys) would do now, or run the enabled ones at once.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Write an audit-ready report (access review, least privilege, compliance) as one
    /// self-contained HTML file, JSON or CSV, naming the ledger checkpoint it was computed from.
    ///
    /// Example: warden report compliance --format html --out compliance.html
    Report(crate::reports::ReportArgs),
    /// Show the narrowed grant set that covers everything an account did (unused grants
    /// removed, wildcards narrowed to what was used) as a diff; `--apply` applies it.
    ///
    /// Example: warden recommend billing-etl --apply
    Recommend {
        /// Account name.
        account: String,
        /// Apply the recommendation (the previous grant set is kept as a version:
        /// `warden grant rollback ACCOUNT --to VERSION` restores it).
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        tuning: TuningArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, most recently seen first.
    ///
    /// Example: warden alerts list --status open
    List {
        /// Only alerts in this state.
        #[arg(long, value_parser = ["open", "acknowledged", "resolved"])]
        status: Option<String>,
        /// Only this account's alerts.
        #[arg(long)]
        account: Option<String>,
        /// At most this many (the server caps it at 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one alert and the events that raised it.
    Show {
        /// Alert id (from `warden alerts list`).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Acknowledge an open alert (someone is on it); recorded on the ledger with your name.
    Ack {
        /// Alert id.
        id: String,
        /// Why, or what is being done.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resolve an alert; the same behaviour again opens a new alert. Recorded on the ledger.
    Resolve {
        /// Alert id.
        id: String,
        /// How it was resolved.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List the live sessions of this server, oldest first.
    List(ClientArgs),
    /// End a session on both sides (the client gets SQLSTATE 57P01); recorded as an admin event.
    Kill {
        /// Session id (from `warden sessions list`).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Register a target and the credentials Warden injects when forwarding to it.
    ///
    /// Example: warden target add orders --kind http --upstream https://orders.internal
    /// --inject-header-file ./orders-upstream-headers
    ///
    /// A database: warden target add ordersdb --kind postgres
    /// --upstream postgres://db.internal:5432/orders --basic-auth-file ./ordersdb-login
    /// (the file holds `role:password`; clients then connect to Warden's port 15432 with
    /// dbname=ordersdb).
    ///
    /// The credentials are encrypted at rest and never shown again. Prefer
    /// --inject-header-file to --inject-header: command lines end up in shell history and `ps`.
    Add {
        /// Unique name: the first path segment on the gateway (http://warden:8471/NAME/...).
        name: String,
        /// http or postgres.
        #[arg(long, default_value = "http")]
        kind: String,
        /// Base URL of the upstream.
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// A header to inject, `Name: value` (repeatable).
        #[arg(long = "inject-header", value_name = "HEADER")]
        inject_headers: Vec<String>,
        /// A file of headers to inject, one `Name: value` per line.
        #[arg(long, value_name = "FILE")]
        inject_header_file: Option<PathBuf>,
        /// A file holding `user:password` for HTTP basic auth (or the database login).
        #[arg(long, value_name = "FILE")]
        basic_auth_file: Option<PathBuf>,
        /// Extra CA certificates (PEM) to trust for the upstream.
        #[arg(long, value_name = "FILE")]
        ca_bundle: Option<PathBuf>,
        /// Database targets: rotate the upstream password automatically this often (e.g. 30d).
        #[arg(long, value_name = "DURATION")]
        rotation_period: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List targets (credentials are never shown, only which headers are injected).
    List(ClientArgs),
    /// Show one target.
    Show {
        /// Target name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rotate a database target's upstream password.
    ///
    /// Warden sets a new random password on the upstream role (ALTER ROLE … PASSWORD, sent as a
    /// SCRAM verifier), proves it works with a fresh login, then stores it encrypted. Open
    /// sessions stay connected. If anything fails, the old password keeps working.
    Rotate {
        /// Target name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Allow an account something on a target.
    ///
    /// HTTP rules are `METHOD PATH-GLOB`: `GET /v1/orders/*` (one segment), `* /v1/**` (any
    /// method, any depth). Example: warden grant add billing-etl orders --allow 'GET /v1/orders/*'
    /// --expires-in 4h
    ///
    /// Database rules are `CLASS[:SCHEMA.TABLE]` with CLASS read, write, ddl, admin or `*`, and
    /// `*` matching within a name: `read`, `write:public.orders`, `read:analytics.*`. Transaction
    /// control (BEGIN, COMMIT, SET of ordinary settings) needs no grant. Example:
    /// warden grant add billing-etl ordersdb --allow 'read:public.*'
    Add {
        /// Account name.
        account: String,
        /// Target name.
        target: String,
        /// What to allow.
        #[arg(long, value_name = "RULE")]
        allow: String,
        /// Just-in-time access: the grant lapses after this long (e.g. 4h).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List grants with their state and last use.
    List {
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
        /// Only on this target.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a grant; it stops applying at once.
    Remove {
        /// Grant id (g_…).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the versions of an account's grant set (each kept when `warden recommend --apply`
    /// or a rollback replaced it).
    Versions {
        /// Account name.
        account: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give an account back the grants a version holds (the current set is kept as a new
    /// version, so a rollback can be undone too).
    ///
    /// Example: warden grant rollback billing-etl --to 1
    Rollback {
        /// Account name.
        account: String,
        /// The version to restore (from `warden grant versions`).
        #[arg(long, value_name = "VERSION")]
        to: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// What every policy would do now, enabled or not (a dry run: nothing changes).
    Plan(ClientArgs),
    /// Run the enabled policies now instead of waiting for `lifecycle.schedule`.
    Run(ClientArgs),
}

/// How far back and how strictly accountability analysis looks.
#[derive(Debug, Args)]
pub struct TuningArgs {
    /// Usage considered: this long back.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub window: String,
    /// Accounts and keys unused this long are findings.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub unused_after: String,
    /// Keys older than this are findings.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub max_key_age: String,
    /// Grants younger than this are never recommended for removal.
    #[arg(long, value_name = "DURATION", default_value = "14d")]
    pub protect_new: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (default: ./warden.toml if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [env: WARDEN_DATA_DIR] [default: ./warden-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded SQLite (postgres://user@host:port/db)
    /// [env: WARDEN_DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// REST API address; port 0 picks a free port [env: WARDEN_API_ADDR] [default: 127.0.0.1:8470]
    #[arg(long, value_name = "HOST:PORT")]
    pub api_addr: Option<SocketAddr>,
    /// HTTP gateway address (`/<target>/<path>`) [env: WARDEN_HTTP_ADDR] [default: 127.0.0.1:8471]
    #[arg(long, value_name = "HOST:PORT")]
    pub http_addr: Option<SocketAddr>,
    /// PostgreSQL gateway address [env: WARDEN_POSTGRES_ADDR] [default: 127.0.0.1:15432]
    #[arg(long, value_name = "HOST:PORT")]
    pub postgres_addr: Option<SocketAddr>,
}

/// How listings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// JSON for programs (events: one object per line).
    Json,
    /// OCSF 1.3 JSON, one object per line, for SIEMs: `events` and `alerts list` (other
    /// commands print plain JSON).
    Ocsf,
}

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL [default: from <data-dir>/addresses.json, else http://127.0.0.1:8470]
    #[arg(long, env = "WARDEN_URL", value_name = "URL")]
    pub url: Option<String>,
    /// File holding the admin token, used when WARDEN_TOKEN is not set
    /// [default: <data-dir>/admin-token]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Data directory of a local server, to find its address and bootstrap token.
    #[arg(
        long,
        env = "WARDEN_DATA_DIR",
        value_name = "DIR",
        default_value = "warden-data"
    )]
    pub data_dir: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create a service account with an accountable owner and a purpose.
    ///
    /// Example: warden account create billing-etl --owner ada@example.com
    /// --purpose "nightly export of invoices" --label team=finance
    Create {
        /// Unique name: lowercase letters, digits and '-', at most 63 characters.
        name: String,
        /// Email of the human accountable for this account.
        #[arg(long)]
        owner: String,
        /// Why this account exists.
        #[arg(long)]
        purpose: String,
        /// When it stops working: YYYY-MM-DD or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// A label, key=value (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List every service account.
    List(ClientArgs),
    /// Show one service account.
    Show {
        /// Account name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable an account: every credential it has stops working at once.
    Disable {
        /// Account name.
        name: String,
        /// Why (recorded on the account and in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Re-enable a disabled account.
    Enable {
        /// Account name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue an API key; the secret is printed exactly once.
    Create {
        /// Account name.
        account: String,
        /// Lifetime, e.g. 90d or 12h (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List an account's keys and their states (active, rotating, expired, revoked).
    List {
        /// Account name.
        account: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Issue a new key; the account's current keys keep working only until the grace ends.
    Rotate {
        /// Account name.
        account: String,
        /// How long the old keys keep working.
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        grace: String,
        /// Lifetime of the new key.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a key at once.
    Revoke {
        /// Key id (the middle part of wdn_<key-id>_<secret>).
        key_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; their token is printed exactly once.
    Create {
        /// Admin name (lowercase).
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List admins.
    List(ClientArgs),
    /// Set your own password for the web console (at least 12 characters). Asked for twice
    /// without echo; setting a new one signs out the console sessions opened with the old one.
    ///
    /// In scripts: printf '%s\n' "$PASSWORD" | warden admin password --password-stdin
    Password {
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this account's (or admin's) events.
    #[arg(long)]
    pub account: Option<String>,
    /// Only events on this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only this category: auth, admin, http, sql…
    #[arg(long)]
    pub category: Option<String>,
    /// Only events newer than this: a duration (1h, 7d) or a time (2026-11-27T08:00:00Z).
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Stop after this many events (default: all).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Keep printing new events as they are recorded.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}
