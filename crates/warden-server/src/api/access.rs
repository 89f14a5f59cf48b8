//! Accountability: `/v1/analysis` (is every account owned, needed, least-privileged and rotated?),
//! `/v1/accounts/{name}/recommendation` (the narrowed grant set that covers everything the
//! account actually did), applying it, and rolling an account's grants back to an earlier
//! version. The analysis itself is `warden-access`; this module loads its inputs and makes the
//! changes, each an audited admin event.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_access::{Analysis, Options, Population, Recommendation, UsageRecord};
use warden_core::{Grant, GrantSetVersion, GrantSpec, Rule, Timestamp};
use warden_gateway::auth::AdminPrincipal;

use super::extract::{AdminCaller, ApiJson, Caller};
use super::keys::parse_duration;
use super::problem::{ApiError, Problem};
use super::{App, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(analysis))
        .routes(routes!(recommendation))
        .routes(routes!(apply_recommendation))
        .routes(routes!(grant_versions))
        .routes(routes!(rollback_grants))
}

/// How the analysis is tuned; every field is optional.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// Usage considered: this long back (default `90d`).
    window: Option<String>,
    /// Accounts and keys unused this long are findings (default `90d`).
    unused_after: Option<String>,
    /// Keys older than this are findings (default `90d`).
    max_key_age: Option<String>,
    /// Grants younger than this are never recommended for removal (default `14d`).
    protect_new: Option<String>,
}

impl Tuning {
    fn options(&self, people: &[String]) -> Result<Options, ApiError> {
        let mut o = Options {
            people: people.to_vec(),
            ..Options::default()
        };
        let set = |field: &str, value: &Option<String>, into: &mut Duration| {
            if let Some(v) = value {
                *into = parse_duration(field, v)?;
            }
            Ok::<(), ApiError>(())
        };
        set("window", &self.window, &mut o.window)?;
        set("unused_after", &self.unused_after, &mut o.unused_after)?;
        set("max_key_age", &self.max_key_age, &mut o.max_key_age)?;
        set("protect_new", &self.protect_new, &mut o.protect_new)?;
        Ok(o)
    }
}

/// The analysis' default options with the people on record: what every caller that does not
/// tune the analysis uses (the console's pages, review snapshots).
pub(crate) fn default_options(app: &App) -> Options {
    Options {
        people: app.people.clone(),
        ..Options::default()
    }
}

/// Everything the analysis looks at, loaded from the store.
pub(crate) struct Loaded {
    pub(crate) accounts: Vec<warden_core::Account>,
    pub(crate) keys: Vec<warden_core::KeyRecord>,
    grants: Vec<Grant>,
    usage: Vec<UsageRecord>,
}

impl Loaded {
    pub(crate) async fn load(
        app: &App,
        account: Option<&str>,
        options: &Options,
    ) -> Result<Self, ApiError> {
        let now = app.clock.now();
        let accounts = match account {
            Some(name) => vec![app
                .store
                .account(name)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("account {name}")))?],
            None => app.store.list_accounts().await?,
        };
        let keys = app.store.list_keys(account).await?;
        let grants = app.store.grants(account, None).await?;
        let usage = app
            .store
            .usage(now.saturating_sub(options.window), account)
            .await?
            .into_iter()
            .map(|u| UsageRecord {
                account: u.account,
                target: u.target,
                grant_id: u.grant_id,
                action: u.action,
                count: u.count,
                first_at: u.first_at,
                last_at: u.last_at,
            })
            .collect();
        Ok(Self {
            accounts,
            keys,
            grants,
            usage,
        })
    }

    pub(crate) fn population(&self) -> Population<'_> {
        Population {
            accounts: &self.accounts,
            keys: &self.keys,
            grants: &self.grants,
            usage: &self.usage,
        }
    }
}

/// Every account's grants and their use, keys and their ages, ownership, and the findings
/// (unused or broad grants, inactive accounts, old or unrotated keys, missing owners…) with the
/// compliance controls each bears on.
#[utoipa::path(get, path = "/v1/analysis", tag = "accountability", params(Tuning),
    responses((status = 200, body = Object, description = "The analysis"), (status = 400, body = Problem)))]
async fn analysis(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(tuning): Query<Tuning>,
) -> Result<Json<Analysis>, ApiError> {
    let options = tuning.options(&app.people)?;
    let loaded = Loaded::load(&app, None, &options).await?;
    Ok(Json(warden_access::analyze(
        &loaded.population(),
        app.clock.now(),
        &options,
    )))
}

/// A recommendation and its diff.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecommendationView {
    /// What to change.
    #[schema(value_type = Object)]
    recommendation: Recommendation,
    /// The change as a diff (`  ` keep, `-` remove, `+` add).
    diff: String,
}

/// `account`'s recommendation under `options`, with what it was computed from.
pub(crate) async fn recommend(
    app: &App,
    account: &str,
    options: &Options,
) -> Result<(Recommendation, Loaded), ApiError> {
    let loaded = Loaded::load(app, Some(account), options).await?;
    let recommendation =
        warden_access::recommend(&loaded.population(), account, app.clock.now(), options)
            .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok((recommendation, loaded))
}

/// The narrowed grant set that covers every action the account performed in the window: unused
/// grants removed, wildcards narrowed to what was used; grants younger than `protect_new` stay.
#[utoipa::path(get, path = "/v1/accounts/{name}/recommendation", tag = "accountability",
    params(("name" = String, Path, description = "Account"), Tuning),
    responses((status = 200, body = RecommendationView), (status = 404, body = Problem)))]
async fn recommendation(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
    Query(tuning): Query<Tuning>,
) -> Result<Json<RecommendationView>, ApiError> {
    let options = tuning.options(&app.people)?;
    let (recommendation, _) = recommend(&app, &name, &options).await?;
    Ok(Json(RecommendationView {
        diff: recommendation.diff(),
        recommendation,
    }))
}

/// The result of a change to an account's grant set.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantSetChange {
    /// The version that holds the grants as they were before (roll back to it to undo).
    pub(crate) version: u64,
    /// The change as a diff.
    diff: String,
    /// The account's grants now, as `(target, rule)`.
    grants: Vec<(String, String)>,
}

/// Applies the recommendation as it is now (computed again, so it cannot be stale), keeping the
/// previous grant set as a version. An admin event `grant.recommendation.apply`.
#[utoipa::path(post, path = "/v1/accounts/{name}/recommendation/apply", tag = "accountability",
    params(("name" = String, Path, description = "Account")), request_body = Tuning,
    responses((status = 200, body = GrantSetChange), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Nothing to change")))]
async fn apply_recommendation(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    body: Option<ApiJson<Tuning>>,
) -> Result<Json<GrantSetChange>, ApiError> {
    let tuning = body.map(|b| b.0).unwrap_or_default();
    let options = tuning.options(&app.people)?;
    Ok(Json(
        apply(&app, &who.admin, &who.caller, &name, &options).await?,
    ))
}

/// Applies `account`'s recommendation under `options` as `admin`, computed again here so it
/// cannot be stale: the API's `POST /v1/accounts/{name}/recommendation/apply` and the console's
/// "Apply recommendation" both come here. [`ApiError::WrongState`] when there is nothing to
/// change.
pub(crate) async fn apply(
    app: &App,
    admin: &AdminPrincipal,
    caller: &Caller,
    account: &str,
    options: &Options,
) -> Result<GrantSetChange, ApiError> {
    let (recommendation, loaded) = recommend(app, account, options).await?;
    if recommendation.is_empty() {
        return Err(ApiError::WrongState(format!(
            "{account}'s grants already match what it uses; nothing to apply"
        )));
    }
    let now = app.clock.now();
    let remove: Vec<String> = recommendation
        .remove
        .iter()
        .map(|r| r.grant.grant_id.clone())
        .chain(
            recommendation
                .narrow
                .iter()
                .map(|n| n.grant.grant_id.clone()),
        )
        .collect();
    let mut add = Vec::new();
    for new in &recommendation.add {
        add.push(new_grant(app, account, &new.target, &new.rule, None, &admin.name, now).await?);
    }
    let change = Replacement {
        verb: "grant.recommendation.apply",
        reason: "recommendation".to_owned(),
        remove,
        add,
        diff: recommendation.diff(),
    };
    change
        .make(app, admin, caller, account, &loaded.grants)
        .await
}

/// An account's grant set versions, oldest first.
#[utoipa::path(get, path = "/v1/accounts/{name}/grant-versions", tag = "accountability",
    params(("name" = String, Path, description = "Account")),
    responses((status = 200, body = Vec<Object>, description = "Versions")))]
async fn grant_versions(
    State(app): State<AppState>,
    _who: AdminCaller,
    Path(name): Path<String>,
) -> Result<Json<Vec<GrantSetVersion>>, ApiError> {
    Ok(Json(app.store.grant_versions(&name).await?))
}

/// Which version to go back to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// A version from `grant-versions`: the account gets back the grants it held then.
    version: u64,
}

/// Restores the grant set a version holds (its grants are granted again, the current ones
/// removed), keeping the current set as a new version. An admin event `grant.rollback`.
#[utoipa::path(post, path = "/v1/accounts/{name}/grants/rollback", tag = "accountability",
    params(("name" = String, Path, description = "Account")), request_body = Rollback,
    responses((status = 200, body = GrantSetChange), (status = 404, body = Problem)))]
async fn rollback_grants(
    State(app): State<AppState>,
    who: AdminCaller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<Rollback>,
) -> Result<Json<GrantSetChange>, ApiError> {
    let versions = app.store.grant_versions(&name).await?;
    let Some(target) = versions.iter().find(|v| v.version == req.version) else {
        return Err(ApiError::NotFound(format!(
            "version {} of {name}'s grants",
            req.version
        )));
    };
    let now = app.clock.now();
    let current = app.store.grants(Some(&name), None).await?;
    let mut add = Vec::new();
    for spec in &target.grants {
        add.push(
            new_grant(
                &app,
                &name,
                &spec.target,
                &spec.rule,
                spec.expires_at,
                &who.admin.name,
                now,
            )
            .await?,
        );
    }
    let mut diff = String::new();
    for g in &current {
        diff.push_str(&format!("- remove {} {}\n", g.target, g.rule));
    }
    for g in &add {
        diff.push_str(&format!("+ add {} {}\n", g.target, g.rule));
    }
    let change = Replacement {
        verb: "grant.rollback",
        reason: format!("rollback to version {}", req.version),
        remove: current.iter().map(|g| g.id.clone()).collect(),
        add,
        diff,
    };
    Ok(Json(
        change
            .make(&app, &who.admin, &who.caller, &name, &current)
            .await?,
    ))
}

/// A new grant for `account`, as `POST /v1/grants` would make it.
async fn new_grant(
    app: &App,
    account: &str,
    target: &str,
    rule: &str,
    expires_at: Option<Timestamp>,
    created_by: &str,
    now: Timestamp,
) -> Result<Grant, ApiError> {
    let Some(t) = app.store.target(target).await? else {
        return Err(ApiError::NotFound(format!("target {target}")));
    };
    Ok(Grant {
        id: format!("g_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        account: account.to_owned(),
        target: target.to_owned(),
        rule: Rule::parse(t.kind, rule)?,
        created_by: created_by.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
    })
}

/// A change replacing several of an account's grants at once.
struct Replacement {
    /// The admin event's verb.
    verb: &'static str,
    /// Why, as the version records it.
    reason: String,
    /// Grants to remove.
    remove: Vec<String>,
    /// Grants to create.
    add: Vec<Grant>,
    /// The change as a diff.
    diff: String,
}

impl Replacement {
    /// Makes the change as one audited admin event, keeping `before` (the set in force) as the
    /// account's next grant set version.
    async fn make(
        self,
        app: &App,
        admin: &AdminPrincipal,
        caller: &Caller,
        account: &str,
        before: &[Grant],
    ) -> Result<GrantSetChange, ApiError> {
        let now = app.clock.now();
        let version =
            next_grant_version(app, account, before, self.reason.clone(), &admin.name, now).await?;
        let number = version.version;
        let detail =
            serde_json::json!({ "version": number, "reason": self.reason, "diff": self.diff });
        app.audited(
            admin,
            caller,
            self.verb,
            format!("account/{account}"),
            Some(detail),
            async {
                app.store
                    .replace_grants(&version, &self.remove, &self.add, now)
                    .await?;
                Ok(())
            },
        )
        .await?;
        let grants = app
            .store
            .grants(Some(account), None)
            .await?
            .into_iter()
            .map(|g| (g.target, g.rule.to_string()))
            .collect();
        Ok(GrantSetChange {
            version: number,
            diff: self.diff,
            grants,
        })
    }
}

/// The next version of `account`'s grant set, holding `before` (the grants in force before a
/// change that replaces several at once).
pub(crate) async fn next_grant_version(
    app: &App,
    account: &str,
    before: &[Grant],
    reason: String,
    created_by: &str,
    now: Timestamp,
) -> Result<GrantSetVersion, ApiError> {
    let number = app
        .store
        .grant_versions(account)
        .await?
        .last()
        .map_or(1, |v| v.version + 1);
    Ok(GrantSetVersion {
        account: account.to_owned(),
        version: number,
        grants: before
            .iter()
            .map(|g| GrantSpec {
                target: g.target.clone(),
                rule: g.rule.to_string(),
                expires_at: g.expires_at,
            })
            .collect(),
        reason,
        created_by: created_by.to_owned(),
        created_at: now,
    })
}
