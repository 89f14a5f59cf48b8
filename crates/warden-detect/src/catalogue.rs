//! The built-in detectors: their stable names, default severities and the reason each exists.
//! [`catalogue`] is what the server and the documentation show; [`Detector`] is how the engine
//! refers to them internally.

use serde::Serialize;
use warden_core::Severity;

/// One built-in detector as documented to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DetectorInfo {
    /// Stable snake_case name, used in findings, alerts and the `disabled` settings.
    pub name: &'static str,
    /// The severity of its findings.
    pub severity: Severity,
    /// Why it exists and when it fires, in a sentence or two.
    pub rationale: &'static str,
}

/// The built-in detectors, in [`catalogue`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    /// A target the account never used.
    NewTarget,
    /// An action (route shape, SQL class and table, verb) the account never performed.
    NewAction,
    /// A source network the account never came from.
    NewSourceNetwork,
    /// An hour of the day (UTC) in which the account was never active.
    UnusualHour,
    /// Far more events in a window than the account's average.
    RateSpike,
    /// Many denied actions in a short time.
    DeniedBurst,
    /// Many failed authentications with one key id or from one address.
    AuthFailureBurst,
    /// A revoked, expired or rotated-out key, or a disabled or expired account, was presented.
    DeadCredential,
    /// An account woke up after a long silence.
    DormantWakeup,
    /// Schema or privilege changes, or access to a sensitive table.
    SensitiveAction,
    /// A result far larger than the account's usual for that action.
    LargeResult,
}

impl Detector {
    /// The stable name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The default severity.
    pub fn severity(self) -> Severity {
        self.info().severity
    }

    /// The catalogue entry.
    pub fn info(self) -> &'static DetectorInfo {
        &CATALOGUE[self as usize]
    }
}

/// Every built-in detector, in [`Detector`] order.
pub fn catalogue() -> &'static [DetectorInfo] {
    &CATALOGUE
}

const CATALOGUE: [DetectorInfo; 11] = [
    DetectorInfo {
        name: "new_target",
        severity: Severity::Medium,
        rationale:
            "A service account that suddenly reaches a target it never used may be a stolen \
                    credential exploring what it can reach. Silent during the learning period.",
    },
    DetectorInfo {
        name: "new_action",
        severity: Severity::Low,
        rationale: "Programs repeat themselves: an HTTP route shape, SQL class on a table or verb \
                    never seen for the account is worth a look. Silent during the learning period.",
    },
    DetectorInfo {
        name: "new_source_network",
        severity: Severity::Medium,
        rationale: "Workloads run from a few networks; a credential used from a new network \
                    (per the configured IPv4/IPv6 prefix) may have leaked. Silent during the \
                    learning period.",
    },
    DetectorInfo {
        name: "unusual_hour",
        severity: Severity::Low,
        rationale: "Activity in an hour of the day (UTC) in which the account was never active \
                    breaks its schedule. Silent during the learning period.",
    },
    DetectorInfo {
        name: "rate_spike",
        severity: Severity::High,
        rationale: "A window with at least `rate.min_events` events and `rate.factor` times the \
                    account's moving average suggests scraping or a runaway job. Needs the \
                    learning period and a few past active windows.",
    },
    DetectorInfo {
        name: "denied_burst",
        severity: Severity::High,
        rationale: "Many denied HTTP or SQL actions by one account in a short window: probing for \
                    privileges, or a broken deployment.",
    },
    DetectorInfo {
        name: "auth_failure_burst",
        severity: Severity::High,
        rationale: "Many failed authentications with one key id (or from one address when no key \
                    id was presented): guessing secrets or a misconfigured client.",
    },
    DetectorInfo {
        name: "dead_credential",
        severity: Severity::Critical,
        rationale: "Someone presented a revoked, expired or rotated-out key, or one of a disabled \
                    or expired account: a credential that should be gone is still in someone's \
                    hands. Fires on every attempt.",
    },
    DetectorInfo {
        name: "dormant_wakeup",
        severity: Severity::High,
        rationale: "The first activity of an account after `dormant_after` of silence: forgotten \
                    credentials are a favourite of attackers.",
    },
    DetectorInfo {
        name: "sensitive_action",
        severity: Severity::High,
        rationale: "Schema changes (`ddl`), privilege and server changes (`admin`), and any \
                    access to a table listed in `sensitive_tables`, allowed or attempted.",
    },
    DetectorInfo {
        name: "large_result",
        severity: Severity::High,
        rationale: "A result (rows or bytes sent) above its floor and `large_result.factor` times \
                    the account's running mean for that action: bulk exfiltration.",
    },
];

impl Detector {
    /// Every built-in detector, in catalogue order.
    pub const ALL: [Detector; 11] = [
        Detector::NewTarget,
        Detector::NewAction,
        Detector::NewSourceNetwork,
        Detector::UnusualHour,
        Detector::RateSpike,
        Detector::DeniedBurst,
        Detector::AuthFailureBurst,
        Detector::DeadCredential,
        Detector::DormantWakeup,
        Detector::SensitiveAction,
        Detector::LargeResult,
    ];

    /// The detector called `name`, if it is a built-in one.
    pub fn from_name(name: &str) -> Option<Detector> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_follows_enum_order_and_names_are_unique_snake_case() {
        for (i, d) in Detector::ALL.into_iter().enumerate() {
            assert_eq!(d as usize, i);
            assert_eq!(Detector::from_name(d.name()), Some(d));
            assert!(d.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(catalogue().len(), Detector::ALL.len());
        assert_eq!(Detector::DeadCredential.severity(), Severity::Critical);
        assert_eq!(Detector::from_name("nope"), None);
    }
}
