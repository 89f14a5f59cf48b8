//! The compliance controls findings are evidence for: a catalogue of the SOC 2, ISO/IEC
//! 27001:2022 (Annex A), PCI DSS 4.0, HIPAA Security Rule and GDPR clauses that speak to service
//! accounts, and the references findings carry (`"SOC 2 CC6.3"`, `"PCI DSS 7.2.5"`).
//!
//! Each entry is a constant, and finding kinds name the constants rather than spelling the
//! references again, so a finding can only cite a control that is in the catalogue.

use serde::Deserialize;

/// One control of one framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The framework: `SOC 2`, `ISO 27001:2022`, `PCI DSS 4.0`, `HIPAA`, `GDPR`.
    pub framework: &'static str,
    /// The control's identifier within its framework (`CC6.3`, `A.5.15`, `8.2.6`).
    pub id: &'static str,
    /// How a finding cites it: the framework's short name and the id (`PCI DSS 8.2.6`).
    pub reference: &'static str,
    /// What the control asks for, in a few words.
    pub title: &'static str,
}

/// Builds a [`Control`]; `$short` is the framework's name as references spell it.
macro_rules! control {
    ($framework:literal, $short:literal, $id:literal, $title:literal) => {
        Control {
            framework: $framework,
            id: $id,
            reference: concat!($short, " ", $id),
            title: $title,
        }
    };
}

pub(crate) const SOC2_CC6_1: Control = control!(
    "SOC 2",
    "SOC 2",
    "CC6.1",
    "Logical access security over protected information assets"
);
pub(crate) const SOC2_CC6_2: Control = control!(
    "SOC 2",
    "SOC 2",
    "CC6.2",
    "Users are registered, authorized and removed when no longer needed"
);
pub(crate) const SOC2_CC6_3: Control = control!(
    "SOC 2",
    "SOC 2",
    "CC6.3",
    "Access is authorized, modified and removed following least privilege"
);
pub(crate) const SOC2_CC7_2: Control = control!(
    "SOC 2",
    "SOC 2",
    "CC7.2",
    "System components are monitored for anomalies"
);
pub(crate) const ISO_A5_15: Control =
    control!("ISO 27001:2022", "ISO 27001", "A.5.15", "Access control");
pub(crate) const ISO_A5_16: Control = control!(
    "ISO 27001:2022",
    "ISO 27001",
    "A.5.16",
    "Identity management"
);
pub(crate) const ISO_A5_17: Control = control!(
    "ISO 27001:2022",
    "ISO 27001",
    "A.5.17",
    "Authentication information"
);
pub(crate) const ISO_A5_18: Control =
    control!("ISO 27001:2022", "ISO 27001", "A.5.18", "Access rights");
pub(crate) const ISO_A8_2: Control = control!(
    "ISO 27001:2022",
    "ISO 27001",
    "A.8.2",
    "Privileged access rights"
);
pub(crate) const ISO_A8_15: Control = control!("ISO 27001:2022", "ISO 27001", "A.8.15", "Logging");
pub(crate) const ISO_A8_16: Control = control!(
    "ISO 27001:2022",
    "ISO 27001",
    "A.8.16",
    "Monitoring activities"
);
pub(crate) const PCI_7_2_4: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "7.2.4",
    "Accounts and their access privileges are reviewed at least every six months"
);
pub(crate) const PCI_7_2_5: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "7.2.5",
    "Application and system accounts have only the privileges they need"
);
pub(crate) const PCI_8_2_6: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "8.2.6",
    "Accounts inactive for 90 days are removed or disabled"
);
pub(crate) const PCI_8_3_9: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "8.3.9",
    "Single-factor secrets are changed at least every 90 days"
);
pub(crate) const PCI_8_6_1: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "8.6.1",
    "System and application accounts are attributed to an individual"
);
pub(crate) const PCI_8_6_2: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "8.6.2",
    "Secrets of system and application accounts are not hard-coded"
);
pub(crate) const PCI_8_6_3: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "8.6.3",
    "Secrets of system and application accounts are changed periodically"
);
pub(crate) const PCI_10_2: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "10.2",
    "Audit logs record user and system activity"
);
pub(crate) const PCI_10_5_1: Control = control!(
    "PCI DSS 4.0",
    "PCI DSS",
    "10.5.1",
    "Audit log history is retained for at least 12 months"
);
pub(crate) const HIPAA_ACTIVITY_REVIEW: Control = control!(
    "HIPAA",
    "HIPAA",
    "164.308(a)(1)(ii)(D)",
    "Information system activity review"
);
pub(crate) const HIPAA_ACCESS_MANAGEMENT: Control = control!(
    "HIPAA",
    "HIPAA",
    "164.308(a)(4)",
    "Information access management"
);
pub(crate) const HIPAA_AUDIT_CONTROLS: Control =
    control!("HIPAA", "HIPAA", "164.312(b)", "Audit controls");
pub(crate) const GDPR_ART_5_1_F: Control = control!(
    "GDPR",
    "GDPR",
    "Art. 5(1)(f)",
    "Integrity and confidentiality of personal data"
);
pub(crate) const GDPR_ART_30: Control = control!(
    "GDPR",
    "GDPR",
    "Art. 30",
    "Records of processing activities"
);
pub(crate) const GDPR_ART_32: Control =
    control!("GDPR", "GDPR", "Art. 32", "Security of processing");

/// Every control, grouped by framework. The logging and monitoring controls (SOC 2 CC7.2, ISO
/// A.8.15 and A.8.16, PCI DSS 10.2 and 10.5.1, HIPAA 164.312(b)) are met by the ledger the
/// analysis reads rather than by any one finding; they are listed so reports can cite them.
const CATALOGUE: [Control; 26] = [
    SOC2_CC6_1,
    SOC2_CC6_2,
    SOC2_CC6_3,
    SOC2_CC7_2,
    ISO_A5_15,
    ISO_A5_16,
    ISO_A5_17,
    ISO_A5_18,
    ISO_A8_2,
    ISO_A8_15,
    ISO_A8_16,
    PCI_7_2_4,
    PCI_7_2_5,
    PCI_8_2_6,
    PCI_8_3_9,
    PCI_8_6_1,
    PCI_8_6_2,
    PCI_8_6_3,
    PCI_10_2,
    PCI_10_5_1,
    HIPAA_ACTIVITY_REVIEW,
    HIPAA_ACCESS_MANAGEMENT,
    HIPAA_AUDIT_CONTROLS,
    GDPR_ART_5_1_F,
    GDPR_ART_30,
    GDPR_ART_32,
];

/// The catalogue of controls findings can cite.
pub fn controls() -> &'static [Control] {
    &CATALOGUE
}

/// The control a reference (`"SOC 2 CC6.3"`) names, if it is in the catalogue.
pub fn find(reference: &str) -> Option<&'static Control> {
    CATALOGUE.iter().find(|c| c.reference == reference)
}

/// Deserializes a finding's references back into the catalogue's static strings; a reference
/// that is not in the catalogue is an error.
pub(crate) fn deserialize_references<'de, D>(d: D) -> Result<Vec<&'static str>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|r| {
            find(r)
                .map(|c| c.reference)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown control `{r}`")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_unique_and_prefixed() {
        for (i, c) in CATALOGUE.iter().enumerate() {
            assert!(c.reference.ends_with(c.id), "{c:?}");
            assert!(c
                .framework
                .starts_with(c.reference.split(' ').next().unwrap()));
            assert!(CATALOGUE[..i].iter().all(|o| o.reference != c.reference));
            assert_eq!(find(c.reference), Some(c));
        }
        assert_eq!(SOC2_CC6_3.reference, "SOC 2 CC6.3");
        assert_eq!(PCI_7_2_5.reference, "PCI DSS 7.2.5");
        assert_eq!(ISO_A5_15.reference, "ISO 27001 A.5.15");
        assert!(find("SOC 2 CC9.9").is_none());
    }

    #[test]
    fn the_requested_ids_are_all_there() {
        let ids = [
            "CC6.1",
            "CC6.2",
            "CC6.3",
            "CC7.2",
            "A.5.15",
            "A.5.16",
            "A.5.17",
            "A.5.18",
            "A.8.2",
            "A.8.15",
            "A.8.16",
            "7.2.4",
            "7.2.5",
            "8.2.6",
            "8.3.9",
            "8.6.1",
            "8.6.2",
            "8.6.3",
            "10.2",
            "10.5.1",
            "164.308(a)(1)(ii)(D)",
            "164.308(a)(4)",
            "164.312(b)",
            "Art. 5(1)(f)",
            "Art. 30",
            "Art. 32",
        ];
        let catalogue: Vec<_> = controls().iter().map(|c| c.id).collect();
        assert_eq!(catalogue, ids);
    }
}
