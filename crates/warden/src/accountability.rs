//! `warden analyze` and `warden recommend`: who owns each service account, whether it is still
//! needed, least-privileged and rotated, and the narrowed grant set that covers what it did.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{ClientArgs, LifecycleCommand, Output, TuningArgs};
use crate::client::Client;
use crate::commands::path;
use crate::output::{self, Column};

const ACCOUNT_COLUMNS: &[Column] = &[
    ("ACCOUNT", "account"),
    ("OWNER", "owner"),
    ("STATUS", "status"),
    ("LAST USED", "last_used_at"),
    ("GRANTS", "grants"),
    ("UNUSED", "unused"),
    ("FINDINGS", "findings"),
    ("RISK", "risk"),
];

const FINDING_COLUMNS: &[Column] = &[
    ("SEVERITY", "severity"),
    ("ACCOUNT", "account"),
    ("FINDING", "kind"),
    ("SUBJECT", "subject"),
    ("WHAT", "message"),
    ("CONTROLS", "controls"),
];

fn query(tuning: &TuningArgs) -> String {
    format!(
        "window={}&unused_after={}&max_key_age={}&protect_new={}",
        path(&tuning.window),
        path(&tuning.unused_after),
        path(&tuning.max_key_age),
        path(&tuning.protect_new)
    )
}

/// Runs `warden analyze`.
pub async fn analyze(tuning: TuningArgs, client: ClientArgs) -> Result<()> {
    let analysis: Value = Client::new(&client)?
        .get(&format!("/v1/analysis?{}", query(&tuning)))
        .await?;
    if client.output != Output::Table {
        println!("{analysis}");
        return Ok(());
    }
    let reports = analysis["accounts"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Value> = reports
        .iter()
        .map(|r| {
            let grants = r["grants"].as_array().map_or(0, Vec::len);
            let unused = r["grants"]
                .as_array()
                .map_or(0, |g| g.iter().filter(|g| g["used"] == false).count());
            json!({
                "account": r["account"], "owner": r["owner"], "status": r["status"],
                "last_used_at": r["last_used_at"], "grants": grants, "unused": unused,
                "findings": r["findings"].as_array().map_or(0, Vec::len), "risk": r["risk"],
            })
        })
        .collect();
    output::list(client.output, &rows, ACCOUNT_COLUMNS);
    let findings: Vec<Value> = reports
        .iter()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    if findings.is_empty() {
        println!("\nno findings");
    } else {
        println!();
        output::list(client.output, &findings, FINDING_COLUMNS);
    }
    Ok(())
}

/// Runs `warden recommend`.
pub async fn recommend(
    account: String,
    apply: bool,
    tuning: TuningArgs,
    client: ClientArgs,
) -> Result<()> {
    let api = Client::new(&client)?;
    let base = format!("/v1/accounts/{}/recommendation", path(&account));
    if apply {
        let body = json!({
            "window": tuning.window, "unused_after": tuning.unused_after,
            "max_key_age": tuning.max_key_age, "protect_new": tuning.protect_new,
        });
        let change: Value = api.post(&format!("{base}/apply"), &body).await?;
        print_change(client.output, &change);
        return Ok(());
    }
    let view: Value = api.get(&format!("{base}?{}", query(&tuning))).await?;
    if client.output != Output::Table {
        println!("{view}");
        return Ok(());
    }
    let diff = view["diff"].as_str().unwrap_or_default();
    print!("{diff}");
    if !diff.ends_with('\n') && !diff.is_empty() {
        println!();
    }
    let unchanged = view["recommendation"]["remove"]
        .as_array()
        .is_none_or(Vec::is_empty)
        && view["recommendation"]["narrow"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if unchanged {
        println!("{account}'s grants already match what it uses.");
    } else {
        println!("Apply with: warden recommend {account} --apply");
    }
    Ok(())
}

/// Prints the result of applying a recommendation or rolling back.
pub fn print_change(output: Output, change: &Value) {
    if output != Output::Table {
        println!("{change}");
        return;
    }
    print!("{}", change["diff"].as_str().unwrap_or_default());
    let version = output::cell(change.get("version"));
    println!("The previous grants are kept as version {version} (warden grant rollback ACCOUNT --to {version} restores them).");
}

/// Runs `warden lifecycle plan|run`.
pub async fn lifecycle(cmd: LifecycleCommand) -> Result<()> {
    let (plans, client): (Value, ClientArgs) = match cmd {
        LifecycleCommand::Plan(client) => (
            Client::new(&client)?.get("/v1/lifecycle/plan").await?,
            client,
        ),
        LifecycleCommand::Run(client) => (
            Client::new(&client)?
                .post("/v1/lifecycle/run", &json!({}))
                .await?,
            client,
        ),
    };
    if client.output != Output::Table {
        println!("{plans}");
        return Ok(());
    }
    let rows: Vec<Value> = plans
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|p| {
            let (policy, enabled) = (p["policy"].clone(), p["enabled"].clone());
            p["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |mut step| {
                    step["policy"] = policy.clone();
                    step["enabled"] = enabled.clone();
                    step
                })
        })
        .collect();
    if rows.is_empty() {
        println!("nothing to do");
        return Ok(());
    }
    let columns: &[Column] = &[
        ("POLICY", "policy"),
        ("ENABLED", "enabled"),
        ("ACTION", "action"),
        ("ACCOUNT", "account"),
        ("KEY", "key_id"),
        ("WHEN", "at"),
        ("WHY", "reason"),
    ];
    output::list(client.output, &rows, columns);
    Ok(())
}
