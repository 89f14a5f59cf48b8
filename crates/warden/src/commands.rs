//! What each command does. `serve` starts the server in this process; the rest call the API.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use warden_server::{Config, Overrides};

use crate::cli::{
    AccountCommand, AdminCommand, Command, EventsArgs, KeyCommand, Output, ServeArgs,
};
use crate::client::Client;
use crate::output::{self, Column};

const ACCOUNT_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("STATUS", "status"),
    ("OWNER", "owner"),
    ("PURPOSE", "purpose"),
    ("LABELS", "labels"),
    ("CREATED BY", "created_by"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("DISABLED BECAUSE", "disabled_reason"),
];
const KEY_COLUMNS: &[Column] = &[
    ("KEY ID", "key_id"),
    ("STATE", "state"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("REVOKED", "revoked_at"),
    ("SUPERSEDED BY", "superseded_by"),
];
const ADMIN_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("TOKEN ID", "token_id"),
    ("CREATED BY", "created_by"),
    ("CREATED", "created_at"),
];

/// Runs one command.
pub async fn run(cli: crate::cli::Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => {
            // The demo narrates what it does; its alerts are for the console, not the terminal.
            init_logging("warn,warden_server::alerts=error");
            crate::demo::run(args).await
        }
        Command::Account(cmd) => account(cmd).await,
        Command::Key(cmd) => key(cmd).await,
        Command::Admin(cmd) => admin(cmd).await,
        Command::Events(args) => events(args).await,
        Command::Audit(cmd) => crate::audit::run(cmd).await,
        Command::Target(cmd) => crate::access::target(cmd).await,
        Command::Grant(cmd) => crate::access::grant(cmd).await,
        Command::Sessions(cmd) => crate::access::sessions(cmd).await,
        Command::Alerts(cmd) => crate::alerts::alerts(cmd).await,
        Command::Review(cmd) => crate::reviews::review(cmd).await,
        Command::Report(args) => crate::reports::report(args).await,
        Command::Analyze { tuning, client } => crate::accountability::analyze(tuning, client).await,
        Command::Lifecycle(cmd) => crate::accountability::lifecycle(cmd).await,
        Command::Recommend {
            account,
            apply,
            tuning,
            client,
        } => crate::accountability::recommend(account, apply, tuning, client).await,
        Command::Whoami(client) => {
            let me: Value = Client::new(&client)?.get("/v1/whoami").await?;
            output::object(
                client.output,
                &me,
                &[
                    ("KIND", "kind"),
                    ("ACCOUNT", "account"),
                    ("KEY ID", "key_id"),
                ],
            );
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    init_logging("info");
    let overrides = Overrides {
        data_dir: args.data_dir,
        database_url: args.database_url,
        api_addr: args.api_addr,
        http_addr: args.http_addr,
        postgres_addr: args.postgres_addr,
    };
    let config = Config::load(args.config.as_deref(), &overrides)?;
    let running = warden_server::server::start(&config, Arc::new(warden_core::SystemClock))
        .await
        .context("cannot start Warden")?;
    let where_db = match config.database_url {
        Some(_) => "postgres".to_owned(),
        None => format!("sqlite ({})", config.sqlite_path().display()),
    };
    println!("Warden is running.");
    println!(
        "  API:      http://{}  (OpenAPI: /v1/openapi.json)",
        running.api_addr
    );
    println!("  Gateway:  http://{}/<target>/<path>", running.http_addr);
    println!(
        "  Postgres: {}  (user=<account> dbname=<target> password=<API key>)",
        running.postgres_addr
    );
    println!("  Database: {where_db}");
    if let Some(path) = &running.new_admin_token {
        println!(
            "  Bootstrap admin token written to {} (mode 0600).",
            path.display()
        );
        println!(
            "  Admin commands run in this directory use it; elsewhere set WARDEN_TOKEN=$(cat {}).",
            path.display()
        );
    }
    let stop = running.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Logs to stderr at `WARDEN_LOG`'s level, else at `default`.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn account(cmd: AccountCommand) -> Result<()> {
    match cmd {
        AccountCommand::Create {
            name,
            owner,
            purpose,
            expires,
            labels,
            client,
        } => {
            let labels = labels
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                        .with_context(|| format!("--label `{l}` must look like key=value"))
                })
                .collect::<Result<serde_json::Map<_, _>>>()?;
            let body = json!({ "name": name, "owner": owner, "purpose": purpose, "labels": labels, "expires_at": expires });
            let created: Value = Client::new(&client)?.post("/v1/accounts", &body).await?;
            output::object(client.output, &created, ACCOUNT_COLUMNS);
        }
        AccountCommand::List(client) => {
            let items: Vec<Value> = Client::new(&client)?.get("/v1/accounts").await?;
            output::list(client.output, &items, ACCOUNT_COLUMNS);
        }
        AccountCommand::Show { name, client } => {
            let item: Value = Client::new(&client)?
                .get(&format!("/v1/accounts/{}", path(&name)))
                .await?;
            output::object(client.output, &item, ACCOUNT_COLUMNS);
        }
        AccountCommand::Disable {
            name,
            reason,
            client,
        } => {
            let item: Value = Client::new(&client)?
                .post(
                    &format!("/v1/accounts/{}/disable", path(&name)),
                    &json!({ "reason": reason }),
                )
                .await?;
            output::object(client.output, &item, ACCOUNT_COLUMNS);
        }
        AccountCommand::Enable { name, client } => {
            let item: Value = Client::new(&client)?
                .post(&format!("/v1/accounts/{}/enable", path(&name)), &json!({}))
                .await?;
            output::object(client.output, &item, ACCOUNT_COLUMNS);
        }
    }
    Ok(())
}

/// Prints a freshly issued secret: the one time it is ever shown.
fn print_issued(output: Output, issued: &Value, secret_field: &str) {
    match output {
        Output::Json | Output::Ocsf => println!("{issued}"),
        Output::Table => {
            println!("{}", output::cell(issued.get(secret_field)));
            eprintln!("This secret is shown once and cannot be retrieved again; store it now.");
            for (label, key) in [
                ("key id", "key_id"),
                ("token id", "token_id"),
                ("expires", "expires_at"),
                ("old keys valid until", "grace_until"),
            ] {
                if let Some(v) = issued.get(key).filter(|v| !v.is_null()) {
                    eprintln!("  {label}: {}", output::cell(Some(v)));
                }
            }
        }
    }
}

async fn key(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Create {
            account,
            expires_in,
            client,
        } => {
            let issued: Value = Client::new(&client)?
                .post(
                    &format!("/v1/accounts/{}/keys", path(&account)),
                    &json!({ "expires_in": expires_in }),
                )
                .await?;
            print_issued(client.output, &issued, "secret");
        }
        KeyCommand::List { account, client } => {
            let items: Vec<Value> = Client::new(&client)?
                .get(&format!("/v1/accounts/{}/keys", path(&account)))
                .await?;
            output::list(client.output, &items, KEY_COLUMNS);
        }
        KeyCommand::Rotate {
            account,
            grace,
            expires_in,
            client,
        } => {
            let issued: Value = Client::new(&client)?
                .post(
                    &format!("/v1/accounts/{}/keys/rotate", path(&account)),
                    &json!({ "grace": grace, "expires_in": expires_in }),
                )
                .await?;
            print_issued(client.output, &issued, "secret");
        }
        KeyCommand::Revoke { key_id, client } => {
            let item: Value = Client::new(&client)?
                .post(&format!("/v1/keys/{}/revoke", path(&key_id)), &json!({}))
                .await?;
            output::object(client.output, &item, KEY_COLUMNS);
        }
    }
    Ok(())
}

async fn admin(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Create { name, client } => {
            let issued: Value = Client::new(&client)?
                .post("/v1/admins", &json!({ "name": name }))
                .await?;
            print_issued(client.output, &issued, "token");
        }
        AdminCommand::List(client) => {
            let items: Vec<Value> = Client::new(&client)?.get("/v1/admins").await?;
            output::list(client.output, &items, ADMIN_COLUMNS);
        }
        AdminCommand::Password {
            password_stdin,
            client,
        } => {
            let password = read_new_password(password_stdin)?;
            Client::new(&client)?
                .put("/v1/admins/me/password", &json!({ "password": password }))
                .await?;
            println!("Password set. Sign in to the console with your name and this password.");
        }
    }
    Ok(())
}

/// A new password: the first line of standard input, or typed twice at a prompt without echo.
fn read_new_password(from_stdin: bool) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "standard input is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let first =
        rpassword::prompt_password("New console password: ").context("cannot read the password")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

async fn events(args: EventsArgs) -> Result<()> {
    let client = Client::new(&args.client)?;
    let mut after: Option<u64> = None;
    let mut printed: u64 = 0;
    let mut table_header = args.client.output == Output::Table;
    loop {
        let mut query = vec![("limit".to_owned(), "1000".to_owned())];
        for (k, v) in [
            ("account", &args.account),
            ("target", &args.target),
            ("category", &args.category),
            ("since", &args.since),
        ] {
            if let Some(v) = v {
                query.push((k.to_owned(), v.clone()));
            }
        }
        if let Some(a) = after {
            query.push(("after".to_owned(), a.to_string()));
        }
        let qs = query
            .iter()
            .map(|(k, v)| format!("{k}={}", path(v)))
            .collect::<Vec<_>>()
            .join("&");
        let page: Value = client.get(&format!("/v1/events?{qs}")).await?;
        let events = page
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for event in &events {
            if args.limit.is_some_and(|l| printed >= l) {
                return Ok(());
            }
            if table_header {
                print_event_header();
                table_header = false;
            }
            print_event(args.client.output, event);
            printed += 1;
            after = event.get("seq").and_then(Value::as_u64).or(after);
        }
        let more = page.get("next_after").is_some_and(|n| !n.is_null());
        if !more {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Prints `events` (from the API) as [`print_event`] does, under a header for tables.
pub fn print_events(output: Output, events: &[Value]) {
    if output == Output::Table {
        print_event_header();
    }
    for e in events {
        print_event(output, e);
    }
}

fn print_event_header() {
    println!(
        "{:<6} {:<27} {:<6} {:<16} {:<20} {:<28} {:<6} OUTCOME",
        "SEQ", "TIME", "CAT", "ACTOR", "VERB", "RESOURCE", "OK"
    );
}

fn print_event(output: Output, e: &Value) {
    match output {
        Output::Json => println!("{e}"),
        Output::Ocsf => match serde_json::from_value::<warden_core::Event>(e.clone()) {
            Ok(event) => println!("{}", warden_ocsf::event(&event)),
            Err(err) => eprintln!("warden: an event could not be read ({err}): {e}"),
        },
        Output::Table => {
            let get = |p: &str| output::cell(e.pointer(p));
            let allowed = match e.pointer("/decision/allowed") {
                Some(Value::Bool(true)) => "allow",
                _ => "deny",
            };
            println!(
                "{:<6} {:<27} {:<6} {:<16} {:<20} {:<28} {:<6} {}",
                get("/seq"),
                get("/time"),
                get("/action/category"),
                get("/actor/account"),
                get("/action/verb"),
                get("/action/resource"),
                allowed,
                get("/outcome/status"),
            );
        }
    }
}

/// Percent-encodes a value for a URL path segment or query value.
pub fn path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
