//! Access reviews as stored: a review (its snapshot of the whole population in `body`) and one
//! item per account (the account's snapshot, and the decision made on it). What a snapshot holds
//! is the server's business; the store keeps it as JSON and never looks inside.

use serde::{Deserialize, Serialize};
use warden_core::Timestamp;

use crate::{Result, StoreError};

/// Whether decisions are still being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Started, decisions can be made and changed.
    Open,
    /// Closed: decisions applied and final.
    Closed,
}

impl ReviewStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// From its stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// What a reviewer decided about one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// The account keeps its access as it is.
    Keep,
    /// The account is disabled and its keys revoked when the review closes.
    Revoke,
    /// Some of the account's grants are removed when the review closes.
    Modify,
}

impl ReviewDecision {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
            Self::Modify => "modify",
        }
    }

    /// From its stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(Self::Keep),
            "revoke" => Some(Self::Revoke),
            "modify" => Some(Self::Modify),
            _ => None,
        }
    }
}

/// One access review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Its name (`2026-Q4`).
    pub name: String,
    /// Open or closed.
    pub status: ReviewStatus,
    /// The admin who started it.
    pub started_by: String,
    /// When.
    pub started_at: Timestamp,
    /// The admin who closed it.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<Timestamp>,
    /// The snapshot taken at the start.
    pub body: serde_json::Value,
}

/// One account in a review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItem {
    /// The review.
    pub review: String,
    /// The account.
    pub account: String,
    /// What was decided, if anything yet.
    pub decision: Option<ReviewDecision>,
    /// Why.
    pub justification: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Timestamp>,
    /// Grants a `modify` decision removes.
    pub remove_grants: Vec<String>,
    /// What closing the review did about this account.
    pub outcome: Option<String>,
    /// The account's snapshot taken at the start.
    pub body: serde_json::Value,
}

/// The columns of `reviews`, in the order the backends bind and read them.
pub const REVIEW_COLUMNS: &str = "name, status, started_by, started_at, closed_by, closed_at, body";

/// The columns of `review_items`, in the order the backends bind and read them.
pub const ITEM_COLUMNS: &str = "review, account, decision, justification, decided_by, decided_at, \
     remove_grants, outcome, body";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A review from its columns (in [`REVIEW_COLUMNS`] order).
pub fn review_from(
    name: String,
    status: &str,
    started_by: String,
    started_at: i64,
    closed_by: Option<String>,
    closed_at: Option<i64>,
    body: &str,
) -> Result<Review> {
    Ok(Review {
        status: ReviewStatus::parse(status)
            .ok_or_else(|| corrupt("review status", format!("`{status}` in review {name}")))?,
        started_by,
        started_at: Timestamp::from_micros(started_at),
        closed_by,
        closed_at: closed_at.map(Timestamp::from_micros),
        body: serde_json::from_str(body).map_err(|e| corrupt("review body", e))?,
        name,
    })
}

/// The stored columns of a review item that are not plain text: decision, decided at, remove
/// grants (a JSON array) and body.
pub fn item_columns(item: &ReviewItem) -> (Option<&'static str>, Option<i64>, String, String) {
    (
        item.decision.map(ReviewDecision::as_str),
        item.decided_at.map(Timestamp::as_micros),
        serde_json::to_string(&item.remove_grants).unwrap_or_else(|_| "[]".into()),
        item.body.to_string(),
    )
}

/// The raw columns of one `review_items` row, in [`ITEM_COLUMNS`] order.
pub struct ItemRow {
    /// `review`.
    pub review: String,
    /// `account`.
    pub account: String,
    /// `decision`.
    pub decision: Option<String>,
    /// `justification`.
    pub justification: Option<String>,
    /// `decided_by`.
    pub decided_by: Option<String>,
    /// `decided_at`.
    pub decided_at: Option<i64>,
    /// `remove_grants`.
    pub remove_grants: String,
    /// `outcome`.
    pub outcome: Option<String>,
    /// `body`.
    pub body: String,
}

impl ItemRow {
    /// The item these columns hold.
    pub fn into_item(self) -> Result<ReviewItem> {
        let decision = match self.decision.as_deref() {
            None => None,
            Some(d) => Some(ReviewDecision::parse(d).ok_or_else(|| {
                corrupt(
                    "review decision",
                    format!("`{d}` for {} in review {}", self.account, self.review),
                )
            })?),
        };
        Ok(ReviewItem {
            decision,
            justification: self.justification,
            decided_by: self.decided_by,
            decided_at: self.decided_at.map(Timestamp::from_micros),
            remove_grants: serde_json::from_str(&self.remove_grants)
                .map_err(|e| corrupt("review item remove_grants", e))?,
            outcome: self.outcome,
            body: serde_json::from_str(&self.body).map_err(|e| corrupt("review item body", e))?,
            review: self.review,
            account: self.account,
        })
    }
}
