//! Findings: one thing about one account that a compliance lead should act on, its kind, how
//! serious it is by default, and the controls it is evidence against.

use serde::{Deserialize, Serialize};
use warden_core::Severity;

use crate::controls::{
    self, Control, GDPR_ART_30, GDPR_ART_32, HIPAA_ACCESS_MANAGEMENT, HIPAA_ACTIVITY_REVIEW,
    ISO_A5_15, ISO_A5_16, ISO_A5_17, ISO_A5_18, ISO_A8_2, PCI_7_2_4, PCI_7_2_5, PCI_8_2_6,
    PCI_8_3_9, PCI_8_6_1, PCI_8_6_3, SOC2_CC6_1, SOC2_CC6_2, SOC2_CC6_3,
};

/// What a finding is about. Each kind's documentation gives its rationale and default severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An active grant, older than `protect_new`, that allowed nothing in the window: access
    /// nobody needs is risk without benefit (least privilege). Medium.
    UnusedGrant,
    /// A wildcard grant through which only a narrower set of actions was seen in the window;
    /// the finding names them, and the recommendation narrows the grant to them. Medium.
    BroadGrant,
    /// An active grant whose rule has a wildcard (`*`, `* /…`, `**`, `read:*.*`, a class
    /// without tables): it allows actions nobody reviewed one by one. Low: often a deliberate
    /// choice, but one a reviewer should see.
    WildcardGrant,
    /// An active account created more than `protect_new` ago that has never authenticated nor
    /// acted: it may not be needed at all. Medium.
    NeverUsedAccount,
    /// An active account whose last use is older than `unused_after` (PCI DSS 8.2.6 asks for
    /// 90 days): disable it or explain why it is kept. Medium.
    InactiveAccount,
    /// An active key never used (and older than `protect_new`) or unused for `unused_after`: a
    /// secret lying around that nobody would miss if revoked. Medium.
    UnusedKey,
    /// An active key older than `max_key_age`: the longer a secret lives, the more places it
    /// may have leaked to. Medium.
    OldKey,
    /// An active key older than `max_key_age` on an account that has never rotated a key:
    /// rotation was never exercised, so it may not work when it is needed. High.
    NeverRotatedKey,
    /// The owner is a placeholder (`nobody@…`, `noreply@…`, an `example.com` address):
    /// nobody is accountable for the account. High.
    NoOwner,
    /// The owner is not among the people on record (`Options::people`): they may have left,
    /// leaving the account orphaned. High.
    OwnerNotOnRecord,
    /// The purpose is missing or too short to say why the account exists, so nobody can tell
    /// whether it is still needed. Low.
    NoPurpose,
}

/// Controls cited by the grant findings: least privilege.
const LEAST_PRIVILEGE: &[Control] = &[
    SOC2_CC6_3,
    ISO_A5_15,
    ISO_A5_18,
    ISO_A8_2,
    PCI_7_2_4,
    PCI_7_2_5,
    HIPAA_ACCESS_MANAGEMENT,
    GDPR_ART_32,
];
/// Controls cited by the account activity findings: inactive accounts.
const INACTIVITY: &[Control] = &[PCI_8_2_6, SOC2_CC6_2, ISO_A5_18, HIPAA_ACTIVITY_REVIEW];
/// Controls cited by `unused_key`: an idle secret.
const IDLE_SECRET: &[Control] = &[PCI_8_2_6, PCI_8_6_3, ISO_A5_17, SOC2_CC6_1];
/// Controls cited by the key age findings: secrets changed periodically.
const ROTATION: &[Control] = &[PCI_8_3_9, PCI_8_6_3, ISO_A5_17, SOC2_CC6_1];
/// Controls cited by the ownership findings: an accountable human and a stated purpose.
const OWNERSHIP: &[Control] = &[PCI_8_6_1, ISO_A5_16, SOC2_CC6_2, GDPR_ART_30];

impl FindingKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [FindingKind; 11] = [
        Self::UnusedGrant,
        Self::BroadGrant,
        Self::WildcardGrant,
        Self::NeverUsedAccount,
        Self::InactiveAccount,
        Self::UnusedKey,
        Self::OldKey,
        Self::NeverRotatedKey,
        Self::NoOwner,
        Self::OwnerNotOnRecord,
        Self::NoPurpose,
    ];

    /// How serious it is by default.
    pub fn severity(self) -> Severity {
        match self {
            Self::WildcardGrant | Self::NoPurpose => Severity::Low,
            Self::UnusedGrant
            | Self::BroadGrant
            | Self::NeverUsedAccount
            | Self::InactiveAccount
            | Self::UnusedKey
            | Self::OldKey => Severity::Medium,
            Self::NeverRotatedKey | Self::NoOwner | Self::OwnerNotOnRecord => Severity::High,
        }
    }

    /// The controls it is evidence against.
    pub fn controls(self) -> &'static [Control] {
        match self {
            Self::UnusedGrant | Self::BroadGrant | Self::WildcardGrant => LEAST_PRIVILEGE,
            Self::NeverUsedAccount | Self::InactiveAccount => INACTIVITY,
            Self::UnusedKey => IDLE_SECRET,
            Self::OldKey | Self::NeverRotatedKey => ROTATION,
            Self::NoOwner | Self::OwnerNotOnRecord | Self::NoPurpose => OWNERSHIP,
        }
    }
}

/// One thing to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// How serious it is.
    pub severity: Severity,
    /// The account.
    pub account: String,
    /// What it is about within the account: a grant id, a key id, or the account's name.
    pub subject: String,
    /// One sentence for humans.
    pub message: String,
    /// The controls it is evidence against, as references (`"SOC 2 CC6.3"`, see
    /// [`controls::controls`]).
    #[serde(deserialize_with = "controls::deserialize_references")]
    pub controls: Vec<&'static str>,
}

impl Finding {
    /// A finding of `kind` with its default severity and controls.
    pub(crate) fn new(
        kind: FindingKind,
        account: &str,
        subject: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity: kind.severity(),
            account: account.to_owned(),
            subject: subject.to_owned(),
            message: message.into(),
            controls: kind.controls().iter().map(|c| c.reference).collect(),
        }
    }

    /// What the finding adds to its account's risk score: 1 for low, 4 for medium, 9 for high,
    /// 16 for critical (the square of the level, so one serious finding outweighs several
    /// minor ones); informational findings add nothing.
    pub fn weight(&self) -> u32 {
        match self.severity {
            Severity::Info => 0,
            Severity::Low => 1,
            Severity::Medium => 4,
            Severity::High => 9,
            Severity::Critical => 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_cites_catalogued_controls() {
        for kind in FindingKind::ALL {
            assert!(!kind.controls().is_empty(), "{kind:?}");
            for c in kind.controls() {
                assert_eq!(controls::find(c.reference), Some(c), "{kind:?}");
            }
        }
    }

    #[test]
    fn findings_round_trip_and_reject_unknown_controls() {
        let f = Finding::new(FindingKind::BroadGrant, "etl", "g_1", "Too broad.");
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""kind":"broad_grant""#), "{json}");
        assert!(json.contains(r#""severity":"medium""#), "{json}");
        assert!(json.contains(r#""SOC 2 CC6.3""#), "{json}");
        assert_eq!(serde_json::from_str::<Finding>(&json).unwrap(), f);
        let forged = json.replace("SOC 2 CC6.3", "SOC 2 CC9.9");
        let e = serde_json::from_str::<Finding>(&forged).unwrap_err();
        assert!(e.to_string().contains("unknown control"), "{e}");
        assert_eq!(f.weight(), 4);
    }
}
