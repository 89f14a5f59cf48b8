//! The OCSF classes Warden emits, with their categories, and the activity of one object.

/// An OCSF event class Warden emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Detection Finding (2004), category Findings (2).
    DetectionFinding,
    /// Account Change (3001), category Identity & Access Management (3).
    AccountChange,
    /// Authentication (3002), category Identity & Access Management (3).
    Authentication,
    /// API Activity (6003), category Application Activity (6).
    ApiActivity,
    /// Datastore Activity (6005), category Application Activity (6).
    DatastoreActivity,
}

impl Class {
    /// `class_uid`.
    pub(crate) fn uid(self) -> u32 {
        match self {
            Self::DetectionFinding => 2004,
            Self::AccountChange => 3001,
            Self::Authentication => 3002,
            Self::ApiActivity => 6003,
            Self::DatastoreActivity => 6005,
        }
    }

    /// `class_name`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::DetectionFinding => "Detection Finding",
            Self::AccountChange => "Account Change",
            Self::Authentication => "Authentication",
            Self::ApiActivity => "API Activity",
            Self::DatastoreActivity => "Datastore Activity",
        }
    }

    /// `category_uid`: OCSF numbers classes within their category's thousand.
    pub(crate) fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    /// `category_name`.
    pub(crate) fn category_name(self) -> &'static str {
        match self.category_uid() {
            2 => "Findings",
            3 => "Identity & Access Management",
            _ => "Application Activity",
        }
    }
}

/// `activity_id` of "Other": the source's own label is then kept in `activity_name`.
pub(crate) const OTHER: u32 = 99;

/// The activity of one object: its `activity_id` and `activity_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Activity<'a> {
    /// `activity_id` within the class.
    pub id: u32,
    /// `activity_name`: the schema's caption, or for [`OTHER`] the Warden verb.
    pub name: &'a str,
}

impl<'a> Activity<'a> {
    /// A schema-defined activity.
    pub(crate) const fn new(id: u32, name: &'static str) -> Self {
        Self { id, name }
    }

    /// "Other", labelled with the Warden verb.
    pub(crate) fn other(verb: &'a str) -> Self {
        Self {
            id: OTHER,
            name: verb,
        }
    }
}

/// The last word of a verb, lowercase: `account.create` → `create`, `GET` → `get`.
pub(crate) fn verb_word(verb: &str) -> String {
    verb.rsplit('.').next().unwrap_or(verb).to_ascii_lowercase()
}
