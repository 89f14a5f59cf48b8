//! `warden review …`: periodic access reviews. Start one (a snapshot of every account), decide
//! per account keep, revoke or modify with a justification, see who still has to decide, and
//! close it (which applies the decisions). Each step is recorded on the ledger with your name.

use anyhow::Result;
use clap::{ArgGroup, Subcommand};
use serde_json::{json, Value};

use crate::cli::{ClientArgs, Output};
use crate::client::Client;
use crate::commands::path;
use crate::output::{self, Column};

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Start a review: snapshot every account (owner, purpose, grants and their use, key ages,
    /// findings) and the ledger's latest checkpoint. One review is open at a time.
    ///
    /// Example: warden review start --name 2026-Q4
    Start {
        /// Its name: letters, digits, '-', '_' or '.'.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List reviews, oldest first, with their progress.
    List(ClientArgs),
    /// Show a review: progress, every account and its decision, what is undecided, and what
    /// changed since the previous review.
    Show {
        /// Review name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Decide about one account of an open review (a later decision replaces an earlier one).
    ///
    /// Example: warden review decide 2026-Q4 billing-etl --modify --remove-grant g_1a2b3c4d5e6f
    /// --justification "refunds moved to the payments service"
    #[command(group(ArgGroup::new("decision").required(true).args(["keep", "revoke", "modify"])))]
    Decide {
        /// Review name.
        name: String,
        /// Account name.
        account: String,
        /// Keep the account's access as it is.
        #[arg(long)]
        keep: bool,
        /// Disable the account and revoke its keys when the review closes.
        #[arg(long)]
        revoke: bool,
        /// Remove grants (`--remove-grant`) when the review closes.
        #[arg(long)]
        modify: bool,
        /// A grant to remove (with --modify); repeat for several.
        #[arg(long = "remove-grant", value_name = "GRANT_ID", requires = "modify")]
        remove_grants: Vec<String>,
        /// Why (required; recorded with the decision and on the ledger).
        #[arg(long)]
        justification: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who still has to decide: undecided accounts grouped by owner, with the reminder text.
    Reminders {
        /// Review name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Close a review and apply its decisions (revoke: account disabled and keys revoked;
    /// modify: grants removed, the previous set kept as a grant set version).
    Close {
        /// Review name.
        name: String,
        /// Close even with undecided accounts (recorded as undecided, left as they are).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

const REVIEW_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("STATUS", "status"),
    ("DECIDED", "decided"),
    ("TOTAL", "total"),
    ("STARTED BY", "started_by"),
    ("STARTED", "started_at"),
    ("CLOSED BY", "closed_by"),
    ("CLOSED", "closed_at"),
];

const REVIEW_DETAIL: &[Column] = &[
    ("NAME", "name"),
    ("STATUS", "status"),
    ("PROGRESS", "progress"),
    ("STARTED BY", "started_by"),
    ("STARTED", "started_at"),
    ("CLOSED BY", "closed_by"),
    ("CLOSED", "closed_at"),
    ("ACCOUNTS", "accounts"),
    ("POPULATION", "digest"),
    ("COMPLETE", "complete"),
    ("LEDGER SIZE", "checkpoint_size"),
    ("LEDGER ROOT", "checkpoint_root"),
    ("UNDECIDED", "undecided"),
];

const ITEM_COLUMNS: &[Column] = &[
    ("ACCOUNT", "account"),
    ("OWNER", "owner"),
    ("STATUS", "status"),
    ("FINDINGS", "findings"),
    ("RISK", "risk"),
    ("DECISION", "decision"),
    ("REMOVE", "remove_grants"),
    ("DECIDED BY", "decided_by"),
    ("DECIDED", "decided_at"),
    ("JUSTIFICATION", "justification"),
    ("OUTCOME", "outcome"),
];

const REMINDER_COLUMNS: &[Column] = &[
    ("OWNER", "owner"),
    ("ACCOUNTS", "accounts"),
    ("REMINDER", "message"),
];

/// A listing row with the progress spread out.
fn summary_row(r: &Value) -> Value {
    let mut row = r.clone();
    row["decided"] = r["progress"]["decided"].clone();
    row["total"] = r["progress"]["total"].clone();
    row
}

/// Prints a review: a summary, its items, and the changes since the previous one.
fn print_review(out: Output, review: &Value) {
    if out != Output::Table {
        println!("{review}");
        return;
    }
    let snapshot = &review["snapshot"];
    let summary = json!({
        "name": review["name"], "status": review["status"],
        "progress": format!("{}/{} decided", review["progress"]["decided"], review["progress"]["total"]),
        "started_by": review["started_by"], "started_at": review["started_at"],
        "closed_by": review["closed_by"], "closed_at": review["closed_at"],
        "accounts": snapshot["population"]["accounts"],
        "digest": snapshot["population"]["digest"],
        "complete": review["complete"],
        "checkpoint_size": snapshot["checkpoint"]["size"],
        "checkpoint_root": snapshot["checkpoint"]["root"],
        "undecided": review["undecided"],
    });
    output::object(out, &summary, REVIEW_DETAIL);
    println!();
    let items = review["items"].as_array().cloned().unwrap_or_default();
    output::list(out, &items, ITEM_COLUMNS);
    let changes = &review["changes_since_previous"];
    if changes.is_null() {
        return;
    }
    println!();
    println!("Changes since {}:", output::cell(changes.get("previous")));
    let line = |label: &str, v: &Value| {
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            println!("  {label}: {}", output::cell(Some(v)));
        }
    };
    line("accounts added", &changes["accounts_added"]);
    line("accounts removed", &changes["accounts_removed"]);
    line("owners changed", &changes["owners_changed"]);
    for g in changes["grants"].as_array().into_iter().flatten() {
        let account = output::cell(g.get("account"));
        for added in g["added"].as_array().into_iter().flatten() {
            println!("  {account}: + {}", output::cell(Some(added)));
        }
        for removed in g["removed"].as_array().into_iter().flatten() {
            println!("  {account}: - {}", output::cell(Some(removed)));
        }
    }
    for d in changes["previous_decisions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let account = output::cell(d.get("account"));
        if d["decision"].is_null() {
            println!("  previously {account}: undecided");
        } else {
            println!(
                "  previously {account}: {} by {} ({})",
                output::cell(d.get("decision")),
                output::cell(d.get("decided_by")),
                output::cell(d.get("justification")),
            );
        }
    }
}

/// Runs `warden review …`.
pub async fn review(cmd: ReviewCommand) -> Result<()> {
    match cmd {
        ReviewCommand::Start { name, client } => {
            let review: Value = Client::new(&client)?
                .post("/v1/reviews", &json!({ "name": name }))
                .await?;
            print_review(client.output, &review);
        }
        ReviewCommand::List(client) => {
            let reviews: Vec<Value> = Client::new(&client)?.get("/v1/reviews").await?;
            if client.output == Output::Table {
                let rows: Vec<Value> = reviews.iter().map(summary_row).collect();
                output::list(client.output, &rows, REVIEW_COLUMNS);
            } else {
                output::list(client.output, &reviews, REVIEW_COLUMNS);
            }
        }
        ReviewCommand::Show { name, client } => {
            let review: Value = Client::new(&client)?
                .get(&format!("/v1/reviews/{}", path(&name)))
                .await?;
            print_review(client.output, &review);
        }
        ReviewCommand::Decide {
            name,
            account,
            keep,
            revoke,
            modify: _,
            remove_grants,
            justification,
            client,
        } => {
            let decision = if keep {
                "keep"
            } else if revoke {
                "revoke"
            } else {
                "modify"
            };
            let item: Value = Client::new(&client)?
                .post(
                    &format!("/v1/reviews/{}/decisions", path(&name)),
                    &json!({
                        "account": account,
                        "decision": decision,
                        "justification": justification,
                        "remove_grants": remove_grants,
                    }),
                )
                .await?;
            output::object(client.output, &item, ITEM_COLUMNS);
        }
        ReviewCommand::Reminders { name, client } => {
            let reminders: Value = Client::new(&client)?
                .get(&format!("/v1/reviews/{}/reminders", path(&name)))
                .await?;
            if client.output == Output::Table {
                println!(
                    "{}/{} decided",
                    reminders["progress"]["decided"], reminders["progress"]["total"]
                );
                let owners = reminders["owners"].as_array().cloned().unwrap_or_default();
                output::list(client.output, &owners, REMINDER_COLUMNS);
            } else {
                println!("{reminders}");
            }
        }
        ReviewCommand::Close {
            name,
            force,
            client,
        } => {
            let review: Value = Client::new(&client)?
                .post(
                    &format!("/v1/reviews/{}/close", path(&name)),
                    &json!({ "force": force }),
                )
                .await?;
            print_review(client.output, &review);
        }
    }
    Ok(())
}
