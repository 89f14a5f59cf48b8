//! Audit-ready reports of the accountability analysis: an access review, a least-privilege
//! report and a compliance report, each as one self-contained HTML file (inline CSS and SVG,
//! printable to PDF), as JSON (validated by `docs/schemas/report.schema.json`) and as CSV, all
//! three carrying the same facts and naming the signed ledger checkpoint they were computed
//! from, so an auditor can verify them against the ledger.
//!
//! Pure and synchronous: the server gathers a [`ReportInput`] (the `warden-access`
//! [`Analysis`], the latest checkpoint, daily activity, and the access review's decisions when
//! there is one) and calls [`to_html`], [`to_json`] or [`to_csv`]; nothing here does I/O or
//! reads the clock.
//!
//! - [`facts`] (private): what every format shows, derived once: the findings in scope, counts
//!   by severity and kind, per-account rows, activity per day, and the evidence mapping of each
//!   control to the findings that bear on it.
//! - `json`, `csv` and `html` (private): the three renderings.
//! - `chart` (private): the geometry of the inline SVG charts.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use warden_access::{Analysis, FindingKind};
use warden_core::Timestamp;

mod chart;
mod csv;
mod facts;
mod html;
mod json;

pub use csv::to_csv;
pub use html::to_html;
pub use json::to_json;

/// The version of the JSON document's shape (`"version"` in the JSON).
pub const JSON_VERSION: u32 = 1;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// Every account with its owner, grants, keys and findings, for a reviewer to keep or
    /// revoke; the review's decisions when there is one. CSV: one row per account.
    AccessReview,
    /// The grant findings (unused, broader than used, wildcards). CSV: one row per finding.
    LeastPrivilege,
    /// Every finding and the evidence mapping to SOC 2, ISO 27001, PCI DSS, HIPAA and GDPR.
    /// CSV: one row per finding.
    Compliance,
}

impl ReportKind {
    /// Every kind.
    pub const ALL: [ReportKind; 3] = [Self::AccessReview, Self::LeastPrivilege, Self::Compliance];

    /// As URLs and the CLI spell it (`access-review`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessReview => "access-review",
            Self::LeastPrivilege => "least-privilege",
            Self::Compliance => "compliance",
        }
    }

    /// The kind `s` names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Self::AccessReview => "Service account access review",
            Self::LeastPrivilege => "Least-privilege report",
            Self::Compliance => "Compliance evidence report",
        }
    }

    /// Whether findings of `kind` are in this report.
    pub fn includes(self, kind: FindingKind) -> bool {
        match self {
            Self::AccessReview | Self::Compliance => true,
            Self::LeastPrivilege => matches!(
                kind,
                FindingKind::UnusedGrant | FindingKind::BroadGrant | FindingKind::WildcardGrant
            ),
        }
    }
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One self-contained HTML file.
    Html,
    /// JSON, as `docs/schemas/report.schema.json` describes it.
    Json,
    /// CSV (RFC 4180), columns as [`to_csv`] documents them.
    Csv,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Self::Html, Self::Json, Self::Csv];

    /// As URLs and the CLI spell it, and the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }

    /// The format `s` names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Html => "text/html; charset=utf-8",
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8; header=present",
        }
    }

    /// The report in this format.
    pub fn render(self, input: &ReportInput) -> String {
        match self {
            Self::Html => to_html(input),
            Self::Json => {
                let mut s = serde_json::to_string_pretty(&to_json(input)).unwrap_or_default();
                s.push('\n');
                s
            }
            Self::Csv => to_csv(input),
        }
    }
}

/// A suggested file name: `warden-access-review-20270601.html`.
pub fn file_name(kind: ReportKind, format: Format, generated_at: Timestamp) -> String {
    let day: String = generated_at
        .to_string()
        .chars()
        .take(10)
        .filter(char::is_ascii_digit)
        .collect();
    format!("warden-{}-{day}.{}", kind.as_str(), format.as_str())
}

/// The signed ledger checkpoint a report was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// How many ledger entries it covers.
    pub size: u64,
    /// The Merkle tree's root hash at that size, in hex.
    pub root_hash: String,
    /// The signed note, exactly as signed (C2SP tlog-checkpoint; see `docs/LEDGER.md`).
    pub note: String,
    /// When Warden signed it.
    pub signed_at: Option<Timestamp>,
}

/// How many actions happened on one day (of one account, or of all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyActivity {
    /// Midnight (UTC) of the day.
    pub day: Timestamp,
    /// The account, or `None` for every account together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How many actions.
    pub count: u64,
}

/// An access review and its decisions, when one exists for the report's period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSection {
    /// The review's name.
    pub name: String,
    /// Where it is (`open`, `completed`…).
    pub status: String,
    /// What reviewers decided, one per account reviewed.
    pub decisions: Vec<ReviewDecision>,
}

/// A reviewer's decision about one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// The account.
    pub account: String,
    /// What was decided (`keep`, `revoke`, `narrow`…).
    pub decision: String,
    /// Why.
    pub justification: String,
    /// Who decided.
    pub decided_by: String,
    /// When.
    pub decided_at: Timestamp,
}

/// Everything a report is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportInput {
    /// Which report.
    pub kind: ReportKind,
    /// The accountability analysis.
    pub analysis: Analysis,
    /// The latest signed checkpoint when the report was made, if any was signed yet.
    pub checkpoint: Option<CheckpointRef>,
    /// Actions per day over the analysis' window (days without activity may be left out).
    pub activity: Vec<DailyActivity>,
    /// The access review's decisions, when there is a review.
    pub review: Option<ReviewSection>,
    /// When the report was made.
    pub generated_at: Timestamp,
    /// Who asked for it (an admin's name).
    pub generated_by: String,
}

#[cfg(test)]
mod tests;
