//! `warden alerts …`: what detection raised about service accounts, with the events behind each
//! alert; acknowledging and resolving them (both recorded on the ledger with the admin's name).

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{AlertsCommand, Output};
use crate::client::Client;
use crate::commands::path;
use crate::output::{self, Column};

const ALERT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("SEVERITY", "severity"),
    ("STATUS", "status"),
    ("DETECTOR", "detector"),
    ("ACCOUNT", "account"),
    ("COUNT", "count"),
    ("LAST SEEN", "last_seen"),
    ("SUMMARY", "summary"),
];

const ALERT_DETAIL: &[Column] = &[
    ("ID", "id"),
    ("SEVERITY", "severity"),
    ("STATUS", "status"),
    ("DETECTOR", "detector"),
    ("ACCOUNT", "account"),
    ("TARGET", "target"),
    ("SUBJECT", "subject"),
    ("SUMMARY", "summary"),
    ("COUNT", "count"),
    ("FIRST SEEN", "first_seen"),
    ("LAST SEEN", "last_seen"),
    ("EVENTS", "seqs"),
    ("ACKNOWLEDGED BY", "acknowledged_by"),
    ("RESOLVED BY", "resolved_by"),
    ("NOTE", "note"),
];

/// Runs `warden alerts …`.
pub async fn alerts(cmd: AlertsCommand) -> Result<()> {
    match cmd {
        AlertsCommand::List {
            status,
            account,
            limit,
            client,
        } => {
            let mut query = format!("/v1/alerts?limit={limit}");
            if let Some(s) = status {
                query.push_str(&format!("&status={}", path(&s)));
            }
            if let Some(a) = account {
                query.push_str(&format!("&account={}", path(&a)));
            }
            let items: Vec<Value> = Client::new(&client)?.get(&query).await?;
            if client.output == Output::Ocsf {
                for item in &items {
                    match serde_json::from_value::<warden_core::Alert>(item.clone()) {
                        Ok(alert) => println!("{}", warden_ocsf::alert(&alert)),
                        Err(e) => eprintln!("warden: an alert could not be read ({e}): {item}"),
                    }
                }
            } else {
                output::list(client.output, &items, ALERT_COLUMNS);
            }
        }
        AlertsCommand::Show { id, client } => {
            let detail: Value = Client::new(&client)?
                .get(&format!("/v1/alerts/{}", path(&id)))
                .await?;
            if client.output == Output::Table {
                output::object(client.output, &detail["alert"], ALERT_DETAIL);
                println!();
                let events = detail["events"].as_array().map(Vec::as_slice);
                crate::commands::print_events(client.output, events.unwrap_or_default());
            } else {
                println!("{detail}");
            }
        }
        AlertsCommand::Ack { id, note, client } => {
            let alert: Value = Client::new(&client)?
                .post(
                    &format!("/v1/alerts/{}/ack", path(&id)),
                    &json!({ "note": note }),
                )
                .await?;
            output::object(client.output, &alert, ALERT_DETAIL);
        }
        AlertsCommand::Resolve { id, note, client } => {
            let alert: Value = Client::new(&client)?
                .post(
                    &format!("/v1/alerts/{}/resolve", path(&id)),
                    &json!({ "note": note }),
                )
                .await?;
            output::object(client.output, &alert, ALERT_DETAIL);
        }
    }
    Ok(())
}
