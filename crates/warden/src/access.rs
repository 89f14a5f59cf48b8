//! `warden target …`, `warden grant …` and `warden sessions …`: what service accounts can reach,
//! what they may do there, and who is connected now. Upstream secrets are read from files where
//! possible and never printed.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::cli::{GrantCommand, SessionsCommand, TargetCommand};
use crate::client::Client;
use crate::commands::path;
use crate::output::{self, Column};

const TARGET_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("KIND", "kind"),
    ("UPSTREAM", "upstream"),
    ("INJECTS", "injected"),
    ("CUSTOM CA", "custom_ca"),
    ("ROTATES", "rotation_period"),
    ("ROTATED", "rotated_at"),
    ("CREATED BY", "created_by"),
    ("CREATED", "created_at"),
];
const GRANT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("ACCOUNT", "account"),
    ("TARGET", "target"),
    ("ALLOW", "allow"),
    ("STATE", "state"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("CREATED BY", "created_by"),
];

const SESSION_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("ACCOUNT", "account"),
    ("TARGET", "target"),
    ("CLIENT", "client"),
    ("APPLICATION", "application"),
    ("KEY", "key_id"),
    ("STARTED", "started_at"),
    ("STATEMENTS", "statements"),
];

fn read(file: &std::path::Path, what: &str) -> Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {what} from {}", file.display()))
}

/// Runs a `target` command.
pub async fn target(cmd: TargetCommand) -> Result<()> {
    match cmd {
        TargetCommand::Add {
            name,
            kind,
            upstream,
            mut inject_headers,
            inject_header_file,
            basic_auth_file,
            ca_bundle,
            rotation_period,
            client,
        } => {
            if let Some(file) = inject_header_file {
                let text = read(&file, "headers")?;
                inject_headers.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_owned),
                );
            }
            let basic_auth = basic_auth_file
                .map(|f| {
                    read(&f, "basic auth").map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                })
                .transpose()?;
            let ca_bundle = ca_bundle.map(|f| read(&f, "the CA bundle")).transpose()?;
            let body = json!({
                "name": name, "kind": kind, "upstream": upstream,
                "inject_headers": inject_headers, "basic_auth": basic_auth, "ca_bundle": ca_bundle,
                "rotation_period": rotation_period,
            });
            let created: Value = Client::new(&client)?.post("/v1/targets", &body).await?;
            output::object(client.output, &created, TARGET_COLUMNS);
        }
        TargetCommand::List(client) => {
            let items: Vec<Value> = Client::new(&client)?.get("/v1/targets").await?;
            output::list(client.output, &items, TARGET_COLUMNS);
        }
        TargetCommand::Rotate { name, client } => {
            let item: Value = Client::new(&client)?
                .post(&format!("/v1/targets/{}/rotate", path(&name)), &json!({}))
                .await?;
            output::object(client.output, &item, TARGET_COLUMNS);
        }
        TargetCommand::Show { name, client } => {
            let item: Value = Client::new(&client)?
                .get(&format!("/v1/targets/{}", path(&name)))
                .await?;
            output::object(client.output, &item, TARGET_COLUMNS);
        }
    }
    Ok(())
}

/// Runs a `grant` command.
pub async fn grant(cmd: GrantCommand) -> Result<()> {
    match cmd {
        GrantCommand::Add {
            account,
            target,
            allow,
            expires_in,
            client,
        } => {
            let body = json!({ "account": account, "target": target, "allow": allow, "expires_in": expires_in });
            let created: Value = Client::new(&client)?.post("/v1/grants", &body).await?;
            output::object(client.output, &created, GRANT_COLUMNS);
        }
        GrantCommand::List {
            account,
            target,
            client,
        } => {
            let mut query = Vec::new();
            if let Some(a) = &account {
                query.push(format!("account={}", path(a)));
            }
            if let Some(t) = &target {
                query.push(format!("target={}", path(t)));
            }
            let items: Vec<Value> = Client::new(&client)?
                .get(&format!("/v1/grants?{}", query.join("&")))
                .await?;
            output::list(client.output, &items, GRANT_COLUMNS);
        }
        GrantCommand::Remove { id, client } => {
            let removed: Value = Client::new(&client)?
                .delete(&format!("/v1/grants/{}", path(&id)))
                .await?;
            output::object(client.output, &removed, GRANT_COLUMNS);
        }
        GrantCommand::Versions { account, client } => {
            let versions: Vec<Value> = Client::new(&client)?
                .get(&format!("/v1/accounts/{}/grant-versions", path(&account)))
                .await?;
            let rows: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let mut row = v.clone();
                    row["grants"] = json!(v["grants"].as_array().map(|g| g
                        .iter()
                        .map(|g| format!(
                            "{} {}",
                            output::cell(g.get("target")),
                            output::cell(g.get("rule"))
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")));
                    row
                })
                .collect();
            let columns: &[Column] = &[
                ("VERSION", "version"),
                ("REPLACED BY", "reason"),
                ("BY", "created_by"),
                ("AT", "created_at"),
                ("GRANTS", "grants"),
            ];
            match client.output {
                crate::cli::Output::Table => output::list(client.output, &rows, columns),
                _ => output::list(client.output, &versions, columns),
            }
        }
        GrantCommand::Rollback {
            account,
            to,
            client,
        } => {
            let change: Value = Client::new(&client)?
                .post(
                    &format!("/v1/accounts/{}/grants/rollback", path(&account)),
                    &json!({ "version": to }),
                )
                .await?;
            crate::accountability::print_change(client.output, &change);
        }
    }
    Ok(())
}

/// Runs a `sessions` command.
pub async fn sessions(cmd: SessionsCommand) -> Result<()> {
    match cmd {
        SessionsCommand::List(client) => {
            let items: Vec<Value> = Client::new(&client)?.get("/v1/sessions").await?;
            output::list(client.output, &items, SESSION_COLUMNS);
        }
        SessionsCommand::Kill { id, client } => {
            let killed: Value = Client::new(&client)?
                .post(&format!("/v1/sessions/{}/kill", path(&id)), &json!({}))
                .await?;
            output::object(client.output, &killed, SESSION_COLUMNS);
        }
    }
    Ok(())
}
