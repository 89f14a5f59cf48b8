//! The demo's cast, set up through the REST API exactly as an admin would with the CLI: a named
//! admin (whose token signs in to the console), the targets with the credentials Warden injects,
//! the service accounts with their owners and purposes, their grants and keys.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use super::scratch::ScratchDb;
use super::upstream::Upstream;
use crate::client::Client;
use crate::commands::path;

/// The admin the demo creates; the printed sign-in token is theirs.
pub const ADMIN: &str = "demo";
/// The database target's name (the `dbname` clients give the PostgreSQL gateway).
pub const DB_TARGET: &str = "shop-db";
/// The people on record (`accountability.people`): an owner outside it is a finding.
pub const PEOPLE: &[&str] = &["ada@acme.test", "grace@acme.test", "linus@acme.test"];

/// One service account.
struct Spec {
    name: &'static str,
    owner: &'static str,
    purpose: &'static str,
    team: &'static str,
    /// `(target, rule, expires_in)`.
    grants: &'static [(&'static str, &'static str, Option<&'static str>)],
}

const ACCOUNTS: &[Spec] = &[
    Spec {
        name: "orders-sync",
        owner: "ada@acme.test",
        purpose: "Copies new storefront orders into the order service",
        team: "commerce",
        grants: &[
            ("shop", "GET /v1/orders/*", None),
            ("shop", "POST /v1/orders", None),
        ],
    },
    Spec {
        name: "billing-etl",
        owner: "grace@acme.test",
        purpose: "Exports payments and orders to the billing system",
        team: "finance",
        grants: &[
            ("shop", "GET /v1/orders", None),
            ("shop", "GET /v1/payments/*", None),
            // Just-in-time: refunds for a support case, lapsing by itself.
            ("shop", "POST /v1/payments/*/refund", Some("2h")),
            (DB_TARGET, "read:public.*", None),
            (DB_TARGET, "read:analytics.*", None),
        ],
    },
    Spec {
        name: "reporting",
        owner: "linus@acme.test",
        purpose: "Dashboards for the weekly business review",
        team: "data",
        grants: &[
            // Far more than the one route it normally uses.
            ("shop", "GET /v1/**", None),
            ("backoffice", "GET /admin/stats", None),
            (DB_TARGET, "read:analytics.*", None),
        ],
    },
    Spec {
        name: "ci-deployer",
        // A placeholder: nobody is accountable for this account.
        owner: "nobody@acme.test",
        purpose: "Health checks after each deployment",
        team: "platform",
        grants: &[("backoffice", "GET /admin/health", None)],
    },
    Spec {
        name: "partner-feed",
        owner: "ada@acme.test",
        purpose: "Order status feed for the delivery partner",
        team: "commerce",
        grants: &[("shop", "GET /v1/orders/*", None)],
    },
    Spec {
        name: "legacy-export",
        // Not among the people on record: they left.
        owner: "ken@acme.test",
        purpose: "Quarterly CSV export for the old ERP",
        team: "finance",
        grants: &[("shop", "GET /v1/orders", None)],
    },
];

/// An issued API key.
#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    /// Public id.
    #[serde(rename = "key_id")]
    pub id: String,
    /// The whole key, `wdn_<id>_<secret>`.
    pub secret: String,
}

/// What the traffic needs: the admin's token and every account's key.
pub struct Cast {
    /// The demo admin's token.
    pub admin_token: String,
    /// Account name → its key.
    pub keys: BTreeMap<String, Key>,
}

impl Cast {
    /// The key of `account`.
    pub fn key(&self, account: &str) -> Result<&Key> {
        self.keys
            .get(account)
            .with_context(|| format!("no key for {account}"))
    }
}

/// Creates the cast on the server at `api`, starting from the bootstrap admin's token.
pub async fn run(
    api: &str,
    bootstrap: &str,
    upstream: &Upstream,
    db: Option<&ScratchDb>,
) -> Result<Cast> {
    let admin: Value = Client::with_token(api, bootstrap)?
        .post("/v1/admins", &json!({ "name": ADMIN }))
        .await
        .context("creating the demo admin")?;
    let admin_token = admin
        .get("token")
        .and_then(Value::as_str)
        .context("the new admin has no token")?
        .to_owned();
    let client = Client::with_token(api, &admin_token)?;

    // Both HTTP targets are the sample API; the grants keep them apart.
    let inject = [format!("Authorization: Bearer {}", upstream.secret)];
    for name in ["shop", "backoffice"] {
        let _: Value = client
            .post(
                "/v1/targets",
                &json!({ "name": name, "kind": "http", "upstream": upstream.url, "inject_headers": inject }),
            )
            .await
            .with_context(|| format!("registering target {name}"))?;
    }
    if let Some(db) = db {
        let _: Value = client
            .post(
                "/v1/targets",
                &json!({ "name": DB_TARGET, "kind": "postgres", "upstream": db.upstream_url(), "basic_auth": db.login() }),
            )
            .await
            .with_context(|| format!("registering target {DB_TARGET}"))?;
    }

    let mut keys = BTreeMap::new();
    for spec in ACCOUNTS {
        let _: Value = client
            .post(
                "/v1/accounts",
                &json!({
                    "name": spec.name,
                    "owner": spec.owner,
                    "purpose": spec.purpose,
                    "labels": { "team": spec.team },
                }),
            )
            .await
            .with_context(|| format!("creating account {}", spec.name))?;
        for (target, rule, expires_in) in spec.grants {
            if *target == DB_TARGET && db.is_none() {
                continue;
            }
            let _: Value = client
                .post(
                    "/v1/grants",
                    &json!({ "account": spec.name, "target": target, "allow": rule, "expires_in": expires_in }),
                )
                .await
                .with_context(|| format!("granting {rule} on {target} to {}", spec.name))?;
        }
        let key: Key = client
            .post(
                &format!("/v1/accounts/{}/keys", path(spec.name)),
                &json!({}),
            )
            .await
            .with_context(|| format!("issuing a key for {}", spec.name))?;
        keys.insert(spec.name.to_owned(), key);
    }
    Ok(Cast { admin_token, keys })
}
